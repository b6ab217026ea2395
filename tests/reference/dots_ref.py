"""dots_ref.py - an independent PyTorch reference of dots.ocr, written from
the model description alone (docs/model.md), module by module.
It shares no code with the C engine: the C tests compare against it.

Data flow (docs/model.md sections in brackets):
  image -> smart_resize [4.2] -> Pillow bicubic [4.3] -> rescale/normalise [4.4]
        -> merge-block-major patch rows + (h, w) positions [4.5, 5.2]
        -> patch embed + RMSNorm [5.1] -> 42 x block (2-D RoPE, attention, SwiGLU) [5.2-5.3]
        -> post-trunk RMSNorm [5.4] -> merger (LayerNorm 1e-6, 2x2 concat, MLP, erf GELU) [5.5]
  prompt [6.2] -> token ids, <|imgpad|> x N spliced with the merger rows [6.4]
        -> Qwen2 decoder, 1-D positions [7] -> logits -> greedy, EOS {151643, 151673} [9.1]

Runs in fp32 by default (dtype=torch.float32) from the checkpoint's weights
(bf16 values are exact in fp32); dtype=torch.bfloat16 mimics the official
bf16 numerics. Works on Debian's torch 1.13 (no scaled_dot_product_attention,
no RMSNorm module: both are written out). Runs under /usr/bin/python3.
"""
import json
import math
import os
import struct

import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------- constants

TOK = {  # docs/model.md §6.2 / 8.2
    "endoftext": 151643, "imgpad": 151665, "img": 151666, "endofimg": 151667,
    "user": 151670, "endofuser": 151671, "assistant": 151672, "endofassistant": 151673,
}
EOS_IDS = (151643, 151673)
N_REAL_IDS = 151688  # rows >= this are padding, never generated

PROMPTS = {  # docs/model.md §10.1, verbatim
    "layout-all": (
        "Please output the layout information from the PDF image, including each layout element's bbox, "
        "its category, and the corresponding text content within the bbox.\n\n"
        "1. Bbox format: [x1, y1, x2, y2]\n\n"
        "2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', "
        "'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].\n\n"
        "3. Text Extraction & Formatting Rules:\n"
        "    - Picture: For the 'Picture' category, the text field should be omitted.\n"
        "    - Formula: Format its text as LaTeX.\n"
        "    - Table: Format its text as HTML.\n"
        "    - All Others (Text, Title, etc.): Format their text as Markdown.\n\n"
        "4. Constraints:\n"
        "    - The output text must be the original text from the image, with no translation.\n"
        "    - All layout elements must be sorted according to human reading order.\n\n"
        "5. Final Output: The entire output must be a single JSON object.\n"),
    "layout-only": (
        "Please output the layout information from this PDF image, including each layout's bbox and its "
        "category. The bbox should be in the format [x1, y1, x2, y2]. The layout categories for the PDF "
        "document include ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', "
        "'Picture', 'Section-header', 'Table', 'Text', 'Title']. Do not output the corresponding text. The "
        "layout result should be in JSON format."),
    "ocr": "Extract the text content from this image.",
    "grounding": ("Extract text from the given bounding box on the image (format: [x1, y1, x2, y2]).\n"
                  "Bounding Box:\n"),
}
assert len(PROMPTS["layout-all"]) == 888 and len(PROMPTS["layout-only"]) == 422
assert len(PROMPTS["ocr"]) == 41 and len(PROMPTS["grounding"]) == 96


def prompt_text(mode, bbox=None):
    """The prompt of a mode; grounding appends str(bbox) as Python prints a list."""
    p = PROMPTS[mode]
    if mode == "grounding":
        if bbox is None:
            raise ValueError("grounding needs a bbox")
        p += "[" + ", ".join(str(int(v)) for v in bbox) + "]"
    return p


# ----------------------------------------------------------- preprocessing 4
# (in ref_preprocess.py, which needs only NumPy and Pillow)
from ref_preprocess import (IMAGE_MEAN, IMAGE_STD, MIN_PIXELS, MAX_PIXELS, smart_resize, to_rgb,  # noqa: E402,F401
                            resize_image, patch_rows, positions)


# ---------------------------------------------------------------- checkpoint

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64, "I32": np.int32}


def _read_safetensors(path, prefix=None, skip_prefix=None):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or (prefix and not name.startswith(prefix)) or (skip_prefix and name.startswith(skip_prefix)):
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data, dtype=_ST_DTYPES[info["dtype"]], count=(e - b) // np.dtype(_ST_DTYPES[info["dtype"]]).itemsize,
                            offset=base + b).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bf16 -> fp32 exactly: the bits are the top half
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(np.array(arr, dtype=np.float32))
    return out


