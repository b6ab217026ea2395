#!/usr/bin/python3
"""Scale-out (CTest label `scale`): `parse --shard` on a collection.

  split       every page in exactly one shard for N = 1..16, the same split
              whatever order the inputs are listed in, shards within one page
              of each other (parse --dry-run)
  concurrent  two runs of the same shard at once, and all shards run at once
              into one folder: every page's outputs exist once and equal a
              single-process parse byte for byte; `dotsocr shards` totals them
  slurm       a one-node Slurm cluster (Debian's slurm-wlm and munge, in a
              scratch folder, stopped at the end) runs the array template
              scripts/slurm/dotsocr-array.sbatch with 4 tasks; one task is
              cancelled mid-run and resubmitted alone; the outputs equal a
              single-process parse. Skipped (77) without root or slurm.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import time

import fitz
from PIL import Image

FAILS = []
A = None
OPTS = ["--mode", "layout-all", "--max-new-tokens", "120", "--threads", "1"]


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def make_collection(d):
    os.makedirs(d)
    for i, n in enumerate((3, 4, 5)):
        doc = fitz.open()
        for p in range(n):
            pg = doc.new_page(width=200 + 20 * i, height=260)
            pg.insert_text((20, 40), "doc %d page %d" % (i, p + 1), fontsize=11)
        doc.save(os.path.join(d, "report%d.pdf" % i))
    for i in range(3):
        Image.new("RGB", (300 + 40 * i, 200), (255, 255 - 30 * i, 255)).save(os.path.join(d, "scan%d.png" % i))
    frames = [Image.new("RGB", (240, 180 + 10 * k), (250, 250, 250)) for k in range(2)]
    frames[0].save(os.path.join(d, "fax.tif"), save_all=True, append_images=frames[1:])
    return sorted(os.path.join(d, f) for f in os.listdir(d))  # 3+4+5 + 3 + 2 = 17 pages


def dry_run(inputs, spec):
    r = subprocess.run([A.dotsocr, "parse", "--model", A.model, *inputs, "-o", os.path.join(A.tmp, "dry"), "--dry-run",
                        "--shard", spec], capture_output=True, timeout=120)
    if r.returncode != 0:
        return None
    return [tuple(line.split("\t")[:2]) for line in r.stdout.decode().splitlines()]


def test_split():
    inputs = make_collection(os.path.join(A.tmp, "col"))
    everything = dry_run(inputs, "0/1")
    check(everything is not None and len(everything) == 17 and len(set(everything)) == 17, "one shard holds all 17 pages")
    shuffled = list(inputs)
    random.Random(5).shuffle(shuffled)
    for n in range(1, 17):
        parts = [dry_run(inputs, "%d/%d" % (k, n)) for k in range(n)]
        flat = [p for part in parts for p in part or []]
        sizes = [len(p or []) for p in parts]
        check(sorted(flat) == sorted(everything) and len(flat) == len(set(flat)), "N=%d: every page in exactly one shard" % n)
        check(max(sizes) - min(sizes) <= 1, "N=%d: balanced within one page: %s" % (n, sizes))
        again = [dry_run(shuffled[::-1] if k % 2 else shuffled, "%d/%d" % (k, n)) for k in range(n)]
        check([sorted(x or []) for x in again] == [sorted(x or []) for x in parts], "N=%d: the same split whatever the input order" % n)
    r = subprocess.run([A.dotsocr, "parse", "--model", A.model, *inputs, "-o", A.tmp, "--shard", "4/4"], capture_output=True)
    check(r.returncode == 2 and b"0 <= K < N" in r.stderr, "--shard 4/4 is refused: %s" % r.stderr.decode().strip())
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_COUNT="4")
    r = subprocess.run([A.dotsocr, "parse", "--model", A.model, *inputs, "-o", A.tmp, "--dry-run", "--shard", "auto"],
                       capture_output=True, env=env)
    check(r.returncode == 0 and sorted(tuple(l.split("\t")[:2]) for l in r.stdout.decode().splitlines()) == sorted(dry_run(inputs, "2/4")),
          "--shard auto takes K = ID - MIN and N from Slurm")


def outputs(d):
    """Every output file and its bytes, with the folder's own path taken out of the records."""
    got = {}
    for f in sorted(os.listdir(d)):
        if f.startswith("."):
            continue
        data = open(os.path.join(d, f), "rb").read()
        got[f] = data.replace(os.path.abspath(d).encode(), b"OUT").replace(d.encode(), b"OUT")
    return got


def reference(inputs):
    ref = os.path.join(A.tmp, "ref")
    if not os.path.isdir(ref):
        r = subprocess.run([A.dotsocr, "parse", "-q", "--model", A.model, *inputs, "-o", ref, *OPTS], capture_output=True,
                           timeout=1800)
        check(r.returncode == 0, "the single-process parse: %s" % r.stderr.decode()[-300:])
    return outputs(ref)


def same_as_reference(d, inputs, what):
    ref, got = reference(inputs), outputs(d)
    missing = sorted(set(ref) - set(got))
    extra = sorted(set(got) - set(ref))
    differ = sorted(f for f in set(ref) & set(got) if ref[f] != got[f])
    check(not missing and not extra and not differ and len(ref) > 60,
          "%s: %d files, byte-identical to one process (missing %s, extra %s, differ %s)" % (what, len(got), missing[:3], extra[:3],
                                                                                            differ[:3]))


