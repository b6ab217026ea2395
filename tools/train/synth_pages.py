#!/usr/bin/python3
"""Synthetic document pages with their answers, for training a small
dots.ocr-architecture demo model (docs/train.md).

Each page is drawn with Pillow and Debian's DejaVu fonts: a page header, a
title, section headers, paragraphs, list items, a table, a picture with its
caption and a page footer, at varied sizes and positions, in reading order.
Its answer is what the official model answers for prompt_layout_all_en: a
JSON list of {"bbox", "category", "text"} (Picture without text), boxes in
the pixels of the image the model sees (smart_resize of the page, factor 28),
text as Markdown (headings with #), tables as HTML.

usage: synth_pages.py --out DIR --count N [--seed S] [--min-side 560] [--max-side 1120]
writes DIR/page_NNNN.png, DIR/page_NNNN.txt (the answer) and DIR/manifest.jsonl.
The same seed gives the same bytes. --out DIR --sample writes the demo's
sample page (DIR/page.png) and its answer (DIR/page.txt). Fonts: Debian's
DejaVu, or the folder in $DOTS_TRAIN_FONTS."""
import argparse
import json
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFont

# the official smart_resize, from the reference the engine is checked against
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
from ref_preprocess import smart_resize  # noqa: E402

FONT_DIR = os.environ.get("DOTS_TRAIN_FONTS", "/usr/share/fonts/truetype/dejavu")
FONTS = {
    "regular": ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansCondensed.ttf"],
    "bold": ["DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansCondensed-Bold.ttf"],
    "italic": ["DejaVuSans-Oblique.ttf", "DejaVuSerif-Italic.ttf"],
}
WORDS = ("the of and to in is that for it as with was on be by this are from at or an have not which but all were "
         "when we there can more if no out so what up into time has some could them other than then now only its "
         "over also new after work first well way even because any these give day most us report market data value "
         "growth annual revenue sales result method model table figure section study analysis sample total "
         "average system design process order service customer product price cost quality energy water light "
         "paper page text image layout reading document letter number line column row summary note method "
         "research school city north south river bridge garden station museum library village harbour short paragraph "
         "generated used shows pipeline end decode resize vision encoder language post processing trained demo small "
         "reads synthetic pages like one size year week group level rate area board field").split()
CONSONANTS, VOWELS = "bcdfghjklmnprstvwxz", "aeiouy"


def font(rng, style, size):
    return ImageFont.truetype(os.path.join(FONT_DIR, rng.choice(FONTS[style])), size)


def word(rng):
    """A word to read: common words, made-up words (so that the model learns
    letters, not a word list), numbers, acronyms and compounds."""
    r = rng.random()
    if r < 0.5:
        return rng.choice(WORDS)
    if r < 0.8:
        w = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) + (rng.choice(CONSONANTS) if rng.random() < 0.3 else "")
                    for _ in range(rng.randint(1, 4)))
        return w.capitalize() if rng.random() < 0.2 else w
    if r < 0.9:
        k = rng.random()
        if k < 0.4:
            return str(rng.randint(0, 9999))
        if k < 0.7:
            return "%d.%d" % (rng.randint(0, 999), rng.randint(0, 99))
        return "%d%%" % rng.randint(1, 100) if k < 0.85 else str(rng.randint(1950, 2030))
    if r < 0.95:
        return "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWXYZ") for _ in range(rng.randint(2, 4)))
    return rng.choice(WORDS) + rng.choice("-/") + rng.choice(WORDS)


def sentence(rng, lo, hi):
    words = []
    for i in range(rng.randint(lo, hi)):
        w = word(rng)
        if i + 1 < hi and rng.random() < 0.08:
            w += rng.choice(",,,:;")
        words.append(w)
    if len(words) > 3 and rng.random() < 0.1:
        i = rng.randrange(len(words) - 1)
        words[i] = "(" + words[i]
        words[i + 1] = words[i + 1].rstrip(",:;") + ")"
    text = " ".join(words)
    return text[0].upper() + text[1:]


