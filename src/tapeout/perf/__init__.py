"""Per-operator cost models behind one seam: ``estimate(op, hardware, tier)``."""

from __future__ import annotations

from collections.abc import Callable

from tapeout.errors import TapeoutError
from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import roofline
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op

Estimator = Callable[[Op, HardwareSpec], OpCost]


def _tiled(op: Op, hardware: HardwareSpec) -> OpCost:
    """Tier "tiled" (tile-level mapper on the micro-architecture), imported on first use (numpy)."""
    from tapeout.perf.tiled import estimate as tiled_estimate

    TIERS["tiled"] = tiled_estimate
    return tiled_estimate(op, hardware)


#: registry of performance tiers; later tiers (calibrated tables) register here
TIERS: dict[str, Estimator] = {roofline.TIER: roofline.estimate, "tiled": _tiled}


def register_tier(name: str, fn: Estimator) -> None:
    TIERS[name] = fn


def estimate(op: Op, hardware: HardwareSpec, tier: str = "roofline") -> OpCost:
    try:
        fn = TIERS[tier]
    except KeyError:
        raise TapeoutError(f"unknown tier {tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier") from None
    return fn(op, hardware)


__all__ = ["OpCost", "TIERS", "estimate", "register_tier"]
