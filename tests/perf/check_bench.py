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
print("bench: %s" % d)
