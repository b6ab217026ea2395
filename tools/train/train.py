#!/usr/bin/env python3
"""Trains the small dots.ocr-architecture demo model on synthetic pages
(docs/train.md), for a fixed wall-clock budget, and writes a checkpoint in the
official layout that dotsocr loads unchanged.

Pages come from synth_pages.py, made on the fly by DataLoader workers (one
page size per batch, so vision rows need no padding; answers are padded at
the end, where causal attention cannot see them). The inputs are exactly
what dotsocr feeds the model: smart_resize + Pillow bicubic, the official
patch order, the official layout-all prompt (tests/reference, the same
independent reference the engine is checked against). While the workers
cannot keep up, recent batches are reused (at most --max-reuse times each).

  GPU:  train.py --size demo --seconds 480 --out DIR --part-dir OUT
  CPU:  train.py --size smoke --steps 4 ...   (the smoke test, seconds)

--out DIR gets the full model directory (bf16); --part-dir gets what a
remote run sends back: every tensor but the embedding rows no batch used,
which stay their seeded initial values (rebuild_model.py puts it together),
in files of at most 15 MiB. Both are written every --checkpoint-every seconds
and at the end, each file atomically."""
import argparse
import contextlib
import math
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import demo_model as dm  # noqa: E402
import synth_pages  # noqa: E402
from ref_preprocess import IMAGE_MEAN, IMAGE_STD, positions, resize_image, smart_resize  # noqa: E402

PART_LIMIT = 15 << 20


class WorkersStopped(Exception):
    pass


def layout_prompt():
    # dots_ref needs torch, which is here; its PROMPTS are the official strings verbatim
    from dots_ref import PROMPTS
    return PROMPTS["layout-all"]


