#!/usr/bin/python3
"""The demo model's tools (label train).

generator: tools/train/synth_pages.py makes the same bytes from the same seed; every answer is a valid official
layout-all answer (keys in order, the 11 categories, Picture without text,
boxes inside the resized image, ink inside every text box); and dotsocr's
own post-processing, replaying the answers as the model's (parse
--replay-dir), accepts every one unfiltered, maps each box back to the page
as the official formula does (int(x / (W'/W))), and puts every paragraph in
the Markdown.

smoke: the training script on CPU (see smoke() below).
evaluate: tools/train/evaluate.py's CER and IoU (see evaluate() below).
demo: the bundled demo model reads samples/page.png (see demo() below)."""
import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys

from PIL import Image

FAILED = []
CATEGORIES = {"Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header", "Picture", "Section-header",
              "Table", "Text", "Title"}


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILED.append(what)
    return ok


def gen(a, out, seed, count, *extra):
    r = subprocess.run(["/usr/bin/python3", a.synth, "--out", out, "--count", str(count), "--seed", str(seed), *extra],
                       capture_output=True, timeout=600)
    check(r.returncode == 0, "synth_pages.py --seed %d: exit 0 %s" % (seed, r.stderr.decode()[-300:]))


def generator(a):
    sample = os.path.join(a.tmp, "sample")
    r = subprocess.run(["/usr/bin/python3", a.synth, "--out", sample, "--sample"], capture_output=True, timeout=600)
    samples = os.path.join(os.path.dirname(a.train_dir), "..", "samples")
    check(r.returncode == 0 and all(filecmp.cmp(os.path.join(sample, f), os.path.join(samples, f), shallow=False)
                                    for f in ("page.png", "page.txt")),
          "synth_pages.py --sample draws samples/page.png and its truth page.txt byte for byte %s" % r.stderr.decode()[-300:])
    d1, d2, d3 = (os.path.join(a.tmp, n) for n in ("one", "two", "other"))
    n = 6
    gen(a, d1, 11, n)
    gen(a, d2, 11, n)
    gen(a, d3, 12, 1)
    names = sorted(os.listdir(d1))
    check(len(names) == 2 * n + 1 and names == sorted(os.listdir(d2)), "%d files per run" % len(names))
    check(all(filecmp.cmp(os.path.join(d1, f), os.path.join(d2, f), shallow=False) for f in names),
          "the same seed gives the same bytes")
    check(not filecmp.cmp(os.path.join(d1, "page_0000.png"), os.path.join(d3, "page_0000.png"), shallow=False),
          "another seed gives another page")
    manifest = [json.loads(l) for l in open(os.path.join(d1, "manifest.jsonl"))]
    for m in manifest:
        stem = m["image"][:-4]
        raw = open(os.path.join(d1, m["answer"]), encoding="utf-8").read()
        cells = json.loads(raw)
        img = Image.open(os.path.join(d1, m["image"])).convert("L")
        W, H, Wb, Hb = m["width"], m["height"], m["model_width"], m["model_height"]
        check(img.size == (W, H) and Wb % 28 == 0 and Hb % 28 == 0, "%s: %dx%d, seen as %dx%d" % (stem, W, H, Wb, Hb))
        keys_ok = all(list(c) == (["bbox", "category"] if c["category"] == "Picture" else ["bbox", "category", "text"])
                      for c in cells)
        cats = {c["category"] for c in cells}
        check(keys_ok and cats <= CATEGORIES and {"Title", "Text", "Page-header", "Page-footer"} <= cats,
              "%s: %d cells, keys in the official order, categories %s" % (stem, len(cells), sorted(cats)))
        boxes_ok = all(0 <= c["bbox"][0] < c["bbox"][2] <= Wb and 0 <= c["bbox"][1] < c["bbox"][3] <= Hb for c in cells)
        check(boxes_ok, "%s: every box inside the %dx%d image" % (stem, Wb, Hb))
        inked = True
        for c in cells:
            if c["category"] in ("Picture", "Table"):
                continue
            bx1, by1, bx2, by2 = c["bbox"]  # resized pixels -> page pixels
            x1, y1, x2, y2 = int(bx1 * W / Wb), int(by1 * H / Hb), int(bx2 * W / Wb), int(by2 * H / Hb)
            if img.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))).getextrema()[0] > 140:
                inked = False
        check(inked, "%s: ink inside every text box" % stem)
    # dotsocr's post-processing on the answers
    out = os.path.join(a.tmp, "parsed")
    imgs = [os.path.join(d1, m["image"]) for m in manifest]
    r = subprocess.run([a.dotsocr, "parse", "-q", "--model", a.model, "--no-fitz-preprocess", "--replay-dir", d1, "-o", out,
                        *imgs], capture_output=True, timeout=900)
    check(r.returncode == 0, "dotsocr parse --replay-dir on the answers: exit 0 %s" % r.stderr.decode()[-300:])
    for m in manifest:
        stem = m["image"][:-4]
        cells = json.loads(open(os.path.join(d1, m["answer"]), encoding="utf-8").read())
        rec = json.loads(open(os.path.join(out, stem + ".jsonl")).readline())
        got = json.load(open(os.path.join(out, stem + ".json")))
        sx, sy = m["model_width"] / m["width"], m["model_height"] / m["height"]
        want = [[int(c["bbox"][0] / sx), int(c["bbox"][1] / sy), int(c["bbox"][2] / sx), int(c["bbox"][3] / sy)]
                for c in cells]
        check(not rec.get("filtered") and isinstance(got, list) and [g["bbox"] for g in got] == want,
              "%s: accepted unfiltered, boxes mapped back as int(x / (W'/W))" % stem)
        md = open(os.path.join(out, stem + ".md"), encoding="utf-8").read()
        check(all(c["text"] in md for c in cells if c["category"] == "Text"), "%s: every paragraph in the Markdown" % stem)


