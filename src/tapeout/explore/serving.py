"""Serving objectives of a design point: goodput and $/Mtok at an SLO (``goodput_rps``, ``usd_per_mtok_at_slo``).

Each workload that a serving objective names is simulated on the design with the space's ``[serving]``
table (:class:`~tapeout.explore.space.Serving`): the workload's model, ``tp`` and formats, the table's
traffic, SLOs and engine. The SLO check and the rate search are ``tapeout capacity``'s
(:func:`tapeout.serving.capacity.check`, :func:`~tapeout.serving.capacity.max_rate`), the price the cost
model's (:meth:`tapeout.cost.price.CostReport.usd_per_mtok`):

- ``goodput_rps``: the steady-state goodput at ``serving.rate`` over ``serving.replicas`` replicas: the rate
  times the fraction of requests within both SLOs (each request's own TTFT and TPOT, as ``tapeout simulate
  --slo-ttft --slo-tpot`` counts them). The run's own ``goodput_rps`` divides by its duration, which the
  drain of its longest requests stretches (200 ShareGPT-like requests at 16 req/s: sent within about 12 s,
  the last finishing tens of seconds later); the steady-state figure does not depend on the run's length,
  as ``tapeout capacity``'s steady-state output tokens/s;
- ``usd_per_mtok_at_slo``: with ``serving.rate``, the $/Mtok of serving that rate on ``replicas`` x ``tp``
  devices when the ``percentile``-th TTFT and TPOT meet the SLOs; without it, the $/Mtok of one replica at
  the highest rate that meets them (``tapeout capacity``'s bisection). A design that misses the SLOs has
  no value (the point is infeasible), never a made-up number.

Every simulation of a design shares its iteration pricer's bucket cache (one pricer per model, device and
formats), so the rate search re-prices little.
"""

from __future__ import annotations

from typing import Any

from tapeout.cost.price import CostReport
from tapeout.explore.space import Serving, Space, Workload
from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.serving.inputs import SEARCHED


#: the :func:`tapeout.simulate` arguments the capacity check passes itself (:func:`tapeout.serving.capacity.check`)
CHECK_KEYS = SEARCHED


def simulate_kwargs(space: Space, w: Workload, model: ModelSpec, hw: HardwareSpec) -> dict[str, Any]:
    """The :func:`tapeout.simulate` arguments of workload ``w`` on ``hw``: the workload's fields that are
    simulate's scenario keywords (``tp``, formats; :data:`tapeout.serving.sim.SCENARIO_KEYS`), the space's tier,
    the ``[serving]`` table's fields that are simulate's keywords (traffic, engine, ``kv_fraction``), the
    lengths the table leaves unset the workload's; :data:`CHECK_KEYS` excepted (the capacity check adds them)."""
    import inspect

    from tapeout.serving.sim import SCENARIO_KEYS, simulate

    s = space.serving
    assert s is not None
    keywords = inspect.signature(simulate).parameters
    kw: dict[str, Any] = {"model": model, "hardware": hw, "tier": space.tier}
    kw |= {k: getattr(w, k) for k in Workload.model_fields if k in SCENARIO_KEYS}
    kw |= {k: getattr(s, k) for k in Serving.model_fields if k in keywords and k not in CHECK_KEYS}
    for k in ("input_len", "output_len"):  # a length preset (workload) or lengths, the workload's when unset
        if s.workload is not None:
            del kw[k]
        elif kw[k] is None:
            kw[k] = getattr(w, k)
    return kw


def serving_metrics(space: Space, w: Workload, model: ModelSpec, hw: HardwareSpec, cost: CostReport) -> dict[str, Any]:
    """The serving metrics of one workload on one design (JSON-serializable; ``usd_per_mtok_at_slo`` None when
    the SLOs are missed). Raises :class:`~tapeout.errors.TapeoutError` when the model cannot be served (its
    KV pool holds no request)."""
    from tapeout.serving.capacity import check, max_rate

    s: Serving | None = space.serving
    assert s is not None
    kw = simulate_kwargs(space, w, model, hw)
    if s.rate is not None:
        replicas, rate = s.replicas, s.rate
        point = check(kw, rate, s.slo_ttft, s.slo_tpot, s.percentile, replicas=replicas,
                      num_requests=s.num_requests)
    else:
        replicas = 1
        rate, point = max_rate(kw, s.slo_ttft, s.slo_tpot, s.percentile, s.num_requests)
    devices = replicas * w.tp
    ok = point is not None and point.ok
    out: dict[str, Any] = {
        "serving_rate_rps": rate if ok else None, "serving_replicas": replicas, "serving_gpus": devices,
        "serving_meets_slo": ok, "usd_per_mtok_at_slo": None,
        "serving_ttft_p_s": point.ttft if point is not None else None,
        "serving_tpot_p_s": point.tpot if point is not None else None,
    }
    if s.rate is not None:
        assert point is not None
        out["goodput_rps"] = rate * point.attainment
        out["serving_slo_attainment"] = point.attainment
    if ok and point.output_tok_s > 0:
        out["serving_output_tok_s"] = point.output_tok_s
        out["usd_per_mtok_at_slo"] = cost.usd_per_mtok(point.output_tok_s / devices)
    return out


def slo_violation(space: Space, w: Workload, sm: dict[str, Any]) -> str | None:
    """Why ``usd_per_mtok_at_slo`` of workload ``w`` has no value, or None."""
    s = space.serving
    assert s is not None
    if sm.get("serving_meets_slo"):
        return None
    pct = f"p{s.percentile:g}"
    if s.rate is None:
        return f"{w.name}: no request rate meets the serving SLOs at {pct}"
    got = []
    if s.slo_ttft is not None and sm.get("serving_ttft_p_s") is not None:
        got.append(f"TTFT {sm['serving_ttft_p_s']:.3g} s (SLO {s.slo_ttft:g})")
    if s.slo_tpot is not None and sm.get("serving_tpot_p_s") is not None:
        got.append(f"TPOT {sm['serving_tpot_p_s']:.3g} s (SLO {s.slo_tpot:g})")
    return f"{w.name}: {s.rate:g} req/s on {s.replicas} replica(s) misses the serving SLOs at {pct}: " + ", ".join(got)


__all__ = ["serving_metrics", "simulate_kwargs", "slo_violation"]
