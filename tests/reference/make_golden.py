#!/usr/bin/python3
"""make_golden.py - writes every intermediate of the PyTorch reference for one
(model, image, prompt mode) as .npy files, for the C engine's tests.

  /usr/bin/python3 tests/reference/make_golden.py --model DIR --image IMG --mode ocr \
      --node-modules NM --out OUT_DIR [--bbox x1,y1,x2,y2] [--dtype fp32|bf16]
      [--max-new 64] [--teacher 32]

Files (float32 unless noted):
  resized.npy (uint8 HxWx3)   pixels.npy [N, 588]      positions.npy (int32) [N, 2]
  patch_embed.npy [N, D]      block_XX.npy [N, D]      post_norm.npy [N, D]
  vision_embeds.npy [N/4, H]  prompt_ids.npy (int32)   logits_prefill.npy [V] (last position)
  tokens.npy (int32, greedy, up to --max-new, ends at EOS)   gaps.npy (top-1 minus top-2 logit per step)
  logits_teacher.npy [T, V]: logits after each of the first T greedy tokens fed back (decode steps)
  meta.json: sizes, grid, mode, dtype, timings
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dots_ref as R  # noqa: E402


def hf_encode(node_modules, tokenizer_json, text):
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["node", os.path.join(here, "hf_encode.mjs"), node_modules, tokenizer_json],
                       input=text.encode(), capture_output=True, check=True)
    return json.loads(r.stdout)


def save(out, name, t, dtype=np.float32):
    a = t.detach().float().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.save(os.path.join(out, name), a.astype(dtype))


def parser():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--mode", default="ocr", choices=sorted(R.PROMPTS))
    p.add_argument("--bbox")
    p.add_argument("--node-modules", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--max-new", type=int, default=64)
    p.add_argument("--teacher", type=int, default=32)
    p.add_argument("--no-blocks", action="store_true", help="skip per-block dumps")
    return p


def generate(a, loaded=None):
    """Writes the golden set for the arguments a; loaded = (cfg, weights) to reuse."""
    torch.set_num_threads(1)
    dtype = torch.float32 if a.dtype == "fp32" else torch.bfloat16
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    cfg, w = loaded if loaded else R.load_checkpoint(a.model)
    pre = {}
    pp_path = os.path.join(a.model, "preprocessor_config.json")
    if os.path.exists(pp_path):
        pre = json.load(open(pp_path))
    vc = cfg.get("vision_config", {})
    patch, merge = vc.get("patch_size", 14), vc.get("spatial_merge_size", 2)

    im = R.to_rgb(Image.open(a.image))
    resized = R.resize_image(im, pre.get("min_pixels", R.MIN_PIXELS), pre.get("max_pixels", R.MAX_PIXELS), patch, merge)
    pixels, gh, gw = R.patch_rows(resized, pre.get("image_mean", R.IMAGE_MEAN), pre.get("image_std", R.IMAGE_STD), patch, merge)
    pos = R.positions(gh, gw, merge)
    np.save(os.path.join(a.out, "resized.npy"), np.asarray(resized, np.uint8))
    np.save(os.path.join(a.out, "pixels.npy"), pixels)
    np.save(os.path.join(a.out, "positions.npy"), pos.astype(np.int32))

    dump = {}
    t1 = time.time()
    emb = R.Vision(cfg, w, dtype).forward(pixels, pos, dump)
    t_vision = time.time() - t1
    for k, v in dump.items():
        if a.no_blocks and k.startswith("block_"):
            continue
        save(a.out, k + ".npy", v)

    bbox = [int(v) for v in a.bbox.split(",")] if a.bbox else None
    text = R.prompt_text(a.mode, bbox)
    ids = R.prompt_ids(emb.shape[0], hf_encode(a.node_modules, os.path.join(a.model, "tokenizer.json"), text))
    np.save(os.path.join(a.out, "prompt_ids.npy"), np.array(ids, np.int32))

    lm = R.LM(cfg, w, dtype)
    x = lm.embed(ids, emb)
    t1 = time.time()
    tokens, prefill, steps, gaps = R.greedy(lm, x, a.max_new)
    t_lm = time.time() - t1
    save(a.out, "logits_prefill.npy", prefill[-1])
    np.save(os.path.join(a.out, "tokens.npy"), np.array(tokens, np.int32))
    np.save(os.path.join(a.out, "gaps.npy"), np.array(gaps, np.float32))
    forced = tokens[: a.teacher]
    save(a.out, "logits_teacher.npy", R.teacher_forced(lm, x, forced))
    meta = {"image": os.path.abspath(a.image), "mode": a.mode, "bbox": bbox, "dtype": a.dtype,
            "input_size": [im.width, im.height], "resized_size": [resized.width, resized.height],
            "grid": [gh, gw], "n_patches": int(pixels.shape[0]), "n_image_tokens": int(emb.shape[0]),
            "n_prompt_ids": len(ids), "n_tokens": len(tokens), "min_gap": min(gaps) if gaps else None,
            "seconds": {"total": time.time() - t0, "vision": t_vision, "lm": t_lm}}
    json.dump(meta, open(os.path.join(a.out, "meta.json"), "w"), indent=1)
    return meta


if __name__ == "__main__":
    print(json.dumps(generate(parser().parse_args())))
