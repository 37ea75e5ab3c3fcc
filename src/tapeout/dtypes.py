"""Number formats: name, storage bits and which matrix-unit peak a kernel on them uses.

This is the single place that knows what ``"fp8"`` or ``"int4"`` means. The compression
issue extends it (FPx eXmY, group scales); the core needs bytes and the compute path.
"""

from __future__ import annotations

from dataclasses import dataclass

from tapeout.errors import TapeoutError


@dataclass(frozen=True, slots=True)
class DType:
    name: str
    bits: int
    kind: str  # "float" | "int"
    #: key of the hardware peak table a matrix kernel running natively in this format uses
    peak_key: str

    @property
    def bytes(self) -> float:
        return self.bits / 8

    def __str__(self) -> str:
        return self.name


_DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp32", 32, "float", "fp32"),
        DType("tf32", 32, "float", "tf32"),
        DType("bf16", 16, "float", "bf16"),
        DType("fp16", 16, "float", "fp16"),
        DType("fp8_e4m3", 8, "float", "fp8"),
        DType("fp8_e5m2", 8, "float", "fp8"),
        DType("int8", 8, "int", "int8"),
        DType("int4", 4, "int", "int4"),
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
}

#: the order in which a kernel falls back when a device lacks a native path
FALLBACK = {
    "fp8": ("fp16", "bf16"),
    "int8": ("fp16", "bf16"),
    "int4": ("int8", "fp16", "bf16"),
    "bf16": ("fp16",),
    "fp16": ("bf16",),
    "tf32": ("fp32",),
    "fp32": (),
}


def names() -> list[str]:
    return sorted(_DTYPES) + sorted(_ALIASES)


def parse(value: str | DType, *, field: str = "dtype") -> DType:
    """Resolve a dtype name (case-insensitive, aliases allowed) or raise a clear error."""
    if isinstance(value, DType):
        return value
    key = str(value).strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return _DTYPES[key]
    except KeyError:
        allowed = ", ".join(sorted(_DTYPES) + ["fp8"])
        raise TapeoutError(f"unknown dtype {value!r}; allowed: {allowed}", field=field) from None


def matmul_compute_dtype(weights: DType, activations: DType) -> DType:
    """The format a GEMM's multiply runs in: the wider of weights and activations.

    Weight-only quantization (int4 weights, fp16 activations) dequantizes to fp16 and runs
    fp16 tensor math; W8A8 runs int8; fp8 x fp8 runs fp8.
    """
    return weights if weights.bits > activations.bits else activations
