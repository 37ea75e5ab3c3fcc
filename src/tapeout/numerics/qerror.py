"""Quantization error of a model file: every weight tensor of a ``.safetensors`` file in a format.

Used by ``tapeout quantize-error FILE.safetensors --weights fp6_e3m2``. Tensors are processed one at a
time (large ones in chunks of rows), so a file larger than memory works; errors are float64 sums.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tapeout import dtypes
from tapeout.dtypes import DType
from tapeout.errors import TapeoutError
from tapeout.numerics import codec, tensorfile

#: elements per chunk (float64 working set ~ 8 bytes each)
CHUNK = 1 << 23


@dataclass(frozen=True)
class TensorError:
    name: str
    dtype: str
    shape: tuple[int, ...]
    original_bytes: int
    quantized_bytes: int
    fidelity: codec.Fidelity

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                "original_bytes": self.original_bytes, "quantized_bytes": self.quantized_bytes,
                **self.fidelity.to_dict()}


@dataclass(frozen=True)
class FileError:
    path: str
    fmt: DType
    tensors: tuple[TensorError, ...]
    skipped: tuple[str, ...]

    @property
    def total(self) -> codec.Fidelity:
        f = codec.Fidelity(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        for t in self.tensors:
            f = f + t.fidelity
        return f

    def to_dict(self) -> dict[str, Any]:
        orig = sum(t.original_bytes for t in self.tensors)
        q = sum(t.quantized_bytes for t in self.tensors)
        return {"file": self.path, "weights": self.fmt.name, "tensors": [t.to_dict() for t in self.tensors],
                "total": {"tensors": len(self.tensors), "original_bytes": orig, "quantized_bytes": q,
                          "compression": orig / q if q else None, **self.total.to_dict()},
                "skipped": list(self.skipped)}


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:
        return 1, 1
    cols = shape[-1]
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows, cols


def stored_bytes(fmt: DType, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor in ``fmt`` as :class:`~tapeout.numerics.codec.Quantized` stores it."""
    rows, cols = _rows_cols(shape)
    n = rows * cols
    packed = -(-n * fmt.bits // 8)
    if fmt.bits >= 16 or fmt.granularity == "none":
        return packed
    scales = int(round(fmt.scale_count(rows, cols)))
    return packed + scales * fmt.scale_bits // 8 * (2 if fmt.zero_point else 1) + fmt.tensor_scale_bits // 8


def tensor_error(path: Path, info: tensorfile.TensorInfo, fmt: DType) -> TensorError:
    rows, cols = _rows_cols(info.shape)
    first = info.shape[0] if info.shape else 1
    per_first = max(1, info.numel // max(first, 1))  # elements per index of the first axis
    step = max(1, CHUNK // per_first)
    if fmt.granularity == "sublayer" and len(info.shape) == 2:
        step = max(fmt.block_channels, step // fmt.block_channels * fmt.block_channels)
    if fmt.granularity == "sublayer" and len(info.shape) != 2:
        step = first  # blocks of rows cross first-axis boundaries: whole tensor
    if fmt.granularity == "block":  # whole tiles of rows per chunk (2-D tensors), else the whole tensor
        n = fmt.block_size
        step = max(n, step // n * n) if len(info.shape) == 2 else first
    amax = None
    if fmt.bits < 16 and (fmt.granularity == "tensor" or fmt.tensor_scale_bits):
        amax = 0.0
        for i in range(0, first, step):
            x = tensorfile.load(path, info, slice(i, i + step)) if info.shape else tensorfile.load(path, info)
            if x.size:
                amax = max(amax, float(np.nanmax(np.abs(np.where(np.isfinite(x), x, 0)))))
    fid = codec.Fidelity(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for i in range(0, first, step):
        x = tensorfile.load(path, info, slice(i, i + step)) if info.shape else tensorfile.load(path, info)
        x = np.asarray(x, dtype=np.float64)
        if fmt.bits >= 16:
            y = codec.round_trip(x, fmt)
        else:
            y = codec.dequantize(codec.quantize(x, fmt, amax=amax))
        fid = fid + codec.fidelity(x, y)
    return TensorError(info.name, info.dtype, info.shape, info.nbytes, stored_bytes(fmt, info.shape), fid)


def quantize_file(path: str | Path, weights: str | DType, *, all_tensors: bool = False,
                  match: str | None = None) -> FileError:
    """Per-tensor error and size of the file's float tensors in ``weights`` (2-D and larger unless
    ``all_tensors``; ``match``: a regular expression on tensor names)."""
    p = Path(path)
    fmt = dtypes.parse(weights, field="weights")
    if match is not None and not match.strip():
        raise TapeoutError("empty regular expression; give a pattern of tensor names (e.g. 'mlp') or leave "
                           "--match out to take every weight tensor", field="match")
    try:
        rx = re.compile(match) if match else None
    except re.error as exc:
        raise TapeoutError(f"bad regular expression {match!r}: {exc}", field="match") from None
    infos, _ = tensorfile.read_header(p)
    done, skipped = [], []
    for info in infos:
        if not info.is_float or (len(info.shape) < 2 and not all_tensors) or (rx and not rx.search(info.name)):
            skipped.append(info.name)
            continue
        try:
            done.append(tensor_error(p, info, fmt))
        except codec.CodecError as exc:
            raise TapeoutError(f"{info.name}: {exc}", field="weights") from None
    if not done:  # a total over no tensors ("exact, cosine 1") would read as a perfect result
        names = ", ".join(i.name for i in infos[:5]) + (", ..." if len(infos) > 5 else "")
        if rx is not None and any(rx.search(i.name) for i in infos):
            why = f"--match {match!r} selects only 1-D or non-float tensors (--all includes 1-D ones)"
        elif rx is not None:
            why = f"--match {match!r} selects none of the {len(infos)} tensors ({names})"
        elif infos:
            why = f"none of its {len(infos)} tensors is a float tensor of 2 or more dimensions (--all includes 1-D ones)"
        else:
            why = "it holds no tensors"
        raise TapeoutError(f"nothing to quantize in {p.name}: {why}", field="match" if rx is not None else "file")
    return FileError(str(p), fmt, tuple(done), tuple(skipped))


__all__ = ["FileError", "TensorError", "quantize_file", "stored_bytes", "tensor_error"]
