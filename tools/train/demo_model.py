"""The dots.ocr architecture as a trainable PyTorch module, for the small demo
model (docs/train.md). Parameter names are the official checkpoint's, so a
state dict saves as a checkpoint that dotsocr loads unchanged. The maths is
docs/model.md's (the same as tests/reference/dots_ref.py, which checks the
engine): NaViT vision tower with 2-D RoPE and SwiGLU, post-trunk RMSNorm,
2x2 merger, Qwen2 decoder with 1-D positions, here with tied embeddings.

Also here: the checkpoint writer (official layout: config.json, safetensors,
tokenizer files) and the compact "trained part" a training run sends back
(everything but the embedding rows no batch ever used, which stay exactly
their seeded initial values and are rebuilt from the seed).

Works on PyTorch 1.13 (CPU smoke test) and 2.x (GPU training)."""
import hashlib
import json
import math
import os
import shutil
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# docs/model.md §6.2 / 8.2
TOK = {"endoftext": 151643, "imgpad": 151665, "img": 151666, "endofimg": 151667,
       "user": 151670, "endofuser": 151671, "assistant": 151672, "endofassistant": 151673}
VOCAB = 151936
EMBED_STD = 0.02

# Widths and depths; vocabulary, tokenizer, prompt format and every other key are the real model's.
# demo: rows of 256 and 768/1024 are whole Q4_K blocks; tied embeddings keep the
# 151,936 x 256 matrix once (38.9 M of the ~53 M parameters): ~30 MB as Q4_K.
SIZES = {
    "demo": dict(hidden=256, layers=6, heads=4, kv_heads=2, ffn=1024, v_dim=256, v_layers=8, v_heads=4, v_ffn=768),
    "smoke": dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, v_dim=64, v_layers=2, v_heads=4, v_ffn=128),
}


