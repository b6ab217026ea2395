"""Rewrites a GGUF file: drops metadata keys by prefix and replaces tensors' data
(the test suites use it to turn our files into what llama.cpp's own tools write).
Standard library only, so every test interpreter can import it."""
import math
import struct

# ggml type id -> (elements per block, bytes per block), docs/formats.md §2.1
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
         12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}


def rewrite_gguf(src, dst, drop_prefix="dotsocr.", retype=None):
    """Copies a GGUF file without the keys under drop_prefix (what llama.cpp's
    converter writes: no dotsocr.* keys); retype {name: (ggml type, bytes)}
    replaces tensors' data."""
    b = open(src, "rb").read()
    pos = 4
    SZ = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def u(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def skip(t):
        nonlocal pos
        if t == 8:
            n = u("<Q")  # (not pos += u(...): pos would be read before u moves it)
            pos += n
        elif t == 9:
            et, n = u("<I"), u("<Q")
            for _ in range(n if et == 8 else 0):
                k = u("<Q")
                pos += k
            pos += 0 if et == 8 else SZ[et] * n
        else:
            pos += SZ[t]
    version, n_t, n_kv = u("<I"), u("<Q"), u("<Q")
    kvs = []
    for _ in range(n_kv):
        start = pos
        n = u("<Q")
        key = b[pos:pos + n].decode()
        pos += n
        skip(u("<I"))
        if not key.startswith(drop_prefix):
            kvs.append(b[start:pos])
    infos = []
    for _ in range(n_t):
        n = u("<Q")
        name = b[pos:pos + n].decode()
        pos += n
        ne = [u("<Q") for _ in range(u("<I"))]
        infos.append([name, ne, u("<I"), u("<Q")])
    data_start = (pos + 31) // 32 * 32
    datas = []
    for i, (name, ne, t, off) in enumerate(infos):
        blk, bb = BLOCK[t]
        n = ne[0] // blk * bb * math.prod(ne[1:])
        data = b[data_start + off:data_start + off + n]
        if retype and name in retype:
            infos[i][2], data = retype[name]
        datas.append(data)
    head = [b"GGUF" + struct.pack("<IQQ", version, n_t, len(kvs))] + kvs
    off = 0
    for (name, ne, t, _), data in zip(infos, datas):
        head.append(struct.pack("<Q", len(name.encode())) + name.encode() + struct.pack("<I", len(ne)))
        head.append(b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", t, off))
        off += (len(data) + 31) // 32 * 32
    head = b"".join(head)
    with open(dst, "wb") as f:  # piece by piece: a model file is gigabytes
        f.write(head + b"\0" * ((32 - len(head) % 32) % 32))
        for data in datas:
            f.write(data)
            f.write(b"\0" * ((32 - len(data) % 32) % 32))
