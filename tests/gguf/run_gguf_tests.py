#!/usr/bin/python3
"""GGUF files written by `dotsocr convert`, checked against this script's own
reading of docs/formats.md with NumPy:

  format     every converted file parses as ggml's reader requires (magic,
             version 3, typed keys, 32-aligned sequential offsets, zero
             padding), tensors carry llama.cpp's names and reversed dims, and
             every tensor's bytes equal the source checkpoint's values encoded
             here: bf16 copied bit for bit, F32 exact, Q8_0 / Q4_0 / Q4_K equal
             to ggml's reference quantizers re-implemented below in NumPy.
  roundtrip  a bf16 GGUF gives bit-identical outputs to the safetensors
             directory (vision embeddings, prefill logits, generated tokens) in
             both precisions.
  quality    per format and precision: cosine of vision embeddings, prefill
             logits and decode logits (teacher-forced, one token at a time)
             against the fp32 run of the directory, and greedy-token
             agreement; Q8_0 must keep every cosine >= 0.999.
  malformed  hostile GGUF files fail with one error line and exit 1.
  llamacpp   convert --mmproj writes llama.cpp's pair (gguf.md §6): the LM
             file holds exactly the qwen2 tensors and the tokenizer.ggml.*
             arrays llama.cpp derives from tokenizer.json (rebuilt here from
             §5's rules), the mmproj exactly the clip tensors and keys, both
             with the key types llama.cpp reads; the pair runs bit-identically
             to the one-file model; misuse fails with one clear line.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from gguf_rewrite import rewrite_gguf  # noqa: E402

GGML = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "Q4_K": 12, "BF16": 30}
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 12: (256, 144),
         13: (256, 176), 14: (256, 210), 30: (1, 2)}
SCALAR = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


# ---------------------------------------------------------------- readers

def read_gguf(path):
    b = open(path, "rb").read()
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(b):
            fail(f"{path}: truncated at {pos}")
        v = b[pos:pos + n]
        pos += n
        return v

    def u32():
        return struct.unpack("<I", take(4))[0]

    def u64():
        return struct.unpack("<Q", take(8))[0]

    def string():
        return take(u64()).decode("utf-8")

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = u32(), u64()
            if et == 9:
                fail("nested array")
            return [value(et) for _ in range(n)]
        if t == 7:
            v = take(1)[0]
            return bool(v)
        dt = np.dtype(SCALAR[t])
        return np.frombuffer(take(dt.itemsize), dt)[0].item()

    if take(4) != b"GGUF":
        fail("magic")
    version, n_t, n_kv = u32(), u64(), u64()
    if version != 3:
        fail(f"version {version}")
    kv, types = {}, {}
    for _ in range(n_kv):
        k = string()
        t = u32()
        if k in kv:
            fail(f"duplicate key {k}")
        kv[k] = value(t)
        types[k] = t
    align = kv.get("general.alignment", 32)
    infos = []
    for _ in range(n_t):
        name = string()
        nd = u32()
        ne = [u64() for _ in range(nd)]
        t, off = u32(), u64()
        infos.append((name, ne, t, off))
    data_start = (pos + align - 1) // align * align
    if any(b[pos:data_start]):
        fail("header padding is not zero")
    tensors, expect = {}, 0
    for name, ne, t, off in infos:
        if len(name.encode()) > 63 or name in tensors:
            fail(f"tensor name {name}")
        if off != expect:
            fail(f"{name}: offset {off}, expected {expect}")
        blk, bb = BLOCK[t]
        if ne[0] % blk:
            fail(f"{name}: ne0 {ne[0]} not a multiple of {blk}")
        nbytes = ne[0] // blk * bb * int(np.prod(ne[1:], dtype=np.int64))
        raw = b[data_start + off:data_start + off + nbytes]
        pad = b[data_start + off + nbytes:data_start + off + (nbytes + align - 1) // align * align]
        if len(raw) != nbytes or any(pad):
            fail(f"{name}: data short or padding not zero")
        tensors[name] = (list(reversed(ne)), t, raw)
        expect = off + (nbytes + align - 1) // align * align
    if data_start + expect != len(b):
        fail(f"file is {len(b)} bytes, data ends at {data_start + expect}")
    return kv, types, tensors


def read_safetensors_dir(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    out = {}
    for f in files:
        b = open(os.path.join(d, f), "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        hdr = json.loads(b[8:8 + n])
        for name, info in hdr.items():
            if name == "__metadata__":
                continue
            s, e = info["data_offsets"]
            out[name] = (info["shape"], info["dtype"], b[8 + n + s:8 + n + e])
    return out


def to_f32(dtype, raw):
    if dtype == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return np.frombuffer(raw, "<f2").astype(np.float32)
    return np.frombuffer(raw, "<f4").copy()


# ------------------------------------------- ggml's reference quantizers

def f16_bytes(v):
    return np.asarray(v, np.float32).astype(np.float16).reshape(-1, 1).view(np.uint8)


def q8_0(x):
    x = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    idv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = (x * idv[:, None]).astype(np.float64)
    q = (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int8)  # roundf: half away from zero
    return np.concatenate([f16_bytes(d), q.view(np.uint8)], axis=1).tobytes()


def q4_0(x):
    x = x.reshape(-1, 32).astype(np.float32)
    i = np.abs(x).argmax(axis=1)  # first occurrence, like the strict > in C
    mx = x[np.arange(len(x)), i]
    d = (mx / np.float32(-8)).astype(np.float32)
    idv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = (x * idv[:, None]).astype(np.float32) + np.float32(8.5)
    q = np.minimum(15, np.trunc(v).astype(np.int64)).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([f16_bytes(d), qs], axis=1).tobytes()


def nearest_int(f):
    return np.rint(np.asarray(f, np.float32)).astype(np.int64)


def make_qkx2(x, w, nmax=15, rmin=-1.0, rdelta=0.1, nstep=20):
    """x, w: [S, 32] float32; vectorised over sub-blocks, sequential over
    elements so every float32 sum rounds as ggml's loop does."""
    f = np.float32
    S, n = x.shape
    mn, mx = x[:, 0].copy(), x[:, 0].copy()
    sum_w = w[:, 0].copy()
    sum_x = (sum_w * x[:, 0]).astype(f)
    for i in range(1, n):
        mn = np.minimum(mn, x[:, i])
        mx = np.maximum(mx, x[:, i])
        sum_w = (sum_w + w[:, i]).astype(f)
        sum_x = (sum_x + (w[:, i] * x[:, i]).astype(f)).astype(f)
    mn = np.minimum(mn, f(0))
    flat = mx == mn
    rng = np.where(flat, f(1), mx - mn).astype(f)
    iscale = (f(nmax) / rng).astype(f)
    scale = (f(1) / iscale).astype(f)
    L = np.zeros((S, n), np.int64)
    best = np.zeros(S, f)
    for i in range(n):
        L[:, i] = np.clip(nearest_int((iscale * (x[:, i] - mn).astype(f)).astype(f)), 0, nmax)
        diff = ((scale * L[:, i].astype(f)).astype(f) + mn).astype(f) - x[:, i]
        best = (best + (w[:, i] * (diff * diff).astype(f)).astype(f)).astype(f)
    # as in ggml, a better candidate's min replaces `min` for the later candidates too
    for st in range(nstep + 1):
        rng = np.where(flat, f(1), mx - mn).astype(f)
        isc = ((f(rmin) + (f(rdelta) * f(st)).astype(f)).astype(f) + f(nmax)).astype(f) / rng
        isc = isc.astype(f)
        sl = np.zeros(S, f)
        sl2 = np.zeros(S, f)
        sxl = np.zeros(S, f)
        La = np.zeros((S, n), np.int64)
        for i in range(n):
            l = np.clip(nearest_int((isc * (x[:, i] - mn).astype(f)).astype(f)), 0, nmax)
            La[:, i] = l
            wl = (w[:, i] * l.astype(f)).astype(f)
            sl = (sl + wl).astype(f)
            sl2 = (sl2 + (wl * l.astype(f)).astype(f)).astype(f)
            sxl = (sxl + (wl * x[:, i]).astype(f)).astype(f)
        D = ((sum_w * sl2).astype(f) - (sl * sl).astype(f)).astype(f)
        ok = D > 0
        Ds = np.where(ok, D, f(1)).astype(f)
        this_scale = (((sum_w * sxl).astype(f) - (sum_x * sl).astype(f)).astype(f) / Ds).astype(f)
        this_min = (((sl2 * sum_x).astype(f) - (sl * sxl).astype(f)).astype(f) / Ds).astype(f)
        pos = this_min > 0
        this_min = np.where(pos, f(0), this_min).astype(f)
        this_scale = np.where(pos, (sxl / np.where(sl2 != 0, sl2, f(1))).astype(f), this_scale).astype(f)
        cur = np.zeros(S, f)
        for i in range(n):
            diff = ((this_scale * La[:, i].astype(f)).astype(f) + this_min).astype(f) - x[:, i]
            cur = (cur + (w[:, i] * (diff * diff).astype(f)).astype(f)).astype(f)
        better = ok & (cur < best)
        L[better] = La[better]
        best = np.where(better, cur, best)
        scale = np.where(better, this_scale, scale)
        mn = np.where(better, this_min, mn).astype(f)
    scale = np.where(flat, f(0), scale).astype(f)
    L[flat] = 0
    return scale, (-mn).astype(f), L


