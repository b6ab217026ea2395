#!/usr/bin/python3
"""Always-valid layout output (CTest label `robust`).

  parse    `dotsocr parse` of 10 varied images (samples/page.png among them) in
           layout-all and layout-only, with the default budget and with 40 and
           160 tokens: every page JSON parses strictly, follows the schema
           (keys in order, 4 ordered integers inside the original image, one of
           the 11 categories, text exactly where it belongs), needs no salvage,
           and the layout picture shows every box that has an area
  corpus   24 valid answers (repeated table rows, formulas, CJK, emoji, escapes,
           empty text, the largest coordinates, Picture cells, whitespace
           layouts) teacher-forced through the constraint and the loop guard
           (dotsocr-debug grammar-check): no token refused, the guard silent;
           and broken answers refused, so the check can fail
  loops    a forced cycle is caught within the guard's window in the text of a
           layout cell and in plain text; the tiny model's own `SRC SRC ...`
           in ocr mode stops with stop reason loop-guard
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
from ref_preprocess import smart_resize  # noqa: E402

CATEGORIES = ["Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header", "Picture", "Section-header",
              "Table", "Text", "Title"]
SPAN = 1024  # the loop guard's window (src/decode/loop_guard.h)
FAILS = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def strict_json(text):
    def bad(c):
        raise ValueError("non-finite number " + c)
    return json.loads(text, parse_constant=bad)


def make_images(d, sample):
    rng = random.Random(7)
    paths = [sample]
    sizes = [(640, 480), (300, 900), (1000, 700), (500, 500), (1200, 300), (256, 256), (900, 1300), (333, 777), (1600, 1200)]
    for i, (w, h) in enumerate(sizes):
        im = Image.new("RGB", (w, h), tuple(rng.randint(150, 255) for _ in range(3)))
        dr = ImageDraw.Draw(im)
        for _ in range(12):
            x, y = rng.randint(0, w - 10), rng.randint(0, h - 10)
            dr.rectangle([x, y, x + rng.randint(5, 300), y + rng.randint(5, 60)], fill=tuple(rng.randint(0, 255) for _ in range(3)))
        p = os.path.join(d, "img%d.%s" % (i, "png" if i % 2 else "jpg"))
        im.save(p)
        paths.append(p)
    return paths


def check_page(out, stem, src, mode, what):
    js_path = os.path.join(out, stem + ".json")
    if not check(os.path.exists(js_path), "%s: %s.json exists" % (what, stem)):
        return 0
    try:
        cells = strict_json(open(js_path).read())
    except ValueError as e:
        check(False, "%s: %s.json parses: %s" % (what, stem, e))
        return 0
    w, h = Image.open(src).size
    ok = isinstance(cells, list)
    bad = []
    for c in cells if ok else []:
        keys = list(c) if isinstance(c, dict) else None
        want = ["bbox", "category"] + (["text"] if mode == "layout-all" and c.get("category") != "Picture" else [])
        if keys != want:
            bad.append("keys %s" % keys)
            continue
        b = c["bbox"]
        if not (len(b) == 4 and all(isinstance(v, int) for v in b) and 0 <= b[0] <= b[2] <= w and 0 <= b[1] <= b[3] <= h):
            bad.append("bbox %s in %dx%d" % (b, w, h))
        if c["category"] not in CATEGORIES:
            bad.append("category %r" % c["category"])
        if "text" in c and not isinstance(c["text"], str):
            bad.append("text %r" % c["text"])
    check(ok and not bad, "%s: %s follows the schema (%d cells) %s" % (what, stem, len(cells) if ok else -1, bad[:3]))
    rec = json.loads(open(os.path.join(out, stem + ".jsonl")).readline())
    check("filtered" not in rec, "%s: %s needed no salvage" % (what, stem))
    # every box with an area is drawn: its centre differs from the original
    pic = np.asarray(Image.open(os.path.join(out, stem + ".jpg")).convert("RGB")).astype(int)
    orig = np.asarray(Image.open(src).convert("RGB")).astype(int)
    missing = []
    for c in cells if ok and not bad else []:
        x1, y1, x2, y2 = c["bbox"]
        if x2 - x1 >= 6 and y2 - y1 >= 6:
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            if np.abs(pic[cy, cx] - orig[cy, cx]).max() < 12 and np.abs(pic[cy - 2:cy + 3, cx - 2:cx + 3] - orig[cy - 2:cy + 3, cx - 2:cx + 3]).max() < 12:
                missing.append(c["bbox"])
    check(not missing, "%s: %s: the layout picture shows the boxes %s" % (what, stem, missing[:3]))
    return len(cells) if ok else 0


def test_parse(a):
    d = os.path.join(a.tmp, "parse")
    os.makedirs(d)
    images = make_images(d, a.sample)
    total = 0
    for mode in ("layout-all", "layout-only"):
        for budget in (None, 40, 160):
            out = os.path.join(d, "%s_%s" % (mode, budget or "default"))
            args = [a.dotsocr, "parse", "-q", "--model", a.model, *images, "-o", out, "--mode", mode]
            if budget:
                args += ["--max-new-tokens", str(budget)]
            r = subprocess.run(args, capture_output=True, timeout=1800)
            what = "%s, budget %s" % (mode, budget or "default")
            check(r.returncode == 0, "%s: parse exits 0: %s" % (what, r.stderr.decode()[-300:]))
            for src in images:
                stem = os.path.splitext(os.path.basename(src))[0]
                total += check_page(out, stem, src, mode, what)
    check(total > 0, "the answers hold boxes (%d cells in all)" % total)


# ------------------------------------------------------------------ corpus

def corpus(w, h):
    """Valid layout-all answers in the resized image's pixels (w x h)."""
    rng = random.Random(3)

    def box():
        x1, y1 = rng.randint(0, w - 1), rng.randint(0, h - 1)
        return [x1, y1, rng.randint(x1, w), rng.randint(y1, h)]

    def dumps(cells, **kw):
        return json.dumps(cells, ensure_ascii=False, **kw)

    row = "<tr><td>0</td><td>0</td><td>0</td></tr>"
    texts = [
        "# A title", "Plain text.", "", "<table>" + row * 12 + "</table>",
        "<table><tr>" + "<td></td>" * 60 + "</tr></table>", "$$\\frac{a}{b} + \\sqrt{x^2} \\cdots \\alpha$$",
        "中文文本，日本語のテキスト、한국어", "emoji 😀🎉👍🏽 and ✓", 'quotes "inside" and back\\slash \\n', "tab\there\nnewline",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20",
        "Dots . . . . . . . . . . . . . . . . . . . . . . . 12", "_" * 80, "\u00e9\u00e8\u00ea \u0301 combining",
        "\\u escapes come as text", "</td></td></td>", "{\"json\": [1, 2]} inside text", "a" * 500,
    ]
    answers = []
    for i, t in enumerate(texts):
        cats = [c for c in CATEGORIES if c != "Picture"]
        cells = [{"bbox": box(), "category": rng.choice(cats), "text": t}, {"bbox": box(), "category": "Picture"}]
        answers.append(dumps(cells))
    answers.append(dumps([{"bbox": [0, 0, w, h], "category": "Text", "text": "the largest box"}]))
    answers.append(dumps([{"bbox": [w, h, w, h], "category": "Picture"}]))
    answers.append(dumps([{"bbox": box(), "category": c, **({} if c == "Picture" else {"text": c})} for c in CATEGORIES]))
    answers.append(dumps([{"bbox": box(), "category": "Table", "text": "<table>" + row * 20 + "</table>"}] * 3, indent=2))
    answers.append(json.dumps([{"bbox": box(), "category": "Text", "text": "ascii escaped é 😀 中"}], ensure_ascii=True))
    answers.append("[]")
    return answers


