#!/usr/bin/env python3
"""Measures a demo model on held-back synthetic pages (docs/train.md): runs
`dotsocr parse` on them and compares each page's cells with the truth.

  CER  character error rate: Levenshtein distance between the page's text
       (every cell but Picture, in the answer's order, joined by blank lines)
       and the truth's, summed over pages, over the truth's length;
  IoU  box IoU: truth boxes and predicted boxes matched one to one, greedily
       by IoU (the best pair first); the mean over truth boxes, an unmatched
       one counting 0. Boxes in page pixels, as dotsocr writes them.

usage: evaluate.py --dotsocr BIN --pages DIR --model M [--model M2 ...]
                   [--precision bf16,fp32] [--out DIR] [--json FILE] [-- extra parse options]
DIR: made by synth_pages.py (page_NNNN.png + the truth page_NNNN.txt).
Prints a Markdown table, one row per model and precision."""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def levenshtein(a, b):
    """Edit distance, one NumPy row at a time: the insertion chain along a row
    is a running minimum of (value - j), plus j."""
    if not a:
        return len(b)
    if not b:
        return len(a)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    j = np.arange(len(b) + 1)
    prev = j.copy()
    for i, ch in enumerate(a, 1):
        cost = (bb != ord(ch)).astype(np.int64)
        tmp = np.empty_like(prev)
        tmp[0] = i
        tmp[1:] = np.minimum(prev[1:] + 1, prev[:-1] + cost)
        prev = np.minimum.accumulate(tmp - j) + j
    return int(prev[-1])


def page_text(cells):
    return "\n\n".join(c.get("text", "") for c in cells if isinstance(c, dict) and c.get("category") != "Picture")


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mean_iou(truth, pred):
    pairs = sorted(((iou(t, p), i, j) for i, t in enumerate(truth) for j, p in enumerate(pred)), reverse=True)
    used_t, used_p, total = set(), set(), 0.0
    for v, i, j in pairs:
        if v <= 0:
            break
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            total += v
    return total / len(truth) if truth else 1.0


def truth_cells(pages, m):
    """The truth answer's cells with boxes mapped to page pixels as the official parser maps them."""
    cells = json.load(open(os.path.join(pages, m["answer"]), encoding="utf-8"))
    sx, sy = m["model_width"] / m["width"], m["model_height"] / m["height"]
    for c in cells:
        x1, y1, x2, y2 = c["bbox"]
        c["bbox"] = [int(x1 / sx), int(y1 / sy), int(x2 / sx), int(y2 / sy)]
    return cells


def boxes(cells):
    out = []
    for c in cells:
        b = c.get("bbox") if isinstance(c, dict) else None
        if isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b):
            out.append(b)
    return out


def score(pages, manifest, out):
    """-> (edits, truth chars, [per-page IoU], pages that failed to parse)"""
    edits = chars = 0
    ious, failed = [], 0
    for m in manifest:
        stem = m["image"][:-4]
        truth = truth_cells(pages, m)
        try:
            got = json.load(open(os.path.join(out, stem + ".json"), encoding="utf-8"))
        except (OSError, ValueError):
            got = None
        if not isinstance(got, list):  # no page, or a filtered one (its JSON is the raw answer)
            failed += 1
            got = []
        t = page_text(truth)
        edits += levenshtein(t, page_text(got))
        chars += len(t)
        ious.append(mean_iou(boxes(truth), boxes(got)))
    return edits, chars, ious, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dotsocr", required=True)
    ap.add_argument("--pages", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--precision", default="bf16,fp32")
    ap.add_argument("--out", help="parse outputs go here (default: a folder beside --pages)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--replay-dir", help="score these answers instead of running a model (tests)")
    ap.add_argument("extra", nargs="*", help="more dotsocr parse options (after --)")
    a = ap.parse_args()
    manifest = [json.loads(l) for l in open(os.path.join(a.pages, "manifest.jsonl"), encoding="utf-8")]
    images = [os.path.join(a.pages, m["image"]) for m in manifest]
    base = a.out or os.path.join(os.path.dirname(os.path.abspath(a.pages)), "evaluate-out")
    rows = []
    print("| model | precision | pages | CER | box IoU | failed pages | seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for model in a.model:
        for prec in a.precision.split(","):
            out = os.path.join(base, "%s-%s" % (os.path.basename(model.rstrip("/")), prec))
            cmd = [a.dotsocr, "parse", "-q", "--model", model, "--precision", prec, "--no-fitz-preprocess", "-o", out]
            if a.replay_dir:
                cmd += ["--replay-dir", a.replay_dir]
            t0 = time.time()
            r = subprocess.run(cmd + a.extra + images, capture_output=True)
            secs = time.time() - t0
            if r.returncode not in (0, 1):  # 1: some page failed, scored as empty
                sys.exit("evaluate.py: dotsocr parse exited %d: %s" % (r.returncode, r.stderr.decode()[-500:]))
            edits, chars, ious, failed = score(a.pages, manifest, out)
            row = {"model": os.path.basename(model.rstrip("/")), "precision": prec, "pages": len(manifest),
                   "cer": edits / max(1, chars), "iou": float(np.mean(ious)), "failed": failed, "seconds": secs}
            rows.append(row)
            print("| %s | %s | %d | %.2f %% | %.3f | %d | %.0f |" % (row["model"], prec, len(manifest), 100 * row["cer"],
                                                                row["iou"], failed, secs), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