class Tokenizer:
    """HF tokenizers when installed (the GPU machine), else `dotsocr tokenize`."""

    def __init__(self, model_dir, dotsocr):
        self.dir, self.dotsocr, self.hf = model_dir, dotsocr, None
        try:
            from tokenizers import Tokenizer as HF
            self.hf = HF.from_file(os.path.join(model_dir, "tokenizer.json"))
        except ImportError:
            if not dotsocr:
                raise SystemExit("train.py: no Python tokenizers here: give --dotsocr (the built dotsocr binary)")

    def encode(self, text):
        if self.hf:
            return self.hf.encode(text, add_special_tokens=False).ids
        r = subprocess.run([self.dotsocr, "tokenize", "--model", self.dir], input=text.encode(), capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("dotsocr tokenize: " + r.stderr.decode())
        return [int(t) for t in r.stdout.split()]


class Pages(torch.utils.data.IterableDataset):
    """Endless batches of same-sized synthetic pages: (uint8 images [B, H', W', 3], answer ids)."""

    def __init__(self, a):
        self.a = a

    def __iter__(self):
        a = self.a
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        rng = random.Random(a.seed * 100003 + wid + 1)
        tok = Tokenizer(a.template, a.dotsocr)
        while True:
            w = rng.randint(a.min_side, a.max_side)
            h = int(w * (rng.uniform(1.2, 1.5) if rng.random() < 0.8 else rng.uniform(0.68, 0.8)))
            hb, wb = smart_resize(h, w)
            n = hb * wb // 784
            count = max(1, min(a.max_pages, a.image_tokens // n))
            imgs, answers = [], []
            for _ in range(count):
                p = synth_pages.make_page(rng, w, h)
                imgs.append(np.asarray(resize_image(p.img), dtype=np.uint8))
                answers.append(tok.encode(synth_pages.answer(p)[0]))
            batch = np.stack(imgs)
            # through shared memory as a tensor, or pickled through the worker's pipe as an array
            yield (batch if a.no_shm else torch.from_numpy(batch)), answers


def patchify(images, device):
    """uint8 [B, H, W, 3] -> rows [B, N, 588] in the official order (ref_preprocess.patch_rows)."""
    x = images.to(device).double() * (1 / 255)
    x = x.float()
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32, device=device)
    std = torch.tensor(IMAGE_STD, dtype=torch.float32, device=device)
    x = ((x - mean) / std).permute(0, 3, 1, 2)
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // 28, 2, 14, W // 28, 2, 14).permute(0, 2, 5, 3, 6, 1, 4, 7)
    return x.reshape(B, (H // 14) * (W // 14), C * 196)


def prefix_ids(n_image, prompt_ids):
    t = dm.TOK
    return [t["user"], t["img"]] + [t["imgpad"]] * n_image + [t["endofimg"]] + prompt_ids + [t["endofuser"], t["assistant"]]


def batch_loss(model, images, answers, prompt_ids, device, autocast, seen=None):
    """Mean cross entropy over every answer token and the closing <|endofassistant|>."""
    B, Hb, Wb, _ = images.shape
    gh, gw = Hb // 14, Wb // 14
    rows = patchify(images, device)
    pos = torch.from_numpy(positions(gh, gw)).to(device)
    prefix = prefix_ids(gh * gw // 4, prompt_ids)
    P = len(prefix)
    targets = [list(ans) + [dm.TOK["endofassistant"]] for ans in answers]
    T = max(len(t) for t in targets)
    ids = torch.full((B, P + T - 1), dm.TOK["endoftext"], dtype=torch.long)
    tgt = torch.full((B, T), -100, dtype=torch.long)
    for i, t in enumerate(targets):
        ids[i, :P] = torch.tensor(prefix)
        ids[i, P:P + len(t) - 1] = torch.tensor(t[:-1])
        tgt[i, :len(t)] = torch.tensor(t)
    if seen is not None:
        used = torch.unique(torch.cat([ids[ids != dm.TOK["imgpad"]], tgt[tgt >= 0]]))
        seen[used] = True
    ids, tgt = ids.to(device), tgt.to(device)
    with autocast():
        vis = model.vision_tower(rows, pos)
        h = model.hidden(model.embed(ids, vis))[:, P - 1:]
        mask = tgt >= 0
        hv, tv = h[mask], tgt[mask]
        E = model.model.embed_tokens.weight

        def ce(hc, tc):
            return F.cross_entropy((hc @ E.t().to(hc.dtype)).float(), tc, reduction="sum")

        total = 0.0
        for i in range(0, hv.shape[0], 4096):  # the 151,936-wide logits a slice at a time, recomputed for backward
            hc, tc = hv[i:i + 4096], tv[i:i + 4096]
            total = total + (torch.utils.checkpoint.checkpoint(ce, hc, tc, use_reentrant=False) if hc.requires_grad
                             else ce(hc, tc))
    return total / tv.numel(), int(tv.numel())


@torch.no_grad()
def greedy(model, image, prompt_ids, device, autocast, max_new):
    """Greedy decode of one page without a cache (a look at what the model reads, for the log)."""
    resized = torch.from_numpy(np.asarray(resize_image(image), dtype=np.uint8).copy())[None]
    gh, gw = resized.shape[1] // 14, resized.shape[2] // 14
    prefix = prefix_ids(gh * gw // 4, prompt_ids)
    out = []
    with autocast():
        vis = model.vision_tower(patchify(resized, device), torch.from_numpy(positions(gh, gw)).to(device))
        for _ in range(max_new):
            ids = torch.tensor([prefix + out], device=device)
            h = model.hidden(model.embed(ids, vis))[0, -1]
            t = int(model.logits(h[None])[0, :151688].argmax())
            if t in (dm.TOK["endofassistant"], dm.TOK["endoftext"]):
                break
            out.append(t)
    return out


def train_step(model, images, answers, prompt_ids, device, autocast, seen, split):
    """Forward and backward over the batch in split pieces (gradients summed,
    weighted by their tokens). Returns (mean loss, answer tokens)."""
    B = images.shape[0]
    bounds = [B * i // split for i in range(split + 1)]
    total = sum(len(t) + 1 for t in answers)
    loss_sum = 0.0
    for lo, hi in zip(bounds, bounds[1:]):
        if hi == lo:
            continue
        loss, n = batch_loss(model, images[lo:hi], answers[lo:hi], prompt_ids, device, autocast, seen)
        (loss * (n / total)).backward()
        loss_sum += float(loss) * n
    return loss_sum / total, total


def write_outputs(model, a, cfg, seen, step, log):
    tensors = dm.checkpoint_tensors(model)
    if a.out:
        dm.write_model_dir(a.out, cfg, tensors, a.template)
    if a.part_dir:
        part, meta = dm.trained_part(tensors, seen.numpy(), a.seed)
        meta["step"] = str(step)
        meta["size"] = a.size
        os.makedirs(a.part_dir, exist_ok=True)
        whole = os.path.join(a.part_dir, "trained.safetensors.tmp")
        dm.write_safetensors(whole, part, meta)
        data = open(whole, "rb").read()
        os.remove(whole)
        # every piece is written beside the old ones first; then the swap is a few renames (and
        # the data's sha256 in the header tells rebuild_model.py a set mixed by a kill between them)
        names = []
        for k in range(0, len(data), PART_LIMIT):
            name = os.path.join(a.part_dir, "trained.part-%02d" % (k // PART_LIMIT))
            with open(name + ".tmp", "wb") as f:
                f.write(data[k:k + PART_LIMIT])
            names.append(name)
        for name in names:
            os.replace(name + ".tmp", name)
        for old in os.listdir(a.part_dir):
            if old.startswith("trained.part-") and os.path.join(a.part_dir, old) not in names:
                os.remove(os.path.join(a.part_dir, old))
    log("saved step %d (%d embedding rows trained)" % (step, int(seen.sum())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(dm.SIZES), default="demo")
    ap.add_argument("--template", required=True, help="a dots model directory: its tokenizer files are used and copied")
    ap.add_argument("--out", help="write the model directory here")
    ap.add_argument("--part-dir", help="write the trained part (for a remote run to send back) here")
    ap.add_argument("--init-from", help="start from this model directory (written by this script) instead of seeded weights")
    ap.add_argument("--seconds", type=float, default=0, help="wall-clock budget, the writing included (0: none)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: none)")
    ap.add_argument("--checkpoint-every", type=float, default=120)
    ap.add_argument("--image-tokens", type=int, default=40000, help="merged image tokens per batch (sets pages per batch)")
    ap.add_argument("--max-pages", type=int, default=64)
    ap.add_argument("--min-side", type=int, default=448)
    ap.add_argument("--max-side", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--split", type=int, default=1, help="each batch in this many pieces (doubled on running out of memory)")
    ap.add_argument("--safe", action="store_true", help="no fused optimizer, no pinned memory, batches in 2+ pieces (a retry's settings)")
    ap.add_argument("--prefetch", type=int, default=3, help="batches each worker makes ahead (fewer if /dev/shm is small)")
    ap.add_argument("--no-shm", action="store_true", help="send batches through pipes, not shared memory")
    ap.add_argument("--max-reuse", type=int, default=4, help="uses of one batch while the workers are behind")
    ap.add_argument("--fixed-batch", action="store_true", help="train on the first batch only (tests: the loss must fall)")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dotsocr", help="dotsocr binary, to tokenize where Python's tokenizers is missing")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--show-tokens", type=int, default=0, help="at the end, greedy-decode a held-back page this far into the log")
    a = ap.parse_args()
    if not a.out and not a.part_dir:
        ap.error("give --out, --part-dir or both")
    if a.seconds <= 0 and a.steps <= 0:
        ap.error("give --seconds or --steps")
    if not 200 <= a.min_side <= a.max_side <= 4000:
        ap.error("200 <= --min-side <= --max-side <= 4000")
    t0 = time.time()

    def log(msg):
        print("[%7.1f s] %s" % (time.time() - t0, msg), flush=True)

    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    cfg = dm.make_config(a.size)
    model = dm.DotsOCR(cfg)
    model.init_weights(a.seed)
    if a.init_from:
        dm.load_model_dir(model, a.init_from)
    model.to(device)
    seen = torch.zeros(cfg["vocab_size"], dtype=torch.bool)
    if a.init_from:  # rows that differ from the seeded values were trained before
        init = torch.from_numpy(dm.initial_embedding(a.seed, cfg["vocab_size"], cfg["hidden_size"]))
        seen |= (model.model.embed_tokens.weight.detach().cpu() != init.to(torch.bfloat16).float()).any(1)
    n_params = sum(p.numel() for p in model.parameters())
    log("model %s: %.1f M parameters (%.1f M in the embedding), device %s%s" %
        (a.size, n_params / 1e6, model.model.embed_tokens.weight.numel() / 1e6, device,
         ", from %s (%d embedding rows trained)" % (a.init_from, int(seen.sum())) if a.init_from else ""))

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "model.embed_tokens.weight"]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and n != "model.embed_tokens.weight")]
    kw = {"fused": True} if cuda and not a.safe and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **kw)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    prompt_ids = Tokenizer(a.template, a.dotsocr).encode(layout_prompt())

    if a.workers > 0:
        # each worker keeps prefetch batches in /dev/shm: fewer where it is small, none where it is tiny
        batch_bytes = a.image_tokens * 784 * 3
        try:
            vfs = os.statvfs("/dev/shm")
            shm = vfs.f_bavail * vfs.f_frsize
        except OSError:
            shm = 0
        prefetch = max(1, min(a.prefetch, int(shm * 0.5 // max(1, a.workers * batch_bytes))))
        if not a.no_shm and shm < 2 * a.workers * batch_bytes:
            a.no_shm = True
        log("/dev/shm has %.1f GB free: %s, %d batches ahead per worker" %
            (shm / 1e9, "batches through pipes" if a.no_shm else "batches in shared memory", prefetch))
        extra = {"collate_fn": lambda b: b} if a.no_shm else {}
        loader = torch.utils.data.DataLoader(Pages(a), batch_size=None, num_workers=a.workers,
                                             pin_memory=cuda and not a.safe and not a.no_shm,
                                             persistent_workers=True, prefetch_factor=prefetch, **extra)
    else:
        loader = torch.utils.data.DataLoader(Pages(a), batch_size=None)
    fresh = queue.Queue(maxsize=8)
    stop = threading.Event()

    batches = iter(loader)  # the workers fork here, from the main thread, not from the feeder

    feed_error = []

    def feed():
        try:
            for b in batches:
                while not stop.is_set():
                    try:
                        fresh.put(b, timeout=0.5)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
        except Exception as e:  # a worker failed: the main loop reports it
            feed_error.append(e)

    def wait_fresh():
        while True:
            try:
                return fresh.get(timeout=1.0)
            except queue.Empty:
                if feed_error or not feeder.is_alive():
                    raise WorkersStopped("the page workers stopped: %r" % (feed_error[:1],))
                if interrupted:
                    raise WorkersStopped("SIGTERM while waiting for pages")

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    interrupted = []
    signal.signal(signal.SIGTERM, lambda *_: interrupted.append(1))

    reserve = 15.0 if a.size == "demo" else 2.0  # seconds kept for the final write
    replay, step, last_save = [], 0, time.time()
    pages = tokens = reused = skipped = 0
    failed = 0
    split, lr_scale, lv = max(a.split, 2 if a.safe else 1), 1.0, float("nan")
    t_train = time.time()
    first_loss = window = None
    window_n = 0
    while True:
        if a.steps and step >= a.steps:
            break
        if a.seconds and time.time() - t0 > a.seconds - reserve:
            break
        if interrupted:
            log("SIGTERM: writing and stopping")
            break
        if a.fixed_batch and replay:
            batch = replay[0]
        else:
            try:
                batch = {"data": fresh.get_nowait(), "uses": 0}
            except queue.Empty:
                usable = [b for b in replay if b["uses"] < a.max_reuse]
                if usable:
                    batch = random.choice(usable)
                    reused += 1
                else:
                    try:
                        batch = {"data": wait_fresh(), "uses": 0}
                    except WorkersStopped as e:  # keep what was learnt
                        log("%s: writing and stopping" % e)
                        failed = 3
                        break
            if batch["uses"] == 0:
                replay = (replay + [batch])[-16:]
        batch["uses"] += 1
        images, answers = batch["data"]
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
            batch["data"] = (images, answers)
        frac = min(1.0, (time.time() - t_train) / max(1.0, a.seconds - (t_train - t0) - reserve)) if a.seconds \
            else step / max(1, a.steps)
        lr = a.lr * lr_scale * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        opt.zero_grad(set_to_none=True)
        try:
            lv, n_tok = train_step(model, images, answers, prompt_ids, device, autocast, seen, split)
        except RuntimeError as e:  # out of GPU memory: the same batch again in more pieces
            if "out of memory" not in str(e) or split >= images.shape[0]:
                raise
            opt.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            split *= 2
            log("out of memory at %dx%d x%d: batches now in %d pieces" % (images.shape[2], images.shape[1],
                                                                          images.shape[0], split))
            continue
        model.model.embed_tokens.weight.grad[~seen.to(device)] = 0  # unused rows keep their seeded values
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        if not (math.isfinite(lv) and math.isfinite(norm)):  # a step that would spoil the weights is skipped
            skipped += 1
            lr_scale *= 0.5
            log("step %d: loss %s, gradient norm %s: skipped, learning rate now x%.3g" % (step + 1, lv, norm, lr_scale))
            if skipped >= 20:
                log("20 steps skipped: stopping")
                break
            continue
        opt.step()
        step += 1
        pages += images.shape[0]
        tokens += n_tok
        first_loss = lv if first_loss is None else first_loss
        window = lv if window is None else window + lv
        window_n += 1
        if step % a.log_every == 0 or step == 1 or (a.steps and step == a.steps):
            el = time.time() - t_train
            log("step %d loss %.5f (mean of %d: %.4f) lr %.2e | %dx%d x%d | %.1f pages/s, %.0f answer tok/s, %d reused" %
                (step, lv, window_n, window / window_n, lr, images.shape[2], images.shape[1], images.shape[0],
                 pages / el, tokens / el, reused))
            window, window_n = None, 0
        if a.checkpoint_every and time.time() - last_save > a.checkpoint_every:
            write_outputs(model, a, cfg, seen, step, log)
            last_save = time.time()
    stop.set()
    log("done: %d steps, %d pages (%d reused batches), first loss %.4f, last %.4f" %
        (step, pages, reused, first_loss if first_loss is not None else float("nan"), lv if step else float("nan")))
    write_outputs(model, a, cfg, seen, step, log)
    if a.show_tokens:
        model.eval()
        p = synth_pages.make_page(random.Random(-1), 840, 1100)
        got = greedy(model, p.img, prompt_ids, device, autocast, a.show_tokens)
        tok = Tokenizer(a.template, a.dotsocr)
        text = tok.hf.decode(got, skip_special_tokens=False) if tok.hf else str(got)
        log("a held-back page, truth:  %s" % synth_pages.answer(p)[0][:600])
        log("a held-back page, greedy: %s" % text[:600])
    log("finished")
    os._exit(failed)  # the data workers and the feeder thread end with the process


if __name__ == "__main__":
    sys.exit(main())
