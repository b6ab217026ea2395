#!/usr/bin/python3
"""The aarch64 build against the x86-64 one (label arm, cross builds only:
scripts/test-arm64). The same tiny model, 4 images of different sizes and
2 modes, greedy, fp32 precision: the ARM binary under qemu (NEON kernels at
the emulated CPU's best level) and the host's x86 binary (AVX-512 where it
has it) must give the same tokens. Their summation orders differ, so the
logits differ in the last bits; the tokens must not."""
import argparse
import os
import subprocess
import sys

from PIL import Image, ImageDraw

FAILED = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILED.append(what)


def images(d):
    os.makedirs(d, exist_ok=True)
    out = []
    for i, (w, h) in enumerate([(224, 224), (336, 196), (150, 420), (500, 260)]):
        im = Image.new("RGB", (w, h), (248, 247, 240))
        dr = ImageDraw.Draw(im)
        dr.rectangle([8 + 5 * i, 10, w // 2, h // 3], outline=(10, 10, 10), width=2)
        dr.text((12, h // 2), "Table %d: totals" % (i + 1), fill=(0, 0, 0))
        p = os.path.join(d, "img%d.png" % i)
        im.save(p)
        out.append(p)
    return out


def run(binary, model, image, mode, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    r = subprocess.run([binary, "run", "-q", "--model", model, "--mode", mode, "--no-fitz-preprocess", "--threads", "2",
                        "--max-new-tokens", "40", "--precision", "fp32", "--no-loop-guard", image],
                       capture_output=True, timeout=1800, env=env)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")[-500:]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arm", required=True, help="the aarch64 dotsocr (its qemu wrapper)")
    p.add_argument("--x86", required=True, help="the host's dotsocr")
    p.add_argument("--model", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    if not os.access(a.x86, os.X_OK):
        print("FAIL: no host binary at %s (scripts/test-arm64 builds build/release first)" % a.x86)
        return 1
    for img in images(a.tmp):
        for mode in ("layout-all", "ocr"):
            rc_a, out_a, err_a = run(a.arm, a.model, img, mode)
            rc_x, out_x, err_x = run(a.x86, a.model, img, mode)
            check(rc_a == 0 and rc_x == 0, "%s %s: both run (%s%s)" % (os.path.basename(img), mode, err_a, err_x))
            check(out_a == out_x and len(out_a) > 1, "%s %s: the same greedy answer on aarch64 and x86-64 (%d bytes)" %
                  (os.path.basename(img), mode, len(out_a)))
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