def q4_k(x):
    f = np.float32
    x = x.reshape(-1, 8, 32).astype(f)
    B = len(x)
    xs = x.reshape(-1, 32)
    sum_x2 = np.zeros(len(xs), f)
    for i in range(32):
        sum_x2 = (sum_x2 + (xs[:, i] * xs[:, i]).astype(f)).astype(f)
    av = np.sqrt((sum_x2 / f(32)).astype(f)).astype(f)
    w = (av[:, None] + np.abs(xs)).astype(f)
    scales, mins, L = make_qkx2(xs, w)
    scales, mins, L = scales.reshape(B, 8), mins.reshape(B, 8), L.reshape(B, 8, 32)
    max_scale = np.maximum(scales.max(axis=1), f(0))  # the C loop starts from 0
    max_min = np.maximum(mins.max(axis=1), f(0))
    inv_s = np.where(max_scale > 0, f(63) / np.where(max_scale > 0, max_scale, f(1)), f(0)).astype(f)
    inv_m = np.where(max_min > 0, f(63) / np.where(max_min > 0, max_min, f(1)), f(0)).astype(f)
    ls = np.minimum(63, nearest_int((inv_s[:, None] * scales).astype(f)).astype(np.uint8))
    lm = np.minimum(63, nearest_int((inv_m[:, None] * mins).astype(f)).astype(np.uint8))
    sc = np.zeros((B, 12), np.uint8)
    sc[:, 0:4] = ls[:, 0:4]
    sc[:, 4:8] = lm[:, 0:4]
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    sc[:, 0:4] |= (ls[:, 4:8] >> 4) << 6
    sc[:, 4:8] |= (lm[:, 4:8] >> 4) << 6
    d16 = (max_scale / f(63)).astype(f).astype(np.float16)
    dm16 = (max_min / f(63)).astype(f).astype(np.float16)
    d = (d16.astype(f)[:, None] * ls.astype(f)).astype(f)
    dm = (dm16.astype(f)[:, None] * lm.astype(f)).astype(f)
    new = np.clip(nearest_int(((x + dm[:, :, None]).astype(f) / np.where(d != 0, d, f(1))[:, :, None]).astype(f)), 0, 15)
    L = np.where((d != 0)[:, :, None], new, L).reshape(B, 256)
    qs = np.concatenate([L[:, 64 * g:64 * g + 32] | (L[:, 64 * g + 32:64 * g + 64] << 4) for g in range(4)], axis=1)
    return np.concatenate([d16.reshape(-1, 1).view(np.uint8), dm16.reshape(-1, 1).view(np.uint8), sc,
                           qs.astype(np.uint8)], axis=1).tobytes()


def encode(t, x):
    if t == GGML["F32"]:
        return x.astype("<f4").tobytes()
    if t == GGML["BF16"]:
        u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
    return {GGML["Q8_0"]: q8_0, GGML["Q4_0"]: q4_0, GGML["Q4_K"]: q4_k}[t](x)


# ------------------------------------------------------------------ names

def gguf_name(hf):
    import re
    fixed = {
        "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight", "vision_tower.patch_embed.patchifier.proj.weight": "v.patch_embd.weight",
        "vision_tower.patch_embed.patchifier.proj.bias": "v.patch_embd.bias",
        "vision_tower.patch_embed.patchifier.norm.weight": "v.pre_ln.weight",
        "vision_tower.post_trunk_norm.weight": "mm.post_norm.weight",
        "vision_tower.merger.ln_q.weight": "mm.input_norm.weight", "vision_tower.merger.ln_q.bias": "mm.input_norm.bias",
        "vision_tower.merger.mlp.0.weight": "mm.0.weight", "vision_tower.merger.mlp.0.bias": "mm.0.bias",
        "vision_tower.merger.mlp.2.weight": "mm.2.weight", "vision_tower.merger.mlp.2.bias": "mm.2.bias"}
    if hf in fixed:
        return fixed[hf]
    lm = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
          "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.weight": "attn_k.weight",
          "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.weight": "attn_v.weight",
          "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
          "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
          "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    vis = {"norm1.weight": "ln1.weight", "attn.qkv.weight": "attn_qkv.weight", "attn.proj.weight": "attn_out.weight",
           "norm2.weight": "ln2.weight", "mlp.fc1.weight": "ffn_gate.weight", "mlp.fc3.weight": "ffn_up.weight",
           "mlp.fc2.weight": "ffn_down.weight"}
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.*)", hf)
    if m:
        return f"blk.{m.group(1)}.{lm[m.group(2)]}"
    m = re.fullmatch(r"vision_tower\.blocks\.(\d+)\.(.*)", hf)
    return f"v.blk.{m.group(1)}.{vis[m.group(2)]}"


