#!/usr/bin/env python3
"""Puts a trained demo model together from the parts a training run sent
back (train.py --part-dir: trained.part-00, -01, ...): the embedding rows no
batch used are the seeded initial values again, bit for bit, and the result
is the model directory train.py --out would have written (docs/train.md).

usage: rebuild_model.py --parts DIR --template MODEL_DIR --out DIR"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import demo_model as dm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", required=True)
    ap.add_argument("--template", required=True, help="a dots model directory with the tokenizer files")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    names = sorted(n for n in os.listdir(a.parts) if n.startswith("trained.part-") and not n.endswith(".tmp"))
    if not names or names != ["trained.part-%02d" % i for i in range(len(names))]:
        sys.exit("rebuild_model.py: %s: expected trained.part-00 .. -NN, found %s" % (a.parts, names))
    whole = os.path.join(a.out + ".parts.tmp")
    os.makedirs(os.path.dirname(os.path.abspath(whole)), exist_ok=True)
    with open(whole, "wb") as f:
        for n in names:
            f.write(open(os.path.join(a.parts, n), "rb").read())
    try:
        part, meta = dm.read_safetensors(whole)
    except Exception as e:  # a truncated or mixed set of parts
        sys.exit("rebuild_model.py: the parts do not make a safetensors file: %s" % e)
    finally:
        os.remove(whole)
    if meta.get("size") not in dm.SIZES:
        sys.exit("rebuild_model.py: unknown model size %r in the parts" % meta.get("size"))
    cfg = dm.make_config(meta["size"])
    tensors = dm.rebuild_tensors(part, meta, cfg)
    dm.write_model_dir(a.out, cfg, tensors, a.template)
    print("rebuild_model.py: %s model (step %s, %d trained embedding rows) -> %s" %
          (meta["size"], meta.get("step", "?"), len(part["trained.embed_rows"][1]), a.out))


if __name__ == "__main__":
    main()
