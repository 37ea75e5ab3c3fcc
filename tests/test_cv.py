"""Cross-validation (``tapeout validate --cv``): each end-to-end source scored with parameters refitted without it.

The synthetic data directory holds FP6-LLM and Flash-LLM end-to-end rows whose "measured" rates are
tapeout's own roofline predictions: the Flash-LLM DeepSpeed row priced with a chosen DeepSpeed host gap
(:data:`TRUE_DEEPSPEED_US`, not a measurement), every other row with the stored parameters. Holding
FP6-LLM out must then refit DeepSpeed's gap on the Flash-LLM row and recover the chosen value.
"""

import json
import math

import pytest
from typer.testing import CliRunner

from measured_rows import HEADER, csv_text, flash_row, fp6_row, gemm_row
from tapeout import load_hardware, predict
from tapeout.cli import app
from tapeout.system.frameworks import framework
from tapeout.fitted import kernel_constants
from tapeout.errors import TapeoutError
from tapeout.fit import cv as cv_module
from tapeout.validate import parallel
from tapeout.fit.cv import cross_validate, parameters
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import load, load_cases

TRUE_DEEPSPEED_US = 6.0

FP6 = [fp6_row(1, "fp16", 1.0), fp6_row(2, "fp6 e3m2", 1.0)]
FLASH = [flash_row("DeepSpeed-Inference dense FP16", 0, 1.0), flash_row("FasterTransformer dense FP16", 0, 1.0),
         flash_row("Flash-LLM (in FasterTransformer), 80% sparse", 0.8, 1.0)]


def _seconds(case, **eff):
    sc = dict(case.scenario)
    if eff:
        sc["efficiency"] = tuple(sorted(eff.items()))
    pt = e2e_predict(load_hardware(case.device), tuple(sorted(sc.items())), "roofline")
    return pt.seconds(case.quantity, sc, int(case.get("num_gpus", 1)))


@pytest.fixture(scope="module", autouse=True)
def _serial_refits():
    """This module's runs refit in one process, so their memoised losses carry from one run to the next (the forked
    workers' caches end with them); :func:`test_parallel_refits_equal_serial_ones` covers the pool."""
    mp = pytest.MonkeyPatch()
    mp.setenv(parallel.WORKERS_ENV, "1")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cv")
    (d / "measured").mkdir()
    (d / "measured" / "vidur_gemm_extract.csv").write_text(HEADER + gemm_row(16, 0.05))
    (d / "measured" / "fp6_llm.csv").write_text(csv_text(FP6))
    (d / "measured" / "flash_llm.csv").write_text(csv_text(FLASH))
    # the rates tapeout predicts: the DeepSpeed row with the chosen gap, the others with the stored values
    fp6 = [1.0 / _seconds(c) for c in load_cases(d, ["e2e-fp6llm"])]
    flash = [1.0 / (_seconds(c, host_overhead_us=TRUE_DEEPSPEED_US) if c.op_class == "deepspeed" else _seconds(c))
             for c in load_cases(d, ["e2e-flashllm"])]
    (d / "measured" / "fp6_llm.csv").write_text(csv_text([{**r, "value": repr(v)} for r, v in zip(FP6, fp6)]))
    (d / "measured" / "flash_llm.csv").write_text(csv_text([{**r, "value": repr(v)} for r, v in zip(FLASH, flash)]))
    return d


@pytest.fixture(scope="module")
def cv(data):
    loaded = load(data)
    return cross_validate(loaded.cases, "roofline", absent=loaded.absent, fit_tiers=("roofline",))


def _fold(cv, source):
    return next(f for f in cv.folds if f.source == source)


def test_every_end_to_end_source_present_is_a_fold_and_only_those(cv):
    assert {f.source for f in cv.folds} == {"fp6llm", "flashllm", "fastertransformer", "torchao", "gptfast", "trtllm",
                                          "frontier", "prefill", "mi300x", "gaudi", "mlperf", "sglang_vllm060"}
    assert cv.held_out_datasets == {"e2e-fp6llm", "e2e-flashllm", "e2e-fastertransformer-published", "e2e-torchao",
                                    "e2e-gptfast", "e2e-trtllm", "e2e-frontier-published", "e2e-prefill-published",
                                    "e2e-mi300x-published", "e2e-gaudi-published", "e2e-mlperf", "e2e-serving-sglang"}
    per_op = [r for r in cv.evaluation.results if not r.case.is_e2e]
    assert per_op and all(r.predicted_s == s.predicted_s for r, s in zip(per_op, cv.in_sample.results[:len(per_op)]))


