"""Evaluating one design point: build the design, price it, predict every workload, score it.

``evaluate(ctx, params)`` is a pure function of the space and the parameters (no clocks, no
randomness), so every executor returns identical results for the same point. A ``Context`` holds
what every point shares (base device and die, assumptions, models) and is built once per worker
process from the space's JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tapeout.cost import area as am
from tapeout.cost import price as cp
from tapeout.cost.assumptions import Assumptions
from tapeout.errors import TapeoutError
from tapeout.explore import design as dz
from tapeout.explore.serving import serving_metrics, slo_violation
from tapeout.explore.space import METRICS, Objective, Space, Workload, load_space
from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.workload.scenario import PredictInputs


@dataclass(frozen=True)
class Context:
    space: Space
    base: HardwareSpec
    base_die: am.DieSpec
    assumptions: Assumptions
    models: dict[str, ModelSpec]  # workload name -> model (layers overridden)


_CONTEXTS: dict[str, Context] = {}


def context(space: Space | str | dict) -> Context:
    """The (cached) context of a space given as a Space, its JSON, or a mapping."""
    if isinstance(space, str):
        import json

        space = load_space(json.loads(space), resolve=False)
    elif isinstance(space, dict):
        space = load_space(space, resolve=False)
    key = space.digest
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        from tapeout.hardware.catalog import load_hardware
        from tapeout.models.catalog import load_model

        a = Assumptions.load(space.assumptions or None)
        base = load_hardware(space.base)
        models = {}
        for w in space.workloads:
            m = load_model(w.model)
            if w.num_layers is not None and w.num_layers != m.num_layers:
                m = m.model_copy(update={"num_layers": w.num_layers, "name": f"{m.name}[{w.num_layers}L]"})
            models[w.name] = m
        ctx = Context(space=space, base=base, base_die=am.die_for(base, a), assumptions=a, models=models)
        _CONTEXTS[key] = ctx
    return ctx


def _gmean(values: list[float], weights: list[float]) -> float:
    if any(v is None or not math.isfinite(v) for v in values):
        return math.nan
    if any(v <= 0 for v in values):
        return 0.0 if all(v >= 0 for v in values) else math.nan
    tw = sum(weights)
    return math.exp(sum(w * math.log(v) for v, w in zip(values, weights)) / tw)


#: the workload fields that are :func:`tapeout.predict` keywords (the others: its name, the batch search, its
#: weight and SLOs); a field added to both reaches the prediction without a change here
SCENARIO_KEYS = tuple(k for k in Workload.model_fields if k in PredictInputs.model_fields and k != "batch")


def workload_metrics(ctx: Context, hw: HardwareSpec, cost: cp.CostReport, wname: str) -> dict[str, Any]:
    from tapeout.api import predict

    w = next(x for x in ctx.space.workloads if x.name == wname)
    m = ctx.models[wname]
    kw = {k: getattr(w, k) for k in SCENARIO_KEYS} | {"tier": ctx.space.tier}
    if w.batch == "max":
        # the largest batch that fits in memory and, when the workload has latency SLOs, meets them
        probe = predict(m, hw, batch=1, **kw)
        batch = min(probe.memory.max_batch, w.max_batch)
        if batch < 1:
            return {"fits": False, "batch": 0}
        p = probe if batch == 1 else predict(m, hw, batch=batch, **kw)
        if batch > 1 and not _meets_slo(w, p) and _meets_slo(w, probe):
            lo, hi, best = 1, batch, probe  # invariant: lo meets the SLOs, hi does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                q = predict(m, hw, batch=mid, **kw)
                if _meets_slo(w, q):
                    lo, best = mid, q
                else:
                    hi = mid
            batch, p = lo, best
    else:
        batch = w.batch
        p = predict(m, hw, batch=batch, **kw)
    per_dev = p.throughput_tok_s / w.tp
    return {
        "fits": bool(p.memory.fits), "batch": batch, "ttft_s": p.ttft_s, "tpot_s": p.tpot_s,
        "latency_s": p.e2e_latency_s, "throughput_tok_s": p.throughput_tok_s, "throughput_per_device": per_dev,
        "tok_s_per_kusd": 1000 * cost.perf_per_dollar(per_dev), "tok_per_joule": cost.perf_per_watt(per_dev),
        "usd_per_mtok": cost.usd_per_mtok(per_dev), "memory_gb": p.memory.total_bytes / 1e9,
    }


def _meets_slo(w, p) -> bool:  # noqa: ANN001
    return ((w.max_ttft_s is None or p.ttft_s <= w.max_ttft_s)
            and (w.max_tpot_s is None or p.tpot_s <= w.max_tpot_s))


_WL_KEY = {"latency": "latency_s", "ttft": "ttft_s", "tpot": "tpot_s", "throughput": "throughput_per_device",
           "perf_per_dollar": "tok_s_per_kusd", "perf_per_watt": "tok_per_joule", "usd_per_mtok": "usd_per_mtok",
           "goodput_rps": "goodput_rps", "usd_per_mtok_at_slo": "usd_per_mtok_at_slo"}


def objective_value(o: Objective, metrics: dict[str, Any], space: Space) -> float:
    if o.metric in ("area", "cost", "power"):
        return float(metrics[{"area": "area_mm2", "cost": "device_cost_usd", "power": "power_w"}[o.metric]])
    key = _WL_KEY[o.metric]
    wls = [w for w in space.workloads if o.workload in (None, w.name)]
    vals = [metrics["workloads"][w.name].get(key) for w in wls]
    vals = [math.nan if v is None else v for v in vals]
    return _gmean(vals, [w.weight for w in wls])


def evaluate(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Metrics of one design point (JSON-serializable)."""
    sp = ctx.space
    a = ctx.assumptions
    out: dict[str, Any] = {"violations": [], "error": None}
    try:
        d = dz.build(ctx.base, ctx.base_die, params, a)
        b = am.breakdown(d.hardware, a, d.die)
        power = cp.modelled_power_w(d.hardware, b.area_mm2, b.node, a)["total"]
        d = dz.with_area_and_power(d, b.area_mm2, power)
        cost = cp.estimate(d.hardware, a, die=d.die, breakdown=b)
    except TapeoutError as exc:
        out["error"] = str(exc)
        out["violations"].append(f"design: {exc}")
        out["feasible"] = False
        out["objectives"] = [math.nan for _ in sp.objectives.items]
        return out
    hw = d.hardware
    out.update({
        "area_mm2": b.area_mm2, "components_mm2": b.components, "core_mm2": b.core_mm2, "node": b.node,
        "yield": cost.yield_fraction, "die_cost_usd": cost.die_cost_usd, "memory_cost_usd": cost.memory_cost_usd,
        "device_cost_usd": cost.device_cost_usd, "power_w": cost.power_w, "usd_per_hour": cost.usd_per_hour,
        "peak_tflops_fp16": hw.peak_tflops.get("fp16") or hw.peak_tflops.get("bf16"),
        "memory": d.derived["memory"], "workloads": {},
    })
    out["violations"].extend(d.violations)
    need, have = am.shoreline_mm(d.die, b.area_mm2, a)
    out["shoreline_mm"] = {"needed": need, "available": have}
    c = sp.constraints
    if c.shoreline and need > have:
        out["violations"].append(f"PHYs need {need:.0f} mm of die edge, {have:.0f} mm available")
    if c.max_area_mm2 is not None and b.area_mm2 > c.max_area_mm2:
        out["violations"].append(f"area {b.area_mm2:.0f} > {c.max_area_mm2:g} mm2")
    if c.max_power_w is not None and cost.power_w > c.max_power_w:
        out["violations"].append(f"power {cost.power_w:.0f} > {c.max_power_w:g} W")
    if c.max_device_cost_usd is not None and cost.device_cost_usd > c.max_device_cost_usd:
        out["violations"].append(f"device cost {cost.device_cost_usd:.0f} > {c.max_device_cost_usd:g} $")
    for w in sp.workloads:
        try:
            wm = workload_metrics(ctx, hw, cost, w.name)
        except TapeoutError as exc:
            wm = {"fits": False, "error": str(exc)}
            out["violations"].append(f"{w.name}: {exc}")
        if sp.serves(w.name) and wm.get("fits"):
            try:
                wm.update(serving_metrics(sp, w, ctx.models[w.name], hw, cost))
            except TapeoutError as exc:  # e.g. the KV pool holds no request
                wm["serving_error"] = str(exc)
                out["violations"].append(f"{w.name}: serving: {exc}")
            else:
                why = slo_violation(sp, w, wm) if sp.needs(w.name, "usd_per_mtok_at_slo") else None
                if why:
                    out["violations"].append(why)
        out["workloads"][w.name] = wm
        if c.memory_fits and not wm.get("fits", False):
            out["violations"].append(f"{w.name}: does not fit in memory")
        if w.max_ttft_s is not None and wm.get("ttft_s", math.inf) > w.max_ttft_s:
            out["violations"].append(f"{w.name}: ttft {wm.get('ttft_s', math.inf):.3g} > {w.max_ttft_s:g} s")
        if w.max_tpot_s is not None and wm.get("tpot_s", math.inf) > w.max_tpot_s:
            out["violations"].append(f"{w.name}: tpot {wm.get('tpot_s', math.inf):.3g} > {w.max_tpot_s:g} s")
    out["objectives"] = [objective_value(o, out, sp) for o in sp.objectives.items]
    out["feasible"] = not out["violations"] and all(math.isfinite(v) for v in out["objectives"])
    return out


def evaluate_many(space_json: str, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worker entry point (process pool, Ray): evaluate ``points`` of the space given as JSON."""
    ctx = context(space_json)
    return [evaluate(ctx, p) for p in points]


def directions(space: Space) -> list[str]:
    return [o.direction for o in space.objectives.items]


__all__ = ["Context", "METRICS", "context", "directions", "evaluate", "evaluate_many", "objective_value"]
