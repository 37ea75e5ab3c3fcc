"""Serving-framework profiles: the explicit host/dispatch overhead per op.

``frameworks.toml`` (here) defines the profiles: what each framework is and its fixed facts (e.g. the
one-shot all-reduce's size limit, from the framework's source). Their fitted fields (a host gap per op,
a streaming cap, a one-shot all-reduce's cost) come from the store (``fitted/frameworks.toml``,
:func:`tapeout.fitted.framework_values`), written by ``tapeout fit``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tapeout import fitted
from tapeout.errors import TapeoutError

FRAMEWORKS_FILE = Path(__file__).with_name("frameworks.toml")
DEFAULT_FRAMEWORK = "kernels"


@dataclass(frozen=True, slots=True)
class Framework:
    name: str
    host_overhead_us: float
    description: str
    #: provenance of the fitted fields (empty when the profile has none)
    source: str
    #: most DRAM bytes per core per clock the framework's kernels move (None: no cap)
    stream_bytes_per_core_clock: float | None = None
    #: all-reduces up to this size run one-shot (None: NCCL only), and the fixed cost of one
    oneshot_allreduce_max_bytes: float | None = None
    oneshot_allreduce_latency_us: float = 0.0
    #: host dispatch time per prefill kernel (prefill runs without CUDA graphs)
    prefill_host_overhead_us: float = 0.0
    #: the kernels it ships for weight-only GEMMs above 64 rows ("fastest": fused or dequantize-then-GEMM)
    large_m_weight_only: str = "fastest"
    #: activations stay fp32 between kernels; cuBLAS GEMMs convert their input to fp16 and their output back
    fp32_activations: bool = False
    #: accumulator of its fp16 matmuls ("fp16": CUBLAS_COMPUTE_16F)
    matmul_accumulate: str = "fp32"
    #: its norms, RoPE and activations are per-token kernels (False: generated, vectorised kernels)
    token_kernel_caps: bool = True
    #: host time per sequence producing a token in a step, us (a scheduler loop not overlapped with the GPU)
    sequence_host_overhead_us: float = 0.0
    #: the profile it extends (its definition and fitted fields, this profile's own winning)
    base: str | None = None

    def efficiency(self) -> dict[str, float]:
        """The EfficiencySpec fields this profile sets."""
        out: dict[str, float] = {}
        if self.host_overhead_us:
            out["host_overhead_us"] = self.host_overhead_us
        if self.stream_bytes_per_core_clock:
            out["stream_bytes_per_core_clock"] = self.stream_bytes_per_core_clock
        if self.oneshot_allreduce_max_bytes:
            out["oneshot_allreduce_max_bytes"] = self.oneshot_allreduce_max_bytes
            out["oneshot_allreduce_latency_us"] = self.oneshot_allreduce_latency_us
        if self.prefill_host_overhead_us:
            out["prefill_host_overhead_us"] = self.prefill_host_overhead_us
        if self.large_m_weight_only != "fastest":
            out["large_m_weight_only"] = self.large_m_weight_only
        if self.fp32_activations:
            out["fp32_activations"] = True
        if self.matmul_accumulate != "fp32":
            out["matmul_accumulate"] = self.matmul_accumulate
        if not self.token_kernel_caps:
            out["token_kernel_caps"] = False
        if self.sequence_host_overhead_us:
            out["sequence_host_overhead_us"] = self.sequence_host_overhead_us
        return out


def _fields(name: str, data: dict[str, dict], seen: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """The profile ``name``'s fields: its ``base``'s (definition and fitted values) under its own definition and
    fitted values, and the provenance lines of the fitted ones."""
    t = data[name]
    base = t.get("base")
    if base is not None and base not in data:
        raise RuntimeError(f"framework profile {name} extends unknown profile {base!r}; known: {', '.join(data)}")
    if base in seen or base == name:
        raise RuntimeError(f"framework profiles extend each other in a cycle: {' -> '.join((*seen, name, base))}")
    inherited, sources = _fields(base, data, (*seen, name)) if base is not None else ({}, [])
    vals, source = fitted.framework_values(name)
    inherited = {k: v for k, v in inherited.items() if k != "description"}
    return {**inherited, **t, **vals}, sources + ([source] if source else [])


def _profile(name: str, data: dict[str, dict]) -> Framework:
    t, sources = _fields(name, data)
    return Framework(name, float(t.get("host_overhead_us", 0.0)), t["description"], "; ".join(sources),
                     t.get("stream_bytes_per_core_clock"), t.get("oneshot_allreduce_max_bytes"),
                     float(t.get("oneshot_allreduce_latency_us", 0.0)), float(t.get("prefill_host_overhead_us", 0.0)),
                     str(t.get("large_m_weight_only", "fastest")), bool(t.get("fp32_activations", False)),
                     str(t.get("matmul_accumulate", "fp32")), bool(t.get("token_kernel_caps", True)),
                     float(t.get("sequence_host_overhead_us", 0.0)), t.get("base"))


@functools.cache
def frameworks() -> dict[str, Framework]:
    """Every profile: its definition (``frameworks.toml``, over its ``base`` profile's where it names one) with
    its fitted fields from the store."""
    data = tomllib.loads(FRAMEWORKS_FILE.read_text(encoding="utf-8"))
    return {name: _profile(name, data) for name in data}


def framework(name: str) -> Framework:
    """The profile called ``name`` (case-insensitive), or a one-line error listing the known ones."""
    key = str(name).strip().lower()
    try:
        return frameworks()[key]
    except KeyError:
        raise TapeoutError(f"unknown framework {name!r}; allowed: {', '.join(frameworks())}",
                           field="framework") from None