def make_config(size):
    s = SIZES[size]
    return {
        "architectures": ["DotsOCRForCausalLM"], "model_type": "dots_ocr",
        "hidden_size": s["hidden"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"], "intermediate_size": s["ffn"],
        "max_position_embeddings": 131072, "vocab_size": VOCAB, "sliding_window": 131072,
        "max_window_layers": s["layers"], "image_token_id": TOK["imgpad"], "video_token_id": 151656,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "attention_dropout": 0.0, "initializer_range": 0.02,
        "tie_word_embeddings": True, "attention_bias": True, "use_sliding_window": False, "use_cache": True,
        "hidden_act": "silu", "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "rope_scaling": None,
        "vision_config": {
            "model_type": "dots_vit", "embed_dim": s["v_dim"], "hidden_size": s["hidden"],
            "intermediate_size": s["v_ffn"], "num_hidden_layers": s["v_layers"], "num_attention_heads": s["v_heads"],
            "num_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 1,
            "rms_norm_eps": 1e-5, "init_merger_std": 0.02, "initializer_range": 0.02, "use_bias": False,
            "post_norm": True, "is_causal": False, "attn_implementation": "flash_attention_2"},
    }


# ------------------------------------------------------------------ layers

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()  # the statistic in fp32, as the official modules
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight.to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def rope(x, freqs):
    """x [B, heads, L, d]; freqs [L, d/2]: pairs (i, i + d/2) rotated, in fp32."""
    cos = torch.cat([freqs.cos(), freqs.cos()], -1)
    sin = torch.cat([freqs.sin(), freqs.sin()], -1)
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


def attend(q, k, v, causal):
    """[B, heads, L, d] each (k, v already repeated for grouped heads)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    s = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        L = q.shape[-2]
        s = s.masked_fill(~torch.ones(L, L, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    return (torch.softmax(s, -1) @ v.float()).to(q.dtype)


class VisionBlock(nn.Module):
    def __init__(self, dim, heads, ffn, eps):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn.proj = nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, ffn, bias=False)
        self.mlp.fc3 = nn.Linear(dim, ffn, bias=False)
        self.mlp.fc2 = nn.Linear(ffn, dim, bias=False)

    def forward(self, x, freqs):
        B, N, D = x.shape
        qkv = self.attn.qkv(self.norm1(x)).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rope(qkv[0], freqs), rope(qkv[1], freqs)
        o = attend(q, k, qkv[2], causal=False).transpose(1, 2).reshape(B, N, D)
        x = x + self.attn.proj(o)
        h = self.norm2(x)
        return x + self.mlp.fc2(F.silu(self.mlp.fc1(h)) * self.mlp.fc3(h))


class VisionTower(nn.Module):
    def __init__(self, vc):
        super().__init__()
        D, eps = vc["embed_dim"], vc["rms_norm_eps"]
        self.dim, self.heads, self.merge = D, vc["num_attention_heads"], vc["spatial_merge_size"]
        self.patch_embed = nn.Module()
        self.patch_embed.patchifier = nn.Module()
        self.patch_embed.patchifier.proj = nn.Conv2d(3, D, 14, 14)
        self.patch_embed.patchifier.norm = RMSNorm(D, eps)
        self.blocks = nn.ModuleList(VisionBlock(D, self.heads, vc["intermediate_size"], eps)
                                    for _ in range(vc["num_hidden_layers"]))
        self.post_trunk_norm = RMSNorm(D, eps)
        self.merger = nn.Module()
        self.merger.ln_q = nn.LayerNorm(D, eps=1e-6)
        m = D * self.merge * self.merge
        self.merger.mlp = nn.Sequential(nn.Linear(m, m), nn.GELU(), nn.Linear(m, vc["hidden_size"]))

    def forward(self, rows, pos):
        """rows [B, N, 588] merge-block-major, pos [N, 2] (h, w) -> [B, N/4, hidden]."""
        pe = self.patch_embed.patchifier
        x = F.linear(rows, pe.proj.weight.reshape(self.dim, -1), pe.proj.bias)  # the 14x14 stride-14 conv
        x = pe.norm(x)
        d = self.dim // self.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, d // 2, 2, dtype=torch.float32, device=rows.device) / (d // 2)))
        freqs = torch.cat([pos[:, :1].float() * inv, pos[:, 1:].float() * inv], -1)
        for blk in self.blocks:
            x = blk(x, freqs)
        x = self.post_trunk_norm(x)
        x = F.layer_norm(x.float(), (self.dim,), self.merger.ln_q.weight, self.merger.ln_q.bias, 1e-6).to(x.dtype)
        B, N, D = x.shape
        return self.merger.mlp(x.reshape(B, N // 4, 4 * D))


class DecoderLayer(nn.Module):
    def __init__(self, H, heads, kv_heads, ffn, eps):
        super().__init__()
        d = H // heads
        self.heads, self.kv_heads, self.d = heads, kv_heads, d
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(H, eps), RMSNorm(H, eps)
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(H, heads * d)
        self.self_attn.k_proj = nn.Linear(H, kv_heads * d)
        self.self_attn.v_proj = nn.Linear(H, kv_heads * d)
        self.self_attn.o_proj = nn.Linear(heads * d, H, bias=False)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(H, ffn, bias=False)
        self.mlp.up_proj = nn.Linear(H, ffn, bias=False)
        self.mlp.down_proj = nn.Linear(ffn, H, bias=False)

    def forward(self, x, freqs):
        B, L, H = x.shape
        a, sa = self.input_layernorm(x), self.self_attn
        q = rope(sa.q_proj(a).view(B, L, self.heads, self.d).transpose(1, 2), freqs)
        k = rope(sa.k_proj(a).view(B, L, self.kv_heads, self.d).transpose(1, 2), freqs)
        v = sa.v_proj(a).view(B, L, self.kv_heads, self.d).transpose(1, 2)
        g = self.heads // self.kv_heads
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)  # query head h reads kv head h // g
        x = x + sa.o_proj(attend(q, k, v, causal=True).transpose(1, 2).reshape(B, L, H))
        b = self.post_attention_layernorm(x)
        return x + self.mlp.down_proj(F.silu(self.mlp.gate_proj(b)) * self.mlp.up_proj(b))


class DotsOCR(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.vision_tower = VisionTower(cfg["vision_config"])
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg["vocab_size"], H)
        self.model.layers = nn.ModuleList(DecoderLayer(H, cfg["num_attention_heads"], cfg["num_key_value_heads"],
                                                       cfg["intermediate_size"], eps)
                                          for _ in range(cfg["num_hidden_layers"]))
        self.model.norm = RMSNorm(H, eps)

    def init_weights(self, seed):
        """Seeded; the embedding from NumPy's legacy RandomState, whose stream
        never changes, so that rows no batch used can be rebuilt anywhere."""
        g = torch.Generator().manual_seed(seed)
        depth = 2 * max(self.cfg["num_hidden_layers"], self.cfg["vision_config"]["num_hidden_layers"])
        for name, p in self.named_parameters():
            if name == "model.embed_tokens.weight":
                p.data.copy_(torch.from_numpy(initial_embedding(seed, *p.shape)))
            elif name.endswith("norm.weight") or name.endswith("norm1.weight") or name.endswith("norm2.weight") \
                    or name == "vision_tower.merger.ln_q.weight":
                p.data.fill_(1.0)
            elif name.endswith(".bias"):
                p.data.zero_()
            else:
                std = 0.02 / math.sqrt(depth) if name.split(".")[-2] in ("o_proj", "down_proj", "proj", "fc2") else 0.02
                p.data.copy_(torch.randn(p.shape, generator=g) * std)

    def embed(self, ids, image):
        """ids [B, L] with N <|imgpad|> at 2..2+N (the prompt's fixed prefix), image [B, N, H]."""
        x = self.model.embed_tokens(ids)
        n = image.shape[1]
        return torch.cat([x[:, :2], image.to(x.dtype), x[:, 2 + n:]], 1)

    def hidden(self, x):
        B, L, H = x.shape
        d = H // self.cfg["num_attention_heads"]
        inv = 1.0 / (self.cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))
        freqs = torch.arange(L, dtype=torch.float32, device=x.device)[:, None] * inv
        for layer in self.model.layers:
            x = layer(x, freqs)
        return self.model.norm(x)

    def logits(self, h):
        return h.float() @ self.model.embed_tokens.weight.float().t()


def initial_embedding(seed, rows, cols):
    return (np.random.RandomState(seed).standard_normal((rows, cols)) * EMBED_STD).astype(np.float32)


# ------------------------------------------------------------- checkpoints

def bf16_bits(a):
    """fp32 -> bf16 bit patterns, round to nearest even (NaN-free weights)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype "BF16"|"F32"|"I32", numpy array of that storage)}."""
    header, blobs, off = {}, [], 0
    digest = hashlib.sha256()
    for name in sorted(tensors):
        dt, arr = tensors[name]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        digest.update(b)
        off += len(b)
    if metadata is not None:
        header["__metadata__"] = dict(metadata, data_sha256=digest.hexdigest())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """-> ({name: (dtype, raw numpy array)}, metadata)"""
    kinds = {"BF16": np.uint16, "F32": np.float32, "I32": np.int32}
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    if "data_sha256" in meta and hashlib.sha256(data[8 + n:]).hexdigest() != meta["data_sha256"]:
        raise ValueError("%s: the data does not match the sha256 in its header" % path)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=kinds[info["dtype"]]).reshape(info["shape"])
        out[name] = (info["dtype"], arr)
    return out, meta