def test_a_source_that_constrains_nothing_scores_the_same_held_out(cv):
    f = _fold(cv, "torchao")  # no fitted parameter read torchao's rows
    assert f.refits == [] and f.held_out
    assert [r.predicted_s for r in f.held_out] == [r.predicted_s for r in f.in_sample]
    s = f.summary()
    assert s["held_out_mape_pct"] == s["in_sample_mape_pct"] and s["held_out_bias"] == s["in_sample_bias"]


def test_held_out_fp6llm_is_priced_with_deepspeed_refitted_on_the_other_source(cv):
    f = _fold(cv, "fp6llm")
    (ds,) = [r for r in f.refits if r.param.name == "deepspeed.host_overhead_us"]
    # its own fit rows (FP6-LLM) are held out: the Flash-LLM DeepSpeed row constrains it, and gives the gap back
    assert ds.how == "fallback" and ds.rows == 1
    assert ds.value == pytest.approx(TRUE_DEEPSPEED_US, abs=0.15)
    assert ds.param.stored == framework("deepspeed").host_overhead_us and abs(ds.value - ds.param.stored) > 1
    for held, ins in zip(f.held_out, f.in_sample):
        sc = dict(held.case.scenario)
        p = predict(sc["model"], "a100-sxm-80gb", batch=sc["batch"], input_len=sc["input_len"],
                    output_len=sc["output_len"], weights=sc["weights"], framework="deepspeed", attention="mmha",
                    efficiency={"host_overhead_us": ds.value}, tier="roofline")
        assert held.predicted_s == pytest.approx(1.0 / p.throughput_tok_s, rel=1e-12)
        assert held.predicted_s < ins.predicted_s  # a smaller gap than the stored one: faster
    # the intN kernel counts were fitted on FP6-LLM's kernel figures: prior, and no FP6-LLM row depends on them
    ints = {r.param.name: r for r in f.refits if r.param.name.startswith("kernel_constants.int_")}
    assert {r.how for r in ints.values()} == {"prior"} and not set(ints) & f.used


def test_a_parameter_only_its_source_constrains_falls_back_to_its_prior(cv):
    f = _fold(cv, "gptfast")
    (r,) = f.refits
    assert r.param.name == "gptfast.oneshot_allreduce_latency_us" and r.how == "prior" and r.value == 0.0
    for held, ins in zip(f.held_out, f.in_sample):
        if held.case.get("tp") == 1:  # no all-reduce: the same prediction
            assert held.predicted_s == ins.predicted_s
        else:  # a free one-shot all-reduce instead of the fitted one
            assert held.predicted_s < ins.predicted_s
    # TensorRT-LLM's first-token rows and TensorRT-LLM 0.14's light-load serving rows (not in this data
    # directory) fit the default profile's prefill host gap: without both, none
    f = _fold(cv, "trtllm")
    (r,) = f.refits
    assert r.param.name == "kernels.prefill_host_overhead_us" and r.how == "prior" and r.value == 0.0
    assert r.param.stored == framework("kernels").prefill_host_overhead_us > 0
    assert all(h.predicted_s < i.predicted_s for h, i in zip(f.held_out, f.in_sample) if h.case.quantity == "ttft_s")


