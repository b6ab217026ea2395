#!/usr/bin/python3
"""Vision encoder checks (CTest label `vision`): dotsocr's encoder against the
PyTorch reference goldens (tests/reference) on the tiny model, fp32.

For 5 images of different aspect ratios (including the smallest grid, 4x4
patches, and a 1:25 strip) every intermediate - patch embedding, each
block's output, post-trunk norm, merged embeddings - must agree to max
|diff| <= 1e-4. The generic C kernels must agree too, and the result must
not depend on the thread count. Exits 77 (skipped) without goldens.
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

FAILS = []
TOL = 1e-4


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def run_vision(a, image, out, threads=None, isa=None, precision=None):
    env = dict(os.environ)
    if isa:
        env["DOTS_ISA"] = isa
    args = [a.dotsocr, "vision", "--model", a.model, image, "--dump", out, "--dump-blocks"]
    if threads:
        args += ["--threads", str(threads)]
    if precision:
        args += ["--precision", precision]
    r = subprocess.run(args, capture_output=True, env=env, timeout=600)
    check(r.returncode == 0, "dotsocr vision %s: %s" % (image, r.stderr.decode()[-300:]))
    return r.returncode == 0


def compare(gold, out, label):
    names = sorted(f for f in os.listdir(gold) if f.startswith(("patch_embed", "block_", "post_norm", "vision_embeds")))
    worst = 0.0
    for n in names:
        ref, got = np.load(os.path.join(gold, n)), np.load(os.path.join(out, n))
        if not check(ref.shape == got.shape, "%s %s: shape %s vs reference %s" % (label, n, got.shape, ref.shape)):
            continue
        d = np.abs(ref.astype(np.float64) - got)
        worst = max(worst, float(d.max()))
        check(d.max() <= TOL, "%s %s: max |diff| %.3g > %g" % (label, n, d.max(), TOL))
        if n in ("block_00.npy", "vision_embeds.npy"):
            print("%-28s %-18s max |diff| %.2e  mean |diff| %.2e  (max |ref| %.2f)" % (label, n, d.max(), d.mean(), np.abs(ref).max()))
    return worst, names


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--golden", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    images = ["square", "smallest", "landscape", "portrait", "elongated"]
    if not all(os.path.isdir(os.path.join(a.golden, i + "_ocr")) for i in images):
        print("skipped: no goldens (the reference tests generate them; they need torch)")
        sys.exit(77)
    worst = 0.0
    for img in images:
        gold = os.path.join(a.golden, img + "_ocr")
        out = os.path.join(a.tmp, img)
        if run_vision(a, os.path.join(a.golden, img + ".png"), out):
            w, names = compare(gold, out, img)
            worst = max(worst, w)
            check(len(names) >= 5, "%s: %d intermediates compared" % (img, len(names)))
    print("worst max |diff| over all images and intermediates: %.2e" % worst)
    # the portable kernels, and one thread: same agreement; threads change nothing
    img = os.path.join(a.golden, "landscape.png")
    for isa in ("generic", "avx2"):  # every kernel level this machine can run agrees too
        if run_vision(a, img, os.path.join(a.tmp, isa), isa=isa):
            compare(os.path.join(a.golden, "landscape_ocr"), os.path.join(a.tmp, isa), "landscape (%s)" % isa)
    if run_vision(a, img, os.path.join(a.tmp, "t1"), threads=1) and run_vision(a, img, os.path.join(a.tmp, "t3"), threads=3):
        e1 = np.load(os.path.join(a.tmp, "t1", "vision_embeds.npy"))
        e3 = np.load(os.path.join(a.tmp, "t3", "vision_embeds.npy"))
        check((e1 == e3).all(), "1 and 3 threads give bit-identical embeddings")
    # precision bf16 (vdpbf16ps where the CPU has it): close to the fp32 reference, not exact
    if run_vision(a, img, os.path.join(a.tmp, "bf16"), precision="bf16"):
        e = np.load(os.path.join(a.tmp, "bf16", "vision_embeds.npy")).astype(np.float64)
        g = np.load(os.path.join(a.golden, "landscape_ocr", "vision_embeds.npy")).astype(np.float64)
        rel = np.linalg.norm(e - g) / np.linalg.norm(g)
        print("landscape (bf16 products): relative error %.2e vs the fp32 reference" % rel)
        check(rel < 2e-2, "bf16 precision relative error %.3g" % rel)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(a.tmp, ignore_errors=True)  # kept only when a check failed
    print("all checks passed")


if __name__ == "__main__":
    main()
