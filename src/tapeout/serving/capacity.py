"""``tapeout capacity``: what a device serves under latency SLOs, and what a request rate costs.

Configurations are (tp, max_batch) for one scheduler, on one device. For each, the highest request rate
one replica sustains while the ``percentile``-th TTFT stays within ``slo_ttft`` and the TPOT within
``slo_tpot`` is found by bisection on the rate (geometric, between 1% of the replica's offline request
throughput and that throughput), each point a simulation of ``num_requests`` requests with the same seed.
Then:

- **highest rate** (no ``rate`` given): ``gpus`` devices hold ``gpus // (tp x pp)`` replicas behind a
  least-outstanding-tokens router; their rate is that many times one replica's, checked by simulating them
  together (lowered by 5% steps until it meets the SLOs); the best configuration has the highest rate.
- **cheapest configuration** (``rate`` given): each configuration needs n = ceil(rate / one replica's
  rate) replicas, checked by simulating n replicas at ``rate`` (n grows until the SLOs hold); its cost is
  n x tp x pp devices at the cost model's $/hour (:func:`tapeout.cost.estimate`), and $/Mtok divides it
  by the output tokens served (the rate times the mean output length). The best configuration is the
  cheapest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tapeout.errors import TapeoutError
from tapeout.serving.inputs import SCENARIO_EXCLUDE, CapacityInputs, CapacitySearch, capacity_inputs, split
from tapeout.specio import keyword_api
from tapeout.workload.scenario import PredictInputs

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Point:
    rate: float
    ok: bool
    ttft: float
    tpot: float
    #: output tokens/s served in steady state: the rate times the mean output length (the run's own
    #: throughput counts its ramp-up and the tail of its longest requests)
    output_tok_s: float
    #: the fraction of requests within both SLOs (each request's own TTFT and TPOT, as goodput counts them)
    attainment: float = 1.0


def check(kw: dict[str, Any], rate: float, slo_ttft: float | None, slo_tpot: float | None, pct: float,
          replicas: int = 1, num_requests: int = 300) -> Point:
    """Simulate ``replicas`` replicas (``num_requests`` each) at ``rate``: do the ``pct``-th percentile TTFT
    and TPOT meet the SLOs?"""
    from tapeout.serving.sim import simulate

    res = simulate(**kw, rate=rate, replicas=replicas, router="least_tokens", num_requests=num_requests * replicas,
                   slo_ttft=slo_ttft, slo_tpot=slo_tpot)
    ttft = float(np.percentile(res.ttft, pct))
    tp = res.tpot
    tpot = float(np.percentile(tp, pct)) if tp.size else 0.0
    ok = (slo_ttft is None or ttft <= slo_ttft) and (slo_tpot is None or tpot <= slo_tpot)
    return Point(rate, ok, ttft, tpot, rate * float(res.requests.output_len.mean()), float(res.within_slo().mean()))


def max_rate(kw: dict[str, Any], slo_ttft: float | None, slo_tpot: float | None, pct: float,
             num_requests: int = 300, steps: int = 8) -> tuple[float, Point | None]:
    """(highest rate meeting the SLOs, its point) for one replica; (0, None) when even a light load fails."""
    from tapeout.serving.sim import simulate

    offline = simulate(**kw, rate=math.inf, num_requests=num_requests)
    hi = float(offline.metrics()["request_throughput_rps"])
    lo = hi / 100
    p_lo = check(kw, lo, slo_ttft, slo_tpot, pct, num_requests=num_requests)
    if not p_lo.ok:
        return 0.0, None
    best = p_lo
    p_hi = check(kw, hi, slo_ttft, slo_tpot, pct, num_requests=num_requests)
    if p_hi.ok:
        return hi, p_hi
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        p = check(kw, mid, slo_ttft, slo_tpot, pct, num_requests=num_requests)
        if p.ok:
            lo, best = mid, p
        else:
            hi = mid
    return lo, best


def capacity(model: str, hardware: str, **kwargs: Any) -> dict[str, Any]:
    """The search described in the module docstring; the dict ``tapeout capacity --format json`` prints.

    The keywords are :data:`~tapeout.serving.inputs.CapacityInputs`' (the SLOs, ``percentile``, ``rate``, ``gpus``,
    ``tps``, ``max_batches``, ``num_requests`` per replica and point, then the simulation's engine and traffic:
    ``scheduler``, lengths, ``workload``, ``seed``...), then :func:`tapeout.simulate`'s scenario keywords but ``tp``
    (formats, ``pp``, ``framework``, ``tier``...). ``tps`` defaults to the powers of two up to ``gpus``.
    """
    from tapeout.api import load_hardware, predict_inputs
    from tapeout.cost import estimate

    search, scenario = split(kwargs, "capacity", CapacityInputs, PredictInputs)
    bad = sorted(set(scenario) & {*SCENARIO_EXCLUDE, "tp"})
    if bad:
        raise TypeError(f"capacity() got an unexpected keyword argument {bad[0]!r}")
    c = capacity_inputs(search)
    # the scenario keywords given, validated once (not a skipped configuration per tp) and reported as dumped
    args = predict_inputs(scenario, fn="capacity")
    slo_ttft, slo_tpot, percentile, rate, gpus = c.slo_ttft, c.slo_tpot, c.percentile, c.rate, c.gpus
    num_requests, max_batches = c.num_requests, c.max_batches
    engine = {k: getattr(c, k) for k in type(c).model_fields if k not in CapacitySearch.model_fields}
    pp = args.pp
    tps = c.tps
    if tps is None:
        tps = tuple(t for t in (1, 2, 4, 8, 16) if t * pp <= max(gpus, 1))
    hw = load_hardware(hardware)
    cost = estimate(hw)
    usd_h = cost.usd_per_hour
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for tp in tps:
        for mb in max_batches:
            kw = {"model": model, "hardware": hw, "tp": tp, "max_batch": mb, **engine, **scenario}
            try:
                r1, p1 = max_rate(kw, slo_ttft, slo_tpot, percentile, num_requests)
            except TapeoutError as exc:  # tp does not shard the model, or it does not fit
                skipped.append({"tp": tp, "max_batch": mb, "reason": str(exc)})
                continue
            row: dict[str, Any] = {"tp": tp, "max_batch": mb, "replica_rate_rps": r1}
            if p1 is None:
                row.update(meets_slo=False)
                rows.append(row)
                continue
            devices = tp * pp
            if rate is None:
                n = gpus // devices
                if n < 1:
                    continue
                total, point = n * r1, None
                for _ in range(5):
                    point = check(kw, total, slo_ttft, slo_tpot, percentile, replicas=n, num_requests=num_requests)
                    if point.ok:
                        break
                    total *= 0.95
            else:
                n = max(1, math.ceil(rate / r1))
                point = None
                for _ in range(4):
                    point = check(kw, rate, slo_ttft, slo_tpot, percentile, replicas=n, num_requests=num_requests)
                    if point.ok:
                        break
                    n += 1
                total = rate
            assert point is not None
            cost_h = n * devices * usd_h
            row.update(meets_slo=point.ok, replicas=n, gpus=n * devices, rate_rps=total,
                       rate_per_gpu_rps=total / (n * devices),
                       ttft_p_s=point.ttft, tpot_p_s=point.tpot, output_throughput_tok_s=point.output_tok_s,
                       usd_per_hour=cost_h,
                       usd_per_mtok=cost.usd_per_mtok(point.output_tok_s / (n * devices))
                       if point.output_tok_s > 0 else None)
            rows.append(row)
    ok = [r for r in rows if r.get("meets_slo")]
    if rate is None:
        best = max(ok, key=lambda r: (r["rate_rps"], -r["gpus"]), default=None)
    else:
        best = min(ok, key=lambda r: (r["usd_per_hour"], -r["rate_per_gpu_rps"]), default=None)
    return {
        "inputs": {"model": model, "hardware": hw.name, **reported(c, tps=list(tps), gpus=gpus if rate is None else None),
                   **args.model_dump(mode="json", exclude_unset=True)},
        "usd_per_device_hour": usd_h,
        "mode": "highest_rate" if rate is None else "cheapest",
        "best": best,
        "configs": rows,
        "skipped": skipped,
    }


#: ``capacity``'s signature: :data:`CapacityInputs`' fields, then simulate's scenario keywords but ``tp``
keyword_api(capacity, CapacityInputs, (PredictInputs, (*SCENARIO_EXCLUDE, "tp")))


def reported(c: CapacitySearch, **resolved: Any) -> dict[str, Any]:
    """``tapeout capacity``'s ``inputs`` but the model, device and scenario: the search and the SLOs, then the
    simulation keywords given, and always the scheduler, the seed and (without a preset) the lengths simulated;
    by their JSON names (``slo_ttft_s``), ``resolved`` replacing the values the search settled (``tps``)."""
    always = {"scheduler", "seed"} | (set() if c.workload is not None else {"input_len", "output_len"})
    keep = set(CapacitySearch.model_fields) | always | c.model_fields_set
    return c.model_dump(mode="json", by_alias=True, include=keep) | resolved


__all__ = ["Point", "capacity", "check", "max_rate", "reported"]
