#!/usr/bin/python3
"""End-to-end checks of `dotsocr parse` on the tiny model (CTest label `parse`).

  outputs  a 3-page PDF and two images, the model's answers replayed from
           layout JSON written here (--replay-dir, the engine still runs):
           every official file exists, every JSON is valid, boxes are mapped
           to source pixels by the truncating rule, a broken answer takes
           the salvage path, and the layout pictures show each box in its
           category colour at the expected place; a corrupt input fails
           alone (exit 1, the other documents written)
  resume   killing the process mid-document leaves no partial file, and
           --resume skips the finished page and completes the rest
"""
import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
from ref_preprocess import smart_resize  # noqa: E402

FAILS = []
COLORS = {"Title": (255, 0, 0), "Text": (0, 128, 0), "Table": (255, 192, 203), "Picture": (255, 0, 255),
          "Formula": (128, 128, 128), "List-item": (0, 0, 255), "Page-header": (0, 128, 0)}


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def make_inputs(d):
    import fitz
    doc = fitz.open()
    for i in range(3):
        pg = doc.new_page(width=300, height=400)
        pg.insert_text((30, 50), "Page %d" % (i + 1), fontsize=12)
    pdf = os.path.join(d, "doc.pdf")
    doc.save(pdf)
    sizes = []
    for page in fitz.open(pdf):
        pm = page.get_pixmap(matrix=fitz.Matrix(200 / 72, 200 / 72), alpha=False)
        sizes.append((pm.width, pm.height))
    img1 = os.path.join(d, "scan.png")
    Image.new("RGB", (640, 480), (255, 255, 255)).save(img1)
    img2 = os.path.join(d, "photo.jpg")
    Image.new("RGB", (500, 700), (255, 255, 255)).save(img2, quality=95)
    return pdf, sizes, [(img1, (640, 480)), (img2, (500, 700))]


def fitz_size(path, dpi=200):
    """The size the official fitz_preprocess renders an image at (what the model sees)."""
    import fitz
    b = io.BytesIO()
    Image.open(path).convert("RGB").save(b, "PNG")
    pdf_doc = fitz.open("pdf", fitz.open(stream=b.getvalue(), filetype="png").convert_to_pdf())
    page = pdf_doc[0]  # keep the document alive while its page is used
    pm = page.get_pixmap(matrix=fitz.Matrix(dpi / 72, dpi / 72), alpha=False)
    if pm.width > 4500 or pm.height > 4500:
        pm = page.get_pixmap(matrix=fitz.Matrix(1, 1), alpha=False)
    return pm.width, pm.height


def layout_answer(w, h, with_picture=True):
    """Cells in the model's resized space: fractions of the resized image."""
    hb, wb = smart_resize(h, w)
    def box(fx1, fy1, fx2, fy2):
        return [int(fx1 * wb), int(fy1 * hb), int(fx2 * wb), int(fy2 * hb)]
    cells = [{"bbox": box(0.05, 0.05, 0.60, 0.15), "category": "Title", "text": "# A title"},
             {"bbox": box(0.05, 0.25, 0.60, 0.45), "category": "Text", "text": "Body text."},
             {"bbox": box(0.05, 0.55, 0.60, 0.75), "category": "Table", "text": "<table><tr><td>1</td></tr></table>"},
             {"bbox": box(0.05, 0.80, 0.40, 0.95), "category": "Formula", "text": "x^2 + \\alpha"}]
    if with_picture:
        cells.append({"bbox": box(0.70, 0.30, 0.95, 0.60), "category": "Picture"})
    return cells, (wb, hb)


def check_picture(jpg, cells_src, size):
    im = np.asarray(Image.open(jpg).convert("RGB")).astype(int)
    check(im.shape[:2] == (size[1], size[0]), "%s: picture size %s" % (jpg, im.shape))
    for c in cells_src:
        x1, y1, x2, y2 = c["bbox"]
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        want = 0.7 * 255 + 0.3 * np.array(COLORS[c["category"]])
        got = im[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3).mean(0)
        check(np.abs(got - want).max() <= 12, "%s: %s box centre %s, want %s" % (os.path.basename(jpg), c["category"], got.round(), want.round()))
    check(im[size[1] - 3, size[0] - 3].min() >= 240, "%s: outside the boxes stays white" % jpg)


