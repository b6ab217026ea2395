#!/usr/bin/python3
"""dotsocr run as a hostile user would (CTest label `hostile`): each case
reproduces one finding of the hostile-input probe and checks the outcome
documented in docs/robustness.md. The case names carry the finding's number.

  usage: run_hostile_tests.py --dotsocr BIN --model DIR --tmp DIR
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import fitz
from PIL import Image

FAILS = []
A = None


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def run(*args, timeout=120, stdin=None):
    t0 = time.time()
    try:
        r = subprocess.run([A.dotsocr, *args], capture_output=True, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired:
        return 124, "", "timeout", time.time() - t0
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"), time.time() - t0


def parse(*args, timeout=120):
    return run("parse", "--model", A.model, "--max-new-tokens", "8", *args, timeout=timeout)


def digest(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def png(path, w=320, h=240, color=(255, 255, 255)):
    Image.new("RGB", (w, h), color).save(path)
    return path


def strict_json(text):
    """json.loads that refuses NaN/Infinity, as RFC 8259 does."""
    def bad(c):
        raise ValueError("non-finite number " + c)
    return json.loads(text, parse_constant=bad)


def d(name):
    p = os.path.join(A.tmp, name)
    os.makedirs(p, exist_ok=True)
    return p


# 1 ---------------------------------------------------------------------
def case_01_input_never_overwritten():
    s = d("c01")
    scan = os.path.join(s, "scan.jpg")
    Image.new("RGB", (300, 200), (255, 255, 255)).save(scan, quality=90)
    before = digest(scan)
    rc, _, err, _ = parse(scan, "-o", s)
    check(rc == 2 and "would replace the input" in err, "1: -o on the input's folder is refused: rc %d %s" % (rc, err.strip()[-200:]))
    check(digest(scan) == before, "1: the input is unchanged")
    # a PDF page stem that names an input: found when written, the page fails, the input survives
    pdf = os.path.join(s, "doc.pdf")
    doc = fitz.open()
    doc.new_page(width=200, height=200)
    doc.new_page(width=200, height=200)
    doc.save(pdf)
    victim = os.path.join(s, "doc_page_1.md")
    open(victim, "w").write("my notes")
    rc, _, err, _ = parse(pdf, victim, "-o", s, "--mode", "ocr")
    check(rc != 0 and open(victim).read() == "my notes", "1: an output that would replace another input is refused: rc %d" % rc)


# 2 ---------------------------------------------------------------------
def case_02_fifos_never_block():
    s = d("c02")
    fifo = os.path.join(s, "in.png")
    os.mkfifo(fifo)
    rc, _, err, secs = parse(fifo, "-o", os.path.join(s, "out"), timeout=60)
    check(rc == 1 and secs < 30 and "not a regular file" in err, "2: a FIFO input fails at once: rc %d, %.1f s, %s" % (rc, secs, err.strip()[-150:]))
    rc, _, err, secs = run("info", fifo, timeout=60)
    check(rc == 1 and secs < 30, "2: info on a FIFO fails at once: rc %d, %.1f s, %s" % (rc, secs, err.strip()[-150:]))
    for name in ("config.json", "tokenizer.json", "model-00001-of-00002.safetensors"):
        m = os.path.join(s, "model_" + name.split(".")[0].split("-")[0])
        shutil.copytree(A.model, m)
        os.remove(os.path.join(m, name))
        os.mkfifo(os.path.join(m, name))
        rc, _, err, secs = run("parse", "--model", m, png(os.path.join(s, "p.png")), "-o", os.path.join(s, "o2"), timeout=60)
        check(rc == 1 and secs < 30 and len(err.strip().splitlines()) == 1,
              "2: a FIFO as %s fails at once with one line: rc %d, %.1f s, %s" % (name, rc, secs, err.strip()[-200:]))
        shutil.rmtree(m)


# 3 ---------------------------------------------------------------------
def lying_pdf(path, count):
    doc = fitz.open()
    doc.new_page(width=200, height=200)
    raw = doc.tobytes(garbage=0, deflate=False)
    # the page tree says /Count 1: make it lie
    raw = raw.replace(b"/Count 1", b"/Count %d" % count, 1)
    open(path, "wb").write(raw)


def case_03_runaway_pdf():
    s = d("c03")
    pdf = os.path.join(s, "liar.pdf")
    lying_pdf(pdf, 2000000000)
    for extra in ([], ["--pages", "1"]):
        rc, _, err, secs = parse(pdf, "-o", os.path.join(s, "out"), *extra, timeout=120)
        check(secs < 30 and len(err) < 20000, "3: a PDF claiming 2e9 pages ends quickly (%s): %.1f s, %d bytes of stderr" % (extra, secs, len(err)))
        if not extra:
            check(rc == 1 and err.count("missing from the file") == 1, "3: one error for the missing run: %s" % err.strip()[-300:])
        else:
            check(rc == 0, "3: --pages 1 of the lying PDF parses the real page: rc %d %s" % (rc, err[-200:]))
    check(os.path.exists(os.path.join(s, "out", "liar_page_0.md")), "3: the real page was parsed")


# 4 ---------------------------------------------------------------------
def case_04_resume_redoes_what_changed():
    s = d("c04")
    img = png(os.path.join(s, "a.png"))
    out = os.path.join(s, "out")
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "3")
    check(rc == 0, "4: first run: %s" % err[-200:])
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "3", "--resume")
    check(rc == 0 and "already done" in err, "4: same options: the page is skipped")
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "5", "--resume")
    check(rc == 0 and "already done" not in err and "redoing" in err, "4: other --max-new-tokens: redone: %s" % err[-200:])
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "5", "--resume", "--mode", "layout-only")
    check(rc == 0 and "already done" not in err, "4: other --mode: redone")
    check(not os.path.exists(os.path.join(out, "a.md")), "4: layout-only made no Markdown, and the older run's is gone")
    t_ocr = time.time()
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "5", "--mode", "ocr")
    jpg = os.path.join(out, "a.jpg")  # ocr keeps a copy of the page (the official file set), made by this run
    check(rc == 0 and not os.path.exists(os.path.join(out, "a.json")) and os.path.exists(jpg) and os.path.getmtime(jpg) >= t_ocr - 1,
          "4: an ocr run leaves no layout files of an earlier layout run beside its own")
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "5", "--resume", "--mode", "layout-only")
    os.remove(os.path.join(out, "a.json"))
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "5", "--resume", "--mode", "layout-only")
    check(rc == 0 and "already done" not in err and os.path.exists(os.path.join(out, "a.json")), "4: a deleted output is made again")
    time.sleep(0.01)
    png(img, color=(250, 250, 250))
    rc, _, err, _ = run("parse", "--model", A.model, img, "-o", out, "--max-new-tokens", "5", "--resume", "--mode", "layout-only")
    check(rc == 0 and "already done" not in err, "4: a changed input is redone")


# 5 ---------------------------------------------------------------------
def case_05_names_never_collide():
    s = d("c05")
    a, b = d("c05/a"), d("c05/b")
    xa, xb = png(os.path.join(a, "x.png"), 300, 200), png(os.path.join(b, "x.png"), 200, 300)
    ya = png(os.path.join(s, "y.png"), 310, 210)
    yb = os.path.join(s, "y.jpg")
    Image.new("RGB", (210, 310), (255, 255, 255)).save(yb)
    out = os.path.join(s, "out")
    rc, _, err, _ = parse(xa, xb, ya, yb, "-o", out, "--mode", "layout-only")
    recs = {}
    for f in os.listdir(out):
        if f.endswith(".jsonl"):
            for line in open(os.path.join(out, f)):
                r = json.loads(line)
                recs[r["file_path"]] = (f, r["input_width"], r["input_height"])
    check(rc == 0 and len(recs) == 4, "5: four inputs, four documents: %s" % sorted(recs.values()))
    check(len({v[0] for v in recs.values()}) == 4, "5: four distinct record files")
    check(recs.get(ya, ("",))[0] == "y_png.jsonl" and recs.get(yb, ("",))[0] == "y_jpg.jsonl", "5: y.png/y.jpg become y_png/y_jpg")
    check(recs.get(xa, (0, 0))[1:] == (300, 200) and recs.get(xb, (0, 0))[1:] == (200, 300), "5: each record holds its own input's size")
    rc, _, err, _ = parse(xa, xb, ya, yb, "-o", out, "--mode", "layout-only", "--resume")
    check(rc == 0 and err.count("already done") == 4, "5: --resume finds each one's own pages")


# 6 ---------------------------------------------------------------------
def case_06_concurrent_runs():
    s = d("c06")
    imgs = [png(os.path.join(s, "p%d.png" % i), 300 + i, 200) for i in range(3)]
    out = os.path.join(s, "out")
    for trial in range(3):
        shutil.rmtree(out, ignore_errors=True)
        res = [None, None]

        def go(k):
            res[k] = run("parse", "--model", A.model, *imgs, "-o", out, "--max-new-tokens", "30")
        ts = [threading.Thread(target=go, args=(k,)) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        errs = res[0][2] + res[1][2]
        check(all(r[0] == 0 for r in res) and "File exists" not in errs and "error" not in errs,
              "6: trial %d: both runs succeed, sharing the pages (a lock per page): %s %s" % (trial, [r[0] for r in res], errs[-300:]))
        check(all(os.path.exists(os.path.join(out, "p%d.%s" % (i, e))) for i in range(3) for e in ("md", "json", "jpg", "jsonl")),
              "6: trial %d: every output exists" % trial)
        recs = [json.loads(open(os.path.join(out, "p%d.jsonl" % i)).read()) for i in range(3)]
        check([r["input_width"] for r in recs] == [300, 301, 302], "6: trial %d: each record is its own page's" % trial)
    # the replace itself is atomic: one writer replacing a file another just wrote
    for trial in range(2):
        rc, _, err, _ = run("parse", "--model", A.model, imgs[0], "-o", out, "--max-new-tokens", "2")
        check(rc == 0 and "File exists" not in err, "6: rewriting existing outputs works")


# 7 ---------------------------------------------------------------------
def case_07_long_and_odd_paths():
    s = d("c07")
    deep = s
    while len(deep) < 3000:
        deep = os.path.join(deep, "d" * 200)
    os.makedirs(deep, exist_ok=True)
    odd = os.path.join(deep, 'q"uote\\back\tslash.png')
    png(odd)
    out = os.path.join(deep, "out")
    rc, _, err, _ = parse(odd, "-o", out)
    check(rc == 0, "7: 3 kB paths with quotes and backslashes: rc %d %s" % (rc, err[-200:]))
    name = 'q"uote\\back\tslash'
    try:
        rec = json.loads(open(os.path.join(out, name + ".jsonl")).read())
        check(rec["file_path"] == odd and rec["md_content_path"].startswith(out), "7: the record holds the paths exactly")
    except Exception as e:  # noqa: BLE001
        check(False, "7: the record is valid JSON: %s" % e)


# 8 ---------------------------------------------------------------------
def case_08_valid_json_always():
    s = d("c08")
    img = png(os.path.join(s, "inf.png"))
    replay = d("c08/replay")
    open(os.path.join(replay, "inf.txt"), "w").write('[{"bbox": [1e999, -1e999, 1, 2], "category": "Text", "text": "x"}]')
    rc, _, err, _ = parse(img, "-o", os.path.join(s, "out"), "--replay-dir", replay)
    try:
        strict_json(open(os.path.join(s, "out", "inf.json")).read())
        ok = True
    except Exception as e:  # noqa: BLE001
        ok = False
        print(e)
    check(rc == 0 and ok, "8: an infinite bbox never reaches the page JSON")
    bad = os.path.join(s.encode(), b"bad\xffname.png")
    Image.new("RGB", (100, 100), (255, 255, 255)).save(bad.decode(errors="surrogateescape"))
    rc, _, err, _ = parse(bad.decode(errors="surrogateescape"), "-o", os.path.join(s, "out2"))
    found = [f for f in os.listdir(os.path.join(s, "out2").encode()) if f.endswith(b".jsonl")]
    ok = False
    if found:
        raw = open(os.path.join(s.encode(), b"out2", found[0]), "rb").read()
        try:
            strict_json(raw.decode("utf-8"))
            ok = True
        except Exception as e:  # noqa: BLE001
            print(e)
    check(rc == 0 and ok, "8: a file name with a 0xFF byte gives valid UTF-8 JSON")


# 9 ---------------------------------------------------------------------
def case_09_partial_input():
    s = d("c09")
    full = os.path.join(s, "full.tif")
    Image.new("RGB", (400, 300), (10, 200, 30)).save(full, compression=None)
    data = open(full, "rb").read()
    check(int.from_bytes(data[4:8], "little") < len(data) // 2, "9: the test TIFF has its directory before the pixels")
    cut = os.path.join(s, "cut.tif")
    open(cut, "wb").write(data[: len(data) // 2])  # the directory stays, half the strip bytes go
    rc, _, err, _ = parse(cut, "-o", os.path.join(s, "out"))
    check(rc == 1 and "cut.tif" in err, "9: a TIFF cut in half fails: rc %d %s" % (rc, err.strip()[-200:]))
    multi = os.path.join(s, "multi.tif")
    frames = [Image.new("RGB", (200 + 10 * i, 150), (255, 255, 255)) for i in range(3)]
    frames[0].save(multi, save_all=True, append_images=frames[1:])
    out = os.path.join(s, "out_multi")
    rc, _, err, _ = parse(multi, "-o", out, "--mode", "layout-only")
    recs = [json.loads(x) for x in open(os.path.join(out, "multi.jsonl"))] if os.path.exists(os.path.join(out, "multi.jsonl")) else []
    check(rc == 0 and [r["input_width"] for r in recs] == [200, 210, 220], "9: a 3-frame TIFF is 3 pages: %s" % [r.get("input_width") for r in recs])
    rc, _, err, _ = parse(multi, "-o", os.path.join(s, "out_p2"), "--pages", "2", "--mode", "layout-only")
    check(rc == 0 and os.path.exists(os.path.join(s, "out_p2", "multi_page_1.jpg")), "9: --pages 2 of the TIFF exists")


# 10 --------------------------------------------------------------------
def case_10_out_of_range_values():
    s = d("c10")
    img = png(os.path.join(s, "a.png"))
    pdf = os.path.join(s, "five.pdf")
    doc = fitz.open()
    for _ in range(5):
        doc.new_page(width=100, height=100)
    doc.save(pdf)
    out = os.path.join(s, "out")
    for args, what in ((["--mode", "grounding", "--bbox", "99999999999,0,1,1"], "--bbox past int32"),
                       (["--mode", "grounding", "--bbox", "10,10,5,20"], "--bbox x1 > x2"),
                       (["--pages", ""], "--pages ''"),
                       (["--pages", "99999999999999999999"], "--pages overflow"),
                       (["--pages", "0"], "--pages 0"),
                       (["--min-pixels", "5000000", "--max-pixels", "4000000"], "min > max"),
                       (["--max-pixels", "99999999"], "--max-pixels past the official bound"),
                       (["--dpi", "0"], "--dpi 0")):
        t0 = time.time()
        r = subprocess.run([A.dotsocr, "parse", "--model", "/nonexistent/model", img, "-o", out, *args], capture_output=True, timeout=60)
        err = r.stderr.decode()
        check(r.returncode == 2 and len(err.strip().splitlines()) == 1, "10: %s: exit 2 before the model loads: %d %s" % (what, r.returncode, err.strip()))
    rc, _, err, _ = parse(pdf, "-o", out, "--pages", "6", "--mode", "layout-only")
    check(rc == 1 and "has 5 page" in err, "10: --pages 6 of a 5-page PDF fails: %d %s" % (rc, err.strip()[-150:]))
    empty = d("c10/empty")
    rc, _, err, _ = parse(empty, "-o", out)
    check(rc == 2 and "no documents" in err, "10: an empty folder is an error: %d %s" % (rc, err.strip()))
    rc, _, err, _ = parse(img, "-o", out, "--mode", "grounding", "--bbox", "0,0,9999,10")
    check(rc == 1 and "not a box on the 320 x 240 page" in err, "10: a bbox off the page fails the page: %s" % err.strip()[-200:])


# 11 --------------------------------------------------------------------
def case_11_messages():
    s = d("c11")
    img = png(os.path.join(s, "a.png"))
    r = subprocess.run([A.dotsocr, "parse", "--bogus", "--model", A.model, img, "-o", s], capture_output=True, timeout=60)
    err = r.stderr.decode()
    check(r.returncode == 2 and "'--bogus'" in err and A.model not in err, "11: an unknown option is named: %s" % err.strip())
    r = subprocess.run([A.dotsocr, "parse", "--dpi", "0", "--model", A.model, img, "-o", s], capture_output=True, timeout=60)
    check("1..2400" in r.stderr.decode(), "11: a bad value states the allowed range: %s" % r.stderr.decode().strip())
    loop = os.path.join(s, "loop.png")
    os.symlink(loop, loop)
    rc, _, err, _ = parse(loop, "-o", os.path.join(s, "out"))
    check(rc == 1 and "symbolic links" in err, "11: a symlink loop says so: %s" % err.strip()[-150:])
    m = os.path.join(s, "model")
    shutil.copytree(A.model, m)
    cfg = json.load(open(os.path.join(m, "config.json")))
    del cfg["vision_config"]
    json.dump(cfg, open(os.path.join(m, "config.json"), "w"))
    rc, _, err, _ = run("info", m)
    check(rc == 1 and "vision_config is missing" in err, "11: a missing vision_config is named: %s" % err.strip())
    rc, _, err, _ = run("detokenize", "--model", A.model, stdin=b"1 2 99999999999 5\n")
    check(rc == 1 and len(err.strip().splitlines()) == 1, "11: detokenize errors are one line: %r" % err)
    # a failed write names its own file (root ignores permissions: make the
    # target a directory, which rename cannot replace)
    out = d("c11/wr_out")
    for target in (".b.record.json", "b.jpg", "b_nohf.md"):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(os.path.join(out, target))
        rc, _, err, _ = parse(img.replace("a.png", "b.png") if os.path.exists(img.replace("a.png", "b.png")) else png(os.path.join(s, "b.png")), "-o", out)
        lines = [l for l in err.splitlines() if "error" in l]
        check(rc == 1 and lines and target in lines[0] and ("directory" in lines[0].lower()),
              "11: a failed write of %s names it: %s" % (target, lines[:1]))


# 13 --------------------------------------------------------------------
def case_13_progress_off_a_terminal():
    s = d("c13")
    img = png(os.path.join(s, "a.png"), 900, 700)
    rc, _, err, _ = parse(img, "-o", os.path.join(s, "out"))
    check(rc == 0 and "vision encoder" in err and "prefill" in err and "decoding" in err,
          "13: stage lines when stderr is not a terminal: %s" % err.strip()[-300:])
    rc, _, err, _ = parse(img, "-o", os.path.join(s, "out"), "-q")
    check(rc == 0 and err == "", "13: -q keeps stderr empty: %r" % err[-200:])


def main():
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("case", nargs="?", default="all")
    A = p.parse_args()
    shutil.rmtree(A.tmp, ignore_errors=True)
    os.makedirs(A.tmp)
    cases = [v for k, v in sorted(globals().items()) if k.startswith("case_")]
    for c in cases:
        if A.case in ("all", c.__name__):
            print("==", c.__name__)
            c()
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(A.tmp, ignore_errors=True)
    print("all checks passed")


if __name__ == "__main__":
    main()