def formula(rng):
    """A one-line formula drawn as its own LaTeX source (plain ASCII)."""
    v = [rng.choice("abcdefghkmnprstuvwxyz") for _ in range(3)]
    n = [rng.randint(1, 9) for _ in range(3)]
    return rng.choice([
        "%s^2 + %s^2 = %s^2" % tuple(v), "%s = %d%s + %d" % (v[0], n[0], v[1], n[1]),
        "f(%s) = %s^%d - %d" % (v[0], v[0], n[0], n[1]), "%s_%d + %s_%d = %s" % (v[0], n[0], v[1], n[1], v[2]),
        "%s(%s + %s) = %s%s + %s%s" % (v[0], v[1], v[2], v[0], v[1], v[0], v[2]),
        "%s / %s = %d" % (v[0], v[1], n[0])])


def wrap(draw, text, fnt, width):
    lines, line = [], ""
    for word in text.split():
        trial = (line + " " + word).strip()
        if line and draw.textlength(trial, font=fnt) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


class Page:
    def __init__(self, rng, w, h):
        self.rng, self.w, self.h = rng, w, h
        self.img = Image.new("RGB", (w, h), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.img)
        self.margin = rng.randint(w // 14, w // 8)
        self.cells = []  # (box in page pixels, category, text or None)

    def text_block(self, x, y, lines, fnt, fill, spacing):
        """Draws lines from (x, y); returns the ink box and the next y."""
        boxes = []
        for ln in lines:
            b = self.draw.textbbox((x, y), ln, font=fnt)
            self.draw.text((x, y), ln, font=fnt, fill=fill)
            boxes.append(b)
            y = b[3] + spacing
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        return box, y

    def add(self, box, category, text):
        pad = 2
        box = (max(0, box[0] - pad), max(0, box[1] - pad), min(self.w, box[2] + pad), min(self.h, box[3] + pad))
        self.cells.append((box, category, text))


def make_page(rng, w, h):
    p = Page(rng, w, h)
    d, m = p.draw, p.margin
    width = w - 2 * m
    base = max(11, min(22, w // rng.randint(38, 52)))
    y = rng.randint(h // 40, h // 20)
    # page header
    hf = font(rng, "regular", max(9, base - 3))
    header = sentence(rng, 2, 5)
    box, _ = p.text_block(m, y, [header], hf, (90, 90, 90), 0)
    p.add(box, "Page-header", header)
    y = box[3] + rng.randint(base, 2 * base)
    # title
    tf = font(rng, "bold", int(base * rng.uniform(1.6, 2.2)))
    title = sentence(rng, 2, 6)
    lines = wrap(d, title, tf, width)
    box, y = p.text_block(m, y, lines, tf, (0, 0, 0), base // 3)
    p.add(box, "Title", "# " + " ".join(lines))
    y += rng.randint(base // 2, base)
    footer_room = 3 * base
    kinds = ["section", "text", "text", "list", "table", "picture", "text", "formula"]
    rng.shuffle(kinds)
    for kind in ["text"] + kinds:
        if y > h - footer_room - 4 * base:
            break
        if kind == "section":
            sf = font(rng, "bold", int(base * 1.3))
            sec = sentence(rng, 2, 5)
            box, y = p.text_block(m, y, wrap(d, sec, sf, width), sf, (0, 0, 0), base // 3)
            p.add(box, "Section-header", "## " + sec)
        elif kind == "text":
            f = font(rng, "regular", base)
            para = " ".join(sentence(rng, 6, 14) + "." for _ in range(rng.randint(1, 3)))
            lines = wrap(d, para, f, width)
            room = (h - footer_room - y) // (base + base // 3)
            if room < 1:
                break
            lines = lines[:room]
            box, y = p.text_block(m, y, lines, f, (0, 0, 0), base // 3)
            p.add(box, "Text", " ".join(lines))
        elif kind == "list":
            f = font(rng, "regular", base)
            numbered = rng.random() < 0.5
            for i in range(rng.randint(2, 4)):
                if y > h - footer_room - 2 * base:
                    break
                item = sentence(rng, 3, 8)
                mark = "%d." % (i + 1) if numbered else "-"
                shown = ("%s " % mark if numbered else "\u2022 ") + item
                box, y = p.text_block(m + base, y, wrap(d, shown, f, width - base)[:1], f, (0, 0, 0), base // 3)
                p.add(box, "List-item", "%s %s" % (mark, item) if numbered else "- " + item)
        elif kind == "table":
            f = font(rng, "regular", max(9, base - 2))
            rows, cols = rng.randint(2, 4), rng.randint(2, 4)
            cw = min(width // cols, base * 9)
            rh = int(base * 1.8)
            if y + rows * rh > h - footer_room:
                continue
            x0, y0 = m, y
            cells = []
            for r in range(rows):
                row = []
                for c in range(cols):
                    t = rng.choice(WORDS).capitalize() if r == 0 or c == 0 else str(rng.randint(1, 999))
                    d.rectangle([x0 + c * cw, y0 + r * rh, x0 + (c + 1) * cw, y0 + (r + 1) * rh], outline=(0, 0, 0))
                    d.text((x0 + c * cw + base // 3, y0 + r * rh + base // 3), t, font=f, fill=(0, 0, 0))
                    row.append(t)
                cells.append(row)
            html = "<table>" + "".join("<tr>" + "".join("<td>%s</td>" % t for t in row) + "</tr>" for row in cells) + "</table>"
            p.add((x0, y0, x0 + cols * cw, y0 + rows * rh), "Table", html)
            y = y0 + rows * rh + base
        elif kind == "formula":
            f = font(rng, "regular", int(base * rng.uniform(1.0, 1.3)))
            text = formula(rng)
            tw = int(d.textlength(text, font=f))
            if rng.random() < 0.5:  # in a framed box, as samples/page.png: the box is the element
                bw, bh = min(width, tw + rng.randint(2, 8) * base), rng.randint(3, 8) * base
                if y + bh > h - footer_room:
                    continue
                x0 = m + rng.randint(0, width - bw)
                d.rectangle([x0, y, x0 + bw, y + bh], fill=(rng.randint(200, 245), rng.randint(200, 245), rng.randint(200, 250)),
                            outline=(0, 0, 0), width=rng.randint(1, 2))
                d.text((x0 + base, y + base), text, font=f, fill=(0, 0, 0))
                p.cells.append(((x0, y, x0 + bw, y + bh), "Formula", text))
                y += bh
            else:
                x0 = m + rng.randint(0, max(0, width - tw))
                box, y = p.text_block(x0, y, [text], f, (0, 0, 0), 0)
                p.add(box, "Formula", text)
        elif kind == "picture":
            pw, ph = rng.randint(width // 3, width * 2 // 3), rng.randint(3 * base, 7 * base)
            if y + ph + 2 * base > h - footer_room:
                continue
            x0 = m + rng.randint(0, width - pw)
            d.rectangle([x0, y, x0 + pw, y + ph], fill=(rng.randint(150, 230), rng.randint(150, 230), rng.randint(150, 230)))
            for _ in range(3):  # shapes inside the picture's box
                cx, cy = x0 + rng.randint(10, pw - 10), y + rng.randint(10, ph - 10)
                r = min(rng.randint(5, base * 2), cx - x0, x0 + pw - cx, cy - y, y + ph - cy)
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(rng.randint(0, 120), rng.randint(0, 120), rng.randint(0, 120)))
            p.cells.append(((x0, y, x0 + pw, y + ph), "Picture", None))
            y += ph + base // 2
            cf = font(rng, "italic", max(9, base - 2))
            cap = "Figure %d: %s" % (rng.randint(1, 9), sentence(rng, 3, 7))
            box, y = p.text_block(x0, y, wrap(d, cap, cf, pw)[:1], cf, (40, 40, 40), 0)
            p.add(box, "Caption", cap if draw_fits(d, cap, cf, pw) else wrap(d, cap, cf, pw)[0])
        y += rng.randint(base // 2, base)
    # page footer
    ff = font(rng, "regular", max(9, base - 3))
    num = str(rng.randint(1, 300))
    fw = d.textlength(num, font=ff)
    box, _ = p.text_block(int((w - fw) / 2), h - 2 * base, [num], ff, (90, 90, 90), 0)
    p.add(box, "Page-footer", num)
    return p


SAMPLE_LINES = ["A short paragraph of text on a generated page, used by scripts/demo.",
                "It shows the pipeline end to end: decode, resize, vision encoder,",
                "language model and post-processing, on one page."]


def sample_page():
    """samples/page.png: the page scripts/demo parses (a title, a paragraph, a
    formula in a framed box), drawn as the training pages are, not one of them."""
    p = Page(random.Random(0), 840, 600)
    sans = os.path.join(FONT_DIR, "DejaVuSans.ttf")
    box, _ = p.text_block(60, 48, ["dotsocr sample page"], ImageFont.truetype(sans, 32), (0, 0, 0), 0)
    p.add(box, "Title", "# dotsocr sample page")
    box, _ = p.text_block(60, 142, SAMPLE_LINES, ImageFont.truetype(sans, 18), (0, 0, 0), 10)
    p.add(box, "Text", " ".join(SAMPLE_LINES))
    p.draw.rectangle([60, 340, 400, 520], fill=(218, 218, 240), outline=(0, 0, 0), width=2)
    p.draw.text((80, 380), "x^2 + y^2 = r^2", font=ImageFont.truetype(sans, 22), fill=(0, 0, 0))
    p.cells.append(((60, 340, 400, 520), "Formula", "x^2 + y^2 = r^2"))
    return p


def draw_fits(d, text, fnt, width):
    return d.textlength(text, font=fnt) <= width


def answer(p):
    """The official layout-all answer for the page (json.dumps of the list)."""
    hb, wb = smart_resize(p.h, p.w)
    sx, sy = wb / p.w, hb / p.h
    out = []
    for (x1, y1, x2, y2), cat, text in p.cells:
        bbox = [int(round(x1 * sx)), int(round(y1 * sy)), int(round(x2 * sx)), int(round(y2 * sy))]
        bbox = [min(max(v, 0), lim) for v, lim in zip(bbox, (wb, hb, wb, hb))]
        cell = {"bbox": bbox, "category": cat}
        if text is not None:
            cell["text"] = text
        out.append(cell)
    return json.dumps(out, ensure_ascii=False), (wb, hb)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int)
    ap.add_argument("--sample", action="store_true", help="write the demo's sample page (page.png, page.txt) instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-side", type=int, default=560)
    ap.add_argument("--max-side", type=int, default=1120)
    a = ap.parse_args()
    if a.sample:
        os.makedirs(a.out, exist_ok=True)
        p = sample_page()
        p.img.save(os.path.join(a.out, "page.png"))
        with open(os.path.join(a.out, "page.txt"), "w", encoding="utf-8") as f:
            f.write(answer(p)[0])
        return
    if a.count is None or a.count < 1 or not 200 <= a.min_side <= a.max_side <= 4000:
        ap.error("--count >= 1 and 200 <= --min-side <= --max-side <= 4000")
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    with open(os.path.join(a.out, "manifest.jsonl"), "w", encoding="utf-8") as man:
        for i in range(a.count):
            w = rng.randint(a.min_side, a.max_side)
            h = min(a.max_side * 3 // 2, int(w * (rng.uniform(1.2, 1.5) if rng.random() < 0.8 else rng.uniform(0.68, 0.8))))
            p = make_page(rng, w, h)
            text, (wb, hb) = answer(p)
            stem = "page_%04d" % i
            p.img.save(os.path.join(a.out, stem + ".png"))
            with open(os.path.join(a.out, stem + ".txt"), "w", encoding="utf-8") as f:
                f.write(text)
            man.write(json.dumps({"image": stem + ".png", "answer": stem + ".txt", "width": w, "height": h,
                                  "model_width": wb, "model_height": hb, "cells": len(p.cells)}) + "\n")


if __name__ == "__main__":
    main()
