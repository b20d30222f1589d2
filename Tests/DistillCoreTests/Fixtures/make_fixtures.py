#!/usr/bin/env python3
"""Generate the safetensors / .npy fixtures read by the DistillCore IO tests.

Run from anywhere:

    python3 Tests/DistillCoreTests/Fixtures/make_fixtures.py

Files are written next to this script (or into --out). The output is
deterministic: every value is a fixed constant, so re-running the script
reproduces the same bytes.

Valid files
    reference.safetensors   a f32(2,3), b f16(4,), c f64(2,2), d i64(3,),
                            e bf16(2,), z f32(0,), plus string metadata.
                            Written with safetensors.torch because numpy has
                            no bfloat16 dtype.
    f4_c.npy                float32 (2,3,4), C order
    f8_fortran.npy          float64 (3,2), Fortran order
    u1.npy                  uint8 (5,)
    i8_big.npy              big-endian int64 (2,2)
    scalar.npy              float32, 0-d
    expected.json           for each tensor: dtype, shape, and the logical
                            values in row-major order as float64; the
                            safetensors metadata; a description of each
                            corrupt file.

Corrupt files (every reader must reject them with an error, never crash)
    truncated.npy, bad_magic.npy, st_huge_header.safetensors,
    st_bad_json.safetensors, st_offsets_out_of_range.safetensors,
    st_overlap.safetensors, st_truncated.safetensors, st_bad_dtype.safetensors

Every value below is exactly representable in float32 (and in its own dtype),
except c[0,0] = 0.1 and c[1,0] = 1e300, which deliberately only fit float64.
Requirements: numpy, torch, safetensors.
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file

METADATA = {"format": "test", "note": "hello"}


# ---------------------------------------------------------------------------
# Valid tensors
# ---------------------------------------------------------------------------

def safetensors_arrays() -> dict[str, tuple[str, np.ndarray]]:
    """name -> (safetensors dtype string, logical values as a numpy array)."""
    return {
        "a": ("F32", (np.arange(6, dtype=np.float32) * 0.5 - 1.25).reshape(2, 3)),
        "b": ("F16", np.array([-2.0, 0.5, 1.5, 65504.0], dtype=np.float16)),
        "c": ("F64", np.array([[0.1, -2.5], [1.0e300, 3.0]], dtype=np.float64)),
        "d": ("I64", np.array([-3, 0, 1048576], dtype=np.int64)),
        # bf16 values kept as float32 here; both are exact in bfloat16.
        "e": ("BF16", np.array([1.5, -0.15625], dtype=np.float32)),
        "z": ("F32", np.zeros((0,), dtype=np.float32)),
    }


def npy_arrays() -> dict[str, np.ndarray]:
    """file stem -> array exactly as it is written with np.save."""
    f8 = (np.arange(6, dtype=np.float64) - 2.5).reshape(3, 2)
    return {
        "f4_c": (np.arange(24, dtype=np.float32) * 0.25 - 3.0).reshape(2, 3, 4),
        "f8_fortran": np.asfortranarray(f8),
        "u1": np.array([0, 1, 127, 128, 255], dtype=np.uint8),
        "i8_big": np.array([[-2, 1], [256, -65536]], dtype=">i8"),
        "scalar": np.array(-3.5, dtype=np.float32),
    }


def canonicalise_metadata_order(path: Path) -> None:
    """Rewrite the __metadata__ object of a safetensors header with sorted keys.

    safetensors keeps metadata in a Rust HashMap, so its key order changes from
    run to run. Tensor entries are already written in a stable order. Sorting
    the metadata keys keeps the header byte-for-byte identical between runs;
    the header length and the data section stay exactly as the library wrote
    them.
    """
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    raw = blob[8:8 + n]
    header = json.loads(raw, object_pairs_hook=lambda pairs: dict(pairs))
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    new += b" " * (n - len(new))
    if len(new) != n:
        raise RuntimeError("unexpected safetensors header layout; cannot canonicalise")
    path.write_bytes(blob[:8] + new + blob[8 + n:])


def to_torch(dtype: str, arr: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr).copy())
    return t.to(torch.bfloat16) if dtype == "BF16" else t


def npy_dtype_label(arr: np.ndarray) -> str:
    return arr.dtype.str  # e.g. '<f4', '>i8', '|u1'


def flat_values(arr: np.ndarray) -> list[float]:
    """Logical values in row-major (C) order, as Python floats (float64)."""
    return [float(v) for v in np.asarray(arr).astype(np.float64).reshape(-1, order="C")]


# ---------------------------------------------------------------------------
# Corrupt files
# ---------------------------------------------------------------------------

def st_bytes(header: dict | bytes, data: bytes) -> bytes:
    """Hand-built safetensors file: u64 LE header length, header, data.

    A dict header is serialised as compact JSON with sorted keys and padded
    with spaces to a multiple of 8 bytes, as the reference writer does.
    """
    if isinstance(header, dict):
        raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
    else:
        raw = header
    return struct.pack("<Q", len(raw)) + raw + data


def f32_bytes(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def corrupt_files(out: Path) -> dict[str, bytes]:
    npy_good = (out / "f4_c.npy").read_bytes()
    st_good = (out / "reference.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", st_good[:8])
    data_start = 8 + header_len
    data_len = len(st_good) - data_start
    assert data_len >= 2, "reference.safetensors has no data section to cut"

    return {
        # A valid float32 .npy with its last 5 bytes removed.
        "truncated.npy": npy_good[:-5],
        # First byte of the \x93NUMPY magic replaced.
        "bad_magic.npy": b"\x00" + npy_good[1:],
        # Header length field claims 2^40 bytes; only "{}" follows.
        "st_huge_header.safetensors": struct.pack("<Q", 1 << 40) + b"{}",
        # Correctly length-prefixed header that is not JSON.
        "st_bad_json.safetensors": st_bytes(b"{this is not json!!!", f32_bytes([1.0, 2.0])),
        # Valid JSON; tensor claims bytes [0, 16) but the data section holds 8.
        "st_offsets_out_of_range.safetensors": st_bytes(
            {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
            f32_bytes([1.0, 2.0]),
        ),
        # Two tensors whose byte ranges [0, 8) and [4, 12) overlap.
        "st_overlap.safetensors": st_bytes(
            {
                "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            f32_bytes([1.0, 2.0, 3.0]),
        ),
        # reference.safetensors cut halfway through its data section.
        "st_truncated.safetensors": st_good[: data_start + data_len // 2],
        # A dtype string that no safetensors version defines.
        "st_bad_dtype.safetensors": st_bytes(
            {"x": {"dtype": "NOT_A_DTYPE", "shape": [2], "data_offsets": [0, 8]}},
            f32_bytes([1.0, 2.0]),
        ),
    }


CORRUPT_DESCRIPTIONS = {
    "truncated.npy": "valid float32 (2,3,4) .npy with the last 5 bytes removed",
    "bad_magic.npy": "valid .npy whose first magic byte is 0x00 instead of 0x93",
    "st_huge_header.safetensors": "header length field 2^40 followed by only '{}'",
    "st_bad_json.safetensors": "length-prefixed header that is not JSON",
    "st_offsets_out_of_range.safetensors": "tensor x F32 [4] with data_offsets [0,16] but 8 data bytes",
    "st_overlap.safetensors": "tensors x [0,8) and y [4,12) overlap in a 12-byte data section",
    "st_truncated.safetensors": "reference.safetensors cut halfway through the data section",
    "st_bad_dtype.safetensors": "tensor x with dtype 'NOT_A_DTYPE'",
}


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def write(out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    expected: dict = {"tensors": {}, "safetensors_metadata": METADATA, "corrupt": CORRUPT_DESCRIPTIONS}

    st = safetensors_arrays()
    save_file({k: to_torch(dt, v) for k, (dt, v) in st.items()}, str(out / "reference.safetensors"),
              metadata=METADATA)
    canonicalise_metadata_order(out / "reference.safetensors")
    written.append("reference.safetensors")
    for name, (dt, arr) in st.items():
        expected["tensors"][f"safetensors/{name}"] = {
            "dtype": dt, "shape": list(arr.shape), "values": flat_values(arr),
        }

    for stem, arr in npy_arrays().items():
        np.save(out / f"{stem}.npy", arr, allow_pickle=False)
        written.append(f"{stem}.npy")
        expected["tensors"][f"npy/{stem}"] = {
            "dtype": npy_dtype_label(arr),
            "fortran_order": bool(arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous),
            "shape": list(arr.shape),
            "values": flat_values(arr),
        }

    for name, blob in corrupt_files(out).items():
        (out / name).write_bytes(blob)
        written.append(name)

    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    written.append("expected.json")
    return written


def self_check(out: Path) -> None:
    """Read the valid files back with the reference libraries and compare."""
    expected = json.loads((out / "expected.json").read_text())["tensors"]

    loaded = load_file(str(out / "reference.safetensors"))
    with safe_open(str(out / "reference.safetensors"), framework="pt") as f:
        assert f.metadata() == METADATA, f.metadata()
    for name, t in loaded.items():
        exp = expected[f"safetensors/{name}"]
        assert list(t.shape) == exp["shape"], name
        got = t.to(torch.float64).reshape(-1).tolist()
        assert got == exp["values"], (name, got, exp["values"])

    for stem in npy_arrays():
        arr = np.load(out / f"{stem}.npy", allow_pickle=False)
        exp = expected[f"npy/{stem}"]
        assert list(arr.shape) == exp["shape"], stem
        assert flat_values(arr) == exp["values"], stem

    for name in ("truncated.npy", "bad_magic.npy"):
        try:
            np.load(out / name, allow_pickle=False)
        except Exception:
            pass
        else:
            raise AssertionError(f"numpy accepted {name}")


def main() -> int:
    p = argparse.ArgumentParser(description="Generate DistillCore IO test fixtures.")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                   help="output directory (default: this script's directory)")
    args = p.parse_args()
    written = write(args.out)
    self_check(args.out)
    total = sum((args.out / n).stat().st_size for n in written)
    for n in written:
        print(f"{(args.out / n).stat().st_size:6d}  {n}")
    print(f"{total:6d}  total bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
