"""ref_preprocess.py - the image side of the dots.ocr reference (docs/model.md §4, 5.2),
NumPy and Pillow only, so tests without torch can use it too.
"""
import math

import numpy as np
from PIL import Image

IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
MIN_PIXELS, MAX_PIXELS = 3136, 11289600


def smart_resize(height, width, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    """docs/model.md §4.2; Python's round() is half-to-even, as the official code's."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect ratio over 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
        if h_bar * w_bar > max_pixels:
            beta = math.sqrt((h_bar * w_bar) / max_pixels)
            h_bar = max(factor, math.floor(h_bar / beta / factor) * factor)
            w_bar = max(factor, math.floor(w_bar / beta / factor) * factor)
    return h_bar, w_bar


def to_rgb(im):
    """docs/model.md §4.1: transparency composited on white, else convert('RGB')."""
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


def resize_image(im, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch=14, merge=2):
    """smart_resize + Pillow's own bicubic resize (docs/model.md §4.3): exact by construction."""
    h, w = smart_resize(im.height, im.width, patch * merge, min_pixels, max_pixels)
    return im.resize((w, h), Image.BICUBIC)


def patch_rows(resized, mean=IMAGE_MEAN, std=IMAGE_STD, patch=14, merge=2):
    """docs/model.md §4.4-4.5: rescale in float64 then float32, normalise in float32, then
    the 9-D reshape/permute (0,3,6,4,7,2,1,5,8). Returns rows [N, 3*p*p] and grid."""
    x = np.asarray(resized, dtype=np.uint8)
    x = (x.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    x = x.transpose(2, 0, 1)[None]  # (T=1, C, H, W)
    c, h, w = 3, x.shape[2], x.shape[3]
    gh, gw = h // patch, w // patch
    x = x.reshape(1, 1, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gh * gw, c * patch * patch)), gh, gw


def positions(gh, gw, merge=2):
    """docs/model.md §5.2 get_pos_ids_by_grid: (h, w) of each row, same merge-block-major order."""
    hpos = np.arange(gh)[:, None].repeat(gw, 1)
    wpos = np.arange(gw)[None, :].repeat(gh, 0)
    def order(a):
        return a.reshape(gh // merge, merge, gw // merge, merge).transpose(0, 2, 1, 3).flatten()
    return np.stack([order(hpos), order(wpos)], 1)


