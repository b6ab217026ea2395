#!/usr/bin/env python3
"""Image and PDF input checks (CTest label `images`), against independent
references: Pillow (python3-pil) for decoding and the bicubic resize, NumPy
for normalisation and patch order as transformers computes them, PyMuPDF
(python3-fitz, the same MuPDF) for PDF pages. Runs under /usr/bin/python3.

  resize     >= 200 random (input size, output size) pairs, bit-identical to
             Image.resize(size, BICUBIC), up and down, 1-px and elongated
  preprocess smart_resize worked examples (docs/model.md §4.2), pixels.npy vs the
             reference to 1e-6, patch order and positions via a tagged image
  formats    PNG/JPEG/WebP/TIFF/PNM variants decode like Pillow + to_rgb
  pdf        PDF pages identical to PyMuPDF renders (200 dpi, 72 dpi fallback)
  hostile    broken and hostile inputs: exit 1, one error line
"""
import argparse
import io
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image

FAILS = []
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)  # to undo the normalisation
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def run(args, timeout=600):
    return subprocess.run(args, capture_output=True, timeout=timeout)


def to_rgb(im):
    """dots' to_rgb, with alpha of any kind composited on white."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info) or \
            (im.mode in ("RGB", "L") and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


# ------------------------------------------------------------ reference math
# the reference preprocessing (transformers' rescale/normalise and 9-D patch
# permute, get_pos_ids_by_grid), shared with the PyTorch reference

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference"))
from ref_preprocess import smart_resize, positions as reference_positions  # noqa: E402
from ref_preprocess import patch_rows as _patch_rows  # noqa: E402


def reference_pixels(resized):
    return _patch_rows(resized)


def preprocess(a, path, out, extra=()):
    r = run([a.dotsocr, "preprocess", "--model", a.model, path, "--dump", out] + list(extra))
    return r


# -------------------------------------------------------------------- tests

def test_resize(a):
    rng = random.Random(1234)
    nrng = np.random.default_rng(1234)
    pairs = [((1, 1), (7, 3)), ((1, 300), (3, 900)), ((300, 1), (40, 1)), ((1, 5), (1, 17)), ((640, 2), (28, 28)),
             ((2, 700), (56, 1400)), ((13, 13), (13, 13)), ((50, 50), (50, 23)), ((50, 50), (23, 50))]
    while len(pairs) < 220:
        w, h = rng.randint(1, 400), rng.randint(1, 400)
        k = rng.random()
        if k < 0.3:
            ow, oh = rng.randint(1, w * 4), rng.randint(1, h * 4)  # up
        elif k < 0.6:
            ow, oh = rng.randint(1, w), rng.randint(1, h)  # down
        elif k < 0.8:
            ow, oh = rng.randint(1, 600), rng.randint(1, 600)  # mixed
        else:
            w, h = rng.choice([(1, rng.randint(50, 900)), (rng.randint(50, 900), 1), (3, 700), (700, 2)])
            ow, oh = rng.randint(1, 1000), rng.randint(1, 1000)
        pairs.append(((w, h), (ow, oh)))
    man = os.path.join(a.tmp, "manifest.txt")
    with open(man, "w") as f:
        for i, ((w, h), (ow, oh)) in enumerate(pairs):
            arr = nrng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            if i % 3 == 0:  # smooth content as well as noise
                yy, xx = np.mgrid[0:h, 0:w]
                arr[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
                arr[..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
            Image.fromarray(arr).save(os.path.join(a.tmp, "r%03d.png" % i))
            f.write("%s %d %d %s\n" % (os.path.join(a.tmp, "r%03d.png" % i), ow, oh, os.path.join(a.tmp, "r%03d.npy" % i)))
    r = run([a.resize_tool, man])
    if not check(r.returncode == 0, "resize_tool: " + r.stderr.decode()[-500:]):
        return
    bad = 0
    for i, ((w, h), (ow, oh)) in enumerate(pairs):
        ref = np.asarray(Image.open(os.path.join(a.tmp, "r%03d.png" % i)).convert("RGB").resize((ow, oh), Image.BICUBIC))
        got = np.load(os.path.join(a.tmp, "r%03d.npy" % i))
        if got.shape != ref.shape or (got != ref).any():
            bad += 1
            if bad <= 5:
                print("resize %dx%d -> %dx%d differs: %d pixels" % (w, h, ow, oh, (got != ref).sum() if got.shape == ref.shape else -1))
    check(bad == 0, "%d of %d resize pairs differ from Pillow" % (bad, len(pairs)))
    print("resize: %d pairs, %d differ from Pillow" % (len(pairs), bad))


def test_preprocess(a):
    # docs/model.md §4.2 worked examples (h x w -> h' x w'), on flat images (cheap to decode)
    for (h, w), (eh, ew) in [((2250, 1700), (2240, 1708)), ((2339, 1654), (2352, 1652)), ((3508, 2480), (3500, 2492)),
                             ((4400, 3400), (3808, 2940)), ((1024, 768), (1036, 756)), ((100, 100), (112, 112)),
                             ((70, 300), (56, 308)), ((56, 56), (56, 56))]:
        p = os.path.join(a.tmp, "flat.png")
        Image.new("RGB", (w, h), (200, 30, 90)).save(p)
        r = run([a.dotsocr, "preprocess", "--model", a.model, p])
        out = r.stdout.decode()
        check(r.returncode == 0 and "resized %d x %d" % (ew, eh) in out,
              "smart_resize %dx%d -> want %dx%d (w x h): %s" % (w, h, ew, eh, out.strip()[:200]))
        check(smart_resize(h, w) == (eh, ew), "the Python reference agrees with docs/model.md for %dx%d" % (h, w))
    # pixels.npy against the reference, on several aspect ratios
    nrng = np.random.default_rng(7)
    for w, h in [(56, 56), (300, 200), (1036, 756), (90, 2000), (2000, 64), (517, 389), (33, 47)]:
        arr = nrng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        p = os.path.join(a.tmp, "img.png")
        Image.fromarray(arr).save(p)
        out = os.path.join(a.tmp, "dump")
        r = preprocess(a, p, out)
        if not check(r.returncode == 0, "preprocess %dx%d: %s" % (w, h, r.stderr.decode()[-300:])):
            continue
        hb, wb = smart_resize(h, w)
        resized = np.asarray(Image.fromarray(arr).resize((wb, hb), Image.BICUBIC))
        got_rs = np.load(os.path.join(out, "resized.npy"))
        check(got_rs.shape == resized.shape and (got_rs == resized).all(), "resized %dx%d bit-identical to Pillow" % (w, h))
        ref, gh, gw = reference_pixels(resized)
        got = np.load(os.path.join(out, "pixels.npy"))
        diff = np.abs(got - ref).max() if got.shape == ref.shape else float("inf")
        check(diff <= 1e-6, "pixels %dx%d: max |diff| %g" % (w, h, diff))
        pos = np.load(os.path.join(out, "positions.npy"))
        check(pos.shape == (gh * gw, 2) and (pos == reference_positions(gh, gw)).all(), "positions %dx%d" % (w, h))
        print("preprocess %dx%d -> %dx%d: grid %dx%d, max |pixels - ref| = %g" % (w, h, wb, hb, gh, gw, diff))
    # tagged image: every 14x14 patch a unique colour; each row of pixels.npy must hold
    # exactly the patch its position names, in the §4.5 order
    gh, gw = 8, 12
    tag = np.zeros((gh * 14, gw * 14, 3), np.uint8)
    for r_ in range(gh):
        for c_ in range(gw):
            tag[r_ * 14:(r_ + 1) * 14, c_ * 14:(c_ + 1) * 14] = (r_ * 20 + 5, c_ * 20 + 5, 77)
    p = os.path.join(a.tmp, "tag.png")
    Image.fromarray(tag).save(p)
    out = os.path.join(a.tmp, "tagdump")
    r = preprocess(a, p, out)
    if check(r.returncode == 0, "tagged image preprocess"):
        px = np.load(os.path.join(out, "pixels.npy"))
        pos = np.load(os.path.join(out, "positions.npy"))
        ok = True
        for t in range(gh * gw):
            # undo the normalisation of the first value of each channel plane
            vals = [int(round((px[t, ch * 196] * STD[ch] + MEAN[ch]) * 255)) for ch in range(3)]
            R, C, mr, mc = t // (2 * gw), (t // 4) % (gw // 2), (t // 2) % 2, t % 2
            want_r, want_c = 2 * R + mr, 2 * C + mc
            ok &= vals == [want_r * 20 + 5, want_c * 20 + 5, 77] and list(pos[t]) == [want_r, want_c]
            ok &= bool(np.ptp(px[t, :196]) == 0)  # a row is one patch, uniform
        check(ok, "tagged image: rows follow merge-block-major order and carry their (h, w)")
    # overrides validated like the official parser
    p = os.path.join(a.tmp, "img.png")
    for args in (["--min-pixels", "100"], ["--max-pixels", "99999999"], ["--min-pixels", "50000", "--max-pixels", "40000"]):
        r = run([a.dotsocr, "preprocess", "--model", a.model, p] + args)
        check(r.returncode == 1 and len(r.stderr.splitlines()) == 1, "pixel override %s rejected" % args)
    r = run([a.dotsocr, "preprocess", "--model", a.model, p, "--max-pixels", "6272"])
    check(r.returncode == 0, "a valid max-pixels override works")
    # aspect ratio over 200
    Image.new("RGB", (2010, 10)).save(os.path.join(a.tmp, "thin.png"))
    r = run([a.dotsocr, "preprocess", "--model", a.model, os.path.join(a.tmp, "thin.png")])
    check(r.returncode == 1 and b"aspect ratio" in r.stderr, "aspect ratio over 200 is an error")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def png16_rgb(arr16):
    h, w, _ = arr16.shape
    raw = b"".join(b"\0" + arr16[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def test_formats(a):
    nrng = np.random.default_rng(3)
    base = nrng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:37, 0:53]
    base[..., 0] = (xx * 4).astype(np.uint8)
    alpha = (nrng.integers(0, 256, (37, 53))).astype(np.uint8)
    rgb = Image.fromarray(base)
    rgba = Image.fromarray(np.dstack([base, alpha]), "RGBA")
    cases = []

    def save(name, im, fmt, **kw):
        p = os.path.join(a.tmp, name)
        im.save(p, fmt, **kw)
        cases.append((name, p, 0))

    save("rgb.png", rgb, "PNG")
    save("rgba.png", rgba, "PNG")
    save("gray.png", rgb.convert("L"), "PNG")
    save("la.png", rgba.convert("LA"), "PNG")
    save("palette.png", rgb.convert("P", palette=Image.ADAPTIVE, colors=50), "PNG")
    pt = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    save("palette_trns.png", pt, "PNG", transparency=3)
    save("bilevel.png", rgb.convert("1"), "PNG")
    save("interlaced.png", rgb, "PNG", optimize=False)
    save("rgb.jpg", rgb, "JPEG", quality=85)
    save("progressive.jpg", rgb, "JPEG", quality=70, progressive=True)
    save("gray.jpg", rgb.convert("L"), "JPEG")
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    save("lossless.webp", rgb, "WEBP", lossless=True)
    save("lossy.webp", rgb, "WEBP", quality=80)
    save("alpha.webp", rgba, "WEBP", lossless=True)
    save("rgb.tif", rgb, "TIFF")
    save("lzw.tif", rgb, "TIFF", compression="tiff_lzw")
    save("gray.tif", rgb.convert("L"), "TIFF")
    save("rgba.tif", rgba, "TIFF")
    save("rgb.ppm", rgb, "PPM")
    save("gray.pgm", rgb.convert("L"), "PPM")
    # 16-bit RGB PNG: Pillow keeps the high byte
    a16 = (base.astype(np.uint16) << 8) | nrng.integers(0, 256, base.shape).astype(np.uint16)
    p = os.path.join(a.tmp, "rgb16.png")
    open(p, "wb").write(png16_rgb(a16))
    cases.append(("rgb16.png", p, 0))
    # plain PNM and bitmaps, written by hand; maxval 1000 scaled with rounding
    g = rgb.convert("L")
    ga = np.asarray(g)
    p = os.path.join(a.tmp, "plain.pgm")
    open(p, "w").write("P2\n# comment\n53 37\n255\n" + " ".join(str(v) for v in ga.flatten()) + "\n")
    cases.append(("plain.pgm", p, 0))
    p = os.path.join(a.tmp, "plain.ppm")
    open(p, "w").write("P3 53 37 255\n" + " ".join(str(v) for v in base.flatten()) + "\n")
    cases.append(("plain.ppm", p, 0))
    cases_expect = {}
    p = os.path.join(a.tmp, "max1000.pgm")
    v1000 = (ga.astype(np.int64) * 1000 // 255)
    open(p, "w").write("P2 53 37 1000\n" + " ".join(str(v) for v in v1000.flatten()) + "\n")
    cases.append(("max1000.pgm", p, 0))
    cases_expect["max1000.pgm"] = np.repeat(((v1000 * 255 + 500) // 1000).astype(np.uint8)[..., None], 3, 2)
    save("bitmap.pbm", rgb.convert("1"), "PPM")

    tol = {"rgba.tif": 1}  # libtiff premultiplies alpha (rounding)
    for name, path, _ in cases:
        out = os.path.join(a.tmp, "fmt_" + name)
        r = preprocess(a, path, out)
        if not check(r.returncode == 0, "%s: %s" % (name, r.stderr.decode().strip()[:300])):
            continue
        got = np.load(os.path.join(out, "input.npy"))
        if name in cases_expect:
            ref = cases_expect[name]
        elif name == "rgb16.png":
            ref = (a16 >> 8).astype(np.uint8)
        else:
            ref = np.asarray(to_rgb(Image.open(path)))
        diff = int(np.abs(got.astype(int) - ref.astype(int)).max()) if got.shape == ref.shape else 999
        check(diff <= tol.get(name, 0), "%s: decoded pixels differ from Pillow by %d" % (name, diff))
        print("format %-18s max |dotsocr - Pillow| = %d" % (name, diff))


def test_pdf(a):
    import fitz
    pdf = os.path.join(a.tmp, "test.pdf")
    doc = fitz.open()
    pg = doc.new_page(width=595, height=842)  # A4, text
    pg.insert_text((72, 100), "Hello dots.ocr: text on a PDF page.", fontsize=14)
    pg.insert_text((72, 140), "Second line with numbers 12345 and symbols ()[]{}", fontsize=10, fontname="Courier")
    pg = doc.new_page(width=595, height=842)  # vector graphics
    pg.draw_rect(fitz.Rect(50, 50, 300, 200), color=(1, 0, 0), fill=(0, 0, 1), width=3)
    pg.draw_line((10, 10), (580, 830), color=(0, 0.5, 0), width=1.5)
    pg.draw_circle((300, 500), 120, color=(0, 0, 0), fill=(1, 1, 0))
    pg.draw_bezier((50, 700), (200, 600), (400, 800), (550, 650), color=(0.2, 0.2, 0.8), width=2)
    pg = doc.new_page(width=612, height=792)  # Letter, embedded image
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(buf, "PNG")
    pg.insert_image(fitz.Rect(100, 100, 500, 400), stream=buf.getvalue())
    pg.insert_text((100, 450), "Picture caption", fontsize=12)
    pg = doc.new_page(width=595, height=842)  # rotated
    pg.insert_text((72, 100), "Rotated page", fontsize=20)
    pg.set_rotation(90)
    pg = doc.new_page(width=842, height=595)  # landscape
    pg.draw_rect(fitz.Rect(20, 20, 822, 575), color=(0, 0, 0), width=1)
    pg.insert_text((100, 300), "Landscape", fontsize=30)
    pg = doc.new_page(width=1800, height=1200)  # 5000 px at 200 dpi: the 72 dpi fallback
    pg.insert_text((100, 600), "Huge page", fontsize=60)
    doc.save(pdf)
    doc = fitz.open(pdf)
    for i, page in enumerate(doc):
        pm = page.get_pixmap(matrix=fitz.Matrix(200 / 72, 200 / 72), alpha=False)
        dpi = 200
        if pm.width > 4500 or pm.height > 4500:
            pm = page.get_pixmap(matrix=fitz.Matrix(1, 1), alpha=False)
            dpi = 72
        ref = np.frombuffer(pm.samples, np.uint8).reshape(pm.height, pm.width, 3)
        out = os.path.join(a.tmp, "pdf%d" % i)
        r = preprocess(a, pdf, out, ["--page", str(i + 1)])
        if not check(r.returncode == 0, "pdf page %d: %s" % (i + 1, r.stderr.decode()[-300:])):
            continue
        got = np.load(os.path.join(out, "input.npy"))
        same = got.shape == ref.shape and (got == ref).all()
        check(same, "pdf page %d: %s vs PyMuPDF %s, %d pixels differ" % (i + 1, got.shape, ref.shape,
                                                                      (got != ref).sum() if got.shape == ref.shape else -1))
        check(("rendered at %d dpi" % dpi) in r.stdout.decode(), "pdf page %d rendered at %d dpi" % (i + 1, dpi))
        print("pdf page %d: %dx%d at %d dpi, identical to PyMuPDF: %s" % (i + 1, got.shape[1], got.shape[0], dpi, same))
    # fitz_preprocess: an image through MuPDF as the official get_image_by_fitz_doc does
    # (PNG -> one-page document -> convert_to_pdf -> page at 200 dpi, 72 past 4500 px)
    rng = np.random.default_rng(21)
    for name, shape in (("fitz_up.png", (150, 220, 3)), ("fitz_fallback.png", (2500, 2000, 3))):
        p = os.path.join(a.tmp, name)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(p)
        b = io.BytesIO()
        Image.open(p).save(b, "PNG")
        pdf_doc = fitz.open("pdf", fitz.open(stream=b.getvalue(), filetype="png").convert_to_pdf())
        page = pdf_doc[0]  # keep the document alive while its page is used
        pm = page.get_pixmap(matrix=fitz.Matrix(200 / 72, 200 / 72), alpha=False)
        if pm.width > 4500 or pm.height > 4500:
            pm = page.get_pixmap(matrix=fitz.Matrix(1, 1), alpha=False)
        ref = np.frombuffer(pm.samples, np.uint8).reshape(pm.height, pm.width, 3)
        out = os.path.join(a.tmp, "fz_" + name)
        r = preprocess(a, p, out, ["--fitz-preprocess"])
        if check(r.returncode == 0, "fitz_preprocess %s: %s" % (name, r.stderr.decode()[-200:])):
            got = np.load(os.path.join(out, "input.npy"))
            same = got.shape == ref.shape and (got == ref).all()
            check(same, "fitz_preprocess %s: %s vs PyMuPDF %s" % (name, got.shape, ref.shape))
            print("fitz_preprocess %s: %dx%d, identical to PyMuPDF: %s" % (name, got.shape[1], got.shape[0], same))
    pm = doc[0].get_pixmap(matrix=fitz.Matrix(100 / 72, 100 / 72), alpha=False)
    r = run([a.dotsocr, "preprocess", "--model", a.model, pdf, "--dpi", "100", "--page", "1"])
    check(r.returncode == 0 and "size: %d x %d" % (pm.width, pm.height) in r.stdout.decode(), "--dpi 100: %s" % r.stdout.decode()[:200])


def test_hostile(a):
    import fitz
    t = a.tmp
    nrng = np.random.default_rng(9)
    good = Image.fromarray(nrng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    files = {}
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("TIFF", "tif"), ("PPM", "ppm")):
        b = io.BytesIO()
        good.save(b, fmt)
        files[ext] = b.getvalue()
    doc = fitz.open()
    doc.new_page().insert_text((72, 72), "x")
    files["pdf"] = doc.tobytes()
    cases = []
    for ext, data in files.items():
        cases.append(("truncated " + ext, ext, data[: len(data) // 2], None))
        cases.append(("header only " + ext, ext, data[:12], None))
        # corrupt structure (headers, tables, xref): pixel payload flips are
        # undetectable in raw formats and Pillow decodes them too
        bad = bytearray(data)
        if ext == "pdf":
            bad = bytearray(data[:9] + bytes(nrng.integers(0, 256, len(data) - 9, dtype=np.uint8)))
        else:
            start = {"png": 16, "webp": 16, "jpg": 3, "tif": 4, "ppm": 3}[ext]  # keep the magic bytes
            for k in range(start, start + 40):
                bad[k] ^= 0x5A
        cases.append(("corrupt " + ext, ext, bytes(bad), None))
    # a PNG declaring 100,000 x 100,000 pixels (valid header, tiny file)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    huge = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b"")
    cases.append(("PNG of 100000x100000", "png", huge, "limit"))
    zero = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)) + png_chunk(b"IEND", b"")
    cases.append(("PNG of zero width", "png", zero, None))
    cases.append(("PPM of 0x0", "ppm", b"P6 0 0 255\n", "empty"))
    cases.append(("PPM of 100000x100000", "ppm", b"P6 100000 100000 255\n\0\0\0", "limit"))
    cases.append(("text named .png", "png", b"this is not an image\n", "not a PNG"))
    cases.append(("empty file", "png", b"", "empty"))
    enc = os.path.join(t, "enc.pdf")
    d = fitz.open()
    d.new_page().insert_text((72, 72), "secret")
    d.save(enc, encryption=fitz.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")
    cases.append(("encrypted PDF", "pdf", open(enc, "rb").read(), "encrypted"))
    zero_pages = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                  b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n")
    xref = len(zero_pages)
    zero_pages += (b"xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n"
                   b"trailer<</Size 3/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref)
    cases.append(("PDF with zero pages", "pdf", zero_pages, "no pages"))
    for i, (name, ext, data, needle) in enumerate(cases):
        p = os.path.join(t, "hostile%02d.%s" % (i, ext))
        open(p, "wb").write(data)
        r = run([a.dotsocr, "preprocess", "--model", a.model, p])
        lines = r.stderr.decode(errors="replace").strip().splitlines()
        ok = (check(r.returncode == 1, "%s: exit %d, want 1 (%s)" % (name, r.returncode, lines[-1:] if lines else ""))
              and check(len(lines) == 1 and lines[0].startswith("dotsocr: error: "), "%s: one error line: %r" % (name, lines[:3]))
              and check(needle is None or needle in lines[0], "%s: %r lacks %r" % (name, lines[0], needle)))
        check(b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, "%s: sanitizer report" % name)
        if ok:
            print("ok   %-24s %s" % (name, lines[0][16:150]))
    good_pdf = os.path.join(t, "good.pdf")
    open(good_pdf, "wb").write(files["pdf"])
    r = run([a.dotsocr, "preprocess", "--model", a.model, good_pdf, "--page", "2"])
    check(r.returncode == 1 and b"does not exist" in r.stderr, "page out of range")
    r = run([a.dotsocr, "preprocess", "--model", a.model, t])
    check(r.returncode == 1 and len(r.stderr.splitlines()) == 1, "a directory as input")
    r = run([a.dotsocr, "preprocess", "--model", a.model, os.path.join(t, "missing.png")])
    check(r.returncode == 1 and len(r.stderr.splitlines()) == 1, "a missing input")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["resize", "preprocess", "formats", "pdf", "hostile"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--resize-tool")
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
