"""Where a routed token's expert copies land: the routing facts an expert-parallel dispatch carries, and the
probability that a token reaches a range of experts (a device's or a node's) under group-limited top-k routing.

DeepSeek-V3's gate (HF config ``n_group``, ``topk_group``; the V3 report, section 2.1.2 and 3.2.2) splits the
``experts`` into ``groups`` equal groups, picks ``groups_per_token`` groups per token, and the token's ``top_k``
experts among those groups' experts. With one group per node this limits each token to at most that many nodes
("node-limited routing"). Model: the groups a token picks are a uniform random subset, its ``top_k`` experts a
uniform random subset of the picked groups' experts (SGLang's "simulated perfect EPLB": random expert selection
following group-limited routing semantics); ``groups`` = 1 is plain uniform top-k. Experts are laid out in
order, ``experts / ep`` per device (device ``d`` holds experts ``[d E / ep, (d + 1) E / ep)``), nodes in order
of devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Literal

#: DeepEP's two kernel families (deepseek-ai/DeepEP README, V1): "normal" (high throughput, training and
#: prefill: one copy of a token per target node over RDMA, forwarded to the node's target devices over NVLink)
#: and "low_latency" (decode: one message per token-expert pair, straight to the expert's device)
EP_KERNELS = ("normal", "low_latency")


@dataclass(frozen=True, slots=True)
class EPRouting:
    """The routing facts of one expert-parallel dispatch or combine (per device, per layer run): the device's
    ``tokens``, each routed to ``top_k`` of ``experts`` experts in ``groups`` groups, at most
    ``groups_per_token`` groups per token, moved by DeepEP's ``kernel`` (:data:`EP_KERNELS`). The op's
    ``message_bytes`` is the logical size: ``tokens x top_k`` copies of a token's hidden state. The routed
    experts' GEMMs carry it too, for the ``imbalance`` their rows state."""

    tokens: float
    top_k: int
    experts: int
    groups: int = 1
    groups_per_token: int = 1
    kernel: Literal["normal", "low_latency"] = "low_latency"
    #: the busiest device's token-expert pairs over the mean device's (the experts' wait), and why
    #: (:func:`tapeout.workload.build.expert_load`); 1.0 and "" where not stated
    imbalance: float = 1.0
    imbalance_basis: str = ""

    def terms(self) -> dict[str, float | str]:
        """The imbalance a row states (empty when not stated)."""
        return {"expert_imbalance": self.imbalance, "expert_imbalance_basis": self.imbalance_basis} \
            if self.imbalance_basis else {}


def _miss(pool: int, taken: int, k: int) -> float:
    """P(none of ``taken`` experts is among ``k`` drawn without replacement from ``pool``): C(pool - taken, k) / C(pool, k)."""
    if pool - taken < k:
        return 0.0
    p = 1.0
    for i in range(k):
        p *= (pool - taken - i) / (pool - i)
    return p


@lru_cache(maxsize=65536)
def hit_probability(experts: int, top_k: int, groups: int, groups_per_token: int, lo: int, hi: int) -> float:
    """P(a token's ``top_k`` experts include one of the experts ``[lo, hi)``) under group-limited routing
    (module docstring). Exact: the range meets some groups with ``a_i`` experts each; a pick of ``J`` of
    them (probability C(G - r, g - J) / C(G, g) for each such subset of the ``r`` met groups) leaves
    ``sum a_i`` of the ``g E / G`` candidate experts in range, missed with probability
    C(g E / G - sum a_i, k) / C(g E / G, k)."""
    if hi <= lo:
        return 0.0
    size = experts // groups
    pool = size * groups_per_token
    met: dict[int, int] = {}  # experts in range per met group -> how many groups meet it that much
    for i in range(lo // size, (hi - 1) // size + 1):
        a = min(hi, (i + 1) * size) - max(lo, i * size)
        met[a] = met.get(a, 0) + 1
    r = sum(met.values())
    total = math.comb(groups, groups_per_token)
    sizes, counts = list(met), [met[a] for a in met]
    miss = 0.0
    for pick in product(*(range(c + 1) for c in counts)):
        j = sum(pick)
        if j > groups_per_token or groups_per_token - j > groups - r:
            continue
        ways = math.comb(groups - r, groups_per_token - j)
        for c, n in zip(counts, pick):
            ways *= math.comb(c, n)
        miss += ways / total * _miss(pool, sum(a * n for a, n in zip(sizes, pick)), top_k)
    return 1.0 - miss


def device_experts(experts: int, ep: int, device: int) -> tuple[int, int]:
    """The experts ``[lo, hi)`` device ``device`` of ``ep`` holds (balanced, in order)."""
    return device * experts // ep, (device + 1) * experts // ep


def copies_per_token(r: EPRouting, ep: int, node: int) -> tuple[float, float, float, float]:
    """(devices, nodes, scale-up copies, scale-out copies) per token of a normal-kernel dispatch over ``ep``
    devices in nodes of ``node``: the expected distinct devices and nodes a token reaches, and the copies
    that cross the scale-up link (NVLink) and the scale-out NIC.

    DeepEP's normal kernel sends a token once to each remote node it reaches (over RDMA, to the device of
    the sender's local rank there), and from the arrival device (the sender itself on its own node) over
    NVLink to each other target device of that node. The sender is any device with equal probability, so
    a node ``j`` of ``s_j`` devices is remote with probability ``1 - s_j / ep``, and its arrival device is
    one of its targets with probability ``targets / s_j``: scale-out copies = sum_j P(j hit)(1 - s_j / ep),
    scale-up copies = sum_j E[targets in j](1 - 1 / s_j)."""
    return _copies(r.experts, r.top_k, r.groups, r.groups_per_token, ep, node)


@lru_cache(maxsize=4096)
def _copies(E: int, k: int, G: int, g: int, ep: int, node: int) -> tuple[float, float, float, float]:
    dev = [hit_probability(E, k, G, g, *device_experts(E, ep, d)) for d in range(ep)]
    devices = nodes = up = out = 0.0
    for start in range(0, ep, node):
        members = range(start, min(start + node, ep))
        s = len(members)
        p_node = hit_probability(E, k, G, g, device_experts(E, ep, start)[0], device_experts(E, ep, members[-1])[1])
        targets = sum(dev[d] for d in members)
        devices += targets
        nodes += p_node
        up += targets * (1.0 - 1.0 / s)
        out += p_node * (1.0 - s / ep)
    return devices, nodes, up, out


__all__ = ["EPRouting", "EP_KERNELS", "copies_per_token", "device_experts", "hit_probability"]