def expected_type(hf, shape, want):
    if len(shape) < 2:
        return GGML["F32"]
    if hf == "vision_tower.patch_embed.patchifier.proj.weight":
        return GGML["F32"] if want in ("Q8_0", "Q4_0", "Q4_K") else GGML[want]
    if hf == "lm_head.weight" and want in ("Q4_0", "Q4_K"):
        return GGML["Q8_0"]
    blk = BLOCK[GGML[want]][0]
    if shape[-1] % blk:
        return GGML["Q8_0"] if shape[-1] % 32 == 0 else GGML["BF16"]
    return GGML[want]


# ------------------------------------------------------------------ cases

def run(args, *cmd, check=True):
    p = subprocess.run([args.dotsocr, *cmd], capture_output=True, text=True)
    if check and p.returncode != 0:
        fail(f"dotsocr {' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def convert(args, t):
    out = os.path.join(args.tmp, f"model_{t}.gguf")
    if not os.path.exists(out):
        run(args, "convert", "-q", "--type", t, args.model, out)
    return out


def case_format(args):
    src = read_safetensors_dir(args.model)
    for t in ("bf16", "q8_0", "q4_0", "q4_k"):
        path = convert(args, t)
        kv, types, tensors = read_gguf(path)
        if kv["general.architecture"] != "qwen2" or types["qwen2.block_count"] != 4 or types["clip.use_silu"] != 7:
            fail(f"{t}: llama.cpp metadata keys or their types are wrong")
        for k in ("dotsocr.config_json", "dotsocr.preprocessor_config_json", "dotsocr.generation_config_json"):
            fname = k[len("dotsocr."):-len("_json")] + ".json"
            if kv.get(k) != open(os.path.join(args.model, fname)).read():
                fail(f"{t}: {k} is not {fname} verbatim")
        if kv["dotsocr.tokenizer_json"] != open(os.path.join(args.model, "tokenizer.json")).read():
            fail(f"{t}: tokenizer.json not embedded verbatim")
        if len(tensors) != len(src):
            fail(f"{t}: {len(tensors)} tensors, the checkpoint has {len(src)}")
        counts = {}
        for hf, (shape, dtype, raw) in src.items():
            name = gguf_name(hf)
            if name not in tensors:
                fail(f"{t}: {name} ({hf}) missing")
            gshape, gt, graw = tensors[name]
            if gshape != list(shape):
                fail(f"{t}: {name} shape {gshape}, checkpoint {shape}")
            want = expected_type(hf, shape, t.upper())
            if gt != want:
                fail(f"{t}: {name} has type {gt}, policy says {want}")
            if gt == GGML["BF16"] and dtype == "BF16":
                ref = raw  # a bit-exact copy
            else:
                ref = encode(gt, to_f32(dtype, raw))
            if ref != graw:
                a = np.frombuffer(ref, np.uint8)
                b = np.frombuffer(graw, np.uint8)
                first = int(np.argmax(a != b)) if len(a) == len(b) else -1
                fail(f"{t}: {name} ({gt}) bytes differ from the reference encoding (first at byte {first})")
            counts[gt] = counts.get(gt, 0) + 1
        print(f"{t}: {len(tensors)} tensors match the reference encodings; types {counts}")


def expected_vocab(tok_json, vocab_size):
    """llama.cpp's tokenizer arrays per gguf.md §5, from tokenizer.json."""
    tj = json.load(open(tok_json, encoding="utf-8"))
    tokens, types = [None] * vocab_size, [0] * vocab_size
    for text, i in tj["model"]["vocab"].items():
        tokens[i], types[i] = text, 1
    for a in tj.get("added_tokens", []):
        c = a["content"]
        looks = (c.startswith("<|") and c.endswith("|>")) or c in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") \
            or c.startswith("<unused") or (c.startswith("<\uff5c") and c.endswith("\uff5c>"))
        tokens[a["id"]], types[a["id"]] = c, 3 if a.get("special") or looks else 4
    for i in range(vocab_size):
        if tokens[i] is None:
            tokens[i], types[i] = f"[PAD{i}]", 5
    merges = [m if isinstance(m, str) else " ".join(p.replace(" ", "\u0120") for p in m) for m in tj["model"]["merges"]]
    return tokens, types, merges


def case_llamacpp(args):
    """convert --mmproj: the two files llama.cpp loads (gguf.md §6), and the pair read back."""
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    L, Lv = cfg["num_hidden_layers"], cfg["vision_config"]["num_hidden_layers"]
    lm_names = {"token_embd.weight", "output_norm.weight", "output.weight"} | {
        f"blk.{i}.{n}" for i in range(L) for n in (
            "attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight",
            "attn_v.bias", "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")}
    mm_names = {"v.patch_embd.weight", "v.patch_embd.bias", "v.pre_ln.weight", "mm.post_norm.weight", "mm.input_norm.weight",
                "mm.input_norm.bias", "mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"} | {
        f"v.blk.{j}.{n}" for j in range(Lv) for n in (
            "ln1.weight", "attn_qkv.weight", "attn_out.weight", "ln2.weight", "ffn_gate.weight", "ffn_up.weight",
            "ffn_down.weight")}
    if len(lm_names) != 1 + 12 * L + 2 or len(mm_names) != 3 + 7 * Lv + 1 + 6:
        fail("test bug: tensor name sets")
    tokens, ttypes, merges = expected_vocab(os.path.join(args.model, "tokenizer.json"), cfg["vocab_size"])
    U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9
    for t in ("bf16", "q4_k"):
        both = convert(args, t)
        lm, mm = os.path.join(args.tmp, f"lm_{t}.gguf"), os.path.join(args.tmp, f"mmproj_{t}.gguf")
        run(args, "convert", "-q", "--type", t, args.model, lm, "--mmproj", mm)
        _, _, ref = read_gguf(both)
        kv, ty, ten = read_gguf(lm)
        want_ty = {"general.architecture": STR, "general.file_type": U32, "general.quantization_version": U32,
                   "qwen2.context_length": U32, "qwen2.embedding_length": U32, "qwen2.block_count": U32,
                   "qwen2.feed_forward_length": U32, "qwen2.attention.head_count": U32, "qwen2.attention.head_count_kv": U32,
                   "qwen2.rope.freq_base": F32, "qwen2.attention.layer_norm_rms_epsilon": F32, "tokenizer.ggml.model": STR,
                   "tokenizer.ggml.pre": STR, "tokenizer.ggml.tokens": ARR, "tokenizer.ggml.token_type": ARR,
                   "tokenizer.ggml.merges": ARR, "tokenizer.ggml.eos_token_id": U32, "tokenizer.ggml.padding_token_id": U32,
                   "tokenizer.ggml.eot_token_id": U32, "tokenizer.ggml.add_bos_token": BOOL}
        for k, want in want_ty.items():
            if ty.get(k) != want:
                fail(f"{t} LM: key {k} has type {ty.get(k)}, llama.cpp reads {want}")
        if kv["general.architecture"] != "qwen2" or kv["qwen2.block_count"] != L or kv["qwen2.attention.head_count_kv"] != \
                cfg["num_key_value_heads"] or kv["qwen2.rope.freq_base"] != np.float32(cfg["rope_theta"]):
            fail(f"{t} LM: qwen2 metadata values")
        if any(k.startswith("clip.") for k in kv) or set(ten) != lm_names:
            fail(f"{t} LM: must hold exactly the {len(lm_names)} LM tensors and no clip keys "
                 f"(extra {sorted(set(ten) - lm_names)[:3]}, missing {sorted(lm_names - set(ten))[:3]})")
        if kv["tokenizer.ggml.model"] != "gpt2" or kv["tokenizer.ggml.pre"] != "qwen2":
            fail(f"{t} LM: tokenizer model/pre")
        if kv["tokenizer.ggml.tokens"] != tokens or len(set(tokens)) != len(tokens):
            bad = next(i for i, (a, b) in enumerate(zip(kv["tokenizer.ggml.tokens"], tokens)) if a != b) \
                if len(kv["tokenizer.ggml.tokens"]) == len(tokens) else "count"
            fail(f"{t} LM: tokenizer.ggml.tokens differ from tokenizer.json (first at {bad})")
        if kv["tokenizer.ggml.token_type"] != ttypes or kv["tokenizer.ggml.merges"] != merges:
            fail(f"{t} LM: token_type or merges differ from tokenizer.json under llama.cpp's rules")
        if len(tokens) != ten["token_embd.weight"][0][0] or len(tokens) != ten["output.weight"][0][0]:
            fail(f"{t} LM: token count is not the embedding's rows")
        if (kv["tokenizer.ggml.eos_token_id"], kv["tokenizer.ggml.padding_token_id"], kv["tokenizer.ggml.eot_token_id"],
                kv["tokenizer.ggml.add_bos_token"]) != (151643, 151680, 151673, False):
            fail(f"{t} LM: special ids")
        if kv["dotsocr.mmproj"] != os.path.basename(mm):
            fail(f"{t} LM: dotsocr.mmproj is {kv['dotsocr.mmproj']!r}")
        mkv, mty, mten = read_gguf(mm)
        want_ty = {"general.architecture": STR, "general.type": STR, "clip.projector_type": STR, "clip.has_vision_encoder": BOOL,
                   "clip.use_silu": BOOL, "clip.vision.image_size": U32, "clip.vision.patch_size": U32,
                   "clip.vision.embedding_length": U32, "clip.vision.feed_forward_length": U32, "clip.vision.block_count": U32,
                   "clip.vision.attention.head_count": U32, "clip.vision.projection_dim": U32,
                   "clip.vision.attention.layer_norm_epsilon": F32, "clip.vision.image_mean": ARR, "clip.vision.image_std": ARR,
                   "clip.vision.image_min_pixels": U32, "clip.vision.image_max_pixels": U32,
                   "clip.vision.projector.scale_factor": U32}
        for k, want in want_ty.items():
            if mty.get(k) != want:
                fail(f"{t} mmproj: key {k} has type {mty.get(k)}, llama.cpp reads {want}")
        if (mkv["general.architecture"], mkv["general.type"], mkv["clip.projector_type"], mkv["clip.use_silu"],
                mkv["clip.vision.image_size"], mkv["clip.vision.block_count"], len(mkv["clip.vision.image_mean"])) != \
                ("clip", "mmproj", "dots_ocr", True, 0, Lv, 3):
            fail(f"{t} mmproj: clip metadata values")
        if any(k.startswith(("qwen2.", "tokenizer.")) for k in mkv) or set(mten) != mm_names:
            fail(f"{t} mmproj: must hold exactly the {len(mm_names)} vision tensors and no LM keys")
        if len(mten["v.patch_embd.weight"][0]) != 4:
            fail(f"{t} mmproj: v.patch_embd.weight must stay 4-D")
        for name, v in list(ten.items()) + list(mten.items()):
            if name == "v.patch_embd.weight":
                # llama.cpp's rule in a pair: F32 (F16 in an f16 file), never
                # BF16, which its CPU backend cannot convolve; the one-file
                # conversion keeps the file's type. The values must agree.
                if v[1] != 0:
                    fail(f"{t}: the pair's v.patch_embd.weight has ggml type {v[1]}, llama.cpp's converter writes F32 (0)")
                r_shape, r_type, r_raw = ref[name]
                want = np.frombuffer(r_raw, np.float32) if r_type == 0 else \
                    (np.frombuffer(r_raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
                if v[0] != r_shape or not np.array_equal(np.frombuffer(v[2], np.float32), want):
                    fail(f"{t}: the pair's v.patch_embd.weight values differ from the one-file conversion")
                continue
            if v != ref[name]:
                fail(f"{t}: {name} differs from the one-file conversion")
        print(f"{t}: LM file {len(ten)} tensors, {len(tokens)} tokens, {len(merges)} merges; mmproj {len(mten)} tensors; "
              f"metadata as llama.cpp reads it")
    # the pair reads back as the one-file model, bit for bit
    names = same_dumps(args, both, lm, "pair", "the one-file model vs the LM + mmproj pair")
    print(f"pair: {names} bit-identical to the one-file model")
    # misuse: the mmproj alone, the LM without its mmproj
    p = run(args, "info", mm, check=False)
    if p.returncode != 1 or "mmproj" not in p.stderr or "language-model" not in p.stderr:
        fail(f"the mmproj file alone: exit {p.returncode}, {p.stderr.strip()!r}")
    lone = os.path.join(args.tmp, "lone", "lm.gguf")
    os.makedirs(os.path.dirname(lone), exist_ok=True)
    shutil.copy(lm, lone)
    p = run(args, "info", lone, check=False)
    if p.returncode != 1 or "missing" not in p.stderr or p.stderr.count("\n") != 1:
        fail(f"the LM file without its mmproj: exit {p.returncode}, {p.stderr.strip()!r}")
    print("misuse: one clear error line each")


# ---------------------------------------------- llama.cpp's own files

def pack_scales_k4(sc, mn):
    """Q4_K/Q5_K's 12 bytes of 6-bit scales and mins (gguf.md §3.3), per block: [n, 8] each."""
    out = np.zeros((len(sc), 12), np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (mn[:, 0:4] & 63) | ((mn[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((mn[:, 4:8] & 15) << 4)
    return out


def unpack_scales_k4(q):
    sc, mn = np.zeros((len(q), 8), np.int64), np.zeros((len(q), 8), np.int64)
    q = q.astype(np.int64)
    sc[:, :4], mn[:, :4] = q[:, 0:4] & 63, q[:, 4:8] & 63
    sc[:, 4:] = (q[:, 8:12] & 15) | ((q[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (q[:, 8:12] >> 4) | ((q[:, 4:8] >> 6) << 4)
    return sc, mn


def write_safetensors(path, tensors):
    """tensors: {name: (shape, dtype, raw)}"""
    hdr, off, blobs = {}, 0, []
    for name, (shape, dt, raw) in tensors.items():
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def simple_quant(t, x):
    """Valid blocks of the formats llama.cpp's quantizer writes and dotsocr re-encodes
    (a plain rounding quantizer: the test needs their layouts, not ggml's search)."""
    f16 = lambda v: np.asarray(v, np.float32).astype(np.float16)
    if t in (3, 7):  # Q4_1, Q5_1: d, m, [qh], qs
        x = x.reshape(-1, 32).astype(np.float32)
        lo, hi = x.min(1), x.max(1)
        top = 15 if t == 3 else 31
        d = f16((hi - lo) / top)
        m = f16(lo)
        df = np.where(d.astype(np.float32) != 0, d.astype(np.float32), 1)
        q = np.clip(np.round((x - m.astype(np.float32)[:, None]) / df[:, None]), 0, top).astype(np.uint32)
        head = [d.reshape(-1, 1).view(np.uint8), m.reshape(-1, 1).view(np.uint8)]
    elif t == 6:  # Q5_0: d, qh, qs; x = d (q - 16)
        x = x.reshape(-1, 32).astype(np.float32)
        i = np.abs(x).argmax(1)
        d = f16(x[np.arange(len(x)), i] / -16)
        df = np.where(d.astype(np.float32) != 0, d.astype(np.float32), 1)
        q = np.clip(np.round(x / df[:, None]) + 16, 0, 31).astype(np.uint32)
        head = [d.reshape(-1, 1).view(np.uint8)]
    if t in (3, 6, 7):
        qs = ((q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)).astype(np.uint8)
        if t == 3:
            return np.concatenate(head + [qs], 1).tobytes()
        qh = ((q >> 4) & 1) << np.arange(32, dtype=np.uint32)
        qh = qh.sum(1).astype("<u4").reshape(-1, 1).view(np.uint8)
        return np.concatenate(head + [qh, qs], 1).tobytes()
    x = x.reshape(-1, 256).astype(np.float32)
    if t == 13:  # Q5_K: x = d sc q - dmin m, q in 0..31, 8 sub-blocks of 32
        sub = x.reshape(-1, 8, 32)
        lo = np.minimum(sub.min(2), 0)
        scale = (sub.max(2) - lo) / 31
        d, dmin = f16(scale.max(1) / 63), f16(-lo.min(1) / 63)
        dd, dm = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
        sc = np.clip(np.round(scale / np.where(dd != 0, dd, 1)), 0, 63).astype(np.int64)
        mn = np.clip(np.round(-lo / np.where(dm != 0, dm, 1)), 0, 63).astype(np.int64)
        step = (dd * sc)[:, :, None]
        q = np.clip(np.round((sub + (dm * mn)[:, :, None]) / np.where(step != 0, step, 1)), 0, 31).astype(np.uint8)
        qs = np.zeros((len(x), 128), np.uint8)
        qh = np.zeros((len(x), 32), np.uint8)
        for g in range(4):
            qs[:, 32 * g:32 * g + 32] = (q[:, 2 * g] & 15) | ((q[:, 2 * g + 1] & 15) << 4)
            qh |= ((q[:, 2 * g] >> 4) << (2 * g)) | ((q[:, 2 * g + 1] >> 4) << (2 * g + 1))
        return np.concatenate([d.reshape(-1, 1).view(np.uint8), dmin.reshape(-1, 1).view(np.uint8),
                               pack_scales_k4(sc.astype(np.uint8), mn.astype(np.uint8)), qh, qs], 1).tobytes()
    # Q6_K: x = d sc (q - 32), 16 sub-blocks of 16, int8 scales
    sub = x.reshape(-1, 16, 16)
    scale = np.abs(sub).max(2) / 31
    d = f16(scale.max(1) / 127)
    dd = d.astype(np.float32)[:, None]
    sc = np.clip(np.round(scale / np.where(dd != 0, dd, 1)), -128, 127).astype(np.int8)
    step = (dd * sc)[:, :, None]
    q = (np.clip(np.round(sub / np.where(step != 0, step, 1)), -32, 31) + 32).astype(np.uint8).reshape(-1, 256)
    ql = np.zeros((len(x), 128), np.uint8)
    qh = np.zeros((len(x), 64), np.uint8)
    for h in range(2):
        e = q[:, 128 * h:128 * h + 128]
        ql[:, 64 * h:64 * h + 32] = (e[:, 0:32] & 15) | ((e[:, 64:96] & 15) << 4)
        ql[:, 64 * h + 32:64 * h + 64] = (e[:, 32:64] & 15) | ((e[:, 96:128] & 15) << 4)
        qh[:, 32 * h:32 * h + 32] = (e[:, 0:32] >> 4) | ((e[:, 32:64] >> 4) << 2) | ((e[:, 64:96] >> 4) << 4) | \
            ((e[:, 96:128] >> 4) << 6)
    return np.concatenate([ql, qh, sc.view(np.uint8), d.reshape(-1, 1).view(np.uint8)], 1).tobytes()


def dequant(t, raw):
    """The decoding of docs/formats.md §3 (ggml's layouts) of Q4_1, Q5_0, Q5_1, Q5_K and Q6_K."""
    f16 = lambda a: a.copy().view(np.float16).astype(np.float32)
    if t in (3, 6, 7):
        b = np.frombuffer(raw, np.uint8).reshape(-1, BLOCK[t][1])
        d = f16(b[:, 0:2]).ravel()
        m = f16(b[:, 2:4]).ravel() if t in (3, 7) else np.zeros_like(d)
        qs = b[:, -16:].astype(np.int64)
        q = np.concatenate([qs & 15, qs >> 4], 1)
        if t in (6, 7):
            qh = b[:, 2 if t == 6 else 4:][:, :4].copy().view("<u4").ravel().astype(np.int64)
            q = q | (((qh[:, None] >> np.arange(32)) & 1) << 4)
        return (d[:, None] * (q - (16 if t == 6 else 0)) + m[:, None]).astype(np.float32).ravel()
    b = np.frombuffer(raw, np.uint8).reshape(-1, BLOCK[t][1])
    if t == 13:
        d, dmin = f16(b[:, 0:2]).ravel(), f16(b[:, 2:4]).ravel()
        sc, mn = unpack_scales_k4(b[:, 4:16])
        qh, qs = b[:, 16:48].astype(np.int64), b[:, 48:176].astype(np.int64)
        out = np.zeros((len(b), 256), np.float32)
        for g in range(4):
            for half in range(2):
                j = 2 * g + half
                q = (qs[:, 32 * g:32 * g + 32] >> (4 * half)) & 15 | (((qh >> j) & 1) << 4)
                out[:, 32 * j:32 * j + 32] = d[:, None] * sc[:, j:j + 1] * q - dmin[:, None] * mn[:, j:j + 1]
        return out.ravel()
    d = f16(b[:, 208:210]).ravel()
    sc = b[:, 192:208].view(np.int8).astype(np.float32)
    out = np.zeros((len(b), 256), np.float32)
    for h in range(2):
        ql, qh = b[:, 64 * h:64 * h + 64].astype(np.int64), b[:, 128 + 32 * h:160 + 32 * h].astype(np.int64)
        parts = [(ql[:, 0:32] & 15) | ((qh & 3) << 4), (ql[:, 32:64] & 15) | (((qh >> 2) & 3) << 4),
                 (ql[:, 0:32] >> 4) | (((qh >> 4) & 3) << 4), (ql[:, 32:64] >> 4) | (((qh >> 6) & 3) << 4)]
        for k, q in enumerate(parts):
            e0 = 128 * h + 32 * k
            for l0 in (0, 16):
                out[:, e0 + l0:e0 + l0 + 16] = d[:, None] * sc[:, (e0 + l0) // 16:(e0 + l0) // 16 + 1] * (q[:, l0:l0 + 16] - 32)
    return out.ravel()


def case_native(args):
    """The LM + mmproj pair as llama.cpp's own tools write it: no dotsocr.* keys (configs from the
    qwen2.*/clip.* metadata, tokenizer from tokenizer.ggml.*), the mmproj found next to the LM file,
    and K-quant mixes (Q6_K, Q5_K, Q5_0, Q5_1, Q4_1 matrices) read by re-encoding them as Q8_0."""
    lm, mm = os.path.join(args.tmp, "lm.gguf"), os.path.join(args.tmp, "mmproj.gguf")
    run(args, "convert", "-q", "--type", "q8_0", args.model, lm, "--mmproj", mm)
    nat = os.path.join(args.tmp, "native")
    os.makedirs(nat)
    nlm, nmm = os.path.join(nat, "dots.ocr-Q8_0.gguf"), os.path.join(nat, "mmproj-dots.ocr-Q8_0.gguf")
    rewrite_gguf(lm, nlm)
    rewrite_gguf(mm, nmm)
    kv, _, _ = read_gguf(nlm)
    if any(k.startswith("dotsocr.") for k in kv):
        fail("test bug: dotsocr keys left")
    names = same_dumps(args, lm, nlm, "native", "our pair vs the same pair without dotsocr.* keys")
    print(f"llama.cpp-style pair (mmproj found next to it): {names} bit-identical to ours")
    ours, native = json.loads(run(args, "info", "--json", lm).stdout), json.loads(run(args, "info", "--json", nlm).stdout)
    for k in ("text", "vision", "eos_token_id", "min_pixels", "max_pixels"):
        if ours[k] != native[k]:
            fail(f"info --json: {k} from the metadata differs from the config texts: {native[k]} vs {ours[k]}")
    if ours["config_from_metadata"] or not native["config_from_metadata"]:
        fail("info --json: config_from_metadata")
    print("info --json: the config read from the metadata equals the one converted")
    # K-quant mix, written as llama.cpp's quantizer would (one matrix per format). K-quants need rows
    # of 256: the tiny model with a 256-wide MLP, so that ffn_down can be Q6_K and Q5_K.
    wide = os.path.join(args.tmp, "wide")
    os.makedirs(wide)
    for f in os.listdir(args.model):
        if not f.startswith("model") and f.endswith(".json"):
            shutil.copy(os.path.join(args.model, f), wide)
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    cfg["intermediate_size"] = 256
    json.dump(cfg, open(os.path.join(wide, "config.json"), "w"), indent=2)
    rng = np.random.default_rng(7)
    src = {}
    for name, (shape, dt, raw) in read_safetensors_dir(args.model).items():
        if ".mlp." in name and name.startswith("model.layers."):
            shape = [256, cfg["hidden_size"]] if "down" not in name else [cfg["hidden_size"], 256]
            raw = (rng.standard_normal(shape) * 0.05).astype("<f4").tobytes()
            dt = "F32"
        src[name] = (shape, dt, raw)
    write_safetensors(os.path.join(wide, "model.safetensors"), src)
    lm, mm = os.path.join(args.tmp, "wide_lm.gguf"), os.path.join(args.tmp, "wide_mmproj.gguf")
    run(args, "convert", "-q", "--type", "q8_0", wide, lm, "--mmproj", mm)
    nmm = os.path.join(args.tmp, "wide_mmproj_native.gguf")
    rewrite_gguf(mm, nmm)
    mix = {"model.layers.0.mlp.down_proj.weight": 14, "model.layers.1.mlp.down_proj.weight": 13, "lm_head.weight": 6,
           "model.embed_tokens.weight": 3, "model.layers.0.mlp.gate_proj.weight": 7,
           "model.layers.1.self_attn.v_proj.weight": 6}
    retype, as_q8 = {}, {}
    for hf, t in mix.items():
        shape, dt, raw = src[hf]
        x = to_f32(dt, raw)
        qb = simple_quant(t, x)
        y = dequant(t, qb)
        if np.linalg.norm(y - x) > 0.1 * np.linalg.norm(x):
            fail(f"test bug: {hf} as type {t}: relative error {np.linalg.norm(y - x) / np.linalg.norm(x):.3f}")
        retype[gguf_name(hf)] = (t, qb)
        as_q8[gguf_name(hf)] = (GGML["Q8_0"], q8_0(y))
    mlm, elm = os.path.join(nat, "mix", "dots-Q4_K_M.gguf"), os.path.join(nat, "expect", "dots-Q8_0.gguf")
    for path, rt in ((mlm, retype), (elm, as_q8)):
        os.makedirs(os.path.dirname(path))
        rewrite_gguf(lm, path, retype=rt)
        shutil.copy(nmm, os.path.join(os.path.dirname(path), "mmproj-dots.gguf"))
    if json.loads(run(args, "info", "--json", mlm).stdout)["n_reencoded"] != len(mix):
        fail("info --json: n_reencoded")
    names = same_dumps(args, elm, mlm, "mix", "the K-quant mix vs its NumPy decoding re-encoded as Q8_0")
    print(f"K-quant mix (Q6_K, Q5_K, Q5_0, Q5_1, Q4_1): {names} bit-identical to the NumPy decoding as Q8_0")
    # misuse: no mmproj next to it, two of them, a wrong --mmproj, an unsupported type
    lone = os.path.join(args.tmp, "lone")
    os.makedirs(lone)
    shutil.copy(nlm, os.path.join(lone, "lm.gguf"))
    p = run(args, "info", os.path.join(lone, "lm.gguf"), check=False)
    if p.returncode != 1 or "--mmproj" not in p.stderr or p.stderr.count("\n") != 1:
        fail(f"a native LM file alone: exit {p.returncode}, {p.stderr.strip()!r}")
    shutil.copy(nmm, os.path.join(lone, "mmproj-a.gguf"))
    shutil.copy(nmm, os.path.join(lone, "mmproj-b.gguf"))
    p = run(args, "info", os.path.join(lone, "lm.gguf"), check=False)
    if p.returncode != 1 or "--mmproj" not in p.stderr or p.stderr.count("\n") != 1:
        fail(f"two mmproj files: exit {p.returncode}, {p.stderr.strip()!r}")
    p = run(args, "info", "--mmproj", os.path.join(lone, "mmproj-b.gguf"), os.path.join(lone, "lm.gguf"), check=False)
    if p.returncode != 0:
        fail(f"--mmproj: exit {p.returncode}, {p.stderr.strip()!r}")
    p = run(args, "info", "--mmproj", nlm, os.path.join(lone, "lm.gguf"), check=False)
    if p.returncode != 1 or "not a dots.ocr mmproj" not in p.stderr:
        fail(f"--mmproj LM file: exit {p.returncode}, {p.stderr.strip()!r}")
    bad = os.path.join(args.tmp, "q2k", "lm.gguf")
    os.makedirs(os.path.dirname(bad))
    shutil.copy(nmm, os.path.join(os.path.dirname(bad), "mmproj.gguf"))
    rewrite_gguf(lm, bad, retype={"output.weight": (10, b"\0" * (len(retype["output.weight"][1]) // 210 * 84))})
    p = run(args, "info", bad, check=False)
    if p.returncode != 1 or "Q2_K" not in p.stderr or p.stderr.count("\n") != 1:
        fail(f"a Q2_K matrix: exit {p.returncode}, {p.stderr.strip()!r}")
    # metadata the configs or the tokenizer need, missing
    for drop, in_mmproj, word in (("qwen2.attention.layer_norm_rms_epsilon", False, "layer_norm_rms_epsilon"),
                                  ("tokenizer.ggml.merges", False, "merges"), ("clip.use_silu", True, "use_silu"),
                                  ("clip.vision.image_mean", True, "image_mean")):
        d = os.path.join(args.tmp, "drop_" + drop)
        os.makedirs(d)
        rewrite_gguf(lm, os.path.join(d, "lm.gguf"), drop_prefix=("dotsocr.",) + (() if in_mmproj else (drop,)))
        rewrite_gguf(mm, os.path.join(d, "mmproj.gguf"), drop_prefix=("dotsocr.",) + ((drop,) if in_mmproj else ()))
        p = subprocess.run([args.dotsocr, "run", "-q", "--model", os.path.join(d, "lm.gguf"), "--max-new-tokens", "2",
                            args.image], capture_output=True, text=True)
        if p.returncode != 1 or word not in p.stderr or p.stderr.count("\n") != 1:
            fail(f"without {drop}: exit {p.returncode}, {p.stderr.strip()!r}")
    print("misuse: one clear error line each (no mmproj, two, a wrong --mmproj, Q2_K, 4 missing keys)")


def dumps(args, model, out, precision="fp32", extra=(), load=()):
    os.makedirs(out, exist_ok=True)
    run(args, "vision", "-q", "--model", model, "--precision", precision, "--dump", out, *load, args.image)
    run(args, "run", "-q", "--model", model, "--precision", precision, "--max-new-tokens", "24", "--dump", out,
        *load, *extra, args.image)
    return {f: np.load(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".npy")}


def same_dumps(args, model_a, model_b, tag, what):
    """Runs vision + run --dump on both models; every dump must be the same bytes."""
    a = dumps(args, model_a, os.path.join(args.tmp, tag + "_a"))
    b = dumps(args, model_b, os.path.join(args.tmp, tag + "_b"))
    for k in sorted(a):
        if a[k].tobytes() != b[k].tobytes():
            fail(f"{k} differs: {what}")
    return ", ".join(sorted(a))


def case_roundtrip(args):
    g = convert(args, "bf16")
    for prec in ("fp32", "bf16"):
        a = dumps(args, args.model, os.path.join(args.tmp, f"dir_{prec}"), prec)
        b = dumps(args, g, os.path.join(args.tmp, f"gguf_{prec}"), prec)
        c = dumps(args, g, os.path.join(args.tmp, f"gguf_ram_{prec}"), prec, load=("--no-mmap",))
        for k in sorted(a):
            if a[k].tobytes() != b[k].tobytes() or a[k].shape != b[k].shape:
                fail(f"{prec}: {k} differs between the directory and its bf16 GGUF")
            if a[k].tobytes() != c[k].tobytes():
                fail(f"{prec}: {k} differs with the weights copied to memory (--no-mmap)")
        print(f"{prec}: {', '.join(sorted(a))} bit-identical (directory, GGUF, GGUF --no-mmap)")


def cosine(a, b):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def case_quality(args):
    ref = dumps(args, args.model, os.path.join(args.tmp, "q_ref"))
    tf = os.path.join(args.tmp, "q_ref", "tokens.npy")
    # the fp32 directory fed its own tokens one at a time: the decode path's logits
    ref_tf = dumps(args, args.model, os.path.join(args.tmp, "q_ref_tf"), "fp32", extra=("--teacher-force", tf))
    bad = []
    for precision in args.precision.split(","):
        for t in ("q8_0", "q4_0", "q4_k"):
            d = dumps(args, convert(args, t), os.path.join(args.tmp, f"q_{t}_{precision}"), precision,
                      extra=("--teacher-force", tf), load=("--mmap",))
            cv = cosine(ref["vision_embeds.npy"], d["vision_embeds.npy"])
            cl = cosine(ref["logits_prefill.npy"], d["logits_prefill.npy"])
            cd = cosine(ref_tf["logits_teacher.npy"], d["logits_teacher.npy"])
            agree = float(np.mean(d["logits_teacher.npy"][:-1].argmax(axis=1) == ref["tokens.npy"][1:]))
            first = int(d["logits_prefill.npy"].argmax() == ref["tokens.npy"][0])
            print(f"{t} ({precision}): cosine vision {cv:.6f}, prefill logits {cl:.6f}, decode logits {cd:.6f}; "
                  f"greedy agreement {agree:.3f} (teacher-forced, {len(ref['tokens.npy'])} tokens), "
                  f"first token {'same' if first else 'differs'}")
            if t == "q8_0" and min(cv, cl, cd) < 0.999:
                bad.append(f"Q8_0 ({precision}) cosine below 0.999: vision {cv:.6f}, prefill {cl:.6f}, decode {cd:.6f}")
            # the default for a block-format GGUF: the weights copied to memory and the language
            # model's matrices repacked 16 rows at a time where VNNI is (kernels/repack.c). Every
            # path reads the same weights; decode's kernels for the repacked layout (up to 4 rows)
            # sum in another order. The vision tower is never repacked: its output must not move.
            r = dumps(args, convert(args, t), os.path.join(args.tmp, f"q_{t}_{precision}_ram"), precision,
                      extra=("--teacher-force", tf))
            for k in sorted(d):
                same = d[k].tobytes() == r[k].tobytes() and d[k].shape == r[k].shape
                if k in ("vision_embeds.npy", "prompt_ids.npy"):
                    if not same:
                        bad.append(f"{t} ({precision}): {k} differs with the weights copied to memory")
                elif d[k].dtype.kind == "f" and not same:
                    c = cosine(d[k], r[k])
                    rel = float(np.abs(d[k].astype(np.float64) - r[k]).max() / np.abs(d[k]).max())
                    print(f"  {t} ({precision}) copied/mapped {k}: cosine {c:.9f}, max |diff| / max |x| {rel:.2e}")
                    # fp32: rounding only. bf16: an output moved by summation order can cross a
                    # rounding boundary of the next layer's int8 activations (a step of half a
                    # block scale), so directions are compared
                    if not (rel < 1e-4 if precision == "fp32" else c >= 0.9999):
                        bad.append(f"{t} ({precision}): {k} copied vs mapped: cosine {c:.9f}, relative {rel:.2e}")
    if bad:
        fail("; ".join(bad))


def write_gguf(path, kvs, tensors, version=3, align_pad=True, tail=b""):
    """kvs: [(key, type, raw value bytes)], tensors: [(name, ne, type, offset, data)]"""
    def s(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(x)) + x
    b = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        b += s(k) + struct.pack("<I", t) + v
    for name, ne, t, off, _ in tensors:
        b += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", t, off)
    if align_pad:
        b += b"\0" * ((32 - len(b) % 32) % 32)
    for *_, data in tensors:
        b += data + b"\0" * ((32 - len(data) % 32) % 32)
    open(path, "wb").write(b + tail)


def case_malformed(args):
    good = convert(args, "q8_0")
    raw = open(good, "rb").read()
    os.makedirs(os.path.join(args.tmp, "bad"), exist_ok=True)
    cfg = open(os.path.join(args.model, "config.json")).read()

    def sv(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x
    cfg_kv = ("dotsocr.config_json", 8, sv(cfg))
    t1 = ("token_embd.weight", [64, 4], 0, 0, b"\0" * 1024)
    cases = {
        "empty": b"",
        "magic": b"GGUX" + raw[4:],
        "truncated_header": raw[:20],
        "truncated_kv": raw[:200],
        "truncated_data": raw[:len(raw) // 2],
        "version1": raw[:4] + struct.pack("<I", 1) + raw[8:],
        "big_endian": raw[:4] + struct.pack(">I", 3) + raw[8:],
        "huge_counts": raw[:8] + struct.pack("<QQ", 2**62, 2**62) + raw[24:],
    }
    specs = {
        "dup_key": ([cfg_kv, cfg_kv], [t1]),
        "nested_array": ([cfg_kv, ("x.y", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 0))], [t1]),
        "bad_value_type": ([cfg_kv, ("x.y", 13, b"")], [t1]),
        "huge_string": ([("x.y", 8, struct.pack("<Q", 2**40))], [t1]),
        "huge_array": ([("x.y", 9, struct.pack("<IQ", 8, 2**40))], [t1]),
        "empty_key": ([("", 4, b"\0" * 4)], [t1]),
        "long_name": ([cfg_kv], [("x" * 64, [64, 4], 0, 0, b"\0" * 1024)]),
        "bad_type": ([cfg_kv], [("token_embd.weight", [64, 4], 4, 0, b"\0" * 1024)]),
        "type_unknown": ([cfg_kv], [("token_embd.weight", [64, 4], 99, 0, b"\0" * 1024)]),
        "row_not_blocks": ([cfg_kv], [("token_embd.weight", [48, 4], 8, 0, b"\0" * 1024)]),
        "five_dims": ([cfg_kv], [("token_embd.weight", [2, 2, 2, 2, 2], 0, 0, b"\0" * 128)]),
        "bad_offset": ([cfg_kv], [("a", [8], 0, 0, b"\0" * 32), ("b", [8], 0, 64, b"\0" * 32)]),
        "past_eof": ([cfg_kv], [("token_embd.weight", [64, 2**40], 0, 0, b"\0" * 64)]),
        "size_overflow": ([cfg_kv], [("token_embd.weight", [2**40, 2**40], 0, 0, b"\0" * 64)]),
        "alignment_not_pow2": ([("general.alignment", 4, struct.pack("<I", 48)), cfg_kv], [t1]),
        "alignment_wrong_type": ([("general.alignment", 5, struct.pack("<i", 32)), cfg_kv], [t1]),
        "no_config": ([("general.architecture", 8, sv("qwen2"))], [t1]),
        "bad_config": ([("dotsocr.config_json", 8, sv("{not json"))], [t1]),
        "missing_tensors": ([cfg_kv], [t1]),
        # the LM file of a pair names its mmproj file: a hostile name must not hang or crash
        "mmproj_fifo": ([cfg_kv, ("dotsocr.mmproj", 8, sv("/dev/stdin"))], [t1]),
        "mmproj_dir": ([cfg_kv, ("dotsocr.mmproj", 8, sv("/"))], [t1]),
        "mmproj_empty": ([cfg_kv, ("dotsocr.mmproj", 8, sv(""))], [t1]),
        "mmproj_missing": ([cfg_kv, ("dotsocr.mmproj", 8, sv("no-such-file.gguf"))], [t1]),
        "mmproj_corrupt": ([cfg_kv, ("dotsocr.mmproj", 8, sv("empty.gguf"))], [t1]),
        "mmproj_self": ([cfg_kv, ("dotsocr.mmproj", 8, sv("mmproj_self.gguf"))], [t1]),
        "mmproj_wrong_type": ([cfg_kv, ("dotsocr.mmproj", 4, struct.pack("<I", 7))], [t1]),
        "mmproj_alone": ([cfg_kv, ("general.type", 8, sv("mmproj"))], [t1]),
    }
    for name, data in cases.items():
        open(os.path.join(args.tmp, "bad", name + ".gguf"), "wb").write(data)
    for name, (kvs, ts) in specs.items():
        write_gguf(os.path.join(args.tmp, "bad", name + ".gguf"), kvs, ts)
    # a structurally valid file whose tensor has the wrong shape / a quantized 1-D norm
    kv, types, tensors = read_gguf(good)
    n_ok = 0
    for name in sorted(os.listdir(os.path.join(args.tmp, "bad"))):
        path = os.path.join(args.tmp, "bad", name)
        for cmd in (["info", path], ["tokenize", "--model", path]):
            p = subprocess.run([args.dotsocr, *cmd], input="hi", capture_output=True, text=True, timeout=60)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            if p.returncode != 1 or len(lines) != 1 or "error" not in lines[0]:
                fail(f"{name} ({cmd[0]}): exit {p.returncode}, stderr {p.stderr!r}")
            n_ok += 1
        print(f"{name}: {lines[0]}")
    print(f"{n_ok} hostile-file runs: exit 1 with one error line")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["format", "roundtrip", "quality", "malformed", "llamacpp", "native"])
    ap.add_argument("--dotsocr", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--reuse", action="store_true", help="keep --tmp and the model_TYPE.gguf files already in it")
    ap.add_argument("--precision", default="fp32,bf16",
                    help="quality: the precisions of the quantized runs (bf16 decodes block formats with int8 activations)")
    args = ap.parse_args()
    if not args.reuse:
        shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp, exist_ok=True)
    {"format": case_format, "roundtrip": case_roundtrip, "quality": case_quality, "malformed": case_malformed,
     "llamacpp": case_llamacpp, "native": case_native}[args.case](args)
    if not args.reuse:  # kept only when a check failed (or asked for)
        shutil.rmtree(args.tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
