"""The typed SGLang v0.3.0 vs vLLM v0.6.0 serving results (validate/published/sglang_vllm060.csv): rows as printed,
their load points as simulate() runs with the engines' defaults, the rows typed but not priced (with their reason),
the medians the client prints, and that fitting never reads them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tapeout.errors import TapeoutError
from tapeout.fit.frameworks import fit_datasets
from tapeout.validate.cases import read_dicts
from tapeout.validate.registry import datasets, load_cases, source_of
from tapeout.validate.sources.sglang_vllm060 import SGLANG_FILE, output_mean, row_case, used, workload


@pytest.fixture(scope="module")
def rows():
    return read_dicts(SGLANG_FILE)


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, ["e2e-serving-sglang"])


def _value(rows, engine, model, rate, metric):
    (r,) = [r for r in rows if (r["engine"], r["model"], r["request_rate"], r["metric"]) == (engine, model, rate, metric)]
    return float(r["value"])


def test_rows_are_the_printed_tables(rows):
    # benchmark/benchmark_vllm_060/README.md (sgl-project/sglang 120affb9): 2 models x 2 rates x 2 engines x 4 medians
    # online, 2 models x 2 engines x 2 throughputs offline
    assert len(rows) == 40 and {r["commit"] for r in rows} == {"120affb9613cc3f5bcd055ec09c7621d3ced0ebc"}
    assert _value(rows, "sglang", "llama-3.1-8b", "4", "median_ttft") == 31.98
    assert _value(rows, "vllm", "llama-3.1-8b", "4", "median_itl") == 129.32
    assert _value(rows, "vllm", "llama-3.1-70b", "8", "median_itl") == 275.32
    assert _value(rows, "sglang", "llama-3.1-70b", "8", "median_e2e_latency") == 4064.98
    assert _value(rows, "sglang", "llama-3.1-8b", "inf", "output_token_throughput") == 4281.51
    assert _value(rows, "vllm", "llama-3.1-70b", "inf", "request_throughput") == 19.04
    # the README's headline: vLLM's median ITL is ~10x SGLang's, its median TTFT ~3x
    for model in ("llama-3.1-8b", "llama-3.1-70b"):
        for rate in ("4", "8"):
            itl = [_value(rows, e, model, rate, "median_itl") for e in ("vllm", "sglang")]
            ttft = [_value(rows, e, model, rate, "median_ttft") for e in ("vllm", "sglang")]
            assert 9 < itl[0] / itl[1] < 12 and 2.8 < ttft[0] / ttft[1] < 3.7
    assert {(r["device"], r["tp"]) for r in rows} == {("a100-sxm-80gb", "1"), ("h100-sxm", "4")}


def test_rows_typed_but_not_priced_say_why(rows):
    left = [r for r in rows if not used(r)]
    # vLLM's median TTFT and ITL under --num-scheduler-steps 10 (8) and the offline request rates (4)
    assert len(left) == 12 and all(r["use"].startswith("no: ") for r in left)
    assert {r["metric"] for r in left if r["engine"] == "vllm" and r["request_rate"] != "inf"} == {
        "median_ttft", "median_itl"}
    assert all("--num-scheduler-steps 10" in r["use"] and "--num-scheduler-steps 10" in r["launch"]
               for r in left if r["request_rate"] != "inf")
    assert {r["metric"] for r in left if r["request_rate"] == "inf"} == {"request_throughput"}


def test_the_workload_is_the_runs_sharegpt_draw(rows, cases):
    # output tokens per request of the offline runs: 4281.51 / 22.03, 4132.37 / 21.27, 3856.01 / 19.84,
    # 3700.64 / 19.04, all 194.3 (one seeded draw of 5,000 prompts, answer lengths forced)
    ratios = [4281.51 / 22.03, 4132.37 / 21.27, 3856.01 / 19.84, 3700.64 / 19.04]
    assert max(ratios) - min(ratios) < 0.1 and output_mean() == pytest.approx(np.median(ratios))
    # prompts shortened by the answers' factor: Llama-3's tokenizer counts ~18% fewer tokens than Llama-2's
    assert workload() == "sharegpt:input_mean=217.2,output_mean=194.4"
    assert {dict(c.scenario)["workload"] for c in cases} == {workload()}


def test_scenarios_are_the_commands_and_the_engines_defaults(cases):
    by = {}
    for c in cases:
        sc = dict(c.scenario)
        by[c.get("engine"), sc["model"], sc["rate"]] = sc
        assert sc["num_requests"] == {4.0: 1200, 8.0: 2400, math.inf: 5000}[sc["rate"]]
        assert sc["weights"] == sc["kv_cache"] == "bf16" and sc["kv_policy"] == "paged"
    assert len(cases) == 28 and len(by) == 12
    # SGLang: request pool 2048, 8192-token prefill batches, token-granular KV; mem_fraction_static 0.88 at TP1,
    # 0.85 at TP4, --mem-frac 0.88 in the 70B offline run
    assert {k[1:]: v["kv_fraction"] for k, v in by.items() if k[0] == "sglang"} == {
        ("llama-3.1-8b", 4.0): 0.88, ("llama-3.1-8b", 8.0): 0.88, ("llama-3.1-8b", math.inf): 0.88,
        ("llama-3.1-70b", 4.0): 0.85, ("llama-3.1-70b", 8.0): 0.85, ("llama-3.1-70b", math.inf): 0.88}
    assert all((v["max_batch"], v["max_num_tokens"], v["block_size"]) == (2048, 8192, 1)
               for k, v in by.items() if k[0] == "sglang")
    # vLLM 0.6.0: max_num_seqs 256, max_num_batched_tokens max(max_model_len 4096, 2048), 16-token blocks, 0.9
    assert all((v["max_batch"], v["max_num_tokens"], v["block_size"], v["kv_fraction"]) == (256, 4096, 16, 0.9)
               for k, v in by.items() if k[0] == "vllm")
    assert {c.quantity for c in cases} == {"serving_e2e_p50_s", "serving_ttft_p50_s", "serving_tpot_p50_s",
                                          "serving_itl_p50_s", "serving_output_tok_s"}
    ttft = next(c for c in cases if c.op_class == "sglang/median_ttft" and c.device == "a100-sxm-80gb"
                and dict(c.scenario)["rate"] == 4.0)
    assert ttft.measured_s == pytest.approx(31.98e-3)


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("engine", "tensorrt-llm", "sglang"), ("metric", "mean_ttft", "median_ttft"), ("dataset", "random", "sharegpt"),
    ("value", "nan", "positive"), ("tp", "0", "positive"), ("unit", "s", "ms")])
def test_a_bad_row_is_one_line_naming_the_field(rows, field, value, allowed):
    with pytest.raises(TapeoutError, match=f"^{field}: .*{allowed}") as err:
        row_case({**rows[1], field: value})
    assert "\n" not in str(err.value)


def test_the_medians_are_the_runs_medians():
    from tapeout.hardware.catalog import load_hardware
    from tapeout.serving.sim import simulate
    from tapeout.validate.serving import simulated

    sc = (("input_len", "uniform:low=50,high=400"), ("model", "llama-3.1-8b"), ("num_requests", 41),
          ("output_len", "uniform:low=5,high=60"), ("rate", 20.0), ("seed", 3))
    hw = load_hardware("a100-sxm-80gb")
    got = simulated(hw, sc, "roofline")
    res = simulate("llama-3.1-8b", hw, tier="roofline", **{k: v for k, v in sc if k != "model"})
    assert got["serving_ttft_p50_s"] == pytest.approx(np.median(res.ttft))
    assert got["serving_e2e_p50_s"] == pytest.approx(np.median(res.e2e))
    assert got["serving_tpot_p50_s"] == pytest.approx(np.median(res.tpot))
    assert got["serving_itl_p50_s"] == pytest.approx(np.median(res.itl))
    assert got["serving_ttft_p50_s"] != pytest.approx(got["serving_mean_ttft_s"])


def test_the_source_is_shipped_end_to_end_and_fits_one_field():
    """Its offline throughputs (with MLPerf's vLLM row) fit python-scheduler's per-sequence host time; every other
    row is a check that no fit reads."""
    from tapeout.fit.cv import parameters
    from tapeout.fit.frameworks import CHECK_SETS, FIT_SETS

    ds = datasets()["e2e-serving-sglang"]
    assert ds.shipped and ds.kind == "end-to-end" and not ds.calibration
    assert source_of("e2e-serving-sglang") == "sglang_vllm060"
    assert "e2e-serving-sglang" in fit_datasets()
    fits = [fs for fs in FIT_SETS if fs.dataset == "e2e-serving-sglang"]
    assert [(fs.framework, fs.param) for fs in fits] == [("python-scheduler", "sequence_host_overhead_us")]
    assert [p.name for p in parameters() if "sglang_vllm060" in p.sources] == [
        "python-scheduler.sequence_host_overhead_us"]
    checks = [fs for fs in CHECK_SETS if fs.dataset == "e2e-serving-sglang"]
    assert len(checks) == 1 and not checks[0].own_best


def test_both_engines_run_the_python_scheduler_profile(cases):
    """SGLang 0.3.0 (no overlap scheduler before v0.4) and vLLM 0.6.0 (the V0 engine) process each request's
    output in their Python loop between steps: the profile's fitted per-sequence host time applies."""
    assert {dict(c.scenario)["framework"] for c in cases} == {"python-scheduler"}


def test_the_offline_throughputs_need_the_host_time_per_sequence(cases):
    """Without the per-sequence host time the offline output rates (4281.51 / 4132.37 tok/s on A100, 3856.01 /
    3700.64 on 4 x H100) are predicted 1.06-1.41x too high (tiled); with the fitted value within 20 %, and their
    mean |ln(pred/meas)| falls by more than half."""
    import math

    from tapeout.validate import evaluate
    from tapeout.validate.serving import scored

    offline = [c for c in cases if c.op_class.endswith("/output_token_throughput")]
    assert sorted(round(1 / c.measured_s, 2) for c in offline) == [3700.64, 3856.01, 4132.37, 4281.51]
    with_term = evaluate(None, "tiled", cases=offline).results
    without = evaluate(None, "tiled", cases=[with_values(c, 0.0) for c in offline]).results
    err_with = err_without = 0.0
    for a, b in zip(with_term, without):
        meas = scored(a.case, a.case.measured_s)
        assert 0.8 < scored(a.case, a.predicted_s) / meas < 1.2, a.case.op_class
        assert scored(b.case, b.predicted_s) / meas > 1.05, b.case.op_class
        err_with += abs(math.log(scored(a.case, a.predicted_s) / meas))
        err_without += abs(math.log(scored(b.case, b.predicted_s) / meas))
    assert err_with < 0.5 * err_without


def with_values(case, value):
    import dataclasses

    sc = dict(case.scenario, efficiency=(("sequence_host_overhead_us", value),))
    return dataclasses.replace(case, scenario=tuple(sorted(sc.items())))


def test_the_cases_price_finite_and_within_a_factor(cases):
    from tapeout.validate import evaluate
    from tapeout.validate.serving import scored

    ev = evaluate(None, "roofline", datasets=["e2e-serving-sglang"])
    assert len(ev.results) == len(cases)
    for r in ev.results:
        ratio = scored(r.case, r.predicted_s) / scored(r.case, r.case.measured_s)
        assert math.isfinite(ratio) and 0.5 < ratio < 2.0, (r.case.op_class, ratio)
