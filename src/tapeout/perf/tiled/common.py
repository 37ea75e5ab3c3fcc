"""Shared helpers of the tiled tier: building an OpCost from its terms (the cost core's rule), operand formats."""

from __future__ import annotations

from functools import lru_cache

from tapeout import dtypes
from tapeout.perf import core
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op

TIER = "tiled"


def fmt_bytes(op: Op, role: str, default: str | None = None) -> float:
    """Storage bytes per element of the operand ``role`` ("weights", "act", "kv", "out")."""
    return _fmt_bytes(op.formats, op.compute_dtype, role, default)


@lru_cache(maxsize=4096)
def _fmt_bytes(formats: tuple[tuple[str, str], ...], compute_dtype: str, role: str, default: str | None) -> float:
    d = dict(formats)
    return dtypes.parse(d.get(role) or d.get(default or "act") or compute_dtype).bytes  # names validated upstream


def make_cost(op: Op, *, compute: float, memory: float, network: float = 0.0, overhead: float,
              terms: dict[str, float | str]) -> OpCost:
    """The tiled tier's :func:`tapeout.perf.core.make_cost` (one bound rule for both tiers)."""
    return core.make_cost(op, tier=TIER, compute=compute, memory=memory, network=network, overhead=overhead,
                          terms=terms)
