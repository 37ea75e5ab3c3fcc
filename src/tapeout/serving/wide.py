"""Data-parallel attention with wide expert parallelism: ``dp`` engine ranks in step.

With ``ep`` > ``tp`` (``Scenario.dp`` = ep ranks, docs/wide-ep.md) a replica is ``dp`` devices, each running
attention for its own requests, the routed experts spread over all of them. Engines serve it as ``dp``
ranks (SGLang's ``--enable-dp-attention``, vLLM's data-parallel + expert-parallel deployments): each rank
has its own scheduler, ``max_batch`` and KV pool (the memory plan's, one device's) and requests are routed
among them. Every MoE layer's dispatch and combine all-to-alls synchronise the ranks, so they run their
iterations in step: each rank schedules its next iteration (:meth:`Replica.plan`), the iteration is priced
for all of them at once (:meth:`IterationPricer.wide_iteration`: the slowest rank's own work, plus the
routed experts at every rank's tokens and the all-to-alls at the busiest rank's), and each rank applies it
with the same end. A rank with nothing to do still joins the collectives (SGLang runs it an idle batch):
it waits for the others. When no rank prefills, a run of decode steps goes on until the first rank's
run must stop (a completion, the blocks of its pool) or an arrival.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tapeout.serving.engine import Plan, Replica, Req, until


class DPGroup:
    """One replica of ``len(ranks)`` data-parallel attention ranks in step; the cluster's router sees it as
    one engine, and ``pick`` (the router's policy over the ranks) places each request it receives."""

    def __init__(self, ranks: list[Replica], pick: Callable[[], Replica]) -> None:
        self.ranks, self.pick = ranks, pick
        self.rid = ranks[0].rid
        self.group: list[DPGroup] = [self]
        self.clock = 0.0
        self.woke = -math.inf
        self.price = ranks[0].price

    @property
    def outstanding(self) -> int:
        return sum(r.outstanding for r in self.ranks)

    def has_work(self) -> bool:
        return any(r.has_work() for r in self.ranks)

    def unfinished(self) -> int:
        return sum(r.unfinished() for r in self.ranks)

    def submit(self, req: Req, t: float) -> None:
        if not self.has_work():
            self.clock = max(self.clock, t)
            self.woke = t
        self.pick().submit(req, t)

    def step(self, limit: float) -> tuple[list[tuple[int, float]], list[tuple[Req, float]]]:
        """Every rank's next iteration, in step (a run of decode steps, none starting at or after ``limit``)."""
        now = self.clock
        plans: list[Plan | None] = []
        for r in self.ranks:
            r.clock = now
            p = None
            while p is None and r.has_work():  # requests received with their KV cache join, then plan again
                p = r.plan()
            plans.append(p)
        if all(p is None for p in plans):
            return [], []
        if any(p.chunks for p in plans if p is not None):  # an iteration with prefill: one step for all
            durs = np.array([self.price.wide_iteration([p.shape() if p is not None else ([], 0, 0.0, 0)
                                                        for p in plans])])
        else:
            k = min(p.steps for p in plans if p is not None)
            durs = until(now, self.price.wide_decode_steps(
                [(p.decodes, p.context) if p is not None else (0, 0.0) for p in plans], k), limit)
        done: list[tuple[int, float]] = []
        handoffs: list[tuple[Req, float]] = []
        end = float((now + np.cumsum(durs))[-1])
        for r, p in zip(self.ranks, plans):
            if p is not None:
                d, h = r.apply(p, now, durs)
                done += d
                handoffs += h
            r.clock = end
        self.clock = end
        return done, handoffs


def dp_ranks(drivers: list) -> list[Replica]:  # noqa: ANN001 - Replica or DPGroup
    """The engines behind the router's entries: a :class:`DPGroup`'s ranks, else the replica itself."""
    return [e for d in drivers for e in (d.ranks if isinstance(d, DPGroup) else [d])]


__all__ = ["DPGroup", "dp_ranks"]
