#!/usr/bin/python3
"""Language model and generation checks (CTest label `lm`): `dotsocr run`
against the PyTorch reference goldens on the tiny model, fp32.

  golden  5 images x 4 modes: prompt ids identical, prefill logits (last
          position) and 32 teacher-forced decode steps within max |diff|
          1e-4, greedy sequences of 64 tokens identical
  stops   generation stops at an EOS id of generation_config.json, at
          --max-new-tokens, and on Ctrl-C keeping the text produced so far
Exits 77 (skipped) without goldens.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

FAILS = []
TOL = 1e-4
IMAGES = ["square", "smallest", "landscape", "portrait", "elongated"]
MODES = ["layout-all", "layout-only", "ocr", "grounding"]


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def run(a, image, mode, out, extra=()):
    args = [a.dotsocr, "run", "-q", "--model", a.model, image, "--mode", mode, "--dump", out] + list(extra)
    if mode == "grounding":
        args += ["--bbox", "10,12,40,50"]
    return subprocess.run(args, capture_output=True, timeout=600)


def test_golden(a):
    worst_prefill = worst_teacher = 0.0
    for img in IMAGES:
        for mode in MODES:
            gold = os.path.join(a.golden, "%s_%s" % (img, mode))
            out = os.path.join(a.tmp, "%s_%s" % (img, mode))
            image = os.path.join(a.golden, img + ".png")
            r = run(a, image, mode, out, ["--max-new-tokens", "64"])
            if not check(r.returncode == 0, "%s %s: %s" % (img, mode, r.stderr.decode()[-300:])):
                continue
            ids, gids = np.load(os.path.join(out, "prompt_ids.npy")), np.load(os.path.join(gold, "prompt_ids.npy"))
            check(ids.shape == gids.shape and (ids == gids).all(), "%s %s: prompt ids differ" % (img, mode))
            toks, gtoks = np.load(os.path.join(out, "tokens.npy")), np.load(os.path.join(gold, "tokens.npy"))
            same = toks.shape == gtoks.shape and (toks == gtoks).all()
            check(same, "%s %s: greedy tokens differ from the reference (%d vs %d tokens, first difference at %s)" % (
                img, mode, len(toks), len(gtoks), next((i for i in range(min(len(toks), len(gtoks))) if toks[i] != gtoks[i]), "end")))
            d = float(np.abs(np.load(os.path.join(out, "logits_prefill.npy")) - np.load(os.path.join(gold, "logits_prefill.npy"))).max())
            worst_prefill = max(worst_prefill, d)
            check(d <= TOL, "%s %s: prefill logits max |diff| %.3g" % (img, mode, d))
            # teacher forcing: the reference's 32 tokens fed back
            forced = os.path.join(out, "forced.npy")
            np.save(forced, gtoks[:32].astype(np.int32))
            r = run(a, image, mode, os.path.join(out, "tf"), ["--teacher-force", forced])
            if check(r.returncode == 0, "%s %s teacher forcing: %s" % (img, mode, r.stderr.decode()[-300:])):
                t = np.load(os.path.join(out, "tf", "logits_teacher.npy"))
                g = np.load(os.path.join(gold, "logits_teacher.npy"))
                if check(t.shape == g.shape, "%s %s: teacher logits shape %s vs %s" % (img, mode, t.shape, g.shape)):
                    d = float(np.abs(t - g).max())
                    worst_teacher = max(worst_teacher, d)
                    check(d <= TOL, "%s %s: teacher-forced logits max |diff| %.3g" % (img, mode, d))
        print("%-10s prompt ids, 64 greedy tokens, prefill and 32 teacher-forced steps: checked for %d modes" % (img, len(MODES)))
    print("worst max |diff|: prefill logits %.2e, teacher-forced logits %.2e" % (worst_prefill, worst_teacher))


def test_stops(a):
    gold = os.path.join(a.golden, "square_ocr")
    image = os.path.join(a.golden, "square.png")
    toks = np.load(os.path.join(gold, "tokens.npy"))
    # a copy of the model whose EOS is the reference's 5th greedy token
    m = os.path.join(a.tmp, "eos_model")
    os.makedirs(m)
    for f in os.listdir(a.model):
        src = os.path.join(a.model, f)
        if f != "generation_config.json":
            os.symlink(src, os.path.join(m, f))
    json.dump({"eos_token_id": [int(toks[4])], "max_length": 32768}, open(os.path.join(m, "generation_config.json"), "w"))
    r = subprocess.run([a.dotsocr, "run", "--model", m, image, "--mode", "ocr", "--dump", os.path.join(a.tmp, "eos")],
                       capture_output=True, timeout=600)
    got = np.load(os.path.join(a.tmp, "eos", "tokens.npy")) if r.returncode == 0 else None
    check(r.returncode == 0 and got is not None and list(got) == list(toks[: list(toks).index(toks[4]) + 1]) and b"(eos)" in r.stderr,
          "stops at the generation_config EOS: %s %s" % (got, r.stderr.decode()[-200:]))
    r = subprocess.run([a.dotsocr, "run", "--model", a.model, image, "--mode", "ocr", "--max-new-tokens", "7",
                        "--dump", os.path.join(a.tmp, "max")], capture_output=True, timeout=600)
    check(r.returncode == 0 and len(np.load(os.path.join(a.tmp, "max", "tokens.npy"))) == 7 and b"(max-new-tokens)" in r.stderr,
          "stops at --max-new-tokens")
    # Ctrl-C: stop, keep the text, exit 130
    p = subprocess.Popen([a.dotsocr, "run", "--model", a.model, image, "--mode", "ocr", "--max-new-tokens", "100000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    check(p.returncode == 130 and len(out) > 0 and b"(interrupted)" in err,
          "Ctrl-C stops generation and keeps the text (exit %s, %d bytes, %r)" % (p.returncode, len(out), err[-200:]))
    r = subprocess.run([a.dotsocr, "run", "--model", a.model, image, "--mode", "grounding"], capture_output=True)
    check(r.returncode == 2, "grounding without --bbox is a usage error")
    r = subprocess.run([a.dotsocr, "run", "--model", a.model, image, "--temperature", "0.7", "--top-p", "0.9", "--seed", "3",
                        "--max-new-tokens", "12", "--dump", os.path.join(a.tmp, "s1")], capture_output=True)
    r2 = subprocess.run([a.dotsocr, "run", "--model", a.model, image, "--temperature", "0.7", "--top-p", "0.9", "--seed", "3",
                         "--max-new-tokens", "12", "--dump", os.path.join(a.tmp, "s2")], capture_output=True)
    if check(r.returncode == 0 and r2.returncode == 0, "sampling runs"):
        s1, s2 = np.load(os.path.join(a.tmp, "s1", "tokens.npy")), np.load(os.path.join(a.tmp, "s2", "tokens.npy"))
        check((s1 == s2).all() and (s1 < 151688).all(), "sampling with a seed is reproducible and never emits padding ids")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["golden", "stops"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--golden", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    if not os.path.isdir(os.path.join(a.golden, "square_ocr")):
        print("skipped: no goldens (the reference tests generate them; they need torch)")
        sys.exit(77)
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    globals()["test_" + a.what](a)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(a.tmp, ignore_errors=True)  # kept only when a check failed
    print("all checks passed")


if __name__ == "__main__":
    main()