def test_held_out_flashllm_uses_the_prior_kernel_constants_per_prediction_and_leaves_them_untouched(cv):
    f = _fold(cv, "flashllm")
    values = {r.param.name: r.value for r in f.refits}
    # the FasterTransformer host gap is refitted on its check rows of another source: FasterTransformer's own
    # GPT-175B table
    (ft,) = [r for r in f.refits if r.param.name == "fastertransformer.host_overhead_us"]
    assert ft.how == "fallback" and ft.rows == 13 and ft.value > 0
    assert values["kernel_constants.tiled_csl_stream_eta"] == 1.0 and values["kernel_constants.onchip_eta"] == 1.0
    (sparse,) = [r for r in f.held_out if r.case.op_class.startswith("flash-llm sparse")]
    (sparse_in,) = [r for r in f.in_sample if r.case.op_class.startswith("flash-llm sparse")]
    per_device = ("kernel_constants.onchip_eta", "kernel_constants.tiled_csl_stream_eta")  # efficiency fields
    constants = {n.removeprefix("kernel_constants."): v for n, v in values.items()
                 if n.startswith("kernel_constants.") and n not in per_device}
    sc = dict(sparse.case.scenario)
    p = predict(sc["model"], "a100-sxm-80gb", batch=sc["batch"], input_len=sc["input_len"],
                output_len=sc["output_len"], tp=sc["tp"], sparsity=sc["sparsity"], framework="fastertransformer",
                efficiency={"host_overhead_us": ft.value, "onchip_eta": 1.0, "tiled_csl_stream_eta": 1.0},
                kernel_constants=constants, tier="roofline")
    assert sparse.predicted_s == pytest.approx(2 / p.throughput_tok_s, rel=1e-12)
    assert sparse.predicted_s != pytest.approx(sparse_in.predicted_s, rel=1e-3)
    # the stored constants are untouched, and a prediction without overrides is the in-sample one
    assert kernel_constants().tiled_csl_stream_eta == next(p.stored for p in parameters()
                                                           if p.name == "kernel_constants.tiled_csl_stream_eta")
    again = predict(sc["model"], "a100-sxm-80gb", batch=sc["batch"], input_len=sc["input_len"],
                    output_len=sc["output_len"], tp=sc["tp"], sparsity=sc["sparsity"], framework="fastertransformer",
                    tier="roofline")
    assert 2 / again.throughput_tok_s == pytest.approx(sparse_in.predicted_s, rel=1e-12)


def test_held_out_fastertransformer_table_constrains_nothing_it_is_a_check(cv):
    """FasterTransformer's GPT-175B table only checks the host gap (fitted on Flash-LLM's rows): its fold refits
    nothing, and its rows score the same held out as in sample, with the stored gap."""
    f = _fold(cv, "fastertransformer")
    assert f.refits == [] and len(f.held_out) == 13
    assert {r.case.dataset for r in f.held_out} == {"e2e-fastertransformer-published"}
    assert [r.predicted_s for r in f.held_out] == [r.predicted_s for r in f.in_sample]


def test_kernel_constants_reach_a_prediction_per_call_and_are_validated():
    from tapeout.errors import TapeoutError

    kw = dict(batch=8, input_len=128, output_len=8, weights="int4_g128", tier="roofline")
    base = predict("llama-2-7b", "a100-sxm-80gb", **kw)
    stored = kernel_constants().int_kernel_overhead_ops
    cheaper = predict("llama-2-7b", "a100-sxm-80gb", kernel_constants={"int_kernel_overhead_ops": 0.0}, **kw)
    assert stored > 0 and cheaper.tpot_s < base.tpot_s
    assert cheaper.to_dict()["inputs"]["kernel_constants"]["int_kernel_overhead_ops"] == 0.0
    assert "kernel_constants" not in base.to_dict()["inputs"]
    same = predict("llama-2-7b", "a100-sxm-80gb", kernel_constants={"int_kernel_overhead_ops": stored}, **kw)
    assert same.tpot_s == base.tpot_s and predict("llama-2-7b", "a100-sxm-80gb", **kw).tpot_s == base.tpot_s
    with pytest.raises(TapeoutError, match="kernel_constants.*unknown fields"):
        predict("llama-2-7b", "a100-sxm-80gb", kernel_constants={"int_overhead": 1.0}, **kw)
    with pytest.raises(TapeoutError, match="int_kernel_overhead_ops"):
        predict("llama-2-7b", "a100-sxm-80gb", kernel_constants={"int_kernel_overhead_ops": -1.0}, **kw)
    with pytest.raises(TapeoutError, match="efficiency="):
        predict("llama-2-7b", "a100-sxm-80gb", kernel_constants={"onchip_eta": 0.5}, **kw)
    with pytest.raises(TapeoutError, match="efficiency="):
        predict("llama-2-7b", "a100-sxm-80gb", kernel_constants={"tiled_csl_stream_eta": 0.5}, **kw)


