"""Number formats: name, storage bits, value grid, scale granularity and the matrix peak a kernel uses.

This is the single place that knows what ``"fp8"``, ``"fp6"`` or ``"int4_g128"`` means.

Names (lower-case)
------------------
- plain floats: ``fp32``, ``tf32``, ``bf16``, ``fp16``;
- small floats ``fp{bits}_e{E}m{M}`` with 3 <= bits <= 8 and bits = 1 + E + M (``fp8_e4m3``,
  ``fp8_e5m2``, ``fp6_e3m2``, ``fp6_e2m3``, ``fp5_e2m2``, ``fp5_e3m1``, ``fp4_e2m1``, ...);
- integers ``int2`` .. ``int8`` and ``nf4`` (QLoRA's NormalFloat-4 lookup table);
- aliases: ``fp8`` = fp8_e4m3, ``fp6`` = fp6_e3m2 (FP6-LLM's choice), ``fp5`` = fp5_e2m2, ``fp4`` = fp4_e2m1.

Scale granularity (a suffix; the reduction dimension K of a weight matrix is the "row" a group runs along)
- ``_t``      per tensor: one scale;
- ``_c``      per channel: one scale per output channel (row of an (out, in) weight matrix);
- ``_g{N}``   per group: one scale per N consecutive weights of a row (``int4_g128``);
- ``_sl{C}``  sub-layer (PTQ-SL): one scale shared by a block of C output channels;
- ``_b{N}``   2-D blocks: one scale per N x N tile of the matrix (DeepSeek-V3's fp8 weights: ``fp8_b128``,
  one fp32 scale per 128 x 128 block);
- ``_raw``    no scale (a plain cast, e.g. fp16 -> fp8 with saturation).
A ``z`` right after the granularity adds a zero point per scale (integers only): ``int4_g128z``.
An optional last token sets the scale format: ``_fp16`` (default), ``_bf16``, ``_fp32``, ``_fp8``
(e4m3, as NVFP4's block scales) or ``_e8m0`` (power-of-two shared exponent, as OCP MX):
``fp4_e2m1_g32_e8m0`` is MXFP4 (alias ``mxfp4``; ``mxfp8`` is ``fp8_e4m3_g32_e8m0``), ``fp4_e2m1_g16_fp8``
NVFP4's block layer; ``nvfp4`` is the whole NVFP4 format: e2m1 values, an e4m3 scale per 16 and one fp32
scale per tensor (the block scales are relative to it).

Defaults when no suffix is given: integers and floats below 8 bits get per-channel fp16 scales
(as weight-only int8/int4 and FP6-LLM's TC-FPx use), fp8 formats one fp32 scale per tensor (as
TensorRT-LLM/Transformer Engine), nf4 one fp32 absmax per 64 weights (bitsandbytes, no double
quantization). The canonical name leaves defaults out: ``int4_c`` is ``int4``.

Storage: :attr:`DType.bytes` is per element with the *amortized group* scales and zeros (shape
independent); :meth:`DType.matrix_bytes` is exact for a (rows x cols) tensor and also counts the
per-tensor, per-channel and sub-layer scales. A zero point is stored in the scale format (AWQ-style).

Value grids (the bit-exact codec in :mod:`tapeout.numerics.codec` follows them):
- formats below 8 bits have no Inf/NaN: every code is a finite value (OCP MX convention), so fp6_e3m2
  reaches 28, fp6_e2m3 7.5, fp4_e2m1 6;
- ``fp8_e5m2`` is IEEE-like (top exponent reserved for Inf/NaN): max 57344;
- other 8-bit floats follow the "fn" convention (only S.1111.111 is NaN): fp8_e4m3 max 448;
- exponent bias is 2^(E-1) - 1; the smallest exponent field encodes subnormals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from tapeout.errors import TapeoutError

GRANULARITIES = ("none", "tensor", "channel", "group", "sublayer", "block")
#: scale formats a quantized format may name, with their storage bits
SCALE_FORMATS = {"fp16": 16, "bf16": 16, "fp32": 32, "fp8": 8, "e8m0": 8}


@dataclass(frozen=True, slots=True)
class DType:
    name: str
    bits: int  # bits of one element
    kind: str  # "float" | "int" | "nf"
    #: key of the hardware peak table a matrix kernel running natively in this format uses
    peak_key: str
    exponent_bits: int = 0
    mantissa_bits: int = 0
    #: elements sharing one scale along a row (0: no group scales)
    group_size: int = 0
    #: bits of one scale (0: unscaled)
    scale_bits: int = 0
    zero_point: bool = False
    #: "none" | "tensor" | "channel" | "group" | "sublayer" | "block"
    granularity: str = "none"
    #: sub-layer granularity: output channels sharing one scale
    block_channels: int = 0
    #: block granularity: the side of the square tile sharing one scale
    block_size: int = 0
    #: bits of a second-level scale per tensor on top of the group scales (NVFP4: one fp32)
    tensor_scale_bits: int = 0
    #: format of the scales (and zero points): fp16, bf16, fp32, fp8 or e8m0 ("" when unscaled)
    scale_format: str = ""

    # ---- storage ----------------------------------------------------------------------
    @property
    def bytes(self) -> float:
        """Storage bytes per element, including the amortized group scales and zero points.

        Per-tensor, per-channel and sub-layer scales depend on the tensor's shape: see
        :meth:`matrix_bytes`.
        """
        extra = 0.0
        if self.group_size:
            extra = (self.scale_bits * (2 if self.zero_point else 1)) / self.group_size
        elif self.block_size:
            extra = (self.scale_bits * (2 if self.zero_point else 1)) / self.block_size ** 2
        return (self.bits + extra) / 8

    def scale_count(self, rows: float, cols: float) -> float:
        """Scales of a (rows x cols) tensor: rows are output channels, cols the reduction dimension."""
        g = self.granularity
        if g == "tensor":
            return 1.0
        if g == "channel":
            return float(rows)
        if g == "group":
            return rows * math.ceil(cols / self.group_size)
        if g == "sublayer":
            return float(math.ceil(rows / self.block_channels))
        if g == "block":
            return float(math.ceil(rows / self.block_size) * math.ceil(cols / self.block_size))
        return 0.0

    def matrix_bytes(self, rows: float, cols: float) -> float:
        """Exact storage of a (rows x cols) tensor: packed elements plus scales and zero points (and a
        per-tensor second-level scale)."""
        scales = self.scale_count(rows, cols) * self.scale_bits * (2 if self.zero_point else 1)
        return (rows * cols * self.bits + scales + self.tensor_scale_bits) / 8

    # ---- value grid -------------------------------------------------------------------
    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def quantized(self) -> bool:
        """True for formats narrower than 16 bits (they need a dequantization to compute in 16-bit)."""
        return self.bits < 16

    @property
    def special(self) -> str:
        """How the top codes are used: "ieee" (Inf/NaN exponent), "fn" (only all-ones is NaN), "finite"."""
        if self.kind != "float" or self.bits >= 16:
            return "ieee"
        if self.bits < 8:
            return "finite"
        return "ieee" if self.exponent_bits >= 5 else "fn"

    @property
    def bias(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def max_value(self) -> float:
        """Largest finite magnitude of the element grid (integers: qmax; nf4: 1.0)."""
        if self.kind == "int":
            return float((1 << (self.bits - 1)) - 1)
        if self.kind == "nf":
            return 1.0
        e, m, b = self.exponent_bits, self.mantissa_bits, self.bias
        top = (1 << e) - 1
        if self.special == "ieee":
            return 2.0 ** (top - 1 - b) * (2 - 2.0 ** -m)
        if self.special == "fn":  # the all-ones mantissa at the top exponent is NaN
            return 2.0 ** (top - b) * (2 - 2.0 ** (1 - m))
        return 2.0 ** (top - b) * (2 - 2.0 ** -m)

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.mantissa_bits)

    def __str__(self) -> str:
        return self.name


_FIXED: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp32", 32, "float", "fp32", 8, 23),
        DType("tf32", 32, "float", "tf32", 8, 10),
        DType("bf16", 16, "float", "bf16", 8, 7),
        DType("fp16", 16, "float", "fp16", 5, 10),
    )
}
_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "fp8": "fp8_e4m3",
    "e4m3": "fp8_e4m3",
    "e5m2": "fp8_e5m2",
    "fp6": "fp6_e3m2",
    "fp5": "fp5_e2m2",
    "fp4": "fp4_e2m1",
    # PyTorch / ONNX spellings of the OCP FP8 formats ("fn": finite, no infinities; same bits)
    "float8_e4m3fn": "fp8_e4m3",
    "fp8_e4m3fn": "fp8_e4m3",
    "e4m3fn": "fp8_e4m3",
    "float8_e5m2": "fp8_e5m2",
    # weight-only quantization methods by their usual storage: 4-bit integers, one fp16 scale and one
    # zero point per group of 128 input channels (AWQ and GPTQ defaults)
    "awq": "int4_g128z",
    "gptq": "int4_g128z",
    # OCP microscaling formats: a shared power-of-two (e8m0) scale per 32 elements
    "mxfp4": "fp4_e2m1_g32_e8m0",
    "mxfp8": "fp8_e4m3_g32_e8m0",
}
#: NVFP4: fp4_e2m1 with an e4m3 scale per 16 elements and an fp32 scale per tensor
NVFP4 = "nvfp4"
_FPX = re.compile(r"^fp(\d)_e(\d)m(\d)$")
_INT = re.compile(r"^int(\d)$")
_GRAN = re.compile(r"^(t|c|raw|g(\d+)|sl(\d+)|b(\d+))(z?)$")

#: the order in which a kernel falls back when a device lacks a native path
FALLBACK = {
    "fp4": ("fp8", "fp16", "bf16"),
    "fp8": ("fp16", "bf16"),
    "int8": ("fp16", "bf16"),
    "int4": ("int8", "fp16", "bf16"),
    "bf16": ("fp16",),
    "fp16": ("bf16",),
    "tf32": ("fp32",),
    "fp32": (),
}

#: the whole grammar in one line (the error message for an unknown name): every accepted family is named
EXAMPLES = ("fp32, tf32, bf16, fp16; floats fpN_eXmY with 3 <= N <= 8 and N = 1 + X + Y (fp8 = fp8_e4m3, fp8_e5m2, "
            "fp7_e4m2, fp6 = fp6_e3m2, fp6_e2m3, fp5 = fp5_e2m2, fp4 = fp4_e2m1, fp3_e1m1, ...); int2 to int8 "
            "(int2, int3, int4, int5, int6, int7, int8); nf4; a scale suffix _t, _c, _gN, _slN, _bN (N x N blocks) or _raw, z for a zero "
            "point, then the scale format _fp16, _bf16, _fp32, _fp8 or _e8m0 (int4_g128, int4_g128z, int8_c, fp8_t, "
            "fp4_e2m1_g32_e8m0, int4_sl8, fp8_b128); aliases awq, gptq, float8_e4m3fn, float8_e5m2, mxfp4, mxfp8, "
            "nvfp4 (e2m1, e4m3 scale per 16, fp32 per tensor)")


#: formats offered first (the web page's suggestions); any name of the grammar above is accepted
SUGGESTED = ("fp16", "bf16", "fp8", "fp8_e5m2", "fp6", "fp5", "fp4", "int8", "int4", "int4_g128", "nf4", "awq",
             "mxfp4", "mxfp8", "nvfp4")


def _element(key: str) -> DType | None:
    """The element format of a base name (no granularity), unscaled."""
    if key in _FIXED:
        return _FIXED[key]
    if key == "nf4":
        return DType("nf4", 4, "nf", "int4")
    if m := _FPX.match(key):
        bits, e, mant = (int(x) for x in m.groups())
        if 3 <= bits <= 8 and e >= 1 and bits == 1 + e + mant:
            peak = "fp8" if bits >= 5 else "fp4"
            return DType(key, bits, "float", peak, e, mant)
        return None
    if m := _INT.match(key):
        bits = int(m.group(1))
        if 2 <= bits <= 8:
            return DType(key, bits, "int", "int8" if bits > 4 else "int4")
    return None


def _default_granularity(base: DType) -> tuple[str, int, str]:
    """(granularity, size, scale format) a quantized element format gets without a suffix."""
    if base.kind == "nf":
        return "group", 64, "fp32"
    if base.kind == "float" and base.bits == 8:
        return "tensor", 0, "fp32"
    return "channel", 0, "fp16"


def _default_scale(base: DType) -> str:
    return "fp32" if base.kind == "nf" or (base.kind == "float" and base.bits == 8) else "fp16"


def _make(base: DType, gran: str, size: int, zero: bool, scale: str) -> DType:
    token = {"none": "raw", "tensor": "t", "channel": "c", "group": f"g{size}", "sublayer": f"sl{size}",
             "block": f"b{size}"}[gran]
    name = base.name
    if (gran, size) != _default_granularity(base)[:2] or zero:
        name += f"_{token}{'z' if zero else ''}"
    if gran != "none" and scale != _default_scale(base):
        name += f"_{scale}"
    return DType(
        name, base.bits, base.kind, base.peak_key, base.exponent_bits, base.mantissa_bits,
        group_size=size if gran == "group" else 0,
        scale_bits=SCALE_FORMATS[scale] if gran != "none" else 0,
        zero_point=zero, granularity=gran, block_channels=size if gran == "sublayer" else 0,
        block_size=size if gran == "block" else 0,
        scale_format=scale if gran != "none" else "",
    )


@lru_cache(maxsize=1024)
def _parse(key: str) -> DType | None:
    if key == NVFP4:
        from dataclasses import replace

        block = _parse("fp4_e2m1_g16_fp8")
        assert block is not None
        return replace(block, name=NVFP4, tensor_scale_bits=32)
    key = _ALIASES.get(key, key)
    if key in _FIXED:
        return _FIXED[key]
    parts = key.split("_")
    # the element name is the longest prefix of tokens that names a format
    for cut in range(min(len(parts), 2), 0, -1):
        head = "_".join(parts[:cut])
        base = _element(_ALIASES.get(head, head))
        if base is not None:
            rest = parts[cut:]
            break
    else:
        return None
    if base.bits >= 16:
        return None if rest else base
    gran, size, scale = _default_granularity(base)
    zero = False
    if rest and (m := _GRAN.match(rest[0])):
        rest = rest[1:]
        tok, g, sl, b, z = m.groups()
        if tok == "t":
            gran, size = "tensor", 0
        elif tok == "c":
            gran, size = "channel", 0
        elif tok == "raw":
            gran, size = "none", 0
        elif g is not None:
            gran, size = "group", int(g)
        elif b is not None:
            gran, size = "block", int(b)
        else:
            gran, size = "sublayer", int(sl)
        if gran in ("group", "sublayer", "block") and size < 1:
            return None
        zero = bool(z)
        if zero and (base.kind != "int" or gran == "none"):
            return None  # zero points are for scaled integer formats
        scale = _default_scale(base)
    if rest:
        if len(rest) != 1 or rest[0] not in SCALE_FORMATS or gran == "none":
            return None
        if zero and rest[0] in ("e8m0", "fp8"):
            return None  # a zero point needs a scale format that holds small integers exactly
        scale = rest[0]
    return _make(base, gran, size, zero, scale)


#: names already resolved, exactly as given (the hot path: op formats are canonical names)
_RESOLVED: dict[str, DType] = {}


def parse(value: str | DType, *, field: str = "dtype") -> DType:
    """Resolve a format name (case-insensitive, aliases allowed) or raise a clear error."""
    if isinstance(value, DType):
        return value
    hit = _RESOLVED.get(value) if isinstance(value, str) else None
    if hit is not None:
        return hit
    d = _parse(str(value).strip().lower())
    if d is None:
        raise TapeoutError(f"unknown dtype {value!r}; allowed: {EXAMPLES}", field=field)
    if isinstance(value, str) and len(_RESOLVED) < 4096:
        _RESOLVED[value] = d
    return d


def base_name(d: DType) -> str:
    """The element format's name without granularity: ``int4_g128z`` -> ``int4``, ``fp6`` -> ``fp6_e3m2``."""
    if d.bits >= 16:
        return d.name
    if d.kind == "float":
        return f"fp{d.bits}_e{d.exponent_bits}m{d.mantissa_bits}"
    return f"int{d.bits}" if d.kind == "int" else "nf4"


def element(d: DType) -> DType:
    """The unscaled element grid of ``d`` (``int4_g128`` -> ``int4_raw``)."""
    if d.bits >= 16:
        return d
    base = _element(base_name(d))
    assert base is not None
    return _make(base, "none", 0, False, "fp16")


def matmul_compute_dtype(weights: DType, activations: DType) -> DType:
    """The format a GEMM's multiply runs in: the wider of weights and activations.

    Weight-only quantization (int4/fp6 weights, fp16 activations) dequantizes to fp16 and runs
    fp16 tensor math; W8A8 runs int8; fp8 x fp8 runs fp8.
    """
    return weights if weights.bits > activations.bits else activations
