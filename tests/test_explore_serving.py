"""Serving objectives in explore (goodput_rps, usd_per_mtok_at_slo): the [serving] table, agreement with
tapeout simulate and tapeout capacity, infeasible designs, monotonicity in the device's speed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from tapeout.errors import TapeoutError
from tapeout.explore.evaluate import context, evaluate
from tapeout.explore.run import run
from tapeout.explore.space import load_space
from tapeout.explore.store import Store
from tapeout.serving.capacity import capacity
from tapeout.serving.sim import simulate

SERVING = {"rate": 12, "slo_ttft": 0.4, "slo_tpot": 0.015, "num_requests": 60, "seed": 3}


def space(serving=None, goals=("goodput_rps",), params=None, **extra):  # noqa: ANN001, ANN201
    d = {"name": "s", "base": "h100-sxm", "tier": "roofline",
         "parameters": params or {"memory_kind": "HBM3", "memory_interfaces": 5, "memory_bandwidth_gbps": [1500, 3000]},
         "workloads": [{"name": "chat", "model": "llama-3.1-8b", "input_len": 512, "output_len": 128}],
         "serving": SERVING if serving is None else serving, "objectives": list(goals), **extra}
    return load_space(d)


def design_hw(sp, params):  # noqa: ANN001, ANN201
    """The HardwareSpec of a design point, as evaluate builds it (area and power set)."""
    from tapeout.cost import area as am
    from tapeout.cost import price as cp
    from tapeout.explore import design as dz

    ctx = context(sp)
    d = dz.build(ctx.base, ctx.base_die, params, ctx.assumptions)
    b = am.breakdown(d.hardware, ctx.assumptions, d.die)
    power = cp.modelled_power_w(d.hardware, b.area_mm2, b.node, ctx.assumptions)["total"]
    return dz.with_area_and_power(d, b.area_mm2, power).hardware


@pytest.mark.parametrize("data, field", [
    ({"serving": None, "objectives": ["goodput_rps"]}, "serving"),  # a serving objective without the table
    ({"serving": {"slo_ttft": 1.0}, "objectives": ["goodput_rps"]}, "serving.rate"),  # goodput needs a rate
    ({"serving": {"rate": 5}}, "slo_ttft"),  # no SLO
    ({"serving": {"rate": 5, "slo_tpot": 0.05, "arrival": "uniform"}}, "poisson"),
    ({"serving": {"rate": 5, "slo_tpot": 0.05, "scheduler": "fifo"}}, "continuous"),
    ({"serving": {"rate": 5, "slo_tpot": 0.05, "workload": "sharegpt", "input_len": 100}}, "not both"),
    ({"serving": {"rate": float("inf"), "slo_tpot": 0.05}}, "serving.rate"),
    ({"serving": {"rate": 5, "slo_tpot": 0.05, "percentile": 120}}, "serving.percentile"),
    ({"serving": {"rate": 5, "slo_tpot": 0.05, "input_len": "zipf:a=2"}}, "serving.input_len"),
    ({"serving": {"rate": 5, "slo_tpot": 0.05, "workload": "sharegtp"}}, "serving.workload"),
])
def test_bad_serving_tables_fail_in_one_line_naming_the_field(data, field):
    d = {"base": "h100-sxm", "workloads": [{"model": "llama-3.1-8b"}], "objectives": ["goodput_rps"], **data}
    if d.get("serving") is None:
        d.pop("serving")
    with pytest.raises(TapeoutError) as exc:
        load_space(d)
    assert "\n" not in str(exc.value) and field in str(exc.value)


def test_spaces_without_serving_keep_their_digest():
    # runs stored before the [serving] table existed resume: the space's JSON (and digest) is unchanged
    # (digest computed on the commit before this table)
    sp = load_space("examples/small-space.toml")
    assert "serving" not in json.loads(sp.to_json())
    assert sp.digest == "2a661e3eec02a0d5"
    # a serving space round-trips through its stored JSON (the store and the report read it back)
    s2 = space()
    assert load_space(json.loads(s2.to_json()), resolve=False) == s2


def test_the_serving_table_and_the_workload_reach_simulate():
    """simulate's arguments: the workload's scenario keywords (tp, formats), the table's traffic and engine,
    the workload's lengths where the table leaves them unset; the capacity check adds the rest."""
    import inspect

    from tapeout.explore.serving import CHECK_KEYS, simulate_kwargs

    table = {"rate": 3, "slo_tpot": 0.05, "scheduler": "chunked", "max_num_tokens": 512, "kv_fraction": 0.7,
             "arrival": "gamma", "burstiness": 2.0, "input_len": 300, "seed": 4}
    sp = space(table, workloads=[{"name": "chat", "model": "llama-3.1-8b", "tp": 2, "weights": "fp8",
                                  "kv_cache": "fp8", "output_len": 64}])
    kw = simulate_kwargs(sp, sp.workloads[0], "m", "h")
    assert {k: kw[k] for k in ("tp", "weights", "activations", "kv_cache", "tier")} == {
        "tp": 2, "weights": "fp8", "activations": "fp16", "kv_cache": "fp8", "tier": "roofline"}
    assert {k: kw[k] for k in ("scheduler", "max_num_tokens", "kv_fraction", "arrival", "burstiness", "seed",
                                "input_len", "output_len", "max_batch")} == {
        "scheduler": "chunked", "max_num_tokens": 512, "kv_fraction": 0.7, "arrival": "gamma", "burstiness": 2.0,
        "seed": 4, "input_len": 300, "output_len": 64, "max_batch": 256}
    assert not set(CHECK_KEYS) & set(kw) and "percentile" not in kw
    inspect.signature(simulate).bind(**kw)  # every key is a simulate argument
    preset = simulate_kwargs(space({**SERVING, "workload": "sharegpt"}), sp.workloads[0], "m", "h")
    assert preset["workload"] == "sharegpt" and not {"input_len", "output_len"} & set(preset)