def train(a, *args, timeout=600):
    cmd = ["/usr/bin/python3", os.path.join(a.train_dir, "train.py"), "--template", a.model, "--dotsocr", a.dotsocr] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def step_losses(log):
    return [float(m.group(1)) for m in re.finditer(r"\] step \d+ loss ([0-9.]+) ", log)]


def smoke(a):
    """The training script on CPU, seconds: the loss falls on a batch it keeps
    seeing; the checkpoint it writes is the official layout, loads in dotsocr
    and computes what the PyTorch module computes (fp32 logits within 1e-4 at
    the prefill's last position and 24 teacher-forced answer tokens); the
    trained part rebuilds it bit for bit, and a damaged part is refused."""
    import numpy as np
    import torch
    sys.path.insert(0, a.train_dir)
    import demo_model as dm
    import train as tr
    out, part = os.path.join(a.tmp, "model"), os.path.join(a.tmp, "part")
    r = train(a, "--size", "smoke", "--steps", "10", "--fixed-batch", "--lr", "1e-2", "--warmup", "1", "--workers", "0",
              "--image-tokens", "400", "--max-side", "448", "--out", out, "--part-dir", part, "--log-every", "1")
    log = r.stdout.decode()
    print(log[-1500:])
    if not check(r.returncode == 0, "train.py --size smoke, 10 steps on one batch: exit 0 %s" % r.stderr.decode()[-800:]):
        return
    losses = step_losses(log)
    check(len(losses) == 10 and losses[-1] < 0.9 * losses[0],
          "the loss falls on the batch it trains on: %s" % " ".join("%.3f" % x for x in losses))
    # a batch in pieces (what running out of GPU memory switches to) is the same step
    runs = []
    for split in ("1", "3"):
        r = train(a, "--size", "smoke", "--steps", "2", "--fixed-batch", "--lr", "1e-3", "--warmup", "1", "--workers", "0",
                  "--image-tokens", "1200", "--max-pages", "3", "--max-side", "448", "--split", split,
                  "--part-dir", os.path.join(a.tmp, "split" + split), "--log-every", "1")
        runs.append(step_losses(r.stdout.decode()))
    check(len(runs[0]) == 2 == len(runs[1]) and abs(runs[0][0] - runs[1][0]) < 2e-4 and abs(runs[0][1] - runs[1][1]) < 1e-3,
          "a batch of 3 pages in 3 pieces: the same losses %s vs %s" % (runs[0], runs[1]))
    check(sorted(os.listdir(out)) == ["config.json", "generation_config.json", "model.safetensors",
                                      "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"],
          "the official layout: %s" % sorted(os.listdir(out)))
    cfg = json.load(open(os.path.join(out, "config.json")))
    tensors, _ = dm.read_safetensors(os.path.join(out, "model.safetensors"))
    check(cfg["tie_word_embeddings"] and "lm_head.weight" not in tensors and len(tensors) == 50 and
          all(dt == "BF16" for dt, _ in tensors.values()), "bf16 tensors, tied embeddings: no lm_head.weight")
    # the trained part
    rebuilt = os.path.join(a.tmp, "rebuilt")
    r = subprocess.run(["/usr/bin/python3", os.path.join(a.train_dir, "rebuild_model.py"), "--parts", part,
                        "--template", a.model, "--out", rebuilt], capture_output=True, timeout=300)
    check(r.returncode == 0 and filecmp.cmp(os.path.join(out, "model.safetensors"),
                                            os.path.join(rebuilt, "model.safetensors"), shallow=False),
          "rebuild_model.py from the trained part: the same bytes %s" % r.stderr.decode()[-300:])
    emb = tensors["model.embed_tokens.weight"][1]
    init = dm.bf16_bits(dm.initial_embedding(1, emb.shape[0], emb.shape[1]))
    changed = int((emb != init).any(1).sum())
    check(0 < changed < 5000, "only rows the batch used left their seeded values (%d)" % changed)
    r = train(a, "--size", "smoke", "--steps", "1", "--workers", "0", "--image-tokens", "300", "--max-side", "448",
              "--init-from", rebuilt, "--part-dir", os.path.join(a.tmp, "again"))
    m = re.search(r"from .* \((\d+) embedding rows trained\)", r.stdout.decode())
    check(r.returncode == 0 and m and int(m.group(1)) == changed,
          "--init-from the rebuilt model: training goes on with its %s trained rows" % (m and m.group(1)))
    bad = os.path.join(a.tmp, "badpart")
    shutil.copytree(part, bad)
    p0 = os.path.join(bad, "trained.part-00")
    open(p0, "r+b").truncate(os.path.getsize(p0) // 2)
    r = subprocess.run(["/usr/bin/python3", os.path.join(a.train_dir, "rebuild_model.py"), "--parts", bad,
                        "--template", a.model, "--out", os.path.join(a.tmp, "bad")], capture_output=True, timeout=300)
    check(r.returncode != 0 and b"rebuild_model.py:" in r.stderr and not os.path.exists(os.path.join(a.tmp, "bad")),
          "a truncated part: refused with a message (%s)" % r.stderr.decode().strip()[-200:])
    shutil.copyfile(os.path.join(part, "trained.part-00"), p0)  # one byte of the data changed (a mixed set of parts)
    with open(p0, "r+b") as f:
        f.seek(os.path.getsize(p0) - 100)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 1]))
    r = subprocess.run(["/usr/bin/python3", os.path.join(a.train_dir, "rebuild_model.py"), "--parts", bad,
                        "--template", a.model, "--out", os.path.join(a.tmp, "bad")], capture_output=True, timeout=300)
    check(r.returncode != 0 and b"sha256" in r.stderr and not os.path.exists(os.path.join(a.tmp, "bad")),
          "a part with a changed byte: refused (%s)" % r.stderr.decode().strip()[-200:])
    # the engine computes what the module computes
    pages = os.path.join(a.tmp, "pages")
    gen(a, pages, 5, 1, "--min-side", "300", "--max-side", "448")
    image = os.path.join(pages, "page_0000.png")
    answer = open(os.path.join(pages, "page_0000.txt"), encoding="utf-8").read()
    tok = tr.Tokenizer(out, a.dotsocr)
    forced = tok.encode(answer)[:24]
    np.save(os.path.join(a.tmp, "forced.npy"), np.array(forced, dtype=np.int32))
    dump = os.path.join(a.tmp, "dump")
    r = subprocess.run([a.debug, "run", "-q", "--model", out, image, "--precision", "fp32", "--dump", dump,
                        "--teacher-force", os.path.join(a.tmp, "forced.npy")], capture_output=True, timeout=600)
    if not check(r.returncode == 0, "dotsocr-debug run on the trained checkpoint: %s" % r.stderr.decode()[-300:]):
        return
    model = dm.DotsOCR(cfg)
    dm.load_model_dir(model, out)
    model.eval()
    from PIL import Image
    resized = np.asarray(tr.resize_image(Image.open(image).convert("RGB")), dtype=np.uint8)
    gh, gw = resized.shape[0] // 14, resized.shape[1] // 14
    prompt = tr.prefix_ids(gh * gw // 4, tok.encode(tr.layout_prompt()))
    check(np.load(os.path.join(dump, "prompt_ids.npy")).tolist() == prompt, "the prompt ids the training feeds == dotsocr's")
    with torch.no_grad():
        rows = tr.patchify(torch.from_numpy(resized[None].copy()), "cpu")
        vis = model.vision_tower(rows, torch.from_numpy(tr.positions(gh, gw)))
        ids = torch.tensor([prompt + forced])
        logits = model.logits(model.hidden(model.embed(ids, vis))[0])
    P = len(prompt)
    d_pre = float(np.abs(logits[P - 1].numpy() - np.load(os.path.join(dump, "logits_prefill.npy")).reshape(-1)).max())
    d_tf = float(np.abs(logits[P:P + len(forced)].numpy() - np.load(os.path.join(dump, "logits_teacher.npy"))).max())
    check(d_pre <= 1e-4 and d_tf <= 1e-4, "PyTorch module vs dotsocr, fp32 logits max |diff|: prefill %.2e, "
          "%d teacher-forced tokens %.2e" % (d_pre, len(forced), d_tf))
    # the compact file
    gguf = os.path.join(a.tmp, "smoke-q8_0.gguf")
    r = subprocess.run([a.dotsocr, "convert", out, gguf, "--type", "q8_0"], capture_output=True, timeout=600)
    check(r.returncode == 0, "dotsocr convert --type q8_0: %s" % r.stderr.decode()[-300:])
    r = subprocess.run([a.dotsocr, "run", "--model", gguf, image, "--no-fitz-preprocess", "--max-new-tokens", "8"],
                       capture_output=True, timeout=600)
    check(r.returncode == 0, "dotsocr run on the Q8_0 GGUF: %s" % r.stderr.decode()[-300:])


def edit_distance(a, b):
    """The textbook dynamic programme (independent of evaluate.py's vectorised one)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def evaluate(a):
    """tools/train/evaluate.py scores answers as documented: the truth
    itself gives CER 0 and IoU 1; answers with a cell dropped and a word
    changed give the CER of a textbook edit distance and IoU (n-1)/n."""
    pages = os.path.join(a.tmp, "pages")
    gen(a, pages, 21, 4, "--min-side", "300", "--max-side", "420")
    script = os.path.join(a.train_dir, "evaluate.py")

    def run(replay, tag):
        res = os.path.join(a.tmp, tag + ".json")
        r = subprocess.run(["/usr/bin/python3", script, "--dotsocr", a.dotsocr, "--pages", pages, "--model", a.model,
                            "--precision", "fp32", "--replay-dir", replay, "--out", os.path.join(a.tmp, tag),
                            "--json", res], capture_output=True, timeout=600)
        check(r.returncode == 0, "evaluate.py on %s answers: exit 0 %s" % (tag, r.stderr.decode()[-300:]))
        print(r.stdout.decode())
        return json.load(open(res))[0] if r.returncode == 0 else None

    got = run(pages, "truth")
    check(got is not None and got["cer"] == 0 and got["iou"] == 1.0 and got["failed"] == 0,
          "the truth scores CER 0, IoU 1: %s" % got)
    changed = os.path.join(a.tmp, "changed")
    os.makedirs(changed)
    manifest = [json.loads(l) for l in open(os.path.join(pages, "manifest.jsonl"))]
    edits = chars = 0
    ious = []
    for m in manifest:
        cells = json.load(open(os.path.join(pages, m["answer"]), encoding="utf-8"))
        text = lambda cs: "\n\n".join(c["text"] for c in cs if c["category"] != "Picture")
        truth = text(cells)
        pred = [dict(c) for c in cells[:-1]]  # the footer dropped
        for c in pred:
            if c["category"] == "Text":
                c["text"] = c["text"].replace(" ", " xq ", 1)
                break
        with open(os.path.join(changed, m["answer"]), "w", encoding="utf-8") as f:
            f.write(json.dumps(pred))
        edits += edit_distance(truth, text(pred))
        chars += len(truth)
        ious.append((len(cells) - 1) / len(cells))
    got = run(changed, "changed")
    want_cer, want_iou = edits / chars, sum(ious) / len(ious)
    check(got is not None and abs(got["cer"] - want_cer) < 1e-12 and abs(got["iou"] - want_iou) < 1e-12,
          "changed answers: CER %.5f (want %.5f), IoU %.5f (want %.5f)" % (got and got["cer"], want_cer,
                                                                          got and got["iou"], want_iou))


def demo(a):
    """The bundled demo model reads samples/page.png as scripts/demo runs it:
    the Markdown within 10 % CER of the truth's (samples/page.txt through the
    same post-processing), and a box of IoU >= 0.5 on each of the heading, the
    paragraph and the framed formula in the layout."""
    sys.path.insert(0, a.train_dir)
    import evaluate as ev
    samples = os.path.dirname(a.model)
    page = os.path.join(samples, "page.png")
    out, truth = os.path.join(a.tmp, "demo"), os.path.join(a.tmp, "truth")
    r = subprocess.run([a.dotsocr, "parse", "--model", a.model, page, "-o", out, "--no-fitz-preprocess"],
                       capture_output=True, timeout=900)
    if not check(r.returncode == 0, "dotsocr parse as scripts/demo runs it: exit 0 %s" % r.stderr.decode()[-300:]):
        return
    r = subprocess.run([a.dotsocr, "parse", "-q", "--model", a.model, page, "-o", truth, "--no-fitz-preprocess",
                        "--replay-dir", samples], capture_output=True, timeout=900)
    check(r.returncode == 0, "the truth through the same post-processing: %s" % r.stderr.decode()[-300:])
    got = open(os.path.join(out, "page.md"), encoding="utf-8").read()
    want = open(os.path.join(truth, "page.md"), encoding="utf-8").read()
    cer = ev.levenshtein(want, got) / len(want)
    print("truth:\n%s\nread:\n%s" % (want, got))
    check(cer <= 0.10, "CER %.2f %% of the Markdown (at most 10 %%)" % (100 * cer))
    cells_got = json.load(open(os.path.join(out, "page.json")))
    cells_want = json.load(open(os.path.join(truth, "page.json")))
    boxes = ev.boxes(cells_got) if isinstance(cells_got, list) else []
    for c in cells_want:
        best = max([ev.iou(c["bbox"], b) for b in boxes] or [0])
        check(best >= 0.5, "a box on the %s: IoU %.2f" % (c["category"], best))
    check(os.path.getsize(os.path.join(out, "page.jpg")) > 0, "the layout picture is written")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["generator", "smoke", "evaluate", "demo"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--debug", help="dotsocr-debug (smoke)")
    p.add_argument("--model", required=True)
    p.add_argument("--synth", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    a.train_dir = os.path.dirname(os.path.abspath(a.synth))
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    {"generator": generator, "smoke": smoke, "evaluate": evaluate, "demo": demo}[a.case](a)
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
