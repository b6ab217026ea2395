#!/usr/bin/python3
"""The demo model's training data (label train): tools/train/synth_pages.py
makes the same bytes from the same seed; every answer is a valid official
layout-all answer (keys in order, the 11 categories, Picture without text,
boxes inside the resized image, ink inside every text box); and dotsocr's
own post-processing, replaying the answers as the model's (parse
--replay-dir), accepts every one unfiltered, maps each box back to the page
as the official formula does (int(x / (W'/W))), and puts every paragraph in
the Markdown."""
import argparse
import filecmp
import json
import os
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


def gen(a, out, seed, count):
    r = subprocess.run(["/usr/bin/python3", a.synth, "--out", out, "--count", str(count), "--seed", str(seed)],
                       capture_output=True, timeout=600)
    check(r.returncode == 0, "synth_pages.py --seed %d: exit 0 %s" % (seed, r.stderr.decode()[-300:]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--synth", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
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
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