def test_goodput_is_simulate_at_the_stated_traffic():
    sp = space()
    ctx = context(sp)
    for p in sp.grid():
        m = evaluate(ctx, p)
        wm = m["workloads"]["chat"]
        res = simulate("llama-3.1-8b", design_hw(sp, p), tier="roofline", rate=12, num_requests=60, seed=3,
                       input_len=512, output_len=128, slo_ttft=0.4, slo_tpot=0.015)
        good = res.within_slo()
        assert wm["goodput_rps"] == pytest.approx(12 * good.mean(), rel=1e-12)
        assert m["objectives"] == [pytest.approx(wm["goodput_rps"], rel=1e-12)]
        assert wm["serving_ttft_p_s"] == pytest.approx(float(np.percentile(res.ttft, 99)), rel=1e-12)
        # the run's own goodput counts the same requests over its duration
        assert res.metrics()["goodput_rps"] * res.metrics()["duration_s"] == pytest.approx(good.sum(), rel=1e-9)
        assert m["feasible"]  # goodput alone never makes a design infeasible
    slow, fast = (evaluate(ctx, p)["workloads"]["chat"]["goodput_rps"] for p in sp.grid())
    assert slow < 0.5 * 12 and fast == pytest.approx(12)  # 1.5 TB/s: TPOT ~18 ms misses 15 ms; 3 TB/s: ~9 ms


def test_usd_per_mtok_at_the_highest_rate_is_tapeout_capacity():
    serving = {"slo_ttft": 0.5, "slo_tpot": 0.03, "num_requests": 60, "seed": 1, "workload": "sharegpt",
               "max_batch": 64}
    sp = space(serving, goals=("usd_per_mtok_at_slo",),
               params={"memory_kind": "HBM3", "memory_interfaces": 5, "memory_bandwidth_gbps": 2500})
    p = next(sp.grid())
    m = evaluate(context(sp), p)
    wm = m["workloads"]["chat"]
    cap = capacity("llama-3.1-8b", design_hw(sp, p), slo_ttft=0.5, slo_tpot=0.03, gpus=1, tps=(1,),
                   max_batches=(64,), num_requests=60, seed=1, workload="sharegpt", tier="roofline")
    row = cap["best"]
    assert row is not None and m["feasible"]
    assert wm["serving_rate_rps"] == row["rate_rps"] == row["replica_rate_rps"]
    assert wm["serving_tpot_p_s"] == row["tpot_p_s"]
    # the same $/Mtok formula on the design's own cost (capacity prices a catalog device's)
    assert wm["usd_per_mtok_at_slo"] == pytest.approx(
        row["usd_per_mtok"] * m["usd_per_hour"] / cap["usd_per_device_hour"], rel=1e-12)
    assert m["objectives"] == [pytest.approx(wm["usd_per_mtok_at_slo"], rel=1e-12)]


def test_a_design_that_misses_the_slo_is_infeasible_with_no_value():
    params = {"memory_kind": "HBM3", "memory_interfaces": 5, "memory_bandwidth_gbps": 1000}
    # 16 GB of weights read per decode step at 1 TB/s: TPOT >= 16 ms, so 10 ms cannot be met at any rate
    for serving in ({**SERVING, "slo_tpot": 0.01}, {k: v for k, v in SERVING.items() if k != "rate"} | {"slo_tpot": 0.01}):
        sp = space(serving, goals=("usd_per_mtok_at_slo",), params=params)
        m = evaluate(context(sp), next(sp.grid()))
        assert not m["feasible"]
        assert math.isnan(m["objectives"][0])
        assert m["workloads"]["chat"]["usd_per_mtok_at_slo"] is None
        assert any("serving SLOs" in v for v in m["violations"])
    # a lenient TPOT SLO: the same design is feasible, at a finite price
    sp = space({**SERVING, "slo_tpot": 0.1}, goals=("usd_per_mtok_at_slo",), params=params)
    m = evaluate(context(sp), next(sp.grid()))
    assert m["feasible"] and 0 < m["objectives"][0] < math.inf
    # a model that leaves no KV pool: infeasible, with the simulator's reason, not an exception
    sp = space(SERVING, params={"memory_kind": "HBM3", "memory_capacity_gb": 16.2, "memory_interfaces": 2})
    m = evaluate(context(sp), next(sp.grid()))
    assert not m["feasible"] and math.isnan(m["objectives"][0])
    assert m["workloads"]["chat"]["fits"]  # predict at batch 1 fits; the serving engine needs its largest iteration
    assert any("serving: kv_fraction: the KV pool holds 0 tokens" in v for v in m["violations"])


