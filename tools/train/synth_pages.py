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
The same seed gives the same bytes."""
import argparse
import json
import math
import os
import random

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
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
         "research school city north south river bridge garden station museum library village harbour").split()
FACTOR, MIN_PIXELS, MAX_PIXELS = 28, 3136, 11289600


def smart_resize(h, w):
    """The official smart_resize (docs/model.md §4.2), round half to even as Python's."""
    hb, wb = max(FACTOR, round(h / FACTOR) * FACTOR), max(FACTOR, round(w / FACTOR) * FACTOR)
    if hb * wb > MAX_PIXELS:
        beta = math.sqrt(h * w / MAX_PIXELS)
        hb, wb = max(FACTOR, math.floor(h / beta / FACTOR) * FACTOR), max(FACTOR, math.floor(w / beta / FACTOR) * FACTOR)
    elif hb * wb < MIN_PIXELS:
        beta = math.sqrt(MIN_PIXELS / (h * w))
        hb, wb = math.ceil(h * beta / FACTOR) * FACTOR, math.ceil(w * beta / FACTOR) * FACTOR
    return hb, wb


def font(rng, style, size):
    return ImageFont.truetype(os.path.join(FONT_DIR, rng.choice(FONTS[style])), size)


def sentence(rng, lo, hi):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize()


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
    kinds = ["section", "text", "text", "list", "table", "picture", "text"]
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
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-side", type=int, default=560)
    ap.add_argument("--max-side", type=int, default=1120)
    a = ap.parse_args()
    if a.count < 1 or not 200 <= a.min_side <= a.max_side <= 4000:
        ap.error("--count >= 1 and 200 <= --min-side <= --max-side <= 4000")
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    with open(os.path.join(a.out, "manifest.jsonl"), "w", encoding="utf-8") as man:
        for i in range(a.count):
            w = rng.randint(a.min_side, a.max_side)
            h = min(a.max_side * 3 // 2, int(w * rng.uniform(1.2, 1.5)))
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
