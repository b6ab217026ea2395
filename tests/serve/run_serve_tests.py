#!/usr/bin/python3
"""dotsocr serve (label serve), on the tiny model, on loopback only; every
server a case starts is stopped by it (SIGTERM, then SIGKILL).

  openai      the `openai` npm client sends the official request shape for
              every mode (plain and streamed): the content equals `dotsocr run`
              on the same image, mode and budget at temperature 0
  concurrent  16 concurrent requests, then 64 at once: the answers of
              sequential runs
  queue       a full queue answers 429 with Retry-After; a client that hangs
              up (streamed or not) frees its slot and its run is cancelled
  errors      every malformed request gets its 4xx OpenAI-style error, and the
              next good request still succeeds; the placeholder rules
  parse       POST /v1/parse, raw and multipart: the pages `dotsocr parse`
              and `dotsocr run` give
  sigterm     SIGTERM mid-load: the requests in hand complete, new
              connections are refused, exit 0
  balancer    two servers behind haproxy: a mixed load has no failed request
              when one server gets SIGTERM mid-load
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from PIL import Image, ImageDraw

FAILED = []
SERVERS = []
OPENAI_VERSION = "4.95.0"
PLACEHOLDER = "<|img|><|imgpad|><|endofimg|>"


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        FAILED.append(what)
    return ok


# ------------------------------------------------------------------ servers

class Server:
    def __init__(self, a, name, extra):
        self.log = os.path.join(a.tmp, name + ".log")
        self.proc = subprocess.Popen([a.dotsocr, "serve", "--model", a.model, "--port", "0", "--threads", "2", *extra],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"))
        SERVERS.append(self)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            text = open(self.log, errors="replace").read()
            if "listening on http://127.0.0.1:" in text:
                self.port = int(text.split("listening on http://127.0.0.1:")[1].split()[0])
                break
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("server did not start: " + open(self.log, errors="replace").read()[-2000:])
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def stop_all():
    for s in SERVERS:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def request(port, method, path, body=None, headers=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def health(port):
    return json.loads(request(port, "GET", "/health")[2])


# ------------------------------------------------------------------ inputs

def make_images(d):
    os.makedirs(d, exist_ok=True)
    paths = []
    specs = [("conform", (336, 252), "RGB"), ("wide", (500, 300), "RGB"), ("alpha", (200, 150), "RGBA"),
             ("gray", (300, 400), "L")]
    for i, (name, size, mode) in enumerate(specs):
        im = Image.new("RGB", size, (250, 250, 245))
        dr = ImageDraw.Draw(im)
        dr.rectangle([10 + 7 * i, 12, size[0] // 2, size[1] // 3], outline=(20, 20, 20), width=2)
        dr.text((20, size[1] // 2), "Invoice %d" % (i + 17), fill=(0, 0, 0))
        if mode == "RGBA":
            im = im.convert("RGBA")
            px = im.load()
            for y in range(0, size[1], 3):
                for x in range(size[0]):
                    px[x, y] = (px[x, y][0], 40, 200, (x * 7 + y) % 256)
        elif mode == "L":
            im = im.convert("L")
        p = os.path.join(d, name + ".png")
        im.save(p)
        paths.append(p)
    return paths


def prompt_info(a, specs):
    """The user text, system message and prompt ids a run builds (dotsocr-debug prompt)."""
    r = subprocess.run([a.debug, "prompt", "--model", a.model], input="".join(json.dumps(s) + "\n" for s in specs),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return [json.loads(line) for line in r.stdout.splitlines()]


def run_cli(a, image, mode, budget, extra=()):
    r = subprocess.run([a.dotsocr, "run", "-q", "--model", a.model, "--threads", "2", "--mode", mode,
                        "--no-fitz-preprocess", "--max-new-tokens", str(budget), "--temperature", "0", *extra, image],
                       capture_output=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())
    out = r.stdout.decode("utf-8")
    return out[:-1] if out.endswith("\n") else out


def mode_jobs(a, images):
    """One official-shape job per mode (grounding on the image that needs no resize)."""
    conform = images[0]
    w, h = Image.open(conform).size
    modes = ["layout-all", "layout-only", "ocr", "grounding", "web-parsing", "scene-spotting", "image-to-svg", "general"]
    specs = []
    for m in modes:
        s = {"mode": m, "width": w, "height": h}
        if m == "grounding":
            s["bbox"] = [28, 30, 200, 140]
        specs.append(s)
    infos = prompt_info(a, specs)
    jobs = []
    for m, s, info in zip(modes, specs, infos):
        job = {"mode": m, "image": conform if m in ("grounding", "image-to-svg") else images[len(jobs) % len(images)],
               "text": PLACEHOLDER + info["user"], "max_completion_tokens": 24 + 5 * len(jobs), "temperature": 0.0,
               "top_p": 1.0}
        if info["system"] is not None:
            job["system"] = info["system"]
        extra = []
        if m == "grounding":
            extra = ["--bbox", ",".join(str(v) for v in s["bbox"])]
        job["expect"] = run_cli(a, job["image"], m, job["max_completion_tokens"], extra)
        jobs.append(job)
    return jobs


def openai_modules(a):
    import fcntl
    dest = os.path.join(a.cache, "openai-" + OPENAI_VERSION)
    os.makedirs(a.cache, exist_ok=True)
    lock = open(os.path.join(a.cache, "openai.lock"), "w")  # tests run in parallel: one install at a time
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(os.path.join(dest, ".complete")):
        shutil.rmtree(dest + ".tmp", ignore_errors=True)
        os.makedirs(dest + ".tmp")
        r = subprocess.run("npm install --silent --no-save --no-audit --no-fund openai@%s" % OPENAI_VERSION, shell=True,
                           cwd=dest + ".tmp", capture_output=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("npm could not install openai@%s: %s" % (OPENAI_VERSION, r.stderr.decode()[-500:]))
        open(os.path.join(dest + ".tmp", ".complete"), "w").close()
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(dest + ".tmp", dest)
    return os.path.join(dest, "node_modules")


def openai_send(a, server, jobs, concurrency, api_key=None, name="jobs"):
    jp, op = os.path.join(a.tmp, name + ".json"), os.path.join(a.tmp, name + ".out.json")
    with open(jp, "w") as f:
        json.dump([{k: v for k, v in j.items() if k not in ("expect", "mode")} for j in jobs], f)
    cmd = ["node", os.path.join(os.path.dirname(__file__), "openai_client.mjs"), a.modules, server.url + "/v1", jp, op,
           str(concurrency)] + ([api_key] if api_key else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError("openai client failed: " + r.stderr[-2000:])
    return json.load(open(op))


def official_body(image, text, system=None, **params):
    data = open(image, "rb").read()
    msgs = [{"role": "system", "content": system}] if system is not None else []
    msgs.append({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(data).decode()}},
        {"type": "text", "text": text}]})
    body = {"model": "model", "messages": msgs}
    body.update(params)
    return body


# ------------------------------------------------------------------ cases

def case_openai(a):
    images = make_images(os.path.join(a.tmp, "img"))
    jobs = mode_jobs(a, images)
    srv = Server(a, "openai", ["--batch", "4"])
    try:
        for stream in (False, True):
            for j in jobs:
                j["stream"] = stream
            res = openai_send(a, srv, jobs, 4, name="modes_%d" % stream)
            for j, r in zip(jobs, res):
                what = "%s %s" % (j["mode"], "streamed" if stream else "plain")
                if not check("error" not in r, what + ": status 200 (%s)" % r.get("error")):
                    continue
                check(r["content"] == j["expect"], what + ": content equals dotsocr run (%d chars)" % len(j["expect"]))
                check(r["finish_reason"] in ("stop", "length"), what + ": finish_reason " + str(r["finish_reason"]))
                u = r.get("usage") or {}
                check(u.get("completion_tokens", 0) >= 1 and u.get("total_tokens") ==
                      u.get("prompt_tokens", 0) + u.get("completion_tokens", 0), what + ": usage " + json.dumps(u))
                if stream:
                    check(r["chunks"] >= 3, what + ": %d chunks" % r["chunks"])
        # the conforming image is passed through: (H/28)(W/28) image tokens
        w, h = Image.open(images[0]).size
        info = prompt_info(a, [{"mode": "ocr", "n_image": (w // 28) * (h // 28)}])[0]
        st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                              official_body(images[0], PLACEHOLDER + info["user"], max_completion_tokens=3, temperature=0))
        u = json.loads(data).get("usage", {})
        check(st == 200 and u.get("prompt_tokens") == len(info["ids"]),
              "a %dx%d image goes in unresized: %s prompt tokens (expected %d)" % (w, h, u.get("prompt_tokens"),
                                                                                  len(info["ids"])))
        # sampling is repeatable with a seed, and differs between seeds
        outs = []
        for seed in (7, 7, 8):
            st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                                  official_body(images[1], PLACEHOLDER + info["user"], max_completion_tokens=40,
                                                temperature=0.9, top_p=1.0, seed=seed))
            outs.append(json.loads(data)["choices"][0]["message"]["content"] if st == 200 else None)
        check(outs[0] is not None and outs[0] == outs[1], "temperature 0.9 with seed 7 twice: the same text")
        check(outs[0] != outs[2], "seeds 7 and 8: different texts")
        st, _, data = request(srv.port, "GET", "/v1/models")
        check(st == 200 and json.loads(data)["data"][0]["id"] == os.path.basename(a.model.rstrip("/")),
              "/v1/models lists the model")
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")


def case_concurrent(a):
    images = make_images(os.path.join(a.tmp, "img"))
    infos = prompt_info(a, [{"mode": "ocr"}, {"mode": "layout-all"}])
    distinct = []
    for i, img in enumerate(images):
        for m, info in zip(("ocr", "layout-all"), infos):
            budget = 20 + 9 * i + (7 if m == "ocr" else 0)
            distinct.append({"image": img, "mode": m, "text": PLACEHOLDER + info["user"], "temperature": 0,
                             "max_completion_tokens": budget, "expect": run_cli(a, img, m, budget)})
    srv = Server(a, "concurrent", ["--batch", "4", "--max-queue", "128"])
    try:
        for n in (16, 64):
            jobs = [dict(distinct[i % len(distinct)], stream=(i % 3 == 0)) for i in range(n)]
            t0 = time.time()
            res = openai_send(a, srv, jobs, n, name="conc%d" % n)
            dt = time.time() - t0
            bad = [i for i, (j, r) in enumerate(zip(jobs, res)) if r.get("content") != j["expect"]]
            check(not bad, "%d concurrent requests: all answered as sequential runs (%.1f s; wrong: %s)" % (n, dt, bad[:5]))
        h = health(srv.port)
        check(h["totals"]["completed"] >= 80 and h["totals"]["failed"] == 0 and h["queue"]["running"] == 0,
              "health after the load: " + json.dumps(h))
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")


def case_queue(a):
    images = make_images(os.path.join(a.tmp, "img"))
    info = prompt_info(a, [{"mode": "ocr"}])[0]
    body = official_body(images[1], PLACEHOLDER + info["user"], max_completion_tokens=400, temperature=0)
    expect = run_cli(a, images[1], "ocr", 400, ["--no-loop-guard"])
    srv = Server(a, "queue", ["--batch", "1", "--max-queue", "2", "--no-loop-guard"])
    try:
        results = [None] * 10

        def send(i):
            results[i] = request(srv.port, "POST", "/v1/chat/completions", body)

        ts = [threading.Thread(target=send, args=(i,)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        ok = [r for r in results if r[0] == 200]
        full = [r for r in results if r[0] == 429]
        check(len(ok) + len(full) == 10 and len(full) >= 1 and len(ok) >= 1,
              "10 at once into batch 1 + queue 2: %d answered, %d refused with 429" % (len(ok), len(full)))
        check(all(r[1].get("retry-after", "").isdigit() for r in full), "every 429 has a Retry-After")
        check(all(json.loads(r[2])["error"]["type"] == "rate_limit_error" for r in full), "every 429 is an OpenAI error")
        check(all(json.loads(r[2])["choices"][0]["message"]["content"] == expect for r in ok),
              "the accepted ones are answered as dotsocr run")
        check(health(srv.port)["totals"]["rejected"] == len(full), "health counts the refusals")
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")

    # hang-ups: a long run (no loop guard, 60000 tokens) streamed, then not streamed
    srv = Server(a, "disconnect", ["--batch", "2", "--no-loop-guard"])
    try:
        long_body = official_body(images[1], PLACEHOLDER + info["user"], max_completion_tokens=60000, temperature=0)
        for stream in (True, False):
            b = dict(long_body, stream=stream)
            s = socket.create_connection(("127.0.0.1", srv.port))
            data = json.dumps(b).encode()
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(data) + data)
            if stream:
                got = b""
                while got.count(b"data: ") < 4:
                    got += s.recv(65536)
            else:
                deadline = time.time() + 20
                while health(srv.port)["queue"]["running"] == 0 and time.time() < deadline:
                    time.sleep(0.05)
            running = health(srv.port)["queue"]["running"]
            s.close()
            deadline = time.time() + 20
            h = health(srv.port)
            while (h["queue"]["running"] or h["totals"]["cancelled"] < (1 if stream else 2)) and time.time() < deadline:
                time.sleep(0.1)
                h = health(srv.port)
            check(running == 1 and h["queue"]["running"] == 0 and h["totals"]["completed"] == 0,
                  "%s client hangs up mid-answer: its run is cancelled and its slot freed (%s)" %
                  ("a streaming" if stream else "a waiting", json.dumps(h)))
        st, _, data = request(srv.port, "POST", "/v1/chat/completions", dict(body, max_completion_tokens=400))
        check(st == 200 and json.loads(data)["choices"][0]["message"]["content"] == expect,
              "the next request after the hang-ups is answered")
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")


def case_errors(a):
    images = make_images(os.path.join(a.tmp, "img"))
    info = prompt_info(a, [{"mode": "ocr"}])[0]
    good = official_body(images[0], PLACEHOLDER + info["user"], max_completion_tokens=12, temperature=0)
    expect = run_cli(a, images[0], "ocr", 12)
    png = open(images[0], "rb").read()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    pdf_url = "data:application/pdf;base64," + base64.b64encode(make_pdf(a, 1)).decode()

    def with_content(content, **kw):
        b = {"model": "model", "messages": [{"role": "user", "content": content}], "max_completion_tokens": 12}
        b.update(kw)
        return b

    text = {"type": "text", "text": PLACEHOLDER + info["user"]}
    img = {"type": "image_url", "image_url": {"url": url}}
    bad = [
        ("malformed JSON", b'{"messages": [', 400),
        ("a JSON array", b"[1, 2]", 400),
        ("no messages", {"model": "m"}, 400),
        ("messages not a list", {"messages": "hi"}, 400),
        ("content a number", with_content(5), 400),
        ("no image", with_content([text]), 400),
        ("two images", with_content([img, img, text]), 400),
        ("an http image URL", with_content([{"type": "image_url", "image_url": {"url": "http://x/a.png"}}, text]), 400),
        ("a data URL without base64", with_content([{"type": "image_url", "image_url": {"url": "data:image/png,abc"}},
                                                    text]), 400),
        ("bad base64", with_content([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}},
                                     text]), 400),
        ("bytes that are no image", with_content([{"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()}}, text]), 400),
        ("a PDF as the image", with_content([{"type": "image_url", "image_url": {"url": pdf_url}}, text]), 400),
        ("two placeholders", with_content([img, {"type": "text", "text": PLACEHOLDER + PLACEHOLDER + "x"}]), 400),
        ("a stray <|imgpad|>", with_content([img, {"type": "text", "text": PLACEHOLDER + "a<|imgpad|>b"}]), 400),
        ("an unknown part type", with_content([img, {"type": "audio", "audio": {}}]), 400),
        ("temperature a string", with_content([img, text], temperature="hot"), 400),
        ("temperature 5", with_content([img, text], temperature=5), 400),
        ("top_p 0", with_content([img, text], top_p=0), 400),
        ("max_tokens -1", with_content([img, text], max_tokens=-1), 400),
        ("max_completion_tokens 2.5", with_content([img, text], max_completion_tokens=2.5), 400),
        ("n 2", with_content([img, text], n=2), 400),
        ("stop sequences", with_content([img, text], stop=["x"]), 400),
        ("stream not a bool", with_content([img, text], stream="yes"), 400),
        ("an assistant turn", {"messages": [{"role": "user", "content": [img, text]},
                                            {"role": "assistant", "content": "x"}]}, 400),
        ("a system message after the user", {"messages": [{"role": "user", "content": [img, text]},
                                                          {"role": "system", "content": "x"}]}, 400),
    ]
    srv = Server(a, "errors", ["--max-body-mb", "1"])
    try:
        for what, body, status in bad:
            st, hd, data = request(srv.port, "POST", "/v1/chat/completions", body,
                                   {"Content-Type": "application/json"})
            try:
                err = json.loads(data)["error"]
                shaped = isinstance(err["message"], str) and err["message"] and err["type"] and err["code"] == st
            except Exception:
                shaped = False
            check(st == status and shaped and hd.get("content-type") == "application/json",
                  "%s: %d with an OpenAI error (%s)" % (what, st, data[:160].decode(errors="replace")))
        st, _, data = request(srv.port, "POST", "/v1/chat/completions", good)
        check(st == 200 and json.loads(data)["choices"][0]["message"]["content"] == expect,
              "a good request after all the bad ones is answered")
        # size, routes, methods
        big = official_body(images[0], text["text"])
        big["padding"] = "x" * (1 << 21)
        st, _, data = request(srv.port, "POST", "/v1/chat/completions", big)
        check(st == 413, "a 2 MB body over --max-body-mb 1: %d" % st)
        s = socket.create_connection(("127.0.0.1", srv.port))  # chunked: no Content-Length to refuse early
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(40):
            s.sendall(b"10000\r\n" + b"y" * 65536 + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        reply = s.recv(4096)
        s.close()
        check(reply.startswith(b"HTTP/1.1 413"), "a 2.5 MB chunked body: " + reply[:20].decode(errors="replace"))
        st, _, _ = request(srv.port, "GET", "/v1/nothing")
        check(st == 404, "an unknown endpoint: %d" % st)
        st, _, _ = request(srv.port, "GET", "/v1/chat/completions")
        check(st == 405, "GET on the chat endpoint: %d" % st)
        # placeholder rules (vLLM's): missing -> prepended with "\n"; text before it stays before the image
        n_image = None
        for name, t, spec in (("with the placeholder", PLACEHOLDER + info["user"], {"mode": "ocr"}),
                              ("without it", info["user"], {"mode": "ocr", "prompt": "\n" + info["user"]})):
            st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                                  official_body(images[0], t, max_completion_tokens=2, temperature=0))
            u = json.loads(data)["usage"]["prompt_tokens"]
            if n_image is None:
                n_image = u - len(prompt_info(a, [spec])[0]["ids"])
            spec["n_image"] = n_image
            check(st == 200 and u == len(prompt_info(a, [spec])[0]["ids"]),
                  "%s: %d prompt tokens, as the prompt %r builds" % (name, u, spec.get("prompt", "")[:12]))
        st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                              official_body(images[0], "Look: " + PLACEHOLDER + "what is it?", max_completion_tokens=2))
        check(st == 200, "text before the placeholder is accepted: %d" % st)
        st, _, data = request(srv.port, "POST", "/v1/chat/completions", good)
        check(st == 200 and json.loads(data)["choices"][0]["message"]["content"] == expect, "and the good one again")
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")
    # the API key
    srv = Server(a, "key", ["--api-key", "sesame"])
    try:
        for hdr, status in (({}, 401), ({"Authorization": "Bearer 0"}, 401), ({"Authorization": "Bearer sesame"}, 200)):
            st, _, data = request(srv.port, "POST", "/v1/chat/completions", good, hdr)
            check(st == status, "--api-key with %s: %d" % (hdr or "no header", st))
        check(request(srv.port, "GET", "/health")[0] == 200, "/health needs no key")
        res = openai_send(a, srv, [dict(good_job(images[0], info), stream=False)], 1, api_key="sesame", name="key")
        check(res[0].get("content") == expect, "the openai client with the key is answered")
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")


def good_job(image, info):
    return {"image": image, "text": PLACEHOLDER + info["user"], "max_completion_tokens": 12, "temperature": 0}


def make_pdf(a, n):
    import fitz
    doc = fitz.open()
    for i in range(n):
        pg = doc.new_page(width=220 + 30 * i, height=280)
        pg.insert_text((20, 40), "Section %d" % (i + 1), fontsize=14)
        pg.draw_rect(fitz.Rect(20, 60, 150, 120 + 10 * i), color=(0, 0, 0))
    return doc.tobytes()


def multipart(fields, filename, data):
    boundary = "dotsocr-test-boundary-7f3a"
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % (boundary, filename)).encode() + data + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return out, {"Content-Type": "multipart/form-data; boundary=" + boundary}


def case_parse(a):
    pdf = os.path.join(a.tmp, "doc.pdf")
    open(pdf, "wb").write(make_pdf(a, 3))
    out = os.path.join(a.tmp, "parse_out")
    shutil.rmtree(out, ignore_errors=True)
    budget = 40
    r = subprocess.run([a.dotsocr, "parse", "-q", "--model", a.model, "--threads", "2", "--dpi", "60", "--mode",
                        "layout-all", "--max-new-tokens", str(budget), pdf, "-o", out], capture_output=True, timeout=600)
    check(r.returncode == 0, "dotsocr parse of the PDF: " + r.stderr.decode()[-300:])
    srv = Server(a, "parse", ["--batch", "3"])
    try:
        raw = open(pdf, "rb").read()
        st, _, data = request(srv.port, "POST", "/v1/parse?mode=layout-all&dpi=60&max_new_tokens=%d&layout_image=true"
                              % budget, raw, {"Content-Type": "application/pdf"})
        body, hdr = multipart({"mode": "layout-all", "dpi": "60", "max_new_tokens": str(budget), "pages": "2-3"},
                              "doc.pdf", raw)
        st2, _, data2 = request(srv.port, "POST", "/v1/parse", body, hdr)
        for name, status, reply, pages in (("raw body", st, data, [1, 2, 3]), ("multipart, pages 2-3", st2, data2, [2, 3])):
            doc = json.loads(reply)
            if not check(status == 200 and [p["page"] for p in doc["pages"]] == pages,
                         "/v1/parse %s: %d, pages %s" % (name, status, [p.get("page") for p in doc.get("pages", [])])):
                continue
            for p in doc["pages"]:
                k = p["page"]
                md = open(os.path.join(out, "doc_page_%d.md" % (k - 1)), encoding="utf-8").read()
                cells = json.load(open(os.path.join(out, "doc_page_%d.json" % (k - 1))))
                ans = run_cli(a, pdf, "layout-all", budget, ["--page", str(k), "--dpi", "60"])
                same_cells = len(cells) == len(p["cells"]) and all(
                    c.get("category") == d.get("category") and c.get("text") == d.get("text") and
                    [float(v) for v in c.get("bbox", [])] == d.get("bbox", []) for c, d in zip(cells, p["cells"]))
                check(p["markdown"] == md and same_cells and p["answer"] == ans,
                      "%s page %d: Markdown and cells as dotsocr parse, answer as dotsocr run" % (name, k))
                if name == "raw body":
                    check(p.get("layout_image", "").startswith("data:image/jpeg;base64,/9j/"),
                          "page %d has its layout picture" % k)
        img = make_images(os.path.join(a.tmp, "img"))[1]
        st, _, data = request(srv.port, "POST", "/v1/parse?mode=ocr&max_new_tokens=15&fitz_preprocess=false",
                              open(img, "rb").read())
        check(st == 200 and json.loads(data)["pages"][0]["answer"] == run_cli(a, img, "ocr", 15),
              "/v1/parse of an image (ocr) answers as dotsocr run")
        for what, q, body, status in (("an unknown option", "?colour=red", raw, 400), ("a bad mode", "?mode=poem", raw, 400),
                                      ("pages out of range", "?pages=9", raw, 400), ("an empty body", "", b"", 400),
                                      ("bytes that are no document", "", b"hello world", 400),
                                      ("a bad dpi", "?dpi=x", raw, 400)):
            st, _, data = request(srv.port, "POST", "/v1/parse" + q, body)
            check(st == status and "error" in json.loads(data), "/v1/parse with %s: %d" % (what, st))
        body, hdr = multipart({"mode": "ocr"}, "x", b"")
        st, _, _ = request(srv.port, "POST", "/v1/parse", body.replace(b"filename=\"x\"", b""), hdr)
        check(st == 400, "/v1/parse multipart without a file: %d" % st)
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGTERM")


def case_sigterm(a):
    images = make_images(os.path.join(a.tmp, "img"))
    info = prompt_info(a, [{"mode": "ocr"}])[0]
    body = official_body(images[1], PLACEHOLDER + info["user"], max_completion_tokens=600, temperature=0)
    expect = run_cli(a, images[1], "ocr", 600, ["--no-loop-guard"])
    srv = Server(a, "sigterm", ["--batch", "2", "--no-loop-guard"])
    results = [None] * 6

    def send(i):
        try:
            results[i] = request(srv.port, "POST", "/v1/chat/completions", body, timeout=300)
        except Exception as e:
            results[i] = (None, {}, repr(e).encode())

    ts = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        h = health(srv.port)
        if h["queue"]["running"] == 2 and h["queue"]["waiting"] == 4:
            break
        time.sleep(0.02)
    srv.proc.send_signal(signal.SIGTERM)
    check(h["queue"]["running"] == 2 and h["queue"]["waiting"] == 4,
          "SIGTERM came with 2 requests decoding and 4 queued: " + json.dumps(h["queue"]))
    time.sleep(0.3)
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    for t in ts:
        t.join()
    rc = srv.proc.wait(120)
    check(refused, "after SIGTERM new connections are refused")
    check(all(r[0] == 200 and json.loads(r[2])["choices"][0]["message"]["content"] == expect for r in results),
          "the 6 requests in hand (2 decoding, 4 queued) are all answered: %s" % [r[0] for r in results])
    check(rc == 0, "the server exits 0 once they are (%s)" % rc)


HAPROXY_CFG = """
global
    maxconn 512
    tune.bufsize 1048576
defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    retries 5
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503
    option http-server-close
    http-reuse never
frontend fe
    bind 127.0.0.1:%(port)d
    default_backend dots
backend dots
    balance roundrobin
    option httpchk GET /health
    default-server inter 500ms fall 1 rise 2
%(servers)s
"""


def case_balancer(a):
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not haproxy:
        print("skipped: haproxy is not installed (scripts/install-deps installs it)")
        sys.exit(77)
    images = make_images(os.path.join(a.tmp, "img"))
    infos = prompt_info(a, [{"mode": "ocr"}, {"mode": "layout-all"}])
    pdf = make_pdf(a, 2)
    chat = [(official_body(img, PLACEHOLDER + info["user"], max_completion_tokens=60 + 10 * i, temperature=0),
             run_cli(a, img, m, 60 + 10 * i, ["--no-loop-guard"] if m == "ocr" else []))
            for i, img in enumerate(images) for m, info in zip(("ocr", "layout-all"), infos)]
    servers = [Server(a, "lb%d" % i, ["--batch", "4", "--no-loop-guard"]) for i in range(2)]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cfg = os.path.join(a.tmp, "haproxy.cfg")
    open(cfg, "w").write(HAPROXY_CFG % {"port": port, "servers": "\n".join(
        "    server s%d 127.0.0.1:%d check" % (i, sv.port) for i, sv in enumerate(servers))})
    hp = subprocess.Popen([haproxy, "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=open(cfg + ".log", "wb"))
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if request(port, "GET", "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        results, lock = [], threading.Lock()
        stop_at = time.time() + 12

        def client(k):
            i = k
            while time.time() < stop_at:
                try:
                    if i % 5 == 4:  # a document now and then
                        st, _, data = request(port, "POST", "/v1/parse?mode=ocr&dpi=50&max_new_tokens=30", pdf)
                        ok = st == 200 and all("answer" in p for p in json.loads(data)["pages"])
                    else:
                        body, expect = chat[i % len(chat)]
                        st, _, data = request(port, "POST", "/v1/chat/completions", body)
                        ok = st == 200 and json.loads(data)["choices"][0]["message"]["content"] == expect
                except Exception as e:
                    st, ok = repr(e), False
                with lock:
                    results.append((ok, st))
                i += 7

        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        time.sleep(4)
        servers[0].proc.send_signal(signal.SIGTERM)
        rc = servers[0].proc.wait(120)
        for t in ts:
            t.join()
        failed = [st for ok, st in results if not ok]
        check(len(results) >= 20 and not failed,
              "%d requests through haproxy, one server stopped with SIGTERM mid-load: %d failed %s" %
              (len(results), len(failed), failed[:5]))
        check(rc == 0, "the stopped server exited 0")
        h = health(servers[1].port)
        check(h["totals"]["completed"] > 0, "the other server carried on: " + json.dumps(h["totals"]))
    finally:
        hp.terminate()
        hp.wait(10)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--dotsocr", required=True)
    p.add_argument("--debug", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--tmp", required=True)
    a = p.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    a.modules = None
    if a.case in ("openai", "concurrent", "errors"):
        if not shutil.which("node") or not shutil.which("npm"):
            print("FAIL: node and npm are needed (scripts/install-deps)")
            return 1
        a.modules = openai_modules(a)
    cases = {"openai": case_openai, "concurrent": case_concurrent, "queue": case_queue, "errors": case_errors,
             "parse": case_parse, "sigterm": case_sigterm, "balancer": case_balancer}
    try:
        cases[a.case](a)
    finally:
        stop_all()
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
