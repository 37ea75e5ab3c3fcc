"""Pricing of the serving sources (``e2e-serving-*``, :mod:`tapeout.validate.sources.serving`): each load point
is simulated once with :func:`tapeout.simulate` (memoised per device, tier and scenario) and every metric
the source printed is read from that run. A case's ``quantity`` names the metric (:data:`QUANTITIES`):
throughputs are kept as the reciprocal of the rate (``measured_s``, as every end-to-end case) and scored on
the rate; latencies (TTFT, ITL) are times and scored on the time. Held out from every fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np


#: quantity -> (how it is scored: "rate" or "time", unit of the published value)
QUANTITIES: dict[str, tuple[str, str]] = {
    "serving_output_tok_s": ("rate", "tokens/s"),
    "serving_total_tok_s": ("rate", "tokens/s"),
    "serving_request_rps": ("rate", "req/s"),
    "serving_mean_ttft_s": ("time", "s"),
    "serving_mean_itl_s": ("time", "s"),
    "serving_itl_p50_s": ("time", "s"),
    "serving_itl_p75_s": ("time", "s"),
    "serving_itl_p95_s": ("time", "s"),
    "serving_itl_p99_s": ("time", "s"),
}

_CACHE: dict[tuple, dict[str, float]] = {}


def simulated(hw: Any, scenario: tuple[tuple[str, Any], ...], tier: str) -> dict[str, float]:
    """Every :data:`QUANTITIES` value (seconds: reciprocal rates, latencies) of one simulated load point."""
    from tapeout.serving.sim import simulate

    key = (hw.model_dump_json(), tier, scenario)
    hit = _CACHE.get(key)
    if hit is None:
        kw = dict(scenario)
        res = simulate(kw.pop("model"), hw, tier=tier, **kw)
        m = res.metrics()
        itl = res.itl
        pct = np.percentile(itl, [50, 75, 95, 99]) if itl.size else np.zeros(4)
        hit = {
            "serving_output_tok_s": 1.0 / m["output_throughput_tok_s"],
            "serving_total_tok_s": 1.0 / m["total_throughput_tok_s"],
            "serving_request_rps": 1.0 / m["request_throughput_rps"],
            "serving_mean_ttft_s": m["ttft_s"]["mean"],
            "serving_mean_itl_s": m["itl_s"]["mean"],
            **{f"serving_itl_p{p}_s": float(v) for p, v in zip((50, 75, 95, 99), pct)},
        }
        if len(_CACHE) > 1024:
            _CACHE.clear()
        _CACHE[key] = hit
    return hit


def is_serving(case: Any) -> bool:
    return case.quantity in QUANTITIES


def scored(case: Any, seconds: float) -> float:
    """The value a serving case is scored on: the rate for throughputs, the time for latencies."""
    return 1.0 / seconds if QUANTITIES[case.quantity][0] == "rate" else seconds


__all__ = ["QUANTITIES", "is_serving", "scored", "simulated"]
