"""Memoised op pricing: one :class:`Pricer` per (device, tier) remembers the cost of every op it priced.

An op's cost per run depends on neither its ``name`` nor its ``count`` (the tiers read only its work,
shape and formats; ``count`` multiplies the per-run time into ``OpCost.total_s``), so the memo is keyed by
every other field of :class:`~tapeout.workload.ops.Op`. Layers of different pipeline stages, the same op
at different layer counts and the repeated steps of a decode sweep are then priced once.

Devices are keyed by identity (a :class:`~tapeout.hardware.spec.HardwareSpec` holds dicts and is not
hashable); the registry keeps a reference to each device it keys, so an id is never reused while its
entry lives, and it is bounded.
"""

from __future__ import annotations

import operator
from dataclasses import fields

from tapeout.hardware.spec import HardwareSpec
import numpy as np

from tapeout.perf import estimate, sweep
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op, OpSweep

#: every field of an op except its name and count: what its cost per run can depend on
content = operator.attrgetter(*(f.name for f in fields(Op) if f.name not in ("name", "count")))

#: a design-space exploration prices every point on a new device: old pricers are rarely met again
MAX_PRICERS = 32
MAX_OPS_PER_PRICER = 100_000
MAX_SWEEPS_PER_PRICER = 4096


class Pricer:
    """Costs of ops on ``hw`` under ``tier``, memoised by the op's content."""

    __slots__ = ("hw", "tier", "_memo", "_sweeps")

    def __init__(self, hw: HardwareSpec, tier: str) -> None:
        self.hw = hw
        self.tier = tier
        self._memo: dict[tuple, OpCost] = {}
        #: sweeps by the identities of their ops (each entry keeps its ops alive, so the ids stay theirs)
        self._sweeps: dict[tuple[int, ...], tuple[OpSweep | tuple[Op, ...], np.ndarray]] = {}

    def _cost(self, op: Op) -> OpCost:
        key = content(op)
        try:
            c = self._memo.get(key)
        except TypeError:  # an op with an unhashable field (not built by workload.build): no memo
            return estimate(op, self.hw, self.tier)
        if c is None:
            c = estimate(op, self.hw, self.tier)
            if len(self._memo) >= MAX_OPS_PER_PRICER:
                self._memo.clear()
            self._memo[key] = c
        return c

    def time(self, op: Op) -> float:
        """Seconds of one run of ``op``."""
        return self._cost(op).time_s

    def total(self, ops: tuple[Op, ...]) -> float:
        """Seconds of every run of ``ops`` (time per run x count, summed in order)."""
        cost = self._cost
        return sum(cost(o).time_s * o.count for o in ops)

    def sweep(self, ops: OpSweep | list[Op]) -> np.ndarray:
        """Seconds per run of one op at several decode contexts (an :class:`OpSweep`, or the op at each
        context): in one vectorised pass where the tier has one (:func:`tapeout.perf.sweep`), else op by op
        through the memo. Memoised by the identity of the sweep, or of the ops (the decode templates keep
        theirs)."""
        key = (id(ops),) if isinstance(ops, OpSweep) else tuple(map(id, ops))
        hit = self._sweeps.get(key)
        if hit is not None:
            return hit[1]
        s = ops if isinstance(ops, OpSweep) else OpSweep.of(ops)
        t = sweep(s, self.hw, self.tier)
        if t is None:
            t = np.array([self.time(o) for o in s.ops()])
        t.flags.writeable = False
        if len(self._sweeps) >= MAX_SWEEPS_PER_PRICER:
            self._sweeps.clear()
        self._sweeps[key] = (ops if isinstance(ops, OpSweep) else tuple(ops), t)
        return t

    def shared(self, op: Op) -> OpCost:
        """The memoised cost per run of ``op``'s content, shared (named and counted as the first op priced
        with it): to read, not to change; :meth:`cost` gives ``op``'s own copy."""
        return self._cost(op)

    def cost(self, op: Op) -> OpCost:
        """The cost of ``op``, named and counted as ``op`` (a fresh value: its ``terms`` are its own)."""
        c = self._cost(op)
        return OpCost(name=op.name, kind=c.kind, count=op.count, time_s=c.time_s, compute_s=c.compute_s,
                      memory_s=c.memory_s, network_s=c.network_s, overhead_s=c.overhead_s, bound=c.bound,
                      intensity=c.intensity, tier=c.tier, terms=dict(c.terms))


_PRICERS: dict[tuple[int, str], Pricer] = {}


def pricer(hw: HardwareSpec, tier: str) -> Pricer:
    """The memoised pricer of ``hw`` (by identity) under ``tier``."""
    key = (id(hw), tier)
    p = _PRICERS.get(key)
    if p is None or p.hw is not hw:
        if len(_PRICERS) >= MAX_PRICERS:
            _PRICERS.clear()
        p = _PRICERS[key] = Pricer(hw, tier)
    return p


def clear_caches() -> None:
    """Forget every pricer."""
    _PRICERS.clear()


__all__ = ["Pricer", "clear_caches", "content", "pricer"]