def test_the_summary_says_which_values_are_priors(cv):
    from rich.console import Console

    from tapeout.validate.render import print_cv

    con = Console(record=True, width=200)
    print_cv(cv, con)
    text = con.export_text()
    assert "held-out MAPE %" in text and "in-sample MAPE %" in text
    assert "gptfast.oneshot_allreduce_latency_us: 6 -> 0 (prior: no other source constrains it" in text
    assert "no fitted parameter read this source's data: held out = in-sample" in text


def test_cli_cv_json_rows_have_held_out_keys(data, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    res = CliRunner().invoke(app, ["validate", "--data", str(data), "--tier", "roofline", "--cv", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows and all(isinstance(r["held_out"], bool) and "in_sample_mape_pct" in r for r in rows)
    assert {r["dataset"] for r in rows if r["held_out"]} == {"e2e-fp6llm", "e2e-flashllm",
                                                            "e2e-fastertransformer-published", "e2e-torchao",
                                                            "e2e-gptfast", "e2e-trtllm", "e2e-frontier-published",
                                                            "e2e-prefill-published", "e2e-mi300x-published",
                                                            "e2e-gaudi-published", "e2e-mlperf", "e2e-serving-sglang"}
    assert not any(r["held_out"] for r in rows if r["dataset"] == "vidur-gemm" or r.get("absent"))
    by = {(r["dataset"], r["op_class"]): r for r in rows}
    # the synthetic FP6-LLM rows are tapeout's own predictions: exact in-sample, off held out
    assert by[("e2e-fp6llm", "fp16")]["in_sample_mape_pct"] == 0.0
    assert by[("e2e-fp6llm", "fp16")]["mape_pct"] > 1.0
    assert all(r["mape_pct"] == r["in_sample_mape_pct"] for r in rows if r["dataset"] == "e2e-torchao")
    assert all(math.isfinite(r["mape_pct"]) for r in rows if not r.get("absent"))
    res = CliRunner().invoke(app, ["validate", "--data", str(data), "--cv", "--compare-tier", "tiled"])
    assert res.exit_code == 2 and "compare-tier" in res.output


def test_a_field_two_sources_fit_is_refitted_on_the_other_source(cv):
    """python-scheduler's per-sequence host time reads SGLang's offline runs and MLPerf's MI300X vLLM row: each
    source's fold refits it on the other's rows alone (simulated load points, the value passed per call), and
    AMD's in-process offline harness, which streams nothing to a client, wants less host time per sequence than
    SGLang's streaming servers."""
    from tapeout.system.frameworks import framework

    name = "python-scheduler.sequence_host_overhead_us"
    (p,) = [p for p in parameters() if p.name == name]
    assert p.sources == {"sglang_vllm060", "mlperf"} and len(p.fit_sets) == 2
    assert p.stored == framework("python-scheduler").sequence_host_overhead_us > 0
    on_sglang = next(r for r in _fold(cv, "mlperf").refits if r.param.name == name)
    on_mlperf = next(r for r in _fold(cv, "sglang_vllm060").refits if r.param.name == name)
    assert on_sglang.how == on_mlperf.how == "refit" and (on_sglang.rows, on_mlperf.rows) == (4, 1)
    assert 0 < on_mlperf.value < on_sglang.value < 150
    fold = _fold(cv, "sglang_vllm060")
    assert name in fold.used


def test_parallel_refits_equal_serial_ones(data, monkeypatch):
    cases = load(data).cases
    jobs = [("deepspeed.host_overhead_us", "fp6llm"), ("fastertransformer.host_overhead_us", "flashllm")]
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    assert parallel.workers(len(jobs)) == 2
    pooled = cv_module._refit_all(jobs, parameters(), cases, 0.1, ("roofline",))
    monkeypatch.setenv(parallel.WORKERS_ENV, "1")
    serial = cv_module._refit_all(jobs, parameters(), cases, 0.1, ("roofline",))
    assert [(r.param.name, r.value, r.how, r.rows) for r in pooled.values()] == \
        [(r.param.name, r.value, r.how, r.rows) for r in serial.values()]
    assert pooled[("deepspeed.host_overhead_us", "fp6llm")].value == pytest.approx(TRUE_DEEPSPEED_US, abs=0.15)
    assert not cv_module._SHARED  # the workers' copy of the cases is released


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_a_bad_worker_count_is_a_one_line_error_naming_it(bad, monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, bad)
    with pytest.raises(TapeoutError, match=f"^{parallel.WORKERS_ENV}: .*positive integer"):
        parallel.workers(3)
