#!/usr/bin/env python3
"""Tokenizer checks driven by CTest (label `tokenizer`), standard library only.

  golden     golden ids from the official HF tokenizers (npm tokenizers@0.23.2,
             regenerated here when node and npm are available: curated cases
             + 10,000 random strings; otherwise the committed
             tests/tokenizer/golden.jsonl) checked by test_tokenizer_golden on
             the tokenizer.json form and on the vocab.json + merges.txt form.
  cli        `dotsocr tokenize/detokenize`: docs/model.md §6.2 ids, round trips, and
             arbitrary bytes on stdin never crash.
  malformed  broken tokenizer files give exit 1 and one error line.

Regenerate the committed golden with:
  node tests/tokenizer/make_golden.mjs NODE_MODULES MODEL/tokenizer.json 300 1 > tests/tokenizer/golden.jsonl
"""
import argparse
import copy
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def run(args, data=b"", env=None, timeout=600):
    return subprocess.run(args, input=data, capture_output=True, timeout=timeout, env=env)


def golden(a):
    os.makedirs(a.tmp, exist_ok=True)
    gold = os.path.join(a.tmp, "golden.jsonl")
    min_cases = "100"
    nm = None
    if shutil.which("node"):
        r = run([os.path.join(ROOT, "scripts", "fetch-tokenizer"), "--hf"])
        if r.returncode == 0:
            nm = r.stdout.decode().splitlines()[-1]
    if nm:
        r = run(["node", os.path.join(HERE, "make_golden.mjs"), nm, os.path.join(a.model, "tokenizer.json"), "10000", "1"])
        if not check(r.returncode == 0, "make_golden.mjs: " + r.stderr.decode()[-500:]):
            return
        open(gold, "wb").write(r.stdout)
        min_cases = "10000"
        print("golden: regenerated with HF tokenizers (node)")
    else:
        shutil.copy(os.path.join(HERE, "golden.jsonl"), gold)
        print("golden: node/npm unavailable, using the committed tests/tokenizer/golden.jsonl")

    env = dict(os.environ, DOTS_TOK_GOLDEN=gold, DOTS_TOK_MIN_CASES=min_cases, DOTS_TOK_DIR=a.model)
    r = run([a.test_bin], env=env)
    sys.stdout.write(r.stdout.decode())
    check(r.returncode == 0, "golden on tokenizer.json: " + r.stderr.decode()[-2000:])

    # The same tokenizer in the older vocab.json + merges.txt form.
    legacy = os.path.join(a.tmp, "legacy")
    shutil.rmtree(legacy, ignore_errors=True)
    os.makedirs(legacy)
    tj = json.load(open(os.path.join(a.model, "tokenizer.json"), encoding="utf-8"))
    json.dump(tj["model"]["vocab"], open(os.path.join(legacy, "vocab.json"), "w", encoding="utf-8"), ensure_ascii=False)
    with open(os.path.join(legacy, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in tj["model"]["merges"]:
            f.write((m if isinstance(m, str) else " ".join(m)) + "\n")
    shutil.copy(os.path.join(a.model, "tokenizer_config.json"), legacy)
    env["DOTS_TOK_DIR"] = legacy
    r = run([a.test_bin], env=env)
    sys.stdout.write(r.stdout.decode())
    check(r.returncode == 0, "golden on vocab.json + merges.txt: " + r.stderr.decode()[-2000:])

    # The same tokenizer as llama.cpp's own GGUF files carry it: the tokenizer.ggml.* arrays only
    # (our LM file of a convert --mmproj pair, without its dotsocr.* keys).
    sys.path.insert(0, os.path.join(HERE, "..", "tools"))
    from gguf_rewrite import rewrite_gguf
    ours, native = os.path.join(a.tmp, "lm.gguf"), os.path.join(a.tmp, "lm_native.gguf")
    r = run([a.dotsocr, "convert", "-q", "--type", "q8_0", a.model, ours, "--mmproj", os.path.join(a.tmp, "mmproj.gguf")])
    if check(r.returncode == 0, "convert: " + r.stderr.decode()[-500:]):
        rewrite_gguf(ours, native)
        env["DOTS_TOK_DIR"] = native
        r = run([a.test_bin], env=env)
        sys.stdout.write(r.stdout.decode())
        check(r.returncode == 0, "golden on tokenizer.ggml.* arrays: " + r.stderr.decode()[-2000:])


def cli(a):
    tok = [a.dotsocr, "tokenize", "--model", a.model]
    detok = [a.dotsocr, "detokenize", "--model", a.model]
    # docs/model.md §6.2: the framing tokens of the prompt
    r = run(tok, "<|user|><|img|><|imgpad|><|endofimg|><|endofuser|><|assistant|>".encode())
    check(r.stdout.decode().split() == ["151670", "151666", "151665", "151667", "151671", "151672"],
          "docs/model.md §6.2 ids: %r" % r.stdout)
    r = run(tok, b"<|endoftext|><|endofassistant|>")
    check(r.stdout.decode().split() == ["151643", "151673"], "EOS ids: %r" % r.stdout)
    # platform.md: known Qwen2.5 ids
    r = run(tok, "Hello, world! It's 2024.".encode())
    check(r.stdout.decode().split() == "9707 11 1879 0 1084 594 220 17 15 17 19 13".split(), "hello ids: %r" % r.stdout)
    # (HF gives 963 for "é" and 3958 for " é"; both spellings must agree)
    r1, r2 = run(tok, " é".encode()), run(tok, " e\u0301".encode())
    check(r1.stdout == r2.stdout == b"3958\n", "NFC: ' é' and ' e+U+0301' both give 3958: %r %r" % (r1.stdout, r2.stdout))
    r1, r2 = run(tok, "é".encode()), run(tok, "e\u0301".encode())
    check(r1.stdout == r2.stdout == b"963\n", "NFC: 'é' and 'e+U+0301' both give 963: %r %r" % (r1.stdout, r2.stdout))
    # round trips through the CLI
    text = "Tables <td>α</td>, $x^2$ 中文 👍🏽\n  end"
    r = run(tok, text.encode())
    r2 = run(detok, r.stdout)
    check(r2.stdout.decode() == text, "detokenize(tokenize(s)) == s: %r" % r2.stdout)
    r = run(tok, ("<|user|>" + text + "<|endofuser|>").encode())
    r2 = run(detok + ["--skip-special"], r.stdout)
    check(r2.stdout.decode() == text, "--skip-special drops special tokens: %r" % r2.stdout)
    r = run(detok, b"151688")
    check(r.returncode == 1 and b"not in the vocabulary" in r.stderr, "padding id 151688 is rejected")
    r = run(detok, b"12 abc")
    check(r.returncode == 1 and len(r.stderr.splitlines()) == 1, "bad id text is a one-line error")
    r = run(detok, "9707 144 226 226".encode())
    check(r.returncode == 0, "detokenize with broken UTF-8 succeeds (U+FFFD)")
    r = run(tok, b"")
    check(r.returncode == 0 and r.stdout == b"\n", "empty input gives an empty line")
    # arbitrary bytes on stdin: a clean error or ids, never a crash
    rng = random.Random(5)
    for i in range(60):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        r = run(tok, blob)
        ok = r.returncode == 0 or (r.returncode == 1 and len(r.stderr.splitlines()) == 1)
        check(ok and b"Sanitizer" not in r.stderr, "random bytes #%d: exit %d %r" % (i, r.returncode, r.stderr[-300:]))
    r = run([a.dotsocr, "tokenize"])
    check(r.returncode == 2, "tokenize without --model is a usage error")


def malformed(a):
    os.makedirs(a.tmp, exist_ok=True)
    base = json.load(open(os.path.join(a.model, "tokenizer.json"), encoding="utf-8"))
    raw = open(os.path.join(a.model, "tokenizer.json"), "rb").read()

    def mut(fn):
        def make():
            d = copy.deepcopy(base)
            fn(d)
            return json.dumps(d, ensure_ascii=False).encode()
        return make

    def first_merge(d, v):
        d["model"]["merges"][0] = v

    cases = [
        ("truncated JSON", lambda: raw[: len(raw) // 2], "unterminated"),
        ("empty file", lambda: b"", "not valid JSON"),
        ("not an object", lambda: b"[1, 2]", "not a JSON object"),
        ("trailing garbage", lambda: raw + b"}", "not valid JSON"),
        ("vocab id is a string", mut(lambda d: d["model"]["vocab"].update({"hello": "12"})), "id must be an integer"),
        ("vocab id negative", mut(lambda d: d["model"]["vocab"].update({"hello": -3})), "id must be an integer"),
        ("vocab not an object", mut(lambda d: d["model"].update(vocab=[1, 2])), "vocab must be a JSON object"),
        ("duplicate ids", mut(lambda d: d["model"]["vocab"].update({"zzzunique": 5})), "is used by both"),
        ("merge of unknown token", mut(lambda d: first_merge(d, "Ġ qqqqzz")), "unknown token"),
        ("merge result not in vocab", mut(lambda d: first_merge(d, "z q")), "not in the vocab"),
        ("merge not a pair", mut(lambda d: first_merge(d, "abc")), "left right"),
        ("merge of wrong type", mut(lambda d: first_merge(d, 7)), "must be"),
        ("merges missing", mut(lambda d: d["model"].pop("merges")), "required"),
        ("model type WordPiece", mut(lambda d: d["model"].update(type="WordPiece")), "only BPE"),
        ("byte_fallback", mut(lambda d: d["model"].update(byte_fallback=True)), "byte_fallback"),
        ("normalizer NFKC", mut(lambda d: d.update(normalizer={"type": "NFKC"})), "normalizer"),
        ("pre_tokenizer Whitespace", mut(lambda d: d.update(pre_tokenizer={"type": "Whitespace"})), "pre_tokenizer"),
        ("regex does not compile", mut(lambda d: d["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex="(unclosed")), "regex"),
        ("decoder WordPiece", mut(lambda d: d.update(decoder={"type": "WordPiece"})), "decoder"),
        ("added token without id", mut(lambda d: d["added_tokens"][0].pop("id")), "added_tokens"),
        ("added token lstrip", mut(lambda d: d["added_tokens"][0].update(lstrip=True)), "not supported"),
        ("added token id clash", mut(lambda d: d["added_tokens"][1].update(id=5)), "already"),
        ("added token twice", mut(lambda d: d["added_tokens"][1].update(content=d["added_tokens"][0]["content"])), "twice"),
        ("vocab lacks a byte", mut(lambda d: d["model"]["vocab"].pop("Ā")), "byte"),
        ("invalid UTF-8 in a token", lambda: raw.replace(b'"hello":', b'"hel\xfflo":', 1), "UTF-8"),
        ("huge id", mut(lambda d: d["model"]["vocab"].update({"hello": 99999999})), "id must be an integer"),
    ]
    for i, (name, make, needle) in enumerate(cases):
        p = os.path.join(a.tmp, "bad%02d.json" % i)
        open(p, "wb").write(make())
        r = run([a.dotsocr, "tokenize", "--model", p], b"hello")
        err = r.stderr.decode(errors="replace").strip()
        lines = err.splitlines()
        ok = (check(r.returncode == 1, "%s: exit %d (%s)" % (name, r.returncode, err[:200]))
              and check(len(lines) == 1 and lines[0].startswith("dotsocr: error: "), "%s: one error line: %r" % (name, lines[:3]))
              and check(needle in lines[0], "%s: %r lacks %r" % (name, lines[0], needle)))
        if ok:
            print("ok   %-28s %s" % (name, lines[0][16:140]))
        os.remove(p)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["golden", "cli", "malformed"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--test-bin")
    a = p.parse_args()
    globals()[a.what](a)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(a.tmp, ignore_errors=True)  # kept only when a check failed
    print("all checks passed")


if __name__ == "__main__":
    main()
