#!/usr/bin/env python3
"""Writes the loaders' regression corpus: Tests/Fuzz/corpus/LOADER/{ok,bad}-NAME.

ok-*  files are valid and must load; bad-* files are crafted hostile or broken inputs
(those of issue 17 among them) and must be refused with a typed one-line error naming
the file. The test suite runs every file through its loader (FuzzCorpusTests), and the
fuzz harness starts from them (scripts/fuzz.sh). Pure Python, deterministic output:
    python3 Tests/Fuzz/make_corpus.py
"""
import gzip
import json
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(loader, name, data):
    os.makedirs(os.path.join(ROOT, loader), exist_ok=True)
    with open(os.path.join(ROOT, loader, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---------------------------------------------------------------- .npy

def npy(header, data=b"", major=1, length=None):
    """An .npy file with a header dict text (padded like NumPy) and raw data."""
    h = header.encode("latin1" if major < 3 else "utf8")
    prefix = 10 if major == 1 else 12
    h += b" " * ((64 - (prefix + len(h) + 1) % 64) % 64) + b"\n"
    n = len(h) if length is None else length
    size = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, 0]) + size + h + data


def f4(*values):
    return struct.pack("<%df" % len(values), *values)


def write_npy():
    put("npy", "ok-f4-2x3.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4(1, 2, 3, 4, 5, 6)))
    put("npy", "ok-f8-fortran.npy", npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
                                        struct.pack("<4d", 1, 3, 2, 4)))
    put("npy", "ok-u1-scalar.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", b"\x07"))
    put("npy", "ok-i2-big-endian.npy", npy("{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }",
                                           struct.pack(">3h", -1, 2, 300)))
    put("npy", "ok-b1-v2.npy", npy("{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", b"\x00\x01\x01\x00", major=2))
    put("npy", "ok-f2-v3.npy", npy("{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2), }", b"\x00\x3c\x00\xc0", major=3))
    put("npy", "ok-empty-rows.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }"))
    # Issue 17: shape (2^62+1, 4) with 16 data bytes loaded as 2^62+1 rows.
    put("npy", "bad-issue17-huge-rows.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387905, 4), }", f4(1, 2, 3, 4)))
    # Element count wraps to 0 in 64 bits: 2^32 * 2^32.
    put("npy", "bad-count-wraps-to-zero.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))
    # Byte count wraps: 2^61 float64s is 2^64 bytes.
    put("npy", "bad-bytes-wrap.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }"))
    put("npy", "bad-absurd-dim-zero-count.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387905), }"))
    put("npy", "bad-negative-dim.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }", f4(1, 2, 3, 4)))
    put("npy", "bad-dim-beyond-int64.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"))
    put("npy", "bad-65-dims.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(["1"] * 65), f4(1)))
    put("npy", "bad-short-data.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4(1, 2, 3)))
    put("npy", "bad-extra-data.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f4(1, 2, 3)))
    put("npy", "bad-header-length-past-end.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(1), length=65535))
    put("npy", "bad-v2-header-length-4g.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(1), major=2, length=0xFFFFFFFF))
    put("npy", "bad-version-9.npy", b"\x93NUMPY\x09\x00" + npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(1))[8:])
    put("npy", "bad-magic.npy", b"\x93NUMPX" + npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(1))[6:])
    put("npy", "bad-repeated-key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (50000,), }", f4(1)))
    put("npy", "bad-extra-key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 'y', }", f4(1)))
    put("npy", "bad-missing-shape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", f4(1)))
    put("npy", "bad-structured-dtype.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f4(1)))
    put("npy", "bad-complex-dtype.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f4(1, 2)))
    put("npy", "bad-object-dtype.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8))
    put("npy", "bad-fortran-order-1.npy", npy("{'descr': '<f4', 'fortran_order': 1, 'shape': (1,), }", f4(1)))
    put("npy", "bad-shape-list.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", f4(1)))
    put("npy", "bad-unclosed-tuple.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, }", f4(1)))
    put("npy", "bad-unterminated-string.npy", npy("{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", f4(1)))
    put("npy", "bad-text-after-dict.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", f4(1)))
    put("npy", "bad-not-a-dict.npy", npy("'descr', '<f4'", f4(1)))
    v3 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(1), major=3)
    put("npy", "bad-v3-invalid-utf8.npy", v3.replace(b"'descr'", b"'d\xffscr'"))
    put("npy", "bad-empty.npy", b"")


# ---------------------------------------------------------------- safetensors

