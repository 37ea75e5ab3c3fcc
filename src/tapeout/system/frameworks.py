"""Serving-framework profiles: the explicit host/dispatch overhead per op (``frameworks.toml``)."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tapeout.errors import TapeoutError

FRAMEWORKS_FILE = Path(__file__).with_name("frameworks.toml")
DEFAULT_FRAMEWORK = "kernels"


@dataclass(frozen=True, slots=True)
class Framework:
    name: str
    host_overhead_us: float
    description: str
    source: str
    #: most DRAM bytes per core per clock the framework's kernels move (None: no cap)
    stream_bytes_per_core_clock: float | None = None
    #: all-reduces up to this size run one-shot (None: NCCL only), and the fixed cost of one
    oneshot_allreduce_max_bytes: float | None = None
    oneshot_allreduce_latency_us: float = 0.0
    #: host dispatch time per prefill kernel (prefill runs without CUDA graphs)
    prefill_host_overhead_us: float = 0.0

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
        return out


@functools.cache
def frameworks() -> dict[str, Framework]:
    data = tomllib.loads(FRAMEWORKS_FILE.read_text(encoding="utf-8"))
    return {name: Framework(name, float(t["host_overhead_us"]), t["description"], t["source"],
                            t.get("stream_bytes_per_core_clock"), t.get("oneshot_allreduce_max_bytes"),
                            float(t.get("oneshot_allreduce_latency_us", 0.0)),
                            float(t.get("prefill_host_overhead_us", 0.0)))
            for name, t in data.items()}


def framework(name: str) -> Framework:
    """The profile called ``name`` (case-insensitive), or a one-line error listing the known ones."""
    key = str(name).strip().lower()
    try:
        return frameworks()[key]
    except KeyError:
        raise TapeoutError(f"unknown framework {name!r}; allowed: {', '.join(frameworks())}",
                           field="framework") from None