def grammar_check(a, text, w, h, mode="layout-all"):
    r = subprocess.run([a.debug, "grammar-check", "--model", a.model, "--width", str(w), "--height", str(h), "--mode", mode],
                       input=text.encode(), capture_output=True, timeout=300)
    try:
        return r.returncode, json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return r.returncode, {"error": r.stderr.decode()[-300:]}


def test_corpus(a):
    w, h = 644, 476
    answers = corpus(w, h)
    check(len(answers) >= 20, "the corpus has %d answers" % len(answers))
    for i, text in enumerate(answers):
        rc, res = grammar_check(a, text, w, h)
        check(rc == 0 and res.get("refused_at") == -1 and res.get("guard_fired") == 0,
              "corpus %d (%d tokens): accepted token by token, guard silent: %s" % (i, res.get("tokens", -1), res))
    only = json.dumps([{"bbox": [1, 2, 3, 4], "category": "Table"}, {"bbox": [0, 0, w, h], "category": "Picture"}])
    rc, res = grammar_check(a, only, w, h, "layout-only")
    check(rc == 0, "layout-only answer accepted: %s" % res)
    # the check can fail: each of these must be refused
    broken = {
        "x2 past the width": '[{"bbox": [1, 2, %d, 4], "category": "Text", "text": "x"}]' % (w + 1),
        "x2 < x1": '[{"bbox": [10, 2, 5, 4], "category": "Text", "text": "x"}]',
        "unknown category": '[{"bbox": [1, 2, 3, 4], "category": "Figure", "text": "x"}]',
        "Picture with text": '[{"bbox": [1, 2, 3, 4], "category": "Picture", "text": "x"}]',
        "text missing": '[{"bbox": [1, 2, 3, 4], "category": "Text"}]',
        "keys out of order": '[{"category": "Text", "bbox": [1, 2, 3, 4], "text": "x"}]',
        "unclosed": '[{"bbox": [1, 2, 3, 4], "category": "Text", "text": "x"}',
        "lone low surrogate": '[{"bbox": [1, 2, 3, 4], "category": "Text", "text": "\\udc00"}]',
        "leading zero": '[{"bbox": [01, 2, 3, 4], "category": "Text", "text": "x"}]',
        "float": '[{"bbox": [1.5, 2, 3, 4], "category": "Text", "text": "x"}]',
    }
    for what, text in broken.items():
        rc, res = grammar_check(a, text, w, h)
        check(rc == 1 and (res.get("refused_at", -1) >= 0 or res.get("complete") is False), "refused: %s: %s" % (what, res))


