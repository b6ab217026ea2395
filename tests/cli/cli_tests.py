#!/usr/bin/env python3
"""Command-line checks for dotsocr, driven by CTest (standard library only).

  malformed    a corpus of broken checkpoints, each derived from a fresh tiny
               model by one mutation: `dotsocr info` must exit 1 with exactly
               one error line (warnings aside) that mentions what is wrong,
               and no sanitizer report.
  full_layout  a full-size model (sparse zero weights: instant, no disk):
               643 tensors and docs/model.md's parameter counts, RSS far below the
               mapped size.
  usage        command-line errors exit 2, help and version exit 0.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

FAILS = []


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=120, **kw)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


# ---------------------------------------------------------------- safetensors

def st_read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def st_write(path, header, body, pad=True, raw_header=None):
    hb = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + body)


def shard_of(model, name):
    idx = json.load(open(os.path.join(model, "model.safetensors.index.json")))
    return os.path.join(model, idx["weight_map"][name])


def edit_header(model, name, fn):
    """Calls fn(header) on the shard holding tensor `name`, rewrites it."""
    path = shard_of(model, name)
    h, body = st_read(path)
    fn(h)
    st_write(path, h, body)


def edit_json(model, file, fn):
    p = os.path.join(model, file)
    d = json.load(open(p))
    fn(d)
    json.dump(d, open(p, "w"))


def rename_in_index(model, old, new):
    def f(d):
        d["weight_map"][new] = d["weight_map"].pop(old)
    edit_json(model, "model.safetensors.index.json", f)


def rename_tensor(model, old, new, in_index=True):
    def f(h):
        h[new] = h.pop(old)
    edit_header(model, old, f)
    if in_index:
        rename_in_index(model, old, new)


def set_raw(model, file, data):
    open(os.path.join(model, file), "wb").write(data)


def truncate(model, file, keep):
    p = os.path.join(model, file)
    raw = open(p, "rb").read()
    open(p, "wb").write(raw[:keep if keep >= 0 else len(raw) + keep])


def patch_len(model, file, n):
    p = os.path.join(model, file)
    raw = bytearray(open(p, "rb").read())
    raw[:8] = struct.pack("<Q", n)
    open(p, "wb").write(raw)


S1 = "model-00001-of-00002.safetensors"
S2 = "model-00002-of-00002.safetensors"
NORM = "model.norm.weight"
Q0 = "model.layers.0.self_attn.q_proj.weight"
FC2 = "vision_tower.blocks.1.mlp.fc2.weight"


def offsets(model, name, delta_begin, delta_end):
    def f(h):
        b, e = h[name]["data_offsets"]
        h[name]["data_offsets"] = [b + delta_begin, e + delta_end]
    edit_header(model, name, f)


def overlap(model):
    def f(h):
        ts = sorted((v["data_offsets"][0], k) for k, v in h.items() if k != "__metadata__")
        a, b = ts[0][1], ts[1][1]
        # b starts 2 bytes early; a shrinks so sizes stay valid only if shapes change: keep
        # sizes and shift b's range back into a.
        bb, be = h[b]["data_offsets"]
        h[b]["data_offsets"] = [bb - 2, be - 2]
    edit_header(model, NORM, f)


def hole(model):
    def f(h):
        ts = sorted((v["data_offsets"][0], k) for k, v in h.items() if k != "__metadata__")
        first = ts[0][1]
        b, e = h[first]["data_offsets"]
        shape = h[first]["shape"]
        row_bytes = 2 * (e - b) // (2 * shape[0])
        h[first]["shape"] = [shape[0] - 1] + shape[1:]  # one row fewer: a hole after it
        h[first]["data_offsets"] = [b, e - row_bytes]
    edit_header(model, Q0, f)


def dup_across_shards(model):
    # a tensor of shard 2 renamed to a name shard 1 already has
    idx = json.load(open(os.path.join(model, "model.safetensors.index.json")))
    name2 = next(k for k, v in idx["weight_map"].items() if v == S2)
    def f(h):
        h[NORM] = h.pop(name2)
    edit_header(model, name2, f)


def non_utf8_name(model):
    path = shard_of(model, NORM)
    h, body = st_read(path)
    hb = json.dumps(h, separators=(",", ":")).encode().replace(b'"model.norm.weight"', b'"model.norm.\xff\xfe"')
    st_write(path, None, body, raw_header=hb)


def dup_json_key(model):
    path = shard_of(model, NORM)
    h, body = st_read(path)
    hb = json.dumps(h, separators=(",", ":")).encode()
    entry = json.dumps({NORM: h[NORM]}, separators=(",", ":")).encode()[1:-1]
    hb = hb[:-1] + b"," + entry + b"}"
    st_write(path, None, body, raw_header=hb)


def deep_json(model):
    path = os.path.join(model, S2)
    _, body = st_read(path)
    st_write(path, None, body, raw_header=b"[" * 100000 + b"]" * 100000)


def wrong_shard(model):
    def f(d):
        d["weight_map"][NORM] = S2 if d["weight_map"][NORM] == S1 else S1
    edit_json(model, "model.safetensors.index.json", f)


def listed_not_present(model):
    def f(d):
        d["weight_map"]["model.extra.weight"] = S1
    edit_json(model, "model.safetensors.index.json", f)


def traversal(model):
    def f(d):
        d["weight_map"][NORM] = "../outside.safetensors"
    edit_json(model, "model.safetensors.index.json", f)


def shard_dir(model):
    os.remove(os.path.join(model, S2))
    os.mkdir(os.path.join(model, S2))


def cfg(key, value, file="config.json", sub=None):
    def mutate(model):
        def f(d):
            t = d[sub] if sub else d
            if value is DELETE:
                del t[key]
            else:
                t[key] = value
        edit_json(model, file, f)
    return mutate


DELETE = object()

# (name, mutation, substring the error line must contain)
CASES = [
    ("truncated shard", lambda m: truncate(m, S2, -100), "past the end"),
    ("truncated to 4 bytes", lambda m: truncate(m, S2, 4), "too short"),
    ("empty shard", lambda m: truncate(m, S2, 0), "too short"),
    ("header length past EOF", lambda m: patch_len(m, S2, os.path.getsize(os.path.join(m, S2))), "past the end"),
    ("header length 2^63", lambda m: patch_len(m, S2, 1 << 63), "limit"),
    ("header not JSON", lambda m: st_write(os.path.join(m, S2), None, b"", raw_header=b"this is not json"), "not valid JSON"),
    ("header is an array", lambda m: st_write(os.path.join(m, S2), None, b"", raw_header=b"[1, 2, 3]"), "not a JSON object"),
    ("header nested 100k deep", deep_json, "not valid JSON"),
    ("duplicate key in header", dup_json_key, "not valid JSON"),
    ("non-UTF-8 tensor name", non_utf8_name, "not valid JSON"),
    ("offsets overlap", overlap, "overlaps"),
    ("offsets with a hole", hole, "hole"),
    ("offsets past EOF", lambda m: offsets(m, FC2, 1 << 20, 1 << 20), "past the end"),
    ("last tensor past EOF", lambda m: truncate(m, S1, -2), "past the end"),
    ("dtype size mismatch", lambda m: edit_header(m, NORM, lambda h: h[NORM].update(dtype="F32")), "needs"),
    ("shape product overflow", lambda m: edit_header(m, NORM, lambda h: h[NORM].update(shape=[1 << 40, 1 << 40])), "overflow"),
    ("unknown dtype", lambda m: edit_header(m, NORM, lambda h: h[NORM].update(dtype="Q4_K")), "unknown dtype"),
    ("integer dtype", lambda m: edit_header(m, NORM, lambda h: h[NORM].update(dtype="I16")), "dtype I16"),
    ("wrong shape", lambda m: edit_header(m, Q0, lambda h: h[Q0].update(shape=[32, 128])), "has shape [32, 128], expected [64, 64]"),
    ("tensor missing", lambda m: rename_tensor(m, NORM, "model.norm.weigh"), "model.norm.weight [64] is missing"),
    ("listed in index, absent in shard", listed_not_present, "model.extra.weight"),
    ("index maps to the wrong shard", wrong_shard, "mapped to"),
    ("tensor in two shards", dup_across_shards, "in both"),
    ("missing shard", lambda m: os.remove(os.path.join(m, S2)), "missing"),
    ("shard is a directory", shard_dir, "not a regular file"),
    ("index not JSON", lambda m: set_raw(m, "model.safetensors.index.json", b"{\"weight_map\": "), "not valid JSON"),
    ("index without weight_map", lambda m: set_raw(m, "model.safetensors.index.json", b"{}"), "weight_map"),
    ("index path traversal", traversal, "plain file name"),
    ("no weights at all", lambda m: os.remove(os.path.join(m, "model.safetensors.index.json")), "no model.safetensors"),
    ("config missing", lambda m: os.remove(os.path.join(m, "config.json")), "config.json"),
    ("config not JSON", lambda m: set_raw(m, "config.json", b"{\"model_type\": \"dots_ocr\",,}"), "config.json"),
    ("config model_type wrong", cfg("model_type", "qwen2_vl"), "model_type"),
    ("config model_type missing", cfg("model_type", DELETE), "model_type"),
    ("config heads do not divide", cfg("num_attention_heads", 5), "num_attention_heads"),
    ("config layers negative", cfg("num_hidden_layers", -2), "num_hidden_layers"),
    ("config layers as string", cfg("num_hidden_layers", "2"), "num_hidden_layers"),
    ("config more layers than tensors", cfg("num_hidden_layers", 3), "model.layers.2."),
    ("config vision hidden mismatch", cfg("hidden_size", 32, sub="vision_config"), "vision_config.hidden_size"),
    ("config vision width mismatch", cfg("embed_dim", 128, sub="vision_config"), "has shape"),
    ("config rope_scaling set", cfg("rope_scaling", {"type": "mrope"}), "rope_scaling"),
    ("generation eos not ids", cfg("eos_token_id", ["<|endoftext|>"], file="generation_config.json"), "eos_token_id"),
    ("generation eos past vocab", cfg("eos_token_id", [999999], file="generation_config.json"), "eos_token_id"),
    ("preprocessor std zero", cfg("image_std", [0.2, 0, 0.2], file="preprocessor_config.json"), "image_std"),
    ("preprocessor patch mismatch", cfg("patch_size", 16, file="preprocessor_config.json"), "patch_size"),
    ("preprocessor not JSON", lambda m: set_raw(m, "preprocessor_config.json", b"\x00\x01"), "preprocessor_config.json"),
]


def malformed(a):
    base = os.path.join(a.tmp, "base")
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    r = run([a.dotsocr, "make-model", "-q", "--preset", "tiny", "--seed", "3", base])
    if not check(r.returncode == 0, "make-model: " + r.stderr):
        return
    r = run([a.dotsocr, "info", base])
    check(r.returncode == 0 and r.stderr == "", "clean tiny model opens without a message: " + r.stderr)
    for i, (name, mutate, needle) in enumerate(CASES):
        d = os.path.join(a.tmp, "case%02d" % i)
        shutil.copytree(base, d)
        mutate(d)
        r = run([a.dotsocr, "info", d])
        lines = [l for l in r.stderr.splitlines() if l]
        errors = [l for l in lines if l.startswith("dotsocr: error: ")]
        others = [l for l in lines if not l.startswith("dotsocr: error: ") and not l.startswith("dotsocr: warning: ")]
        ok = (check(r.returncode == 1, "%s: exit %d, want 1 (%s)" % (name, r.returncode, r.stderr.strip()[:300]))
              and check(len(errors) == 1 and not others, "%s: want one error line, got %r" % (name, lines[:5]))
              and check(needle in errors[0], "%s: %r lacks %r" % (name, errors[0], needle)))
        check("Sanitizer" not in r.stderr and "runtime error" not in r.stderr, "%s: sanitizer report" % name)
        if ok:
            print("ok   %-36s %s" % (name, errors[0][len("dotsocr: error: "):][:150]))
        shutil.rmtree(d)
    check(len(CASES) >= 25, "corpus has %d cases" % len(CASES))

    # An unpadded header misaligns the data: still loads (copied), with a warning.
    d = os.path.join(a.tmp, "unaligned")
    shutil.copytree(base, d)
    path = os.path.join(d, S1)
    h, body = st_read(path)
    hb = json.dumps(h, separators=(",", ":")).encode()
    if len(hb) % 2 == 0:
        hb += b" "
    st_write(path, None, body, raw_header=hb, pad=False)
    r = run([a.dotsocr, "info", "--json", d])
    check(r.returncode == 0 and "misaligned" in r.stderr, "unaligned header loads with a warning: %s" % r.stderr[:200])
    shutil.rmtree(a.tmp, ignore_errors=True)


def full_layout(a):
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    d = os.path.join(a.tmp, "full")
    r = run([a.dotsocr, "make-model", "-q", "--preset", "full", "--sparse", d])
    if not check(r.returncode == 0, "make-model full: " + r.stderr):
        return
    check(sorted(f for f in os.listdir(d) if f.endswith(".safetensors")) ==
          ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], "two shards")
    r = run([a.dotsocr, "info", "--json", d])
    if not check(r.returncode == 0, "info full: " + r.stderr):
        return
    info = json.loads(r.stdout)
    check(info["n_tensors"] == 643, "643 tensors, got %d" % info["n_tensors"])
    check(info["n_tensors_vision"] == 304 and info["n_tensors_lm"] == 339, "304 vision + 339 LM tensors")
    check(info["n_params"] == 3039179264, "3,039,179,264 parameters, got %d" % info["n_params"])
    check(info["n_params_vision"] == 1262091264, "vision 1,262,091,264, got %d" % info["n_params_vision"])
    check(info["n_params_lm"] == 1777088000, "LM 1,777,088,000, got %d" % info["n_params_lm"])
    check(info["bytes_by_dtype"]["BF16"] == 2 * 3039179264, "all BF16")
    check(info["text"]["hidden_size"] == 1536 and info["vision"]["num_hidden_layers"] == 42, "real config")
    check(info["eos_token_id"] == [151643, 151673], "EOS ids")
    # mmap, nothing copied: RSS is a tiny fraction of the 6 GB mapped
    check(info["peak_rss_mb"] * 1e6 < 0.05 * info["mapped_bytes"], "peak RSS %.1f MB" % info["peak_rss_mb"])
    print("full: %d tensors, %d params, load %.1f ms, peak RSS %.1f MB" %
          (info["n_tensors"], info["n_params"], info["load_ms"], info["peak_rss_mb"]))
    shutil.rmtree(a.tmp, ignore_errors=True)


def usage(a):
    exe = a.dotsocr
    for args, want in [
        ([], 2), (["frobnicate"], 2), (["info"], 2), (["info", "--bogus", "x"], 2), (["info", "a", "b"], 2),
        (["make-model", "--preset", "huge", "x"], 2), (["make-model", "--seed", "-1", "x"], 2),
        (["make-model", "--seed", "12abc", "x"], 2), (["make-model", "--dtype", "q4", "x"], 2),
        (["make-model", "--shard-bytes", "0", "x"], 2), (["make-model"], 2), (["help", "nope"], 2),
        (["help"], 0), (["help", "info"], 0), (["info", "--help"], 0), (["version"], 0), (["--version"], 0),
        (["info", "/nonexistent/model"], 1),
    ]:
        r = run([exe] + args)
        check(r.returncode == want, "dotsocr %s: exit %d, want %d" % (" ".join(args), r.returncode, want))
        if want != 0:
            lines = [l for l in r.stderr.splitlines() if l]
            check(want == 2 and not args or len(lines) == 1, "dotsocr %s: one-line message, got %r" % (" ".join(args), lines[:4]))
        check("Sanitizer" not in r.stderr, "dotsocr %s: sanitizer report" % " ".join(args))
    r = run([exe, "version"])
    check(r.stdout.startswith("dotsocr "), "version prints the version")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["malformed", "full_layout", "usage"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    globals()[a.what](a)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(a.tmp, ignore_errors=True)  # kept only when a check failed
    print("all checks passed")


if __name__ == "__main__":
    main()
