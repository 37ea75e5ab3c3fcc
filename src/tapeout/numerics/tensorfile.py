"""Read and write ``.safetensors`` files with numpy alone (no torch, no safetensors package).

Layout (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N, N bytes of
JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the
tensor bytes (offsets relative to the end of the header), little-endian, row-major.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tapeout.errors import TapeoutError

#: safetensors dtype -> (numpy dtype of the raw storage, bytes per element)
_RAW = {
    "F64": (np.dtype("<f8"), 8), "F32": (np.dtype("<f4"), 4), "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2), "F8_E4M3": (np.dtype("u1"), 1), "F8_E5M2": (np.dtype("u1"), 1),
    "I64": (np.dtype("<i8"), 8), "I32": (np.dtype("<i4"), 4), "I16": (np.dtype("<i2"), 2),
    "I8": (np.dtype("i1"), 1), "U8": (np.dtype("u1"), 1), "BOOL": (np.dtype("?"), 1),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2")
MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute file offset
    end: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


def read_header(path: str | Path) -> tuple[list[TensorInfo], dict[str, str]]:
    """The tensors of a safetensors file (in file order) and its metadata; one-line errors."""
    p = Path(path)
    if not p.is_file():
        raise TapeoutError(f"no such file: {p}", field="file")
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise TapeoutError(f"{p.name} is not a safetensors file (shorter than 8 bytes)", field="file")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER):
            raise TapeoutError(f"{p.name} is not a safetensors file (header length {n} exceeds the file)", field="file")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TapeoutError(f"{p.name}: bad safetensors header ({exc.__class__.__name__})", field="file") from None
    if not isinstance(header, dict):
        raise TapeoutError(f"{p.name}: safetensors header is not a JSON object", field="file")
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = []
    for name, spec in header.items():
        try:
            dtype, raw_shape, (b, e) = spec["dtype"], spec["shape"], spec["data_offsets"]
            if not isinstance(raw_shape, list) or not all(type(x) is int for x in raw_shape) \
                    or not all(type(x) is int for x in (b, e)):
                raise TypeError
            shape = tuple(raw_shape)
        except (KeyError, TypeError, ValueError):
            raise TapeoutError(f"{p.name}: tensor {name!r} has a malformed entry (shape and data_offsets must be "
                               "lists of integers)", field="file") from None
        if any(x < 0 for x in shape) or b < 0 or e < 0:
            raise TapeoutError(f"{p.name}: tensor {name!r} has a negative shape or offset {list(shape)}, "
                               f"{[b, e]}; allowed: integers >= 0", field="file")
        if dtype not in _RAW:
            raise TapeoutError(f"{p.name}: tensor {name!r} has unsupported dtype {dtype!r}; allowed: "
                               f"{', '.join(_RAW)}", field="file")
        info = TensorInfo(name, dtype, shape, base + int(b), base + int(e))
        if not (base <= info.begin <= info.end <= size) or info.nbytes != info.numel * _RAW[dtype][1]:
            raise TapeoutError(f"{p.name}: tensor {name!r} has data offsets outside the file or of the wrong "
                               "size", field="file")
        out.append(info)
    out.sort(key=lambda t: t.begin)
    return out, {str(k): str(v) for k, v in meta.items()}


def _to_float(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if dtype in ("F8_E4M3", "F8_E5M2"):
        from tapeout.numerics.codec import decode

        return decode(raw, "fp8_e4m3" if dtype == "F8_E4M3" else "fp8_e5m2").astype(np.float32)
    return raw


def load(path: str | Path, info: TensorInfo, rows: slice | None = None) -> np.ndarray:
    """One tensor (optionally a slice of its first axis) as stored (floats widened to float32/64, bf16/fp8
    decoded exactly)."""
    raw_dtype, itemsize = _RAW[info.dtype]
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=info.begin, shape=(info.nbytes,)) if info.nbytes else \
        np.zeros(0, np.uint8)
    arr = np.frombuffer(mm, dtype=raw_dtype).reshape(info.shape)
    if rows is not None:
        arr = arr[rows]
    return _to_float(np.array(arr), info.dtype)


def iter_tensors(path: str | Path) -> Iterator[tuple[TensorInfo, np.ndarray]]:
    infos, _ = read_header(path)
    for info in infos:
        yield info, load(path, info)


def write(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write numpy arrays (float64/32/16, ints, bool) as a safetensors file."""
    names = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
             np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("u1"): "U8",
             np.dtype("?"): "BOOL"}
    header: dict[str, object] = {}
    blobs, off = [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        dt = names.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if dt is None:
            raise TapeoutError(f"cannot write dtype {a.dtype} of {name!r}", field="file")
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with Path(path).open("wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


__all__ = ["FLOAT_DTYPES", "TensorInfo", "iter_tensors", "load", "read_header", "write"]
