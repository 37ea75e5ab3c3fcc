"""Number formats: name, storage bits and which matrix-unit peak a kernel on them uses.

This is the single place that knows what ``"fp8"``, ``"fp6"`` or ``"int4_g128"`` means.

Names (lower-case): fp32, tf32, bf16, fp16; floating eXmY formats ``fp{bits}_e{E}m{M}`` with
3 <= bits <= 8 and bits = 1 + E + M (fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp5_e2m2, fp4_e2m1, ...);
integers ``int2`` .. ``int8``; ``nf4``. A ``_g{N}`` suffix adds one 16-bit scale per group of N
weights (``int4_g128``), ``_g{N}z`` also a zero point. Aliases: fp8 = fp8_e4m3, fp6 = fp6_e3m2
(FP6-LLM's choice), fp5 = fp5_e2m2, fp4 = fp4_e2m1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from tapeout.errors import TapeoutError


@dataclass(frozen=True, slots=True)
class DType:
    name: str
    bits: int  # bits of one element
    kind: str  # "float" | "int" | "nf"
    #: key of the hardware peak table a matrix kernel running natively in this format uses
    peak_key: str
    exponent_bits: int = 0
    mantissa_bits: int = 0
    #: elements sharing one scale (0: no group scales)
    group_size: int = 0
    scale_bits: int = 0
    zero_point: bool = False

    @property
    def bytes(self) -> float:
        """Storage bytes per element, including the amortized group scales and zero points."""
        extra = 0.0
        if self.group_size:
            extra = (self.scale_bits * (2 if self.zero_point else 1)) / self.group_size
        return (self.bits + extra) / 8

    def __str__(self) -> str:
        return self.name


_FIXED: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp32", 32, "float", "fp32", 8, 23),
        DType("tf32", 32, "float", "tf32", 8, 10),
        DType("bf16", 16, "float", "bf16", 8, 7),
        DType("fp16", 16, "float", "fp16", 5, 10),
        DType("nf4", 4, "nf", "int4"),
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
}
_FPX = re.compile(r"^fp(\d)_e(\d)m(\d)$")
_INT = re.compile(r"^int(\d)$")
_GROUP = re.compile(r"^(.*)_g(\d+)(z?)$")

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

EXAMPLES = "fp32, bf16, fp16, fp8 (e4m3), fp8_e5m2, fp6 (e3m2), fp6_e2m3, fp5, fp4, int8, int4, int3, int2, nf4, int4_g128"


def _base(key: str) -> DType | None:
    if key in _FIXED:
        return _FIXED[key]
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


@lru_cache(maxsize=256)
def _parse(key: str) -> DType | None:
    key = _ALIASES.get(key, key)
    if m := _GROUP.match(key):
        base = _base(_ALIASES.get(m.group(1), m.group(1)))
        size = int(m.group(2))
        if base is None or base.bits >= 16 or size < 1:
            return None
        name = f"{base.name}_g{size}{m.group(3)}"
        return DType(name, base.bits, base.kind, base.peak_key, base.exponent_bits, base.mantissa_bits,
                     group_size=size, scale_bits=16, zero_point=bool(m.group(3)))
    return _base(key)


def parse(value: str | DType, *, field: str = "dtype") -> DType:
    """Resolve a format name (case-insensitive, aliases allowed) or raise a clear error."""
    if isinstance(value, DType):
        return value
    d = _parse(str(value).strip().lower())
    if d is None:
        raise TapeoutError(f"unknown dtype {value!r}; allowed: {EXAMPLES}", field=field)
    return d


def matmul_compute_dtype(weights: DType, activations: DType) -> DType:
    """The format a GEMM's multiply runs in: the wider of weights and activations.

    Weight-only quantization (int4/fp6 weights, fp16 activations) dequantizes to fp16 and runs
    fp16 tensor math; W8A8 runs int8; fp8 x fp8 runs fp8.
    """
    return weights if weights.bits > activations.bits else activations