def load_checkpoint(model_dir, prefix=None, skip_prefix=None):
    """config.json + (sharded) safetensors -> (config dict, {name: fp32 tensor});
    prefix (e.g. "vision_tower.") loads only those tensors."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    single = os.path.join(model_dir, "model.safetensors")
    weights = {}
    if os.path.exists(single):
        weights = _read_safetensors(single, prefix, skip_prefix)
    else:
        index = json.load(open(os.path.join(model_dir, "model.safetensors.index.json")))
        for shard in sorted(set(index["weight_map"].values())):
            weights.update(_read_safetensors(os.path.join(model_dir, shard), prefix, skip_prefix))
    return cfg, weights


# ------------------------------------------------------------ vision tower 5

def rms_norm(x, w, eps):
    """y = x / sqrt(mean(x^2) + eps) * w, in fp32 (docs/model.md §5.1)."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y.to(x.dtype) * w)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], -1)


def vision_rope_freqs(pos, head_dim, theta=10000.0):
    """docs/model.md §5.2: VisionRotaryEmbedding(dim = d/2): d/4 inverse frequencies; the
    angle vector is [h * inv_freq, w * inv_freq] (d/2 entries)."""
    dim = head_dim // 2
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    hp = torch.from_numpy(pos[:, 0]).float()[:, None] * inv_freq[None]
    wp = torch.from_numpy(pos[:, 1]).float()[:, None] * inv_freq[None]
    return torch.cat([hp, wp], -1)  # [N, d/2]


def apply_rope(x, freqs):
    """x [N, H, d]; pairs (i, i + d/2) rotated by freqs[:, i] (docs/model.md §5.2, 7). In fp32."""
    cos = torch.cat([freqs.cos(), freqs.cos()], -1)[:, None, :]
    sin = torch.cat([freqs.sin(), freqs.sin()], -1)[:, None, :]
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


def attention(q, k, v, causal):
    """q [Lq, H, d], k/v [Lk, H, d] -> [Lq, H, d]; softmax in fp32."""
    d = q.shape[-1]
    s = torch.einsum("qhd,khd->hqk", q.float(), k.float()) / math.sqrt(d)
    if causal:
        lq, lk = q.shape[0], k.shape[0]
        mask = torch.ones(lq, lk, dtype=torch.bool).tril(lk - lq)
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, -1)
    return torch.einsum("hqk,khd->qhd", p, v.float()).to(q.dtype)


class Vision:
    """The dots.vit encoder with its weights (docs/model.md §5)."""

    def __init__(self, cfg, w, dtype=torch.float32):
        vc = cfg.get("vision_config", {})
        self.D = vc.get("embed_dim", 1536)
        self.heads = vc.get("num_attention_heads", 12)
        self.layers = vc.get("num_hidden_layers", 42)
        self.eps = vc.get("rms_norm_eps", 1e-5)
        self.post_norm = vc.get("post_norm", True)
        self.merge = vc.get("spatial_merge_size", 2)
        self.dtype = dtype
        self.w = {k[len("vision_tower."):]: v.to(dtype) for k, v in w.items() if k.startswith("vision_tower.")}

    def lin(self, x, name, bias=False):
        y = x @ self.w[name + ".weight"].t()
        return y + self.w[name + ".bias"] if bias else y

    def forward(self, pixels, pos, dump=None):
        """pixels [N, 588] (merge-block-major), pos [N, 2] -> merged embeddings [N/4, hidden]."""
        w, D, H = self.w, self.D, self.heads
        d = D // H
        x = torch.from_numpy(pixels).to(self.dtype)
        conv = w["patch_embed.patchifier.proj.weight"].reshape(D, -1)  # [D, 3*p*p]: the conv as a GEMM
        x = x @ conv.t() + w["patch_embed.patchifier.proj.bias"]
        x = rms_norm(x, w["patch_embed.patchifier.norm.weight"], self.eps)
        if dump is not None:
            dump["patch_embed"] = x
        freqs = vision_rope_freqs(pos, d)
        n = x.shape[0]
        for j in range(self.layers):
            p = "blocks.%d." % j
            a = rms_norm(x, w[p + "norm1.weight"], self.eps)
            qkv = self.lin(a, p + "attn.qkv").reshape(n, 3, H, d)
            q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
            q, k = apply_rope(q, freqs), apply_rope(k, freqs)
            o = attention(q, k, v, causal=False).reshape(n, D)
            x = x + self.lin(o, p + "attn.proj")
            b = rms_norm(x, w[p + "norm2.weight"], self.eps)
            m = torch.nn.functional.silu(self.lin(b, p + "mlp.fc1")) * self.lin(b, p + "mlp.fc3")
            x = x + self.lin(m, p + "mlp.fc2")
            if dump is not None:
                dump["block_%02d" % j] = x
        if self.post_norm:
            x = rms_norm(x, w["post_trunk_norm.weight"], self.eps)
        if dump is not None:
            dump["post_norm"] = x
        # merger (docs/model.md §5.5): LayerNorm eps 1e-6 (hard-coded), concat 2x2 groups, MLP
        x = torch.nn.functional.layer_norm(x.float(), (D,), w["merger.ln_q.weight"].float(),
                                           w["merger.ln_q.bias"].float(), eps=1e-6).to(self.dtype)
        x = x.reshape(-1, D * self.merge * self.merge)
        x = torch.nn.functional.gelu(self.lin(x, "merger.mlp.0", bias=True))  # exact erf GELU
        x = self.lin(x, "merger.mlp.2", bias=True)
        if dump is not None:
            dump["vision_embeds"] = x
        return x


