"""Per-operator cost models behind one seam: ``estimate(op, hardware, tier)``."""

from __future__ import annotations

from collections.abc import Callable

from tapeout.errors import TapeoutError
from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import roofline
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op

Estimator = Callable[[Op, HardwareSpec], OpCost]

#: registry of performance tiers; later tiers (tiled mapper, calibrated tables) register here
TIERS: dict[str, Estimator] = {roofline.TIER: roofline.estimate}


def register_tier(name: str, fn: Estimator) -> None:
    TIERS[name] = fn


def estimate(op: Op, hardware: HardwareSpec, tier: str = "roofline") -> OpCost:
    try:
        fn = TIERS[tier]
    except KeyError:
        raise TapeoutError(f"unknown tier {tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier") from None
    return fn(op, hardware)


__all__ = ["OpCost", "TIERS", "estimate", "register_tier"]
