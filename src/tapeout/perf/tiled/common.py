"""Shared helpers of the tiled tier: building an OpCost from its terms, operand formats."""

from __future__ import annotations

from functools import lru_cache

from tapeout import dtypes
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op

TIER = "tiled"


def fmt_bytes(op: Op, role: str, default: str | None = None) -> float:
    """Storage bytes per element of the operand ``role`` ("weights", "act", "kv", "out")."""
    return _fmt_bytes(op.formats, op.compute_dtype, role, default)


@lru_cache(maxsize=4096)
def _fmt_bytes(formats: tuple[tuple[str, str], ...], compute_dtype: str, role: str, default: str | None) -> float:
    d = dict(formats)
    name = d.get(role) or d.get(default or "act") or compute_dtype
    try:
        return dtypes.parse(name).bytes
    except Exception:  # noqa: BLE001 - formats are validated upstream; be lenient in reports
        return 2.0


def make_cost(op: Op, *, compute: float, memory: float, network: float = 0.0, overhead: float,
              terms: dict[str, float | str]) -> OpCost:
    """OpCost with ``time = max(compute, memory, network) + overhead`` and the largest term as bound."""
    body = max(compute, memory, network)
    if overhead > body:
        bound = "overhead"
    elif network >= max(compute, memory) and network > 0:
        bound = "network"
    else:
        bound = "compute" if compute >= memory else "memory"
    terms["overhead_us"] = overhead * 1e6
    return OpCost(
        name=op.name, kind=op.kind.value, count=op.count, time_s=body + overhead,
        compute_s=compute, memory_s=memory, network_s=network, overhead_s=overhead,
        bound=bound, intensity=op.intensity, tier=TIER, terms=terms,
    )
