#!/usr/bin/env python3
"""Writes a seed corpus for every fuzz target into fuzz/corpus/<target>/.

Seeds are valid inputs that a fuzzer would take long to find on its own:
the Go erpc frames captured in crates/socket/tests/erpc-vectors.json, the
same packets in the JSON and protobuf framings, and each of them behind the
gzip (`g`) and md5 (`m`) filters (libFuzzer cannot get a CRC32 or an MD5
digest right by mutation). Standard library only; run it from anywhere:

    python3 fuzz/seeds.py
"""

import gzip
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "crates", "socket", "tests", "erpc-vectors.json")
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def gz(data):
    # mtime=0: the same seed bytes on every run.
    return gzip.compress(data, mtime=0)


def md5(data):
    return data + hashlib.md5(data).digest()


# Filter chains (outer-most first) and how to pack a payload through them:
# the last id's filter runs first.
CHAINS = {"": [], "g": ["g"], "m": ["m"], "mg": ["m", "g"], "gm": ["g", "m"]}


def pack(chain, payload):
    for fid in reversed(chain):
        payload = gz(payload) if fid == "g" else md5(payload)
    return payload


def envelope(chain, payload, counts_itself):
    ids = "".join(chain).encode()
    body = bytes([len(ids)]) + ids + pack(chain, payload)
    length = len(body) + (4 if counts_itself else 0)
    return struct.pack(">I", length) + body


def b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if n == 0:
        return "0"
    sign, n = ("-", -n) if n < 0 else ("", n)
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return sign + out


def raw_payload(p):
    seq = b36(p["seq"]).encode()
    uri = p["uri"].encode()
    return (
        bytes([len(seq)]) + seq + bytes([p["mtype"], len(uri)]) + uri
        + struct.pack(">H", len(p["status"])) + p["status"]
        + struct.pack(">H", len(p["meta"])) + p["meta"]
        + bytes([p["codec"]]) + p["body"]
    )


def json_payload(p):
    doc = {
        "seq": p["seq"],
        "mtype": p["mtype"],
        "serviceMethod": p["uri"],
        "status": p["status"].decode(),
        "meta": p["meta"].decode(),
        "bodyCodec": p["codec"],
        "body": p["body"].decode("utf-8", "replace"),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_payload(p):
    out = b""
    for tag, v in ((1, p["seq"]), (2, p["mtype"])):
        if v:
            out += varint(tag << 3) + varint(v)
    for tag, v in ((3, p["uri"].encode()), (4, p["status"]), (5, p["meta"])):
        if v:
            out += varint(tag << 3 | 2) + varint(len(v)) + v
    if p["codec"]:
        out += varint(6 << 3) + varint(p["codec"])
    if p["body"]:
        out += varint(7 << 3 | 2) + varint(len(p["body"])) + p["body"]
    return out


def packets():
    """The captured frames' packets, plus a few hand-made edge cases."""
    with open(VECTORS) as f:
        frames = json.load(f)["frames"]
    out = []
    for fr in frames:
        d = fr["decoded"]
        body = d.get("body_utf8")
        body = body.encode() if body is not None else bytes.fromhex(d.get("body_hex", ""))
        out.append({
            "seq": int(d["seq_base36"], 36),
            "mtype": d["mtype"],
            "uri": d["service_method"],
            "status": d["status"].encode(),
            "meta": d["meta"].encode(),
            "codec": d["codec"],
            "body": body,
        })
    out.append({"seq": -2147483648, "mtype": 2, "uri": "", "codec": 0, "body": b"",
                "status": b"code=404&msg=Not%20Found&cause=no%20route%20%2Fa",
                "meta": b"X-Accept-Body-Codec=115&hb_=5&flag&k=a%26b+c"})
    out.append({"seq": 2147483647, "mtype": 3, "uri": "/chat/say?x=1", "codec": 115,
                "status": b"", "meta": b"", "body": b'"quote" \\ back\x00\x01\xff'})
    return out, frames


def main():
    pkts, frames = packets()
    for i, fr in enumerate(frames):
        write("raw_decode", "vector-%02d" % i, bytes.fromhex(fr["hex"]))
    write("raw_decode", "vectors-all", b"".join(bytes.fromhex(fr["hex"]) for fr in frames))
    for i, p in enumerate(pkts):
        for name, chain in CHAINS.items():
            tag = "%02d-%s" % (i, name or "plain")
            write("raw_decode", tag, envelope(chain, raw_payload(p), True))
            write("json_decode", tag, envelope(chain, json_payload(p), False))
            write("pb_decode", tag, envelope(chain, pb_payload(p), False))
        write("status_parse", "%02d" % i, p["status"])
        write("meta_parse", "%02d" % i, p["meta"])
    for i, s in enumerate([b"code=1001&msg=custom%20failure&cause=bad%20thing%20%26%20more%3D1%20%252F%20%E2%9C%93",
                           b"x=1&code=7&code=9&msg=a+b&&msg=zz", b"code=%2B5&cause=", b"code=-0&msg=%ff"]):
        write("status_parse", "extra-%d" % i, s)
    write("meta_parse", "extra-0", b"flag&x=a%26b%3Dc&&=skipped&y=&%E2%9C%93=+")
    # xfer_unpack: limit (hi, lo), chain length, chain, payload. hi >= 0x80
    # selects a 15-bit limit; the chain bytes are mapped with b % 8 (0 -> g,
    # 2 -> m, 4 -> e).
    code = {"g": 0, "m": 2}
    plain = raw_payload(pkts[0]) * 4
    for name, chain in CHAINS.items():
        if not chain:
            continue
        head = bytes([0xFF, 0xFF, len(chain)]) + bytes(code[c] for c in chain)
        write("xfer_unpack", name, head + pack(chain, plain))
        write("xfer_unpack", name + "-small-limit", bytes([0x00, 0x10, len(chain)])
              + bytes(code[c] for c in chain) + pack(chain, plain))
    write("xfer_unpack", "gzip-bomb", bytes([0x80, 0xFF, 1, 0]) + gz(b"\0" * 100000))
    write("xfer_unpack", "two-members", bytes([0xFF, 0xFF, 1, 0]) + gz(b"a" * 10) + gz(b"b" * 10))


if __name__ == "__main__":
    main()