def test_concurrent():
    inputs = make_collection(os.path.join(A.tmp, "col"))
    out = os.path.join(A.tmp, "same_shard")
    args = [A.dotsocr, "parse", "-q", "--model", A.model, *inputs, "-o", out, *OPTS, "--resume"]
    procs = [subprocess.Popen(args + ["--shard", "%d/3" % k], stderr=subprocess.PIPE) for k in (1, 1)]
    errs = [p.communicate(timeout=1800)[1].decode() for p in procs]
    check(all(p.returncode == 0 for p in procs), "two runs of shard 1/3 at once both succeed: %s" % [e[-200:] for e in errs])
    procs = [subprocess.Popen(args + ["--shard", "%d/3" % k], stderr=subprocess.PIPE) for k in (0, 2, 1)]
    errs = [p.communicate(timeout=1800)[1].decode() for p in procs]
    check(all(p.returncode == 0 for p in procs), "the three shards at once succeed: %s" % [e[-200:] for e in errs])
    same_as_reference(out, inputs, "three shards and a duplicate")
    r = subprocess.run([A.dotsocr, "shards", out], capture_output=True)
    text = r.stdout.decode()
    check(r.returncode == 0 and "3 of 3 shard file(s), 3 finished" in text and "0 failed" in text,
          "dotsocr shards totals the three: %s" % text.strip().splitlines()[-1:])


def test_slurm():
    if os.geteuid() != 0 or not shutil.which("slurmctld") or not shutil.which("munged"):
        print("skipped: needs root and slurm-wlm + munge")
        sys.exit(77)
    inputs = make_collection(os.path.join(A.tmp, "col"))
    listing = os.path.join(A.tmp, "inputs.txt")
    open(listing, "w").write("# the collection: a directory\n" + os.path.dirname(inputs[0]) + "\n")
    cluster = os.path.join(A.tmp, "slurm")
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["sh", os.path.join(here, "slurm_cluster.sh"), "start", cluster], capture_output=True, timeout=120)
    if not check(r.returncode == 0, "the Slurm cluster starts: %s" % r.stderr.decode()[-300:]):
        subprocess.run(["sh", os.path.join(here, "slurm_cluster.sh"), "stop", cluster])
        return
    env = dict(os.environ, SLURM_CONF=r.stdout.decode().strip().splitlines()[-1])
    out = os.path.join(A.tmp, "slurm_out")
    os.makedirs(out)
    job_env = dict(env, DOTSOCR=A.dotsocr, MODEL=A.model, INPUTS=listing, OUT=out, SHARDS="4",
                   # one page at a time: the test cancels a task between two of its pages
                   DOTSOCR_ARGS=" ".join(OPTS + ["--batch", "1"]))
    template = os.path.join(A.source, "scripts", "slurm", "dotsocr-array.sbatch")
    try:
        def sbatch(array):
            r = subprocess.run(["sbatch", "--parsable", "--array=" + array, "--cpus-per-task=1", "-D", A.tmp,
                                "-o", os.path.join(A.tmp, "task-%A_%a.log"), template], capture_output=True, env=job_env)
            check(r.returncode == 0, "sbatch --array=%s: %s" % (array, r.stderr.decode().strip()))
            return r.stdout.decode().strip().split(";")[0]

        def wait(job, timeout=1200):
            t0 = time.time()
            while time.time() - t0 < timeout:
                q = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, env=env).stdout.decode().strip()
                if not q:
                    return True
                time.sleep(1)
            return False

        job = sbatch("0-3")
        # cancel task 1 once it has finished a page (its progress file says so)
        progress = os.path.join(out, ".dotsocr-shard-1-of-4.json")
        t0 = time.time()
        while time.time() - t0 < 600 and not (os.path.exists(progress) and '"pages_done": 0' not in open(progress).read()):
            time.sleep(0.2)
        r = subprocess.run(["scancel", "%s_1" % job], capture_output=True, env=env)
        check(r.returncode == 0, "task 1 cancelled mid-run")
        check(wait(job), "the array finishes")
        import json
        p1 = json.load(open(progress)) if os.path.exists(progress) else {}
        check(p1.get("finished") is False, "task 1 was stopped before its end: %s" % p1)
        job2 = sbatch("1")
        check(wait(job2), "task 1 resubmitted alone finishes")
        p1 = json.load(open(progress)) if os.path.exists(progress) else {}
        check(p1.get("finished") is True and p1.get("pages_failed") == 0, "task 1 finished on the rerun: %s" % p1)
        same_as_reference(out, inputs, "4 Slurm tasks, one cancelled and rerun")
        r = subprocess.run([A.dotsocr, "shards", out], capture_output=True)
        check(r.returncode == 0, "dotsocr shards: all 4 finished: %s" % r.stdout.decode().strip().splitlines()[-1:])
    finally:
        subprocess.run(["scancel", "--user=root"], capture_output=True, env=env)
        subprocess.run(["sh", os.path.join(here, "slurm_cluster.sh"), "stop", cluster])


def main():
    global A
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["split", "concurrent", "slurm"])
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--tmp", required=True)
    A = p.parse_args()
    A.dotsocr = os.path.abspath(A.dotsocr)
    A.tmp = os.path.abspath(A.tmp)
    shutil.rmtree(A.tmp, ignore_errors=True)
    os.makedirs(A.tmp)
    globals()["test_" + A.what]()
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    shutil.rmtree(A.tmp, ignore_errors=True)
    print("all checks passed")


if __name__ == "__main__":
    main()
