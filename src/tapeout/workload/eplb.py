"""Redundant experts (EPLB): where ``experts + redundant`` expert copies sit on ``ep`` devices, and the expected
load of the busiest device.

DeepSeek serves V3 with redundant copies of experts (the V3 report, 3.4: 32 redundant experts in prefill, each
GPU hosting 8 + 1 experts; decode too) placed by its Expert Parallelism Load Balancer (deepseek-ai/EPLB,
``eplb.py``; SGLang's ``--ep-num-redundant-experts`` with ``--enable-eplb``):

- ``replicate_experts``: each redundant slot goes in turn to the expert with the highest load per copy;
- ``balanced_packing``: the copies, heaviest first, each to the least-loaded device with a free slot; every
  device gets ``(experts + redundant) / ep`` slots, so ``ep`` must divide ``experts + redundant``.

A copy serves an equal share of its expert's tokens. EPLB places from measured expert loads; without a published
load distribution (none with its setup was found) routing is taken as uniform: every expert has the same
expected load, so the replicas go round-robin (``1 + redundant // experts`` or one more copies per expert) and
the packing mixes whole and shared experts so each device's expected load is as even as the slots allow. What
is left is sampling: each expert is active in a step with probability ``p`` (the tokens' routing, independent
per expert and per device, as :func:`tapeout.workload.build.busiest_device_experts` takes it), an active
expert serves the mean tokens of an active expert, split over its copies. The busiest device's load is
``E[max over devices of sum over its slots of active / copies]``, exact for that model (the devices' loads
convolved on a grid of ``1 / lcm(copies)``).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1024)
def placement(experts: int, redundant: int, ep: int) -> tuple[tuple[tuple[int, ...], int], ...]:
    """EPLB's placement under uniform expected load (module docstring): ((copies of each slot's expert on a
    device, sorted), devices placed so) pairs. ``ep`` must divide ``experts + redundant``."""
    slots = experts + redundant
    if slots % ep:
        raise ValueError(f"ep={ep} does not divide {experts} + {redundant} expert copies")
    # replicate_experts: slot i >= experts goes to the expert with the most load per copy, the first on ties
    copies = [1 + redundant // experts + (1 if e < redundant % experts else 0) for e in range(experts)]
    items = sorted((c for e, c in enumerate(copies) for _ in range(c)))  # heaviest (fewest copies) first
    per = slots // ep
    load = [0.0] * ep
    held: list[list[int]] = [[] for _ in range(ep)]
    for c in items:  # balanced_packing: to the least-loaded device with a free slot, the first on ties
        d = min((i for i in range(ep) if len(held[i]) < per), key=lambda i: load[i])
        held[d].append(c)
        load[d] += 1.0 / c
    return tuple(sorted(Counter(tuple(sorted(h)) for h in held).items()))


def _load_pmf(device: tuple[int, ...], p: float, unit: int) -> np.ndarray:
    """PMF of a device's load in steps of ``1 / unit`` experts: each slot's expert active with probability
    ``p``, contributing ``unit / copies`` steps."""
    pmf = np.ones(1)
    for c, n in Counter(device).items():
        step = unit // c
        part = np.zeros(n * step + 1)
        part[::step] = [math.comb(n, j) * p ** j * (1.0 - p) ** (n - j) for j in range(n + 1)]
        pmf = np.convolve(pmf, part)
    return pmf


@lru_cache(maxsize=65536)
def busiest_device_load(experts: int, redundant: int, ep: int, p_active: float) -> float:
    """Expected load of the busiest device, in whole experts' worth of tokens (module docstring). With no
    redundant experts and ``ep`` dividing ``experts`` it is E[max of ep Binomial(experts / ep, p)]."""
    p = min(max(p_active, 0.0), 1.0)
    kinds = placement(experts, redundant, ep)
    unit = math.lcm(*(c for dev, _ in kinds for c in dev))
    cdfs = []
    for dev, n in kinds:
        cdf = np.cumsum(_load_pmf(dev, p, unit))
        cdfs.append((np.minimum(cdf, 1.0), n))
    size = max(len(c) for c, _ in cdfs)
    below = np.ones(size)  # P(max <= v) on the grid
    for cdf, n in cdfs:
        below *= np.pad(cdf, (0, size - len(cdf)), constant_values=1.0) ** n
    # E[max] = sum over v >= 1 of P(max >= v) on the grid
    return float(np.sum(1.0 - below[:-1])) / unit


__all__ = ["busiest_device_load", "placement"]