def test_a_faster_device_never_serves_less():
    # every design dominating another in clock and memory bandwidth has at least its goodput and
    # (highest-rate mode) at least its rate within the SLOs
    params = {"clock_mhz": [1000, 1980], "memory_kind": "HBM3", "memory_interfaces": 5,
              "memory_bandwidth_gbps": [1200, 1600, 2000, 3350]}
    for serving, key in (({**SERVING, "rate": 24}, "goodput_rps"),
                         ({k: v for k, v in SERVING.items() if k != "rate"}, "serving_rate_rps")):
        sp = space(serving, goals=("goodput_rps",) if key == "goodput_rps" else ("usd_per_mtok_at_slo",),
                   params=params)
        ctx = context(sp)
        got = {(p["clock_mhz"], p["memory_bandwidth_gbps"]): evaluate(ctx, p)["workloads"]["chat"][key] or 0.0
               for p in sp.grid()}
        assert len(set(got.values())) > 3  # the SLOs bind somewhere in this grid
        for a, ga in got.items():
            for b, gb in got.items():
                if a[0] >= b[0] and a[1] >= b[1]:
                    assert ga >= gb - 1e-9, (a, ga, b, gb)


def test_only_the_named_workload_is_simulated():
    sp = load_space({"base": "h100-sxm", "tier": "roofline", "parameters": {"cores": 132},
                     "workloads": [{"name": "a", "model": "llama-3.1-8b", "input_len": 256, "output_len": 64},
                                   {"name": "b", "model": "llama-3.1-8b"}],
                     "serving": SERVING, "objectives": ["goodput_rps@a", "throughput@b"]})
    m = evaluate(context(sp), next(sp.grid()))
    assert "goodput_rps" in m["workloads"]["a"] and "goodput_rps" not in m["workloads"]["b"]
    assert m["objectives"][0] == pytest.approx(m["workloads"]["a"]["goodput_rps"], rel=1e-12)


def test_explore_command_with_serving_options_and_report(tmp_path, monkeypatch):
    from tapeout.explore.cli import app

    monkeypatch.chdir(tmp_path)
    f = tmp_path / "s.toml"
    f.write_text('base = "h100-sxm"\n[parameters]\nmemory_kind = "HBM3"\nmemory_interfaces = 5\n'
                 'memory_bandwidth_gbps = [1500, 3000]\n[[workloads]]\nname = "chat"\nmodel = "llama-3.1-8b"\n'
                 'input_len = 512\noutput_len = 128\n[serving]\nrate = 4\nslo_tpot = 0.05\nnum_requests = 40\n'
                 '[objectives]\ngoals = ["goodput_rps", "usd_per_mtok_at_slo"]\n')
    r = CliRunner().invoke(app, ["explore", str(f), "-j", "1", "--no-progress", "--rate", "12", "--slo-tpot", "0.015",
                                 "--num-requests", "60", "--db", "r.db"])
    assert r.exit_code == 0, r.output
    st = Store(tmp_path / "r.db")
    sp = load_space(json.loads(st.meta("space")), resolve=False)
    assert (sp.serving.rate, sp.serving.slo_tpot, sp.serving.num_requests) == (12, 0.015, 60)
    pts = [m for _, _, m in st.points()]
    st.close()
    assert len(pts) == 2 and sum(m["feasible"] for m in pts) == 1  # 1.5 TB/s misses p99 TPOT 15 ms
    r = CliRunner().invoke(app, ["explore", "--report", "r.db", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert "chat.goodput_rps" in (tmp_path / "r.points.csv").read_text().splitlines()[0]
    r = CliRunner().invoke(app, ["explore", str(f), "--rate", "inf", "--db", "x.db"])
    assert r.exit_code != 0 and "serving.rate" in r.output and "Traceback" not in r.output


def test_shipped_serving_spaces_run(tmp_path):
    for name in ("llama8b-serving", "llama8b-goodput"):
        sp = load_space(f"src/tapeout/explore/spaces/{name}.toml")
        s = run(sp, tmp_path / f"{name}.db", jobs=1, method="random", trials=1)
        assert s.evaluated == 1
