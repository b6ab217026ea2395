#!/usr/bin/python3
"""Our GGUF files in llama.cpp itself (CTest label `llamacpp`).

llama.cpp comes from the npm registry: node-llama-cpp with its prebuilt CPU
build for Linux x64 (no multimodal library), installed once into the cache.

  types     the mmproj's patch-embedding convolution is F32 in bf16, q8_0,
            q4_0 and q4_k pairs and F16 in an f16 pair, as llama.cpp's
            converter writes it (ggml's CPU backend has no BF16 convolution)
  tokens    llama.cpp, reading our tokenizer.ggml.* arrays, gives our token
            ids on every string NFC leaves as it is (over 1,000, every added
            token among them; llama.cpp does not apply the tokenizer's NFC)
  logits    the log-probabilities after the official prompt (image
            placeholders as plain tokens) agree with ours: cosine >= 0.9999
            for bf16 weights (fp32 precision), >= 0.999 for q8_0
  template  the LM file carries tokenizer.chat_template

Skips (77) with a message only when npm cannot fetch node-llama-cpp.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NLC_VERSION = "3.22.1"
FAILS = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def install(cache):
    """node-llama-cpp and only its CPU binaries, once (a lock: tests run in parallel)."""
    dest = os.path.join(cache, "node-llama-cpp-" + NLC_VERSION)
    os.makedirs(cache, exist_ok=True)
    script = (
        'exec 9>"$1.lock"; flock 9; [ -f "$1/.complete" ] && exit 0; rm -rf "$1.tmp" "$1"; mkdir -p "$1.tmp" && cd "$1.tmp" && '
        'npm install --silent --no-save --no-audit --no-fund --omit=optional node-llama-cpp@%s @node-llama-cpp/linux-x64@%s '
        '>/dev/null && touch .complete && cd .. && mv "$1.tmp" "$1"' % (NLC_VERSION, NLC_VERSION))
    r = subprocess.run(["bash", "-c", script, "install", dest], capture_output=True, timeout=900)
    if r.returncode != 0 or not os.path.exists(os.path.join(dest, ".complete")):
        print("skipped: npm could not fetch node-llama-cpp@%s: %s" % (NLC_VERSION, r.stderr.decode()[-300:]))
        sys.exit(77)
    return os.path.join(dest, "node_modules")


def node(a, *args, timeout=600):
    r = subprocess.run(["node", os.path.join(HERE, "llama_check.mjs"), a.modules, *args], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("llama_check %s: %s" % (args[0], r.stderr.decode()[-500:]))
    return r.stdout.decode()


def convert(a, t):
    lm, mm = os.path.join(a.tmp, "lm-%s.gguf" % t), os.path.join(a.tmp, "mmproj-%s.gguf" % t)
    if not os.path.exists(lm):
        r = subprocess.run([a.dotsocr, "convert", "-q", a.model, lm, "--type", t, "--mmproj", mm], capture_output=True, timeout=600)
        check(r.returncode == 0, "convert --type %s --mmproj: %s" % (t, r.stderr.decode()[-200:]))
    return lm, mm


def test_types(a):
    ggml = {0: "F32", 1: "F16", 8: "Q8_0", 2: "Q4_0", 12: "Q4_K", 30: "BF16"}
    for t, want in (("bf16", "F32"), ("q8_0", "F32"), ("q4_0", "F32"), ("q4_k", "F32"), ("f16", "F16")):
        _, mm = convert(a, t)
        types = json.loads(node(a, "types", mm))
        got = ggml.get(types.get("v.patch_embd.weight"), types.get("v.patch_embd.weight"))
        check(got == want, "%s pair: llama.cpp reads v.patch_embd.weight as %s (want %s)" % (t, got, want))


def strings(a):
    """1,200 strings: the prompts, every added token alone and in text, and mixes."""
    tok = json.load(open(os.path.join(a.model, "tokenizer.json")))
    added = [t["content"] for t in tok["added_tokens"]]
    golden = [json.loads(l)["text"] for l in open(os.path.join(HERE, "..", "tokenizer", "golden.jsonl"))]
    rng = random.Random(11)
    pieces = ["Hello", " world", "表格", "数据", " 123", "4567", "\n\n", "  ", "\t", "ümlaut", "naïve", "😀", "🎉👍🏽",
              "<table><tr><td>", "</td></tr>", "$$x^2$$", "\\frac{a}{b}", "  spaced  ", "don't", "I'm", "'s", "e\u0301",
              "ｆｕｌｌ", "Ω≈ç√", "الْعَرَبِيَّة", "русский", "ελληνικά", "한국어", "…", "—", "http://x.org/a?b=c"]
    out = list(added) + ["x" + t + "y" for t in added] + golden
    while len(out) < 1300:
        k = rng.randint(1, 8)
        out.append("".join(rng.choice(pieces + added[:12] if rng.random() < 0.2 else pieces) for _ in range(k)))
    return out


def test_tokens(a):
    lm, _ = convert(a, "bf16")
    texts = strings(a)
    path = os.path.join(a.tmp, "strings.jsonl")
    with open(path, "w") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    theirs = [json.loads(l) for l in node(a, "tokenize", lm, path).splitlines() if l]
    r = subprocess.run([a.debug, "tokenize-lines", "--model", lm], stdin=open(path), capture_output=True, timeout=600)
    ours = [json.loads(l) for l in r.stdout.decode().splitlines() if l]
    check(len(theirs) == len(ours) == len(texts), "%d strings tokenized by both" % len(texts))
    # dots.ocr's tokenizer normalises to NFC first (tokenizer.json's
    # normalizer); llama.cpp's qwen2 tokenizer does not, so a string that
    # NFC changes is tokenized differently there: counted, not compared
    nfc = [i for i, t in enumerate(texts) if unicodedata.normalize("NFC", t) == t]
    bad = [(texts[i], ours[i], theirs[i]) for i in nfc if i < len(ours) and i < len(theirs) and ours[i] != theirs[i]]
    check(len(nfc) >= 1000 and not bad, "llama.cpp's ids equal ours on all %d NFC strings (first difference: %r)" % (len(nfc), bad[:1]))
    added = json.load(open(os.path.join(a.model, "tokenizer.json")))["added_tokens"]
    check(all(ours[i] == theirs[i] == [t["id"]] for i, t in enumerate(added)), "every one of the %d added tokens is one id in both" % len(added))
    print("note: %d strings change under NFC; llama.cpp differs from the HF tokenizer on %d of them" %
          (len(texts) - len(nfc), sum(1 for i, t in enumerate(texts) if i not in set(nfc) and ours[i] != theirs[i])))


def official_prompt():
    for line in open(os.path.join(HERE, "..", "tokenizer", "golden.jsonl")):
        d = json.loads(line)
        if d.get("name") == "prompt_layout_all_en":
            return d["text"]
    raise RuntimeError("no prompt_layout_all_en in golden.jsonl")


def prompt_ids(a):
    r = subprocess.run([a.dotsocr, "tokenize", "--model", a.model],
                       input=("<|user|><|img|>" + "<|imgpad|>" * 16 + "<|endofimg|>" + official_prompt()
                              + "<|endofuser|><|assistant|>").encode(), capture_output=True, timeout=60)
    return [int(x) for x in r.stdout.decode().split()]


def test_logits(a):
    ids = prompt_ids(a)
    check(len(ids) > 40, "the official prompt has %d ids" % len(ids))
    for t, want in (("bf16", 0.9999), ("q8_0", 0.999)):
        lm, _ = convert(a, t)
        theirs = np.array(json.loads(node(a, "logprobs", lm, ",".join(map(str, ids)))), dtype=np.float64)
        r = subprocess.run([a.debug, "lm-logits", "--model", lm, "--precision", "fp32", "--threads", "1", "--ids",
                            ",".join(map(str, ids))], capture_output=True, timeout=600)
        ours = np.array(json.loads(r.stdout), dtype=np.float64)
        n = min(len(ours), len(theirs))
        ours = ours[:n] - np.log(np.exp(ours[:n] - ours[:n].max()).sum()) - ours[:n].max()  # log-softmax
        theirs = theirs[:n]
        x, y = ours - ours.mean(), theirs - theirs.mean()
        cos = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
        check(cos >= want and int(np.argmax(ours)) == int(np.argmax(theirs)),
              "%s: llama.cpp's log-probabilities after the prompt vs ours: cosine %.6f (want >= %g), argmax %d / %d" %
              (t, cos, want, int(np.argmax(ours)), int(np.argmax(theirs))))


def test_template(a):
    lm, _ = convert(a, "bf16")
    r = subprocess.run([a.dotsocr, "info", "--json", lm], capture_output=True, timeout=60)
    check(r.returncode == 0, "info reads the pair")
    tmpl = json.loads(node(a, "template", lm))
    want = json.load(open(os.path.join(a.model, "tokenizer_config.json"))).get("chat_template")
    check(isinstance(tmpl, str) and tmpl == want and "<|endofassistant|>" in tmpl,
          "llama.cpp reads tokenizer.chat_template from the LM file, the checkpoint's own: %r" % (tmpl or "")[:80])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["types", "tokens", "logits", "template"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--debug", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    if not shutil.which("node") or not shutil.which("npm"):
        print("skipped: node and npm are needed")
        sys.exit(77)
    a.modules = install(a.cache)
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