def checkpoint_tensors(model):
    """The state dict as the official checkpoint stores it: bf16, no lm_head (tied)."""
    return {k: ("BF16", bf16_bits(v.detach().float().cpu().numpy())) for k, v in model.state_dict().items()}


def write_model_dir(out, cfg, tensors, template):
    """out/: config.json, model.safetensors, and the tokenizer files and
    generation/preprocessor configs from template (a dots model directory)."""
    os.makedirs(out, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "preprocessor_config.json"):
        src = os.path.join(template, f)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(out, f))
    with open(os.path.join(out, "config.json.tmp"), "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(os.path.join(out, "config.json.tmp"), os.path.join(out, "config.json"))
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, {"format": "pt"})


def trained_part(tensors, seen, seed):
    """What a training run sends back: every tensor but the embedding, and the
    embedding rows in seen (the others are exactly initial_embedding(seed))."""
    rows = np.flatnonzero(seen).astype(np.int32)
    part = {k: v for k, v in tensors.items() if k != "model.embed_tokens.weight"}
    part["trained.embed_rows"] = ("I32", rows)
    part["trained.embed_values"] = ("BF16", tensors["model.embed_tokens.weight"][1][rows])
    return part, {"seed": str(seed), "embed_std": repr(EMBED_STD)}


def rebuild_tensors(part, meta, cfg):
    """The inverse of trained_part: the full checkpoint's tensors."""
    part = dict(part)
    rows = part.pop("trained.embed_rows")[1]
    values = part.pop("trained.embed_values")[1]
    if float(meta["embed_std"]) != EMBED_STD:
        raise ValueError("trained part made with embedding std %s, this tool uses %r" % (meta["embed_std"], EMBED_STD))
    emb = bf16_bits(initial_embedding(int(meta["seed"]), cfg["vocab_size"], cfg["hidden_size"]))
    emb[rows] = values
    part["model.embed_tokens.weight"] = ("BF16", emb)
    return part


def load_model_dir(model, d):
    """Loads a model directory written by write_model_dir (bf16 -> fp32)."""
    tensors, _ = read_safetensors(os.path.join(d, "model.safetensors"))
    state = {}
    for k, (dt, arr) in tensors.items():
        a = (arr.astype(np.uint32) << 16).view(np.float32) if dt == "BF16" else arr
        state[k] = torch.from_numpy(np.array(a, dtype=np.float32))
    model.load_state_dict(state)
