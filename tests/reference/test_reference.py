#!/usr/bin/python3
"""Checks of the PyTorch reference itself (CTest label `reference`). Exits 77
(reported as skipped) when torch, or node with the HF tokenizers, is missing.

  spec     smart_resize worked examples (docs/model.md §4.2), prompt strings and layout,
           and the ids of docs/model.md §6.2, checked against the HF tokenizer
  tagged   a pixel-tagged image proves the patch order (4.5) and positions (5.2)
  golden   regenerates every golden set from a fresh tiny model (5 images x 4
           modes, fp32), within 2 minutes; greedy choices well separated; the
           KV-cache decode equals full recomputation; bf16 mode runs
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

SKIP = 77
try:
    import numpy as np
    import torch
    from PIL import Image
except ImportError as e:
    print("skipped: %s (install python3-torch python3-numpy python3-pil)" % e)
    sys.exit(SKIP)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import dots_ref as R  # noqa: E402
import make_golden as G  # noqa: E402

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def node_modules():
    if not shutil.which("node"):
        return None
    r = subprocess.run([os.path.join(ROOT, "scripts", "fetch-tokenizer"), "--hf"], capture_output=True)
    return r.stdout.decode().splitlines()[-1] if r.returncode == 0 else None


def test_spec(a):
    table = [((2250, 1700), (2240, 1708), (160, 122), 4880), ((2339, 1654), (2352, 1652), (168, 118), 4956),
             ((3508, 2480), (3500, 2492), (250, 178), 11125), ((4400, 3400), (3808, 2940), (272, 210), 14280),
             ((1024, 768), (1036, 756), (74, 54), 999), ((100, 100), (112, 112), (8, 8), 16)]
    for (h, w), want, grid, toks in table:
        got = R.smart_resize(h, w)
        g = (got[0] // 14, got[1] // 14)
        check(got == want and g == grid and g[0] * g[1] // 4 == toks, "smart_resize %dx%d -> %s %s" % (h, w, got, g))
    check(R.smart_resize(70, 300)[0] == 56, "a 70-px side -> 56 (half-to-even)")
    check(R.smart_resize(56, 56) == (56, 56), "the smallest image: 4 tokens")
    nm = node_modules()
    if not nm:
        print("skipped: node + HF tokenizers unavailable")
        sys.exit(SKIP)
    tj = os.path.join(a.model, "tokenizer.json")
    for mode in R.PROMPTS:
        text = R.prompt_text(mode, [163, 241, 1536, 705] if mode == "grounding" else None)
        n = 16
        ids = R.prompt_ids(n, G.hf_encode(nm, tj, text))
        full = "<|user|><|img|>" + "<|imgpad|>" * n + "<|endofimg|>" + text + "<|endofuser|><|assistant|>"
        check(G.hf_encode(nm, tj, full) == ids, "prompt layout of %s equals HF's tokenization of the template" % mode)
        check(ids[:2] == [151670, 151666] and ids[2:2 + n] == [151665] * n and ids[2 + n] == 151667 and
              ids[-2:] == [151671, 151672], "docs/model.md §6.2 framing ids for %s" % mode)
    g = R.prompt_text("grounding", [163, 241, 1536, 705])
    check(g.endswith("Bounding Box:\n[163, 241, 1536, 705]"), "grounding appends the bbox as a Python list")
    print("spec checks done")


def test_tagged(a):
    for gh, gw in [(2, 2), (4, 6), (8, 12), (10, 4)]:
        img = np.zeros((gh * 14, gw * 14, 3), np.uint8)
        for r in range(gh):
            for c in range(gw):
                img[r * 14:(r + 1) * 14, c * 14:(c + 1) * 14] = (r * 20 + 3, c * 20 + 3, 111)
        rows, g1, g2 = R.patch_rows(Image.fromarray(img))
        pos = R.positions(g1, g2)
        ok = (g1, g2) == (gh, gw)
        for t in range(gh * gw):
            R_, C_ = t // (2 * gw), (t // 4) % (gw // 2)
            r, c = 2 * R_ + (t // 2) % 2, 2 * C_ + t % 2  # docs/model.md §4.5: t = ((R*(gw/2)+C)*2+mr)*2+mc
            vals = [round(float(rows[t, ch * 196] * R.IMAGE_STD[ch] + R.IMAGE_MEAN[ch]) * 255) for ch in range(3)]
            ok &= vals == [r * 20 + 3, c * 20 + 3, 111] and list(pos[t]) == [r, c]
            ok &= bool(np.ptp(rows[t, :196]) == 0 and np.ptp(rows[t, 196:392]) == 0)
        check(ok, "tagged %dx%d grid: rows in merge-block-major order with their (h, w)" % (gh, gw))
    print("tagged image checks done")


def make_images(d):
    rng = np.random.default_rng(11)
    imgs = {}
    def noise(w, h):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        a[h // 4: h // 2, w // 4: w // 2] = (255, 255, 255)  # some structure
        return Image.fromarray(a)
    for name, (w, h) in {"square": (200, 200), "smallest": (56, 56), "landscape": (420, 150),
                         "portrait": (140, 390), "elongated": (60, 1500)}.items():
        p = os.path.join(d, name + ".png")
        noise(w, h).save(p)
        imgs[name] = p
    return imgs


def test_golden(a):
    nm = node_modules()
    if not nm:
        print("skipped: node + HF tokenizers unavailable")
        sys.exit(SKIP)
    t0 = time.time()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    imgs = make_images(a.out)
    loaded = R.load_checkpoint(a.model)
    n = 0
    min_gap = float("inf")
    for name, path in imgs.items():
        for mode in ["layout-all", "layout-only", "ocr", "grounding"]:
            args = G.parser().parse_args(["--model", a.model, "--image", path, "--mode", mode, "--node-modules", nm,
                                          "--out", os.path.join(a.out, "%s_%s" % (name, mode))] +
                                         (["--bbox", "10,12,40,50"] if mode == "grounding" else []) +
                                         (["--no-blocks"] if mode != "ocr" else []))
            meta = G.generate(args, loaded)
            n += 1
            min_gap = min(min_gap, meta["min_gap"])
            check(meta["min_gap"] > 1e-3, "%s %s: greedy top-1/top-2 gap %.2g is too small" % (name, mode, meta["min_gap"]))
    elapsed = time.time() - t0
    print("golden: %d sets in %.1f s, smallest top-1 minus top-2 logit gap %.3f" % (n, elapsed, min_gap))
    check(elapsed < 120, "regenerating the goldens took %.0f s (limit 120)" % elapsed)
    # The KV-cache decode equals recomputing the whole sequence.
    cfg, w = loaded
    gdir = os.path.join(a.out, "square_ocr")
    ids = list(np.load(os.path.join(gdir, "prompt_ids.npy")))
    toks = list(np.load(os.path.join(gdir, "tokens.npy")))[:8]
    lm = R.LM(cfg, w)
    emb = torch.from_numpy(np.load(os.path.join(gdir, "vision_embeds.npy")))
    full = lm.forward(lm.embed(ids + toks, emb), 0, [])
    steps = torch.from_numpy(np.load(os.path.join(gdir, "logits_teacher.npy")))[: len(toks)]
    diff = float((full[len(ids):len(ids) + len(toks)] - steps).abs().max())
    check(diff < 1e-3, "KV-cache decode vs full recompute: max |diff| %.2g" % diff)
    pre = float((full[len(ids) - 1] - torch.from_numpy(np.load(os.path.join(gdir, "logits_prefill.npy")))).abs().max())
    check(pre < 1e-3, "prefill logits reproducible: %.2g" % pre)
    # bf16 numerics run and stay close to fp32 on the vision embeddings
    args = G.parser().parse_args(["--model", a.model, "--image", imgs["square"], "--mode", "ocr", "--node-modules", nm,
                                  "--out", os.path.join(a.out, "square_ocr_bf16"), "--dtype", "bf16", "--max-new", "4",
                                  "--teacher", "2", "--no-blocks"])
    G.generate(args, loaded)
    e32 = np.load(os.path.join(gdir, "vision_embeds.npy"))
    e16 = np.load(os.path.join(a.out, "square_ocr_bf16", "vision_embeds.npy"))
    cos = float((e32 * e16).sum() / np.sqrt((e32 ** 2).sum() * (e16 ** 2).sum()))
    check(cos > 0.99, "bf16 vs fp32 vision embeddings cosine %.4f" % cos)
    print("kv-cache diff %.2g, bf16 cosine %.5f" % (diff, cos))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["spec", "tagged", "golden"])
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    globals()["test_" + a.what](a)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
