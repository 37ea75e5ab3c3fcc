"""The result of pricing one op: its time and the terms that produced it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OpCost:
    """Time of one run of an op on one device, with its explanation.

    ``time_s = max(compute_s, memory_s, network_s) + overhead_s``. ``bound`` names the largest term
    ("compute", "memory", "network", or "overhead" when fixed costs dominate).
    """

    name: str
    kind: str
    count: int
    time_s: float
    compute_s: float
    memory_s: float
    network_s: float
    overhead_s: float
    bound: str
    intensity: float
    tier: str
    #: which peak and efficiency were used, e.g. {"peak": "fp16", "peak_tflops": 312, "eta_compute": 0.7}
    terms: dict[str, float | str] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.time_s * self.count