# ---------------------------------------------------------- language model 7

class LM:
    """The Qwen2 decoder (docs/model.md §7) with 1-D positions over the whole sequence."""

    def __init__(self, cfg, w, dtype=torch.float32):
        self.H = cfg.get("hidden_size", 1536)
        self.layers = cfg.get("num_hidden_layers", 28)
        self.heads = cfg.get("num_attention_heads", 12)
        self.kv_heads = cfg.get("num_key_value_heads", 2)
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.theta = cfg.get("rope_theta", 1e6)
        self.tied = cfg.get("tie_word_embeddings", False)
        self.dtype = dtype
        self.w = {k: v.to(dtype) for k, v in w.items() if not k.startswith("vision_tower.")}

    def embed(self, ids, image_embeds=None):
        """docs/model.md §6.4: embed, then the k-th <|imgpad|> takes row k of the merger output."""
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
        mask = torch.tensor([t == TOK["imgpad"] for t in ids])
        n_pad = int(mask.sum())
        if n_pad:
            if image_embeds is None or image_embeds.shape[0] != n_pad:
                raise ValueError("%d <|imgpad|> tokens but %s image rows" %
                                 (n_pad, None if image_embeds is None else image_embeds.shape[0]))
            x = x.clone()
            x[mask] = image_embeds.to(self.dtype)
        return x

    def rope(self, x, pos):
        d = x.shape[-1]
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        freqs = torch.tensor(pos, dtype=torch.float32)[:, None] * inv_freq[None]
        return apply_rope(x, freqs)

    def forward(self, x, start_pos, cache):
        """x [L, H] embeddings at positions start_pos.. ; cache: list of (k, v) per layer,
        extended in place. Returns logits [L, V]."""
        w, L = self.w, x.shape[0]
        d = self.H // self.heads
        pos = list(range(start_pos, start_pos + L))
        group = self.heads // self.kv_heads
        for i in range(self.layers):
            p = "model.layers.%d." % i
            a = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            def proj(name):
                y = a @ w[p + "self_attn.%s.weight" % name].t()
                bias = w.get(p + "self_attn.%s.bias" % name)
                return y + bias if bias is not None else y
            q = self.rope(proj("q_proj").reshape(L, self.heads, d), pos)
            k = self.rope(proj("k_proj").reshape(L, self.kv_heads, d), pos)
            v = proj("v_proj").reshape(L, self.kv_heads, d)
            if len(cache) <= i:
                cache.append((k, v))
            else:
                cache[i] = (torch.cat([cache[i][0], k]), torch.cat([cache[i][1], v]))
            kk, vv = cache[i]
            kk = kk.repeat_interleave(group, 1)  # query head h uses kv head h // group
            vv = vv.repeat_interleave(group, 1)
            o = attention(q, kk, vv, causal=True).reshape(L, self.heads * d)
            x = x + o @ w[p + "self_attn.o_proj.weight"].t()
            b = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            m = torch.nn.functional.silu(b @ w[p + "mlp.gate_proj.weight"].t()) * (b @ w[p + "mlp.up_proj.weight"].t())
            x = x + m @ w[p + "mlp.down_proj.weight"].t()
        x = rms_norm(x, w["model.norm.weight"], self.eps)
        head = w["model.embed_tokens.weight"] if self.tied else w["lm_head.weight"]
        return x.float() @ head.float().t()


def prompt_ids(n_image_tokens, prompt_token_ids):
    """docs/model.md §6.2 (the vLLM form): <|user|><|img|> <|imgpad|> x N <|endofimg|> PROMPT <|endofuser|><|assistant|>."""
    return ([TOK["user"], TOK["img"]] + [TOK["imgpad"]] * n_image_tokens + [TOK["endofimg"]] +
            list(prompt_token_ids) + [TOK["endofuser"], TOK["assistant"]])


def greedy(lm, embeds, max_new, eos=EOS_IDS):
    """Greedy decode with a KV cache (docs/model.md §9.1); padding ids never chosen.
    Returns (tokens, prefill logits [L, V], per-step logits, top1 - top2 gaps)."""
    cache = []
    logits = lm.forward(embeds, 0, cache)
    prefill = logits
    pos = embeds.shape[0]
    tokens, steps, gaps = [], [], []
    last = logits[-1]
    for _ in range(max_new):
        real = last[:N_REAL_IDS]
        top2 = torch.topk(real, 2)
        gaps.append(float(top2.values[0] - top2.values[1]))
        t = int(top2.indices[0])
        tokens.append(t)
        if t in eos:
            break
        x = lm.embed([t])
        last = lm.forward(x, pos, cache)[-1]
        steps.append(last)
        pos += 1
    return tokens, prefill, steps, gaps


def teacher_forced(lm, embeds, forced):
    """Logits after each forced token (decode steps with given inputs)."""
    cache = []
    lm.forward(embeds, 0, cache)
    pos = embeds.shape[0]
    out = []
    for t in forced:
        out.append(lm.forward(lm.embed([t]), pos, cache)[-1])
        pos += 1
    return torch.stack(out) if out else torch.zeros(0)
