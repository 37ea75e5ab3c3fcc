"""Bit-exact numpy codec for every format of :mod:`tapeout.dtypes`, and fidelity metrics.

- :func:`encode` / :func:`decode`: values <-> element codes of a format's grid (no scales).
  Floats round to nearest, ties to even, saturate at the largest finite value (Inf too, as the
  OCP "satfinite" conversions do), keep subnormals; NaN becomes the NaN code where the format
  has one (fp8) and is an error where it has none (fp6, fp4, ...). Integers round half to even
  and clip. NF4 picks the nearest of QLoRA's 16 levels (a tie goes to the lower level, as
  bitsandbytes' threshold tests do).
- :func:`quantize` / :func:`dequantize`: a tensor with its scales (and zero points) per the
  format's granularity. Scales are absmax / grid max (asymmetric integers: (max - min) /
  (2^bits - 1) with an integer zero point), rounded to the scale format; ``e8m0`` scales are
  2^(floor(log2 absmax) - emax), as OCP MX specifies. All arithmetic is float64.
- :func:`pack` / :func:`unpack`: codes <-> bytes in a real layout ("le": LSB-first bit stream, the
  layout of GPTQ int4, OCP MX fp4/fp6 and fp8; "be": MSB-first, bitsandbytes' nf4/int4 with the
  first element in the high nibble; "sliced": TC-FPx's bit-level pre-packing of FP6-LLM, the
  code split into 1/2/4-bit planes (most significant bits in the narrowest plane) stored as separate
  MSB-first streams, without its per-fragment reordering).
- :func:`fidelity`: MSE, SQNR, max abs error, cosine similarity against the original.

A weight matrix is (rows = output channels, cols = input features) as PyTorch stores nn.Linear;
groups run along cols. Tensors of other ranks are viewed as (prod(shape[:-1]), shape[-1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tapeout import dtypes
from tapeout.dtypes import DType

#: QLoRA / bitsandbytes NF4 levels (float32 values as bitsandbytes stores them)
NF4_LEVELS = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
], dtype=np.float32).astype(np.float64)
_NF4_MID = (NF4_LEVELS[1:] + NF4_LEVELS[:-1]) / 2

#: (exponent bits, mantissa bits, special) of the scale formats
_SCALE_GRID = {"fp16": (5, 10, "ieee"), "bf16": (8, 7, "ieee"), "fp32": (8, 23, "ieee"), "fp8": (4, 3, "fn")}


class CodecError(ValueError):
    """A value the format cannot represent (NaN into a format without NaN)."""


# ---- float grids ------------------------------------------------------------------------------

def _float_params(d: DType) -> tuple[int, int, int, str]:
    return d.exponent_bits, d.mantissa_bits, (1 << (d.exponent_bits - 1)) - 1, d.special


def _grid_max(e: int, m: int, special: str) -> float:
    bias = (1 << (e - 1)) - 1
    top = (1 << e) - 1
    if special == "ieee":
        return 2.0 ** (top - 1 - bias) * (2 - 2.0 ** -m)
    if special == "fn":
        return 2.0 ** (top - bias) * (2 - 2.0 ** (1 - m))
    return 2.0 ** (top - bias) * (2 - 2.0 ** -m)


def round_float(x: np.ndarray, e: int, m: int, special: str = "finite", saturate: bool = True) -> np.ndarray:
    """Round float64 values to the eXmY grid: nearest, ties to even, subnormals kept, saturating."""
    x = np.asarray(x, dtype=np.float64)
    bias = (1 << (e - 1)) - 1
    emin = 1 - bias
    a = np.abs(x)
    with np.errstate(invalid="ignore", over="ignore"):
        _, ex = np.frexp(a)
        ex = np.maximum(ex - 1, emin)  # floor(log2 a), at least the subnormal exponent
        quantum = np.ldexp(1.0, ex - m)
        r = np.rint(a / quantum) * quantum  # a / quantum is exact: quantum is a power of two
        top = _grid_max(e, m, special)
        if saturate or special == "finite":
            r = np.where(np.isnan(a), a, np.minimum(r, top))
        else:
            r = np.where(r > top, np.inf if special == "ieee" else np.nan, r)
    return np.copysign(r, x)


def encode(values: np.ndarray, fmt: DType | str, *, saturate: bool = True) -> np.ndarray:
    """Element codes (uint8) of ``values`` on ``fmt``'s grid (no scaling)."""
    d = dtypes.parse(fmt)
    v = np.asarray(values, dtype=np.float64)
    if d.bits > 8:
        raise CodecError(f"{d.name}: encode is for formats of 8 bits or fewer")
    if d.kind == "int":
        lo, hi = -(1 << (d.bits - 1)), (1 << (d.bits - 1)) - 1
        if np.isnan(v).any():
            raise CodecError(f"{d.name} has no NaN")
        q = np.clip(np.rint(v), lo, hi).astype(np.int64)
        return (q & ((1 << d.bits) - 1)).astype(np.uint8)
    if d.kind == "nf":
        if np.isnan(v).any():
            raise CodecError("nf4 has no NaN")
        return np.searchsorted(_NF4_MID, np.clip(v, -1.0, 1.0), side="left").astype(np.uint8)
    e, m, bias, special = _float_params(d)
    nan = np.isnan(v)
    if nan.any() and special == "finite":
        raise CodecError(f"{d.name} has no NaN (all {1 << d.bits} codes are finite)")
    r = round_float(v, e, m, special, saturate)
    sign = np.signbit(r).astype(np.int64)
    finite = np.isfinite(r)
    a = np.where(finite, np.abs(r), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        _, ex = np.frexp(a)
        expo = ex - 1
        normal = a >= 2.0 ** (1 - bias)
        exp_field = np.where(normal, expo + bias, 0)
        mant = np.where(normal, np.ldexp(a, -(expo - m)) - (1 << m), np.ldexp(a, -(1 - bias - m)))
    code = (sign << (e + m)) | (exp_field.astype(np.int64) << m) | mant.astype(np.int64)
    allones = (1 << (e + m)) - 1
    inf = np.isinf(r)
    if special == "ieee":
        code[inf] = (sign[inf] << (e + m)) | (((1 << e) - 1) << m)
    elif inf.any():  # non-saturating overflow into a format without Inf
        code[inf] = (sign[inf] << (e + m)) | allones
    code[nan] = (sign[nan] << (e + m)) | allones
    return code.astype(np.uint8)


def decode(codes: np.ndarray, fmt: DType | str) -> np.ndarray:
    """float64 values of element codes."""
    d = dtypes.parse(fmt)
    c = np.asarray(codes).astype(np.int64) & ((1 << d.bits) - 1)
    if d.kind == "int":
        return np.where(c >= (1 << (d.bits - 1)), c - (1 << d.bits), c).astype(np.float64)
    if d.kind == "nf":
        return NF4_LEVELS[c]
    e, m, bias, special = _float_params(d)
    sign = (c >> (e + m)) & 1
    ef = (c >> m) & ((1 << e) - 1)
    mf = c & ((1 << m) - 1)
    val = np.where(ef == 0, np.ldexp(mf.astype(np.float64), 1 - bias - m),
                   np.ldexp(((1 << m) + mf).astype(np.float64), ef - bias - m))
    top = (1 << e) - 1
    if special == "ieee":
        val = np.where(ef == top, np.where(mf == 0, np.inf, np.nan), val)
    elif special == "fn":
        val = np.where((ef == top) & (mf == (1 << m) - 1), np.nan, val)
    return np.where(sign == 1, -val, val)


def grid(fmt: DType | str) -> tuple[np.ndarray, np.ndarray]:
    """(codes, values) of every code of an element format of <= 8 bits, NaN/Inf codes included."""
    d = dtypes.parse(fmt)
    codes = np.arange(1 << d.bits, dtype=np.uint8)
    return codes, decode(codes, d)


def representable(fmt: DType | str) -> np.ndarray:
    """Sorted distinct finite values of an element format (signed zeros merged)."""
    _, v = grid(fmt)
    return np.unique(v[np.isfinite(v)])


# ---- scales --------------------------------------------------------------------------------

def round_scale(s: np.ndarray, scale_format: str) -> np.ndarray:
    """Round positive scales to the scale format; never returns 0 or Inf for a positive input."""
    s = np.asarray(s, dtype=np.float64)
    if scale_format == "e8m0":
        out = np.ldexp(1.0, np.clip(np.floor(np.log2(s)), -127, 127).astype(np.int64))
        return out
    e, m, special = _SCALE_GRID[scale_format]
    bias = (1 << (e - 1)) - 1
    r = round_float(s, e, m, special, saturate=True)
    tiny = 2.0 ** (1 - bias - m)
    return np.where((r == 0) & (s > 0), tiny, r)


def _emax(d: DType) -> int:
    """Exponent of the largest power of two not above the grid max (OCP MX's emax_elem)."""
    return math.floor(math.log2(d.max_value))


@dataclass(frozen=True)
class Quantized:
    """A tensor in a quantized format: codes, scales and zero points as stored."""

    fmt: DType
    shape: tuple[int, ...]
    codes: np.ndarray  # (rows, cols) uint8 element codes
    scales: np.ndarray | None  # per granularity, float64 values exact in the scale format
    zeros: np.ndarray | None  # integer zero points (asymmetric integers), same shape as scales

    @property
    def rows_cols(self) -> tuple[int, int]:
        return self.codes.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes as stored: packed codes (padded to a byte per tensor) plus scales and zero points."""
        n = self.codes.size
        packed = -(-n * self.fmt.bits // 8)
        extra = 0
        if self.scales is not None:
            extra = self.scales.size * self.fmt.scale_bits // 8 * (2 if self.zeros is not None else 1)
        return packed + extra + self.fmt.tensor_scale_bits // 8

    def dequantize(self) -> np.ndarray:
        return dequantize(self)


def _view2d(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0:
        return x.reshape(1, 1)
    if x.ndim == 1:
        return x.reshape(1, -1)
    return x.reshape(-1, x.shape[-1])


def _blocks(x2: np.ndarray, d: DType) -> tuple[np.ndarray, tuple[int, ...]]:
    """Reshape the (rows, cols) view into (blocks, elements per block) and the scale array shape."""
    rows, cols = x2.shape
    g = d.granularity
    if g == "tensor":
        return x2.reshape(1, -1), (1,)
    if g == "channel":
        return x2, (rows,)
    if g == "group":
        n = d.group_size
        ng = -(-cols // n)
        pad = ng * n - cols
        xp = np.pad(x2, ((0, 0), (0, pad))) if pad else x2
        return xp.reshape(rows * ng, n), (rows, ng)
    if g == "sublayer":
        c = d.block_channels
        nb = -(-rows // c)
        pad = nb * c - rows
        xp = np.pad(x2, ((0, pad), (0, 0))) if pad else x2
        return xp.reshape(nb, c * cols), (nb,)
    if g == "block":  # N x N tiles, row-major over the tile grid
        n = d.block_size
        nr, nc = -(-rows // n), -(-cols // n)
        xp = np.pad(x2, ((0, nr * n - rows), (0, nc * n - cols)))
        return xp.reshape(nr, n, nc, n).transpose(0, 2, 1, 3).reshape(nr * nc, n * n), (nr, nc)
    raise AssertionError(g)


def _unblock(b: np.ndarray, d: DType, rows: int, cols: int) -> np.ndarray:
    g = d.granularity
    if g == "group":
        return b.reshape(rows, -1)[:, :cols]
    if g == "sublayer":
        return b.reshape(-1, cols)[:rows]
    if g == "block":
        n = d.block_size
        nr, nc = -(-rows // n), -(-cols // n)
        return b.reshape(nr, nc, n, n).transpose(0, 2, 1, 3).reshape(nr * n, nc * n)[:rows, :cols]
    return b.reshape(rows, cols)


def quantize(x: np.ndarray, fmt: DType | str, *, saturate: bool = True, amax: float | None = None) -> Quantized:
    """Quantize a tensor (any float dtype; computed in float64) to ``fmt`` with its scales.

    ``amax``: per-tensor formats only, the absolute maximum of the whole tensor when ``x`` is a chunk of it.
    """
    d = dtypes.parse(fmt)
    if d.bits >= 16:
        raise CodecError(f"{d.name} is not a quantized format")
    xf = np.asarray(x, dtype=np.float64)
    if np.isnan(xf).any() and not (d.kind == "float" and d.special != "finite"):
        raise CodecError(f"{d.name} has no NaN; the tensor contains NaN")
    x2 = _view2d(xf)
    rows, cols = x2.shape
    if d.granularity == "none":
        return Quantized(d, xf.shape, encode(x2, d, saturate=saturate), None, None)
    if d.zero_point and d.scale_format == "e8m0":
        raise CodecError("e8m0 scales cannot hold a zero point")
    blk, sshape = _blocks(x2, d)
    finite = np.where(np.isfinite(blk), blk, 0.0)
    if d.zero_point:
        levels = (1 << d.bits) - 1
        lo = np.minimum(finite.min(axis=1), 0.0)
        hi = np.maximum(finite.max(axis=1), 0.0)
        span = hi - lo
        s = round_scale(np.where(span > 0, span / levels, 1.0), d.scale_format)
        z = np.clip(np.rint(-lo / s), 0, levels)
        z = round_scale(np.where(z > 0, z, 1.0), d.scale_format) * (z > 0)  # stored in the scale format
        q = np.clip(np.rint(blk / s[:, None] + z[:, None]), 0, levels).astype(np.uint8)
        codes = _unblock(q, d, rows, cols)
        return Quantized(d, xf.shape, codes, s.reshape(sshape), z.reshape(sshape))
    amax_b = np.abs(finite).max(axis=1)
    if amax is not None and d.granularity == "tensor":
        amax_b = np.full_like(amax_b, float(amax))
    if d.tensor_scale_bits:  # NVFP4: block scales in e4m3 relative to one fp32 scale of the whole tensor
        top = float(amax) if amax is not None else float(amax_b.max(initial=0.0))
        t = float(np.float32(top / (d.max_value * dtypes.parse("fp8").max_value))) if top > 0 else 1.0
        s = round_scale(np.where(amax_b > 0, amax_b / d.max_value / t, 1.0), d.scale_format) * t
        s = np.where(s > 0, s, t)
        codes = _unblock(encode(blk / s[:, None], dtypes.element(d), saturate=saturate), d, rows, cols)
        return Quantized(d, xf.shape, codes, s.reshape(sshape), None)
    amax = amax_b  # type: ignore[assignment]
    if d.scale_format == "e8m0":
        with np.errstate(divide="ignore"):
            s = np.where(amax > 0, np.ldexp(1.0, (np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - _emax(d))
                                          .astype(np.int64)), 1.0)
    else:
        s = round_scale(np.where(amax > 0, amax / d.max_value, 1.0), d.scale_format)
    codes = _unblock(encode(blk / s[:, None], dtypes.element(d), saturate=saturate), d, rows, cols)
    return Quantized(d, xf.shape, codes, s.reshape(sshape), None)


def dequantize(q: Quantized) -> np.ndarray:
    """float64 tensor of the original shape."""
    d = q.fmt
    rows, cols = q.codes.shape
    if q.scales is None:
        return decode(q.codes, dtypes.element(d)).reshape(q.shape)
    if d.zero_point:
        blk, _ = _blocks(q.codes.astype(np.float64), d)
        s, z = q.scales.reshape(-1, 1), q.zeros.reshape(-1, 1)  # type: ignore[union-attr]
        return _unblock((blk - z) * s, d, rows, cols).reshape(q.shape)
    blk, _ = _blocks(q.codes, d)
    vals = decode(blk, dtypes.element(d)) * q.scales.reshape(-1, 1)
    return _unblock(vals, d, rows, cols).reshape(q.shape)


def round_trip(x: np.ndarray, fmt: DType | str) -> np.ndarray:
    """dequantize(quantize(x)) (fp16/bf16/fp32 targets: a plain rounding cast)."""
    d = dtypes.parse(fmt)
    if d.bits >= 16:
        e, m = d.exponent_bits, d.mantissa_bits
        return round_float(np.asarray(x, dtype=np.float64), e, m, "ieee", saturate=False)
    return dequantize(quantize(x, d))


# ---- byte layouts ----------------------------------------------------------------------------

LAYOUTS = ("le", "be", "sliced")


def pack(codes: np.ndarray, bits: int, layout: str = "le") -> np.ndarray:
    """Pack ``bits``-wide codes (row-major order) into uint8 bytes."""
    c = np.asarray(codes).astype(np.uint16).ravel()
    if layout == "sliced":
        planes = [p for p in (1, 2, 4) if bits & p]  # TC-FPx: 1-bit plane holds the MSB, 4-bit the LSBs
        out, shift = [], bits
        for p in planes:
            shift -= p
            out.append(pack((c >> shift) & ((1 << p) - 1), p, "be"))
        return np.concatenate(out) if out else np.zeros(0, np.uint8)
    if layout not in ("le", "be"):
        raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    if layout == "le":
        b = ((c[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
        return np.packbits(b.ravel(), bitorder="little")
    b = ((c[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8)
    return np.packbits(b.ravel(), bitorder="big")


def unpack(buf: np.ndarray, bits: int, count: int, layout: str = "le") -> np.ndarray:
    """Inverse of :func:`pack`: ``count`` codes (uint8)."""
    buf = np.asarray(buf, dtype=np.uint8)
    if layout == "sliced":
        planes = [p for p in (1, 2, 4) if bits & p]
        out = np.zeros(count, np.uint16)
        pos, shift = 0, bits
        for p in planes:
            n = -(-count * p // 8)
            shift -= p
            out |= unpack(buf[pos:pos + n], p, count, "be").astype(np.uint16) << shift
            pos += n
        return out.astype(np.uint8)
    order = "little" if layout == "le" else "big"
    b = np.unpackbits(buf, bitorder=order)[: count * bits].reshape(count, bits).astype(np.uint16)
    weights = (1 << np.arange(bits)) if layout == "le" else (1 << np.arange(bits - 1, -1, -1))
    return (b * weights).sum(axis=1).astype(np.uint8)


def packed_nbytes(count: int, bits: int, layout: str = "le") -> int:
    if layout == "sliced":
        return sum(-(-count * p // 8) for p in (4, 2, 1) if bits & p)
    return -(-count * bits // 8)


# ---- fidelity --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fidelity:
    """Error of a reconstruction ``xhat`` of ``x`` (float64 sums over all elements)."""

    numel: int
    sum_sq_error: float
    sum_sq_signal: float
    max_abs_error: float
    dot: float
    sum_sq_recon: float

    @property
    def mse(self) -> float:
        return self.sum_sq_error / self.numel if self.numel else 0.0

    @property
    def sqnr_db(self) -> float:
        """10 log10(signal power / error power); +Inf when the reconstruction is exact."""
        if self.sum_sq_error == 0:
            return math.inf
        if self.sum_sq_signal == 0:
            return -math.inf
        return 10 * math.log10(self.sum_sq_signal / self.sum_sq_error)

    @property
    def cosine(self) -> float:
        den = math.sqrt(self.sum_sq_signal * self.sum_sq_recon)
        return self.dot / den if den else (1.0 if self.sum_sq_error == 0 else 0.0)

    def __add__(self, other: Fidelity) -> Fidelity:
        return Fidelity(self.numel + other.numel, self.sum_sq_error + other.sum_sq_error,
                        self.sum_sq_signal + other.sum_sq_signal, max(self.max_abs_error, other.max_abs_error),
                        self.dot + other.dot, self.sum_sq_recon + other.sum_sq_recon)

    def to_dict(self) -> dict[str, float | int | None]:
        def fin(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"numel": self.numel, "mse": self.mse, "sqnr_db": fin(self.sqnr_db),
                "max_abs_error": self.max_abs_error, "cosine": self.cosine}


def fidelity(x: np.ndarray, xhat: np.ndarray) -> Fidelity:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(xhat, dtype=np.float64).ravel()
    err = y - x
    return Fidelity(
        numel=int(x.size), sum_sq_error=float(np.dot(err, err)), sum_sq_signal=float(np.dot(x, x)),
        max_abs_error=float(np.max(np.abs(err))) if x.size else 0.0, dot=float(np.dot(x, y)),
        sum_sq_recon=float(np.dot(y, y)),
    )


def quantization_error(x: np.ndarray, fmt: DType | str) -> tuple[Fidelity, int]:
    """(fidelity, stored bytes) of ``x`` in ``fmt`` (16/32-bit targets: a rounding cast)."""
    d = dtypes.parse(fmt)
    if d.bits >= 16:
        y = round_trip(x, d)
        return fidelity(x, y), int(np.asarray(x).size * d.bits // 8)
    q = quantize(x, d)
    return fidelity(x, dequantize(q)), q.nbytes


__all__ = ["CodecError", "Fidelity", "LAYOUTS", "NF4_LEVELS", "Quantized", "decode", "dequantize", "encode",
           "fidelity", "grid", "pack", "packed_nbytes", "quantization_error", "quantize", "representable",
           "round_float", "round_scale", "round_trip", "unpack"]