def st(header, data=b"", length=None, raw=False):
    """A safetensors file: header (a dict, or raw text when raw), padded to 8 bytes."""
    h = header.encode("utf8") if raw else json.dumps(header, separators=(",", ":")).encode("utf8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def write_safetensors():
    put("safetensors", "ok-two-tensors.safetensors",
        st({"__metadata__": {"k": "v"}, "w": t("F32", [2, 2], 0, 16), "h": t("F16", [2], 16, 20)},
           f4(1, 2, 3, 4) + b"\x00\x3c\x00\xc0"))
    put("safetensors", "ok-every-dtype.safetensors",
        st({"a": t("BF16", [1], 0, 2), "b": t("F64", [1], 2, 10), "c": t("I8", [2], 10, 12), "d": t("U16", [1], 12, 14),
            "e": t("I64", [1], 14, 22), "f": t("BOOL", [2], 22, 24)},
           b"\x80\x3f" + struct.pack("<d", -2.5) + b"\xff\x01" + b"\x10\x00" + struct.pack("<q", -7) + b"\x00\x01"))
    put("safetensors", "ok-empty.safetensors", st({}))
    put("safetensors", "ok-zero-size.safetensors", st({"z": t("F32", [0, 3], 0, 0), "s": t("F32", [], 0, 4)}, f4(9)))
    # Issue 17: an element count x dtype size that overflows, or does not match the offsets.
    put("safetensors", "bad-issue17-huge-rows.safetensors", st({"w": t("F32", [4611686018427387905, 4], 0, 16)}, f4(1, 2, 3, 4)))
    put("safetensors", "bad-bytes-wrap-to-zero.safetensors", st({"w": t("U8", [4294967296, 4294967296], 0, 0)}))
    put("safetensors", "bad-absurd-dim-zero-count.safetensors", st({"w": t("F32", [0, 4611686018427387905], 0, 0)}))
    put("safetensors", "bad-negative-dim.safetensors", st({"w": t("F32", [-1, -4], 0, 16)}, f4(1, 2, 3, 4)))
    put("safetensors", "bad-float-dim.safetensors", st({"w": t("F32", [2.5], 0, 8)}, f4(1, 2)))
    put("safetensors", "bad-bool-dim.safetensors", st('{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}', f4(1), raw=True))
    put("safetensors", "bad-dim-exponent.safetensors", st('{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', f4(1), raw=True))
    put("safetensors", "bad-negative-offset.safetensors", st({"w": t("F32", [1], -4, 0)}, f4(1)))
    put("safetensors", "bad-reversed-offsets.safetensors", st({"w": t("F32", [1], 4, 0)}, f4(1)))
    put("safetensors", "bad-offset-past-end.safetensors", st({"w": t("F32", [2], 0, 8)}, f4(1)))
    put("safetensors", "bad-offset-near-int64-max.safetensors", st({"w": t("F32", [1], 9223372036854775800, 9223372036854775804)}, f4(1)))
    put("safetensors", "bad-overlap.safetensors", st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, f4(1, 2, 3)))
    put("safetensors", "bad-gap.safetensors", st({"a": t("F32", [1], 0, 4), "b": t("F32", [1], 8, 12)}, f4(1, 2, 3)))
    put("safetensors", "bad-trailing-bytes.safetensors", st({"a": t("F32", [1], 0, 4)}, f4(1, 2)))
    put("safetensors", "bad-shape-offsets-mismatch.safetensors", st({"a": t("F32", [3], 0, 8)}, f4(1, 2)))
    put("safetensors", "bad-repeated-name.safetensors",
        st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f4(1), raw=True))
    put("safetensors", "bad-unknown-dtype.safetensors", st({"w": t("F8_E4M3", [1], 0, 1)}, b"\x00"))
    put("safetensors", "bad-extra-field.safetensors", st({"w": dict(t("F32", [1], 0, 4), extra=1)}, f4(1)))
    put("safetensors", "bad-missing-offsets.safetensors", st({"w": {"dtype": "F32", "shape": [1]}}, f4(1)))
    put("safetensors", "bad-empty-name.safetensors", st({"": t("F32", [1], 0, 4)}, f4(1)))
    put("safetensors", "bad-newline-in-name.safetensors", st({"a\nb": t("F32", [2], 0, 8)}, f4(1)))
    put("safetensors", "bad-metadata-not-string.safetensors", st({"__metadata__": {"step": 3}}))
    put("safetensors", "bad-metadata-not-object.safetensors", st({"__metadata__": ["a"]}))
    put("safetensors", "bad-lone-surrogate.safetensors", st('{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f4(1), raw=True))
    put("safetensors", "bad-invalid-utf8.safetensors",
        st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f4(1), raw=True).replace(b'{"w"', b'{"\xff"'))
    put("safetensors", "bad-deep-nesting.safetensors", st('{"w":' + "[" * 5000 + "]" * 5000 + "}", raw=True))
    put("safetensors", "bad-header-not-object.safetensors", st("[1, 2]", raw=True))
    put("safetensors", "bad-header-not-json.safetensors", st("{not json}", raw=True))
    put("safetensors", "bad-header-length-huge.safetensors", st({}, length=1 << 63))
    put("safetensors", "bad-header-length-over-cap.safetensors", st({}, length=100_000_001))
    put("safetensors", "bad-header-length-past-end.safetensors", st({}, length=4096))
    put("safetensors", "bad-short.safetensors", b"\x02\x00\x00")


# ---------------------------------------------------------------- checkpoints

def checkpoint(meta, tensors, data):
    header = dict(tensors)
    header["__metadata__"] = meta
    return st(header, data)


GOOD_META = {"format": "distill.checkpoint", "format_version": "1", "step": "12", "config": "{}",
             "optimizer": '{"lr":"0.001","step":"12"}', "has_ema": "false"}


def write_checkpoints():
    model = {"model/w": t("F32", [2], 0, 8), "optim/m.w": t("F32", [2], 8, 16)}
    data = f4(1, 2, 0.5, 0.25)
    put("checkpoint", "ok-checkpoint.safetensors", checkpoint(GOOD_META, model, data))
    put("checkpoint", "ok-checkpoint-ema.safetensors",
        checkpoint(dict(GOOD_META, has_ema="true"), dict(model, **{"ema/w": t("F32", [2], 16, 24)}), data + f4(3, 4)))

    def bad(name, meta=None, tensors=None, payload=None):
        put("checkpoint", "bad-" + name + ".safetensors",
            checkpoint(GOOD_META if meta is None else meta, model if tensors is None else tensors, data if payload is None else payload))

    bad("not-a-checkpoint", meta={k: v for k, v in GOOD_META.items() if k != "format"})
    bad("format-version-2", meta=dict(GOOD_META, format_version="2"))
    bad("step-negative", meta=dict(GOOD_META, step="-1"))
    bad("step-huge", meta=dict(GOOD_META, step="99999999999999999999"))
    bad("step-not-a-number", meta=dict(GOOD_META, step="12abc"))
    bad("has-ema-maybe", meta=dict(GOOD_META, has_ema="maybe"))
    bad("ema-without-flag", tensors=dict(model, **{"ema/w": t("F32", [2], 16, 24)}), payload=data + f4(3, 4))
    bad("unexpected-tensor", tensors={"model/w": t("F32", [2], 0, 8), "weights": t("F32", [2], 8, 16)})
    bad("empty-parameter-name", tensors={"model/": t("F32", [2], 0, 8), "optim/m.w": t("F32", [2], 8, 16)})
    bad("optimizer-not-json", meta=dict(GOOD_META, optimizer="{lr: 1"))
    bad("optimizer-not-strings", meta=dict(GOOD_META, optimizer='{"lr": 0.001}'))
    bad("optimizer-repeated-key", meta=dict(GOOD_META, optimizer='{"lr":"1","lr":"2"}'))
    bad("optimizer-deep", meta=dict(GOOD_META, optimizer="[" * 5000 + "]" * 5000))
    bad("tensor-count-overflow", tensors={"model/w": t("F32", [4611686018427387905, 4], 0, 16)})


# ---------------------------------------------------------------- IDX

def idx(type_code, dims, data):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def write_idx():
    images = idx(0x08, [2, 2, 3], bytes(range(12)))
    put("idx", "ok-u8-2x2x3.idx", images)
    put("idx", "ok-f64.idx", idx(0x0E, [2], struct.pack(">2d", 1.5, -2)))
    put("idx", "ok-i16.idx", idx(0x0B, [3], struct.pack(">3h", -5, 0, 300)))
    put("idx", "ok-u8.idx.gz", gz(images))
    put("idx", "ok-two-members.idx.gz", gz(images[:7]) + gz(images[7:]))
    put("idx", "ok-empty-dim.idx.gz", gz(idx(0x08, [0, 28, 28], b"")))
    # Issue 17 (11): a small file whose header claims far more than any cap allows, and a
    # header followed by megabytes of zeros (inflated unboundedly before).
    put("idx", "bad-issue17-claims-16-exabytes.idx.gz", gz(idx(0x08, [0xFFFFFFFF] * 4, b"\x00" * 4096)))
    put("idx", "bad-issue17-zeros-after-data.idx.gz", gz(idx(0x08, [2, 2], bytes(4)) + bytes(8 << 20)))
    put("idx", "bad-claims-512mb-has-1mb.idx.gz", gz(idx(0x08, [512, 1024, 1024], bytes(1 << 20))))
    put("idx", "bad-dims-overflow.idx", idx(0x0E, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b"\x00" * 8))
    put("idx", "bad-absurd-dim-zero-count.idx", idx(0x08, [0, 0xFFFFFFFF], b""))
    put("idx", "bad-rank-0.idx", idx(0x08, [], b""))
    put("idx", "bad-rank-255-short.idx", bytes([0, 0, 8, 255]) + b"\x00\x00\x00\x01" * 10)
    put("idx", "bad-type.idx", bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    put("idx", "bad-magic.idx", bytes([1, 0, 8, 1]) + struct.pack(">I", 1) + b"\x00")
    put("idx", "bad-short-data.idx", images[:-1])
    put("idx", "bad-extra-data.idx", images + b"\x00")
    put("idx", "bad-short-data.idx.gz", gz(images[:-1]))
    put("idx", "bad-extra-data.idx.gz", gz(images + b"\x00"))
    put("idx", "bad-cut-stream.idx.gz", gz(images)[:-6])
    put("idx", "bad-crc.idx.gz", gz(images)[:-8] + b"\x00\x00\x00\x00" + gz(images)[-4:])
    put("idx", "bad-garbage-after-stream.idx.gz", gz(images) + b"garbage")
    put("idx", "bad-corrupt-deflate.idx.gz", gz(images)[:10] + b"\xff" * 20 + gz(images)[30:])
    put("idx", "bad-gzip-magic-only.idx.gz", b"\x1f\x8b")
    put("idx", "bad-short.idx", b"\x00\x00")


# ---------------------------------------------------------------- mixture JSON

def write_mixtures():
    good = {"weights": [1, 3], "means": [[0, 1], [2, 3]], "variances": [[1, 1], [0.5, 0.25]]}
    put("mixture", "ok-two-components.json", json.dumps(good).encode())
    put("mixture", "ok-one-component-3d.json", b'{"variances":[[0.1,0.2,0.3]],"means":[[1e3,-1e3,0]],"weights":[0.5]}')

    def bad(name, **change):
        m = dict(good)
        m.update(change)
        put("mixture", "bad-" + name + ".json", json.dumps(m, allow_nan=True).encode())

    bad("mean-infinite", means=[[float("inf"), 1], [2, 3]])           # written as Infinity: not JSON
    bad("mean-nan", means=[[float("nan"), 1], [2, 3]])                # NaN: not JSON
    put("mixture", "bad-mean-1e999.json", b'{"weights":[1],"means":[[1e999]],"variances":[[1]]}')
    bad("mean-huge", means=[[1e300, 1], [2, 3]])
    bad("variance-negative", variances=[[-1, 1], [1, 1]])
    bad("variance-zero", variances=[[0, 1], [1, 1]])
    bad("variance-subnormal", variances=[[1e-320, 1], [1, 1]])
    bad("variance-huge", variances=[[1e300, 1], [1, 1]])
    bad("weight-negative", weights=[-1, 2])
    bad("weight-zero", weights=[0, 1])
    bad("weights-all-zero", weights=[0, 0])
    bad("weights-sum-overflows", weights=[1e308, 1e308])
    bad("weight-vanishes-when-normalized", weights=[5e-324, 1e308])
    bad("weights-count", weights=[1, 1, 1])
    bad("ragged-means", means=[[0, 1], [2]])
    bad("variance-dimension", variances=[[1, 1], [1, 1, 1]])
    bad("no-components", weights=[], means=[], variances=[])
    bad("dimension-zero", weights=[1], means=[[]], variances=[[]])
    bad("weights-not-array", weights=1)
    bad("mean-string", means=[["0", 1], [2, 3]])
    bad("means-flat", means=[0, 1])
    bad("mean-null", means=[[None, 1], [2, 3]])
    put("mixture", "bad-missing-variances.json", b'{"weights":[1],"means":[[0]]}')
    put("mixture", "bad-extra-key.json", b'{"weights":[1],"means":[[0]],"variances":[[1]],"covariance":[[1]]}')
    put("mixture", "bad-repeated-key.json", b'{"weights":[1],"means":[[0]],"variances":[[1]],"weights":[-1]}')
    put("mixture", "bad-top-level-array.json", b'[1, 2]')
    put("mixture", "bad-deep-nesting.json", b'{"weights":' + b"[" * 5000 + b"]" * 5000 + b"}")
    put("mixture", "bad-trailing-text.json", json.dumps(good).encode() + b" {}")
    put("mixture", "bad-invalid-utf8.json", b'{"weights\xff":[1],"means":[[0]],"variances":[[1]]}')
    put("mixture", "bad-empty.json", b"")


if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    write_npy()
    write_safetensors()
    write_checkpoints()
    write_idx()
    write_mixtures()
    for loader in sorted(os.listdir(ROOT)):
        print(loader, len(os.listdir(os.path.join(ROOT, loader))), "files")
