"""Serving simulation: request traffic through continuous-batching replicas with a paged KV cache.

- :mod:`tapeout.serving.workload`: requests (lengths, arrivals, traces), seeded
- :mod:`tapeout.serving.iteration`: the time of one iteration of any composition, from the op models
- :mod:`tapeout.serving.engine`: one replica (KV block manager, schedulers, preemption)
- :mod:`tapeout.serving.sim`: :func:`simulate` (replicas, routing, disaggregation) and :class:`SimResult`
- :mod:`tapeout.serving.capacity`: the highest rate meeting SLOs, the cheapest configuration for a rate
- :mod:`tapeout.serving.export`: Chrome trace and plots (plots need the ``explore`` extra)

``import tapeout.serving`` stays light; submodules load on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from tapeout.serving.sim import SimResult, simulate

__all__ = ["SimResult", "simulate"]


def __getattr__(name: str) -> Any:
    if name in ("SimResult", "simulate"):
        from tapeout.serving import sim

        return getattr(sim, name)
    raise AttributeError(f"module 'tapeout.serving' has no attribute {name!r}")
