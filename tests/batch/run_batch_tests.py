#!/usr/bin/python3
"""dotsocr parse --batch (label batch): pages decoded together give the same
bytes as pages decoded one at a time, for a multi-page PDF and a folder of
images with different sizes and budgets, in the layout and plain-text modes;
--resume after a batched run redoes nothing; a run interrupted mid-batch
leaves only complete pages behind."""
import argparse
import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time

from PIL import Image, ImageDraw

FAILED = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        FAILED.append(what)
    return ok


def make_inputs(d):
    import fitz
    os.makedirs(d, exist_ok=True)
    doc = fitz.open()
    for i in range(6):  # pages of different sizes: different prompt lengths
        pg = doc.new_page(width=200 + 40 * i, height=260 + 25 * (i % 3))
        pg.insert_text((20, 40), "Page %d of the report" % (i + 1), fontsize=11 + i)
    pdf = os.path.join(d, "report.pdf")
    doc.save(pdf)
    for i, (w, h) in enumerate([(320, 240), (180, 420), (260, 260), (500, 150)]):
        im = Image.new("RGB", (w, h), (250, 250, 245))
        ImageDraw.Draw(im).rectangle([10 + i, 10, w // 2, h // 3], outline=(20, 20, 20), width=2)
        im.save(os.path.join(d, "img%d.png" % i))
    return pdf


def parse(a, inputs, out, extra):
    cmd = [a.dotsocr, "parse", "-q", "--model", a.model, *inputs, "-o", out, "--threads", "2", "--dpi", "60", *extra]
    return subprocess.run(cmd, capture_output=True, timeout=900)


def same_tree(x, y):
    fx = sorted(f for f in os.listdir(x) if not f.endswith(".lock"))
    fy = sorted(f for f in os.listdir(y) if not f.endswith(".lock"))
    if fx != fy:
        return "file lists differ: %s vs %s" % (fx, fy)
    for f in fx:
        bx, by = open(os.path.join(x, f), "rb").read(), open(os.path.join(y, f), "rb").read()
        if f.endswith(".record.json") or f.endswith(".jsonl"):  # records name the outputs' paths
            bx, by = bx.replace(x.encode(), b"OUT"), by.replace(y.encode(), b"OUT")
        if bx != by:
            return "%s differs" % f
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    src = os.path.join(a.tmp, "in")
    pdf = make_inputs(src)
    images = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".png"))
    for mode, budget in (("layout-all", "60"), ("ocr", "45")):
        outs = {}
        for b in ("1", "4", "3"):
            out = os.path.join(a.tmp, "%s_b%s" % (mode, b))
            # a varied budget per run would change the fingerprint: one budget, pages end at EOS or at it
            r = parse(a, [pdf, *images], out, ["--mode", mode, "--max-new-tokens", budget, "--batch", b])
            check(r.returncode == 0, "%s --batch %s: exit 0 (%s)" % (mode, b, r.stderr.decode()[-300:]))
            outs[b] = out
        n_files = len(os.listdir(outs["1"]))
        for b in ("4", "3"):
            diff = same_tree(outs["1"], outs[b])
            check(diff is None, "%s: --batch %s gives the same %d files as --batch 1 (%s)" % (mode, b, n_files, diff))
        jsonl = [l for l in open(os.path.join(outs["4"], "report.jsonl"))]
        check([eval(l.replace("true", "True").replace("false", "False"))["page_no"] for l in jsonl] == list(range(6)),
              "%s: report.jsonl lists the 6 pages in page order" % mode)
    # --resume after a batched run: nothing redone
    out = os.path.join(a.tmp, "layout-all_b4")
    r = subprocess.run([a.dotsocr, "parse", "--model", a.model, pdf, *images, "-o", out, "--threads", "2", "--dpi", "60",
                        "--mode", "layout-all", "--max-new-tokens", "60", "--batch", "4", "--resume"],
                       capture_output=True, timeout=900)
    err = r.stderr.decode()
    check(r.returncode == 0 and err.count("already done (--resume)") == 10, "--resume after --batch 4: all 10 pages done already")
    # interrupted mid-batch (SIGINT): only whole pages, the rest redone on --resume, same bytes
    out = os.path.join(a.tmp, "interrupted")
    cmd = [a.dotsocr, "parse", "--model", a.model, pdf, "-o", out, "--threads", "2", "--dpi", "60", "--mode", "ocr",
           "--max-new-tokens", "45", "--batch", "4"]
    pr = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while time.time() - t0 < 300 and pr.poll() is None and not (
            os.path.isdir(out) and any(f.endswith(".record.json") for f in os.listdir(out))):
        time.sleep(0.02)
    pr.send_signal(signal.SIGINT)
    pr.wait(timeout=300)
    done = [f for f in os.listdir(out) if f.endswith(".record.json")]
    check(not [f for f in os.listdir(out) if ".tmp." in f], "interrupted: no temporary files left")
    for f in done:  # every record's page has its files
        stem = f[1:-len(".record.json")]
        check(os.path.exists(os.path.join(out, stem + ".md")), "interrupted: %s has its Markdown" % stem)
    r = subprocess.run(cmd + ["--resume"], capture_output=True, timeout=900)
    check(r.returncode == 0, "the interrupted run completes on --resume")
    ref = os.path.join(a.tmp, "ocr_b1")
    for i in range(6):
        stem = "report_page_%d.md" % i
        check(filecmp.cmp(os.path.join(out, stem), os.path.join(ref, stem), shallow=False),
              "interrupted + resumed: %s as in one go" % stem)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        sys.exit(1)


if __name__ == "__main__":
    main()