# ------------------------------------------------------------------- loops

def test_loops(a):
    w, h = 644, 476
    prefix = '[{"bbox": [1, 2, 30, 40], "category": "Text", "text": "'
    rc, res = grammar_check(a, prefix + "SRC " * 1500 + '"}]', w, h)
    pre_tokens = grammar_check(a, prefix + '"}]', w, h)[1].get("tokens", 0)
    first = res.get("guard_first_at", -1)
    check(res.get("refused_at") == -1 and 0 <= first <= pre_tokens + SPAN + 8,
          "a cycle inside a layout cell is caught within %d tokens: first at %d (prefix %d)" % (SPAN, first, pre_tokens))
    rc, res = grammar_check(a, "\\cdots " * 1200, w, h, "ocr")
    first = res.get("guard_first_at", -1)
    check(0 <= first <= SPAN + 8, "a cycle in plain text is caught within %d tokens: first at %d" % (SPAN, first))
    obj = '{"bbox": [1, 2, 3, 4], "category": "Text"}, '
    rc, res = grammar_check(a, "[" + obj * 150 + obj[:-2] + "]", w, h, "layout-only")
    first = res.get("guard_first_at", -1)
    check(res.get("refused_at") == -1 and 0 < first <= SPAN + 64,
          "a cycle of whole objects (layout-only) is caught within %d tokens: first at %d" % (SPAN, first))
    rc, res = grammar_check(a, "the same line\n" * 400, w, h, "grounding")
    first = res.get("guard_first_at", -1)
    check(0 <= first <= SPAN + 8, "a cycle in grounding text is caught within %d tokens: first at %d" % (SPAN, first))
    rc, res = grammar_check(a, "<td></td>" * 200, w, h, "ocr")
    check(res.get("guard_fired") == 0, "200 empty cells in a row are not a loop: %s" % res)
    rc, res = grammar_check(a, "<table>" + "<tr><td></td><td></td><td></td></tr>" * 40 + "</table>", w, h, "ocr")
    check(res.get("guard_fired") == 0, "40 identical empty table rows are not a loop: %s" % res)
    # the tiny model's own loop, in ocr mode: stopped by the guard
    out = os.path.join(a.tmp, "loops")
    r = subprocess.run([a.dotsocr, "run", "--model", a.model, a.sample, "--mode", "ocr", "--max-new-tokens", "4000"],
                       capture_output=True, timeout=600)
    err = r.stderr.decode()
    m = re.search(r"generated (\d+) \(([a-z-]+)\)", err)
    n, stop = (int(m.group(1)), m.group(2)) if m else (-1, "?")
    g = re.search(r"loop guard fired (\d+) time\(s\), first at token (-?\d+)", err)
    check(r.returncode == 0 and stop == "loop-guard" and SPAN <= n < 4000 and g and int(g.group(2)) == n - 1,
          "the tiny model's ocr loop stops by the guard: %d tokens, stop %s, %s" % (n, stop, g.group(0) if g else err[-200:]))
    text = r.stdout.decode()
    tail = text[-200:]
    check(len(tail) > 20 and tail[:len(tail) // 2] in text[:-len(tail) // 2], "what it stopped is a repetition: %r" % tail[-60:])
    r = subprocess.run([a.dotsocr, "run", "--model", a.model, a.sample, "--mode", "ocr", "--max-new-tokens", "1500",
                        "--no-loop-guard"], capture_output=True, timeout=600)
    m = re.search(r"generated (\d+) \(([a-z-]+)\)", r.stderr.decode())
    check(m and m.group(2) == "max-new-tokens", "--no-loop-guard lets it run to the budget: %s" % (m.group(0) if m else r.stderr.decode()[-200:]))
    os.makedirs(out, exist_ok=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["parse", "corpus", "loops"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--debug", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--sample", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    globals()["test_" + a.what](a)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(a.tmp, ignore_errors=True)
    print("all checks passed")


if __name__ == "__main__":
    main()
