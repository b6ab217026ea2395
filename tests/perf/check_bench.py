#!/usr/bin/python3
"""`dotsocr bench --json` on the tiny model (CTest label `perf`): the command
runs every stage and prints one JSON object with every documented key, each
a positive number (the figures themselves belong to benchmark runs on the
full model, not to tests)."""
import json
import subprocess
import sys

KEYS = ["constraint_ms_per_token", "constraint_pct_of_decode", "vision_s", "vision_gflops", "vision_pct_peak", "prefill_tok_s", "prefill_pct_peak", "decode_tok_s", "decode_gbps",
        "decode_pct_bw", "peak_rss_mb", "peak_bf16_gflops", "dram_gbps", "threads", "weights"]

dotsocr, model = sys.argv[1], sys.argv[2]
r = subprocess.run([dotsocr, "bench", "--model", model, "--image", "112x84", "--decode", "4", "--threads", "2", "--json"],
                   capture_output=True, timeout=600)
if r.returncode != 0:
    sys.exit("bench failed: %s" % r.stderr.decode()[-500:])
d = json.loads(r.stdout)
missing = [k for k in KEYS if k not in d]
bad = [k for k in KEYS if k not in ("weights", "peak_bf16_gflops", "vision_pct_peak", "prefill_pct_peak")
       and not (isinstance(d.get(k), (int, float)) and d[k] > 0)]
if missing or bad or d["threads"] != 2 or d["weights"] not in ("bf16", "f32"):
    sys.exit("bad bench output: missing %s, not positive %s: %s" % (missing, bad, d))
r = subprocess.run([dotsocr, "bench", "--model", model, "--image", "12x9"], capture_output=True)
if r.returncode != 2:
    sys.exit("a too-small --image must be a usage error")
# --batch: one size gives batch / per-sequence keys, a list one object per size
r = subprocess.run([dotsocr, "bench", "--model", model, "--image", "56x56", "--decode", "3", "--threads", "2", "--json",
                    "--batch", "3"], capture_output=True, timeout=600)
b = json.loads(r.stdout) if r.returncode == 0 else {}
if b.get("batch") != 3 or not all(b.get(k, 0) > 0 for k in ("decode_tok_s", "decode_tok_s_per_seq", "batch_speedup", "kv_mb")):
    sys.exit("bench --batch 3: %s %s" % (b, r.stderr.decode()[-300:]))
r = subprocess.run([dotsocr, "bench", "--model", model, "--image", "56x56", "--decode", "3", "--json", "--batch", "1,2"],
                   capture_output=True, timeout=600)
b = json.loads(r.stdout) if r.returncode == 0 else {}
if [x.get("batch") for x in b.get("batches", [])] != [1, 2] or not all(x["speedup"] > 0 for x in b["batches"]):
    sys.exit("bench --batch 1,2: %s" % b)
for bad_batch in ("0", "65", "2,,3", "x"):
    if subprocess.run([dotsocr, "bench", "--model", model, "--batch", bad_batch], capture_output=True).returncode != 2:
        sys.exit("--batch %s must be a usage error" % bad_batch)
print("bench: %s" % d)