def test_outputs(a):
    d = a.tmp
    pdf, pdf_sizes, images = make_inputs(d)
    replay = os.path.join(d, "replay")
    os.makedirs(replay)
    expected = {}
    for i, (w, h) in enumerate(pdf_sizes):
        stem = "doc_page_%d" % i
        if i == 1:
            open(os.path.join(replay, stem + ".txt"), "w").write('[{"bbox": [1, 2, 3, 4], "category": "Text", "text": "kept"} {"bbox": [5, 6, 7')
            expected[stem] = None
            continue
        cells, model = layout_answer(w, h)
        open(os.path.join(replay, stem + ".txt"), "w").write(json.dumps(cells))
        expected[stem] = (cells, model, (w, h))
    for path, (w, h) in images:
        stem = os.path.splitext(os.path.basename(path))[0]
        cells, model = layout_answer(*fitz_size(path))  # the model sees the fitz render; boxes map to (w, h)
        open(os.path.join(replay, stem + ".txt"), "w").write(json.dumps(cells))
        expected[stem] = (cells, model, (w, h))
    bad = os.path.join(d, "broken.png")
    open(bad, "wb").write(b"\x89PNG\r\n\x1a\n garbage")
    out = os.path.join(d, "out")
    r = subprocess.run([a.dotsocr, "parse", "--model", a.model, pdf, images[0][0], images[1][0], bad, "-o", out,
                        "--replay-dir", replay], capture_output=True, timeout=900)
    err = r.stderr.decode()
    check(r.returncode == 1 and "broken.png" in err, "a corrupt input fails alone with exit 1: %d %s" % (r.returncode, err[-300:]))
    check("5 page(s) done, 1 failed" in err, "summary line: %s" % err[-200:])
    check("dotsocr: info:" not in err, "no info lines without -v")
    r = subprocess.run([a.dotsocr, "parse", "-v", "--model", a.model, images[0][0], "-o", os.path.join(d, "out_v"),
                        "--replay-dir", replay], capture_output=True, timeout=900)
    check(r.returncode == 0 and "dotsocr: info:" in r.stderr.decode(), "-v logs info lines: %s" % r.stderr.decode()[-300:])
    for stem, exp in expected.items():
        files = [stem + ext for ext in (".json", ".md", "_nohf.md", ".jpg")]
        for f in files:
            check(os.path.exists(os.path.join(out, f)), "%s exists" % f)
        js = json.load(open(os.path.join(out, stem + ".json")))
        if exp is None:  # the broken answer: filtered, raw text kept, Markdown from the salvage
            check(isinstance(js, str) and js.startswith('[{"bbox"'), "filtered page keeps the raw answer as a JSON string")
            check(open(os.path.join(out, stem + ".md")).read() == "kept", "filtered page Markdown is the salvaged text")
            continue
        cells, (wb, hb), (w, h) = exp
        check(isinstance(js, list) and len(js) == len(cells), "%s.json has the cells" % stem)
        src = []
        for got, c in zip(js, cells):
            want = [int(c["bbox"][0] / (wb / w)), int(c["bbox"][1] / (hb / h)), int(c["bbox"][2] / (wb / w)), int(c["bbox"][3] / (hb / h))]
            check(got["bbox"] == want and got["category"] == c["category"], "%s: bbox %s, want %s" % (stem, got["bbox"], want))
            src.append(got)
        md = open(os.path.join(out, stem + ".md")).read()
        check(md.startswith("# A title\n\nBody text.\n\n<table>") and "$$\nx^2 + \\alpha\n$$" in md and "![](data:image/png;base64," in md,
              "%s.md follows the Markdown rules: %r" % (stem, md[:120]))
        check_picture(os.path.join(out, stem + ".jpg"), [c for c in src if c["category"] != "Picture"] + [src[-1]], (w, h))
    recs = [json.loads(l) for l in open(os.path.join(out, "doc.jsonl"))]
    check([r_["page_no"] for r_ in recs] == [0, 1, 2], "doc.jsonl: one record per page, in order")
    check(recs[1].get("filtered") is True and recs[0]["input_width"] == pdf_sizes[0][0], "jsonl records carry sizes and filtered")
    combined = open(os.path.join(out, "doc.md")).read()
    check(combined.count("# A title") == 2 and "kept" in combined, "doc.md combines the pages")
    check(len(open(os.path.join(out, "scan.jsonl")).readlines()) == 1, "scan.jsonl")
    check(not [f for f in os.listdir(out) if ".tmp." in f], "no temporary files left")
    # Picture crops as files with --images-dir
    out2 = os.path.join(d, "out2")
    r = subprocess.run([a.dotsocr, "parse", "-q", "--model", a.model, images[0][0], "-o", out2, "--replay-dir", replay,
                        "--images-dir", os.path.join(out2, "imgs")], capture_output=True, timeout=300)
    md = open(os.path.join(out2, "scan.md")).read() if r.returncode == 0 else ""
    check(r.returncode == 0 and "![](" in md and "base64" not in md and os.listdir(os.path.join(out2, "imgs")),
          "--images-dir writes crops as files: %s" % r.stderr.decode()[-200:])
    print("outputs checked for %d pages" % len(expected))


def test_resume(a):
    d = a.tmp
    pdf, _, _ = make_inputs(d)
    out = os.path.join(d, "out")
    args = [a.dotsocr, "parse", "--model", a.model, pdf, "-o", out, "--mode", "ocr", "--threads", "1", "--batch", "1"]
    args += ["--max-new-tokens", "400"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rec = os.path.join(out, ".doc_page_0.record.json")
    t0 = time.time()
    while not os.path.exists(rec) and time.time() - t0 < 300 and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # into page 2's generation
    p.send_signal(signal.SIGKILL)
    p.wait()
    files = sorted(os.listdir(out))
    check(os.path.exists(rec), "the first page finished before the kill")
    check(all(f in (".doc_page_0.record.json", "doc_page_0.md", "doc_page_0_nohf.md", "doc_page_0.jpg") or f.endswith(".lock")
              for f in files),
          "after SIGKILL only complete files of finished pages exist: %s" % files)
    r = subprocess.run(args + ["--resume"], capture_output=True, timeout=600)
    err = r.stderr.decode()
    check(r.returncode == 0 and "already done (--resume)" in err, "--resume skips the finished page: %s" % err[-300:])
    recs = [json.loads(l) for l in open(os.path.join(out, "doc.jsonl"))]
    check([x["page_no"] for x in recs] == [0, 1, 2], "after --resume all pages are recorded")
    for i in range(3):
        check(os.path.exists(os.path.join(out, "doc_page_%d.md" % i)), "page %d Markdown" % i)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["outputs", "resume"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    globals()["test_" + a.what](a)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(a.tmp, ignore_errors=True)  # kept only when a check failed
    print("all checks passed")


if __name__ == "__main__":
    main()
