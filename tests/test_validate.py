"""Accuracy harness: metrics, loaders, the runner, the CLI command and the calibration fit."""

import json
import math

import pytest
from typer.testing import CliRunner

from measured_rows import HEADER, csv_text, flash_row, fp6_row, gemm_row, llama_row
from tapeout.cli import app
from tapeout.errors import TapeoutError
from tapeout.validate import GROUP_KEYS, load_cases, metrics, run_validation
from tapeout.datadir import resolve_data_dir
from tapeout.validate.sources.llmcompass import load_llmcompass_matmul
from tapeout.validate.sources.vidur import load_vidur_allreduce, load_vidur_gemm
from tapeout.workload.ops import OpKind
from tapeout.workload.standalone import collective_op, elementwise_op, gemm_op, norm_op

# ---- metrics --------------------------------------------------------------------------------------


def test_metrics_on_hand_made_numbers():
    measured = [100.0, 100.0, 100.0, 50.0]
    predicted = [110.0, 90.0, 200.0, 50.0]
    # absolute percentage errors: 10, 10, 100, 0
    assert metrics.mape_pct(predicted, measured) == pytest.approx(30.0)
    assert metrics.mdape_pct(predicted, measured) == pytest.approx(10.0)
    assert metrics.log_bias(predicted, measured) == pytest.approx((math.log(1.1) + math.log(0.9) + math.log(2)) / 4)
    s = metrics.summarize(predicted, measured)
    assert s["n"] == 4 and set(s) == {"n", "mape_pct", "mdape_pct", "bias"}


def test_bias_is_symmetric_in_log_space_and_zero_when_exact():
    assert metrics.log_bias([2.0, 0.5], [1.0, 1.0]) == pytest.approx(0.0)
    assert metrics.mape_pct([3.0], [3.0]) == 0.0


def test_metrics_reject_mismatched_or_non_positive_input():
    with pytest.raises(ValueError):
        metrics.mape_pct([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        metrics.log_bias([1.0], [0.0])


# ---- standalone ops follow the workload builder's conventions -----------------------------------


def test_standalone_ops_match_the_builder():
    from tapeout import load_model
    from tapeout.workload.build import build_graph
    from tapeout.workload.scenario import Scenario

    m = load_model("llama-2-7b")
    g = build_graph(m, Scenario(batch=2, input_len=64, output_len=2, tp=2), "prefill")
    ops = {o.name: o for o in g.ops}
    T, h, inter = 128, m.hidden_size, m.intermediate_size // 2
    q = m.num_heads // 2 * m.head_dim
    kv = m.num_kv_heads // 2 * m.head_dim
    pairs = [
        (ops["qkv_proj"], gemm_op(T, q + 2 * kv, h)),
        (ops["mlp_gate_up"], gemm_op(T, 2 * inter, h)),
        (ops["mlp_down"], gemm_op(T, h, inter)),
        (ops["attn_norm"], norm_op(T, h)),
        (ops["rope"], elementwise_op("rope", OpKind.ELEMENTWISE, T * (q + kv), T * (q + kv), 3)),
        (ops["tp_allreduce"], collective_op(OpKind.ALLREDUCE, T * h * 2, 2)),
    ]
    for built, alone in pairs:
        assert (built.kind, built.flops, built.bytes_read, built.bytes_written) == (
            alone.kind, alone.flops, alone.bytes_read, alone.bytes_written), built.name
        assert (built.group, built.message_bytes) == (alone.group, alone.message_bytes)


# ---- loaders on a small hand-made data directory --------------------------------------------------

@pytest.fixture()
def tiny_data(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # most sets are absent here on purpose (CI=true would fail validate)
    (tmp_path / "measured").mkdir()
    (tmp_path / "measured" / "vidur_gemm_extract.csv").write_text(
        HEADER + gemm_row(1, 0.1) + gemm_row(64, 0.12) + gemm_row(128, 9.9, "suspicious")
        + gemm_row(256, "", "missing"))
    (tmp_path / "measured" / "vidur_allreduce_extract.csv").write_text(
        HEADER + '"vidur network/a100_dgx/all_reduce.csv","rank 0 row size=1048576, num_workers=4",'
        "DGX,A100-80GB-SXM,4,nccl,,all_reduce,,,,,,,,fp16,,0,4,all_reduce_latency_median,0.064,ms,exact,\n")
    mm = tmp_path / "llmcompass" / "ae" / "figure5" / "ab" / "real_hardware"
    mm.mkdir(parents=True)
    (mm / "matmul_A100.csv").write_text("64, 12288, 12288, 0.1900ms, 101.7124Tflops\n"
                                        "128, 12288, 12288, 0.2003ms, 193.0114Tflops")
    return tmp_path


def test_loaders_skip_suspicious_and_missing_rows(tiny_data):
    cases = load_vidur_gemm(tiny_data)
    assert [c.get("M") for c in cases] == [1, 64]
    c = cases[0]
    assert (c.dataset, c.op_class, c.device) == ("vidur-gemm", "mlp_down", "a100-pcie-80gb")
    assert c.measured_s == pytest.approx(1e-4)
    assert c.op.flops == 2 * 1 * 4096 * 11008


def test_allreduce_and_llmcompass_loaders(tiny_data):
    (ar,) = load_vidur_allreduce(tiny_data)
    assert ar.op.kind is OpKind.ALLREDUCE and ar.op.group == 4 and ar.op.message_bytes == 1048576
    mm = load_llmcompass_matmul(tiny_data)
    assert len(mm) == 2 and mm[0].measured_s == pytest.approx(0.19e-3) and mm[0].harness == "llmcompass"
    assert mm[0].op.compute_dtype == "bf16"


def test_a_missing_dataset_is_skipped_and_a_bad_directory_is_an_error(tiny_data, tmp_path_factory):
    names = {c.dataset for c in load_cases(tiny_data)}
    # vidur-attention, e2e-torchao, e2e-gptfast, e2e-trtllm, e2e-frontier-published, e2e-prefill-published,
    # e2e-mi300x-published, e2e-gaudi-published, e2e-mlperf, e2e-serving-sglang, e2e-fastertransformer-published, hccl-gaudi, mi300x-kernels, rccl-mi300x, attention-kernels, decode-attention-kernels, fp8-gemm-kernels and membw-published ship
    # with tapeout (typed published figures): present whatever the data directory
    assert names == {"vidur-gemm", "vidur-allreduce", "llmcompass-matmul", "vidur-attention", "e2e-torchao",
                     "e2e-gptfast", "e2e-trtllm", "e2e-frontier-published", "e2e-prefill-published",
                     "e2e-mi300x-published", "e2e-gaudi-published", "hccl-gaudi", "mi300x-kernels", "rccl-mi300x",
                     "attention-kernels", "decode-attention-kernels", "fp8-gemm-kernels", "membw-published", "e2e-mlperf",
                     "e2e-serving-sglang", "e2e-fastertransformer-published"}
    with pytest.raises(TapeoutError, match="data"):
        resolve_data_dir(tmp_path_factory.mktemp("empty"))
    with pytest.raises(TapeoutError, match="does not exist"):
        resolve_data_dir("/no/such/dir")


def test_run_validation_on_hand_made_data(tiny_data):
    groups = run_validation(tiny_data)
    assert all(tuple(g) == GROUP_KEYS for g in groups)
    keys = {(g["dataset"], g["op_class"], g["device"]) for g in groups}
    assert ("vidur-allreduce", "allreduce>=1MiB", "a100-sxm-80gb") in keys
    assert next(g for g in groups if g["dataset"] == "vidur-gemm")["n"] == 2


# ---- the shared reference data --------------------------------------------------------------------

EXPECTED_ROWS = {
    "vidur-gemm": 1760, "vidur-allreduce": 40, "llmcompass-matmul": 42, "llmcompass-softmax": 44,
    "llmcompass-layernorm": 44, "llmcompass-gelu": 40, "llmcompass-gpt3-layer": 24 + 2,
    "llmcompass-allreduce": 32, "mamf": 16,
}


@pytest.fixture(scope="module")
def shared_groups(shared_data):
    return run_validation(shared_data)


def test_shared_loaders_row_counts(shared_data):
    cases = load_cases(shared_data, [d for d in EXPECTED_ROWS])
    counts = {}
    for c in cases:
        counts[c.dataset] = counts.get(c.dataset, 0) + 1
    assert counts == EXPECTED_ROWS
    gpt3 = {c.op_class: c for c in cases if c.dataset == "llmcompass-gpt3-layer"}
    assert gpt3["prefill/total"].measured_s == pytest.approx(66.747e-3)
    assert gpt3["decode/total"].measured_s == pytest.approx(1.111e-3)
    assert {c.device for c in cases if c.dataset == "vidur-gemm"} == {"a100-pcie-80gb", "h100-sxm", "a40"}


def test_shared_run_validation_groups(shared_groups):
    assert shared_groups
    for g in shared_groups:
        assert tuple(g) == GROUP_KEYS
        assert g["n"] >= 1 and g["mape_pct"] >= 0 and math.isfinite(g["bias"])
    datasets = {g["dataset"] for g in shared_groups}
    assert {"vidur-gemm", "vidur-elementwise", "vidur-allreduce", "mamf", "llmcompass-gpt3-layer"} <= datasets
    # the roofline tier should be within a factor of ~1.3 on large vidur GEMMs as a group
    gemm = [g for g in shared_groups if g["dataset"] == "vidur-gemm"]
    assert all(abs(g["bias"]) < 0.3 for g in gemm)


def test_cli_validate_json(shared_data):
    res = CliRunner().invoke(app, ["validate", "--data", str(shared_data), "--format", "json"])
    assert res.exit_code == 0, res.output
    groups = json.loads(res.stdout)
    assert isinstance(groups, list) and groups
    assert all(set(g) == set(GROUP_KEYS) for g in groups)


def test_cli_validate_bad_data_dir_exits_2(tmp_path):
    res = CliRunner().invoke(app, ["validate", "--data", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "error:" in res.output and len(res.output.strip().splitlines()) == 1


# ---- end-to-end sets ----------------------------------------------------------------------------------

@pytest.fixture()
def tiny_e2e(tmp_path):
    m = tmp_path / "measured"
    m.mkdir()
    (m / "fp6_llm.csv").write_text(csv_text([
        fp6_row(16, "fp6 e3m2", 319.1), fp6_row(4, "fp16", 78.8),
        fp6_row(8, "fp16", 999, confidence="suspicious"), fp6_row(2, "fp16", "", confidence="missing"),
        fp6_row(1, "fp6 e3m2", 0.05, metric="kernel_latency_ms"),  # not an end-to-end row
        fp6_row(8, "fp16", 55.3, model="LLaMA-70B", gpus=2),
    ]))
    (m / "flash_llm.csv").write_text(csv_text([
        flash_row("FasterTransformer dense FP16", 0, 80), flash_row("DeepSpeed-Inference dense FP16", 0, 74),
        flash_row("Flash-LLM (in FasterTransformer), 80% sparse", 0.8, 111),  # its own op class, sparsity 0.8
        flash_row("DeepSpeed-Inference dense FP16", 0, 70, confidence="suspicious"),
    ]))
    (m / "llamacpp_gpu_benchmarks.csv").write_text(csv_text([
        llama_row("RTX-4090", "tg", 512, "q4", 130.6), llama_row("RTX-4090", "pp", 512, "f16", 9382.0),
        llama_row("A100-80GB-SXM", "pp", 512, "f16", 603.8, confidence="suspicious"),
        llama_row("RTX-4080", "tg", 8192, "q4", "OOM"),
        llama_row("RTX-4090", "tg", 512, "q4", 150.0, gpus=4),
        llama_row("Apple-M2-Ultra", "tg", 512, "q4", 76.3),
        llama_row("RTX-4000-Ada", "tg", 512, "q4", 58.6),
        llama_row("RTX-4090", "tg", 512, "f16", 1.0, model="Meta-Llama-3-70B"),  # 141 GB on 24 GB
    ]))
    return tmp_path


def test_e2e_loaders_on_hand_made_rows(tiny_e2e):
    from tapeout.validate.sources.flashllm import load_e2e_flashllm
    from tapeout.validate.sources.fp6llm import load_e2e_fp6llm
    from tapeout.validate.sources.llamacpp import llamacpp_selection

    fp6 = load_e2e_fp6llm(tiny_e2e)
    assert [(c.op_class, c.get("batch"), c.get("tp")) for c in fp6] == [("fp6", 16, 1), ("fp16", 4, 1), ("fp16", 8, 2)]
    c = fp6[0]
    assert c.is_e2e and not c.ops and c.quantity == "gpu_s_per_token" and c.device == "a100-sxm-80gb"
    assert dict(c.scenario) == dict(model="opt-30b", batch=16, input_len=512, output_len=1536, tp=1,
                                    weights="fp6_e3m2", activations="fp16", kv_cache="fp16", framework="deepspeed",
                                    attention="mmha")
    assert c.measured_s == pytest.approx(1 / 319.1) and c.get("published") == 319.1
    assert dict(fp6[2].scenario)["model"] == "llama-2-70b" and fp6[2].get("num_gpus") == 2

    flash = load_e2e_flashllm(tiny_e2e)
    assert [c.op_class for c in flash] == ["fastertransformer", "deepspeed", "flash-llm sparse 0.8"]
    assert dict(flash[0].scenario)["input_len"] == 64 and dict(flash[0].scenario)["output_len"] == 512
    assert [dict(c.scenario)["framework"] for c in flash] == ["fastertransformer", "deepspeed", "fastertransformer"]
    assert dict(flash[2].scenario)["sparsity"] == 0.8 and dict(flash[2].scenario)["weights"] == "fp16"

    cases, skipped = llamacpp_selection(tiny_e2e)
    got = [(c.op_class, c.device, c.quantity) for c in cases]
    assert got == [("tg/q4_k_m", "rtx-4090", "decode_step_s"), ("pp/f16", "rtx-4090", "prefill_s_per_token"),
                   ("tg/q4_k_m/pp4", "rtx-4090", "decode_step_s")]
    # the 4-GPU generation row is llama.cpp's layer split: 4 pipeline stages, one batch in flight
    (multi,) = [c for c in cases if c.get("gpus", 1) > 1]
    assert multi.op_class == "tg/q4_k_m/pp4" and dict(multi.scenario)["pp"] == 4
    assert skipped == {"graded": 1, "no_value": 1, "multi_gpu_prompt": 0, "no_catalog_device": 2, "unknown_format": 0,
                       "does_not_fit": 1}
    tg, pp = (dict(c.scenario) for c in cases[:2])
    assert (tg["input_len"], tg["output_len"], tg["weights"]) == (1, 512, "int4_g40z")
    assert (pp["input_len"], pp["output_len"], pp["weights"]) == (512, 1, "fp16")


def test_q4_k_m_maps_to_the_int4_format_of_the_same_bytes():
    from tapeout import dtypes
    from tapeout.validate.sources.llamacpp import q4_k_m_format

    assert q4_k_m_format(4.8) == "int4_g40z"
    assert dtypes.parse(q4_k_m_format(4.8)).bytes * 8 == pytest.approx(4.8)
    assert q4_k_m_format(5.0) == "int4_g32z"


def test_e2e_cases_are_scored_on_the_published_rate(tiny_e2e):
    from tapeout import load_hardware, predict
    from tapeout.validate import evaluate
    from tapeout.validate.runner import calibrated_efficiency

    def calibrated(device):
        return load_hardware(device).model_copy(update={"efficiency": calibrated_efficiency(device)})

    ev = evaluate(tiny_e2e, efficiency="calibrated")
    assert all(tuple(g) == GROUP_KEYS for g in ev.groups)
    keys = {(g["dataset"], g["op_class"]) for g in ev.groups}
    assert keys == {("e2e-fp6llm", "fp6"), ("e2e-fp6llm", "fp16"), ("e2e-flashllm", "fastertransformer"),
                    ("e2e-flashllm", "deepspeed"), ("e2e-flashllm", "flash-llm sparse 0.8"),
                    ("e2e-fastertransformer-published", "fp16/tp8"),
                    ("e2e-llamacpp", "tg/q4_k_m"), ("e2e-llamacpp", "pp/f16"), ("e2e-llamacpp", "tg/q4_k_m/pp4"),
                    ("e2e-torchao", "bf16"), ("e2e-torchao", "int8_c"), ("e2e-torchao", "int4_g64z"),
                    ("e2e-torchao", "int4_g128/2:4")} | {
                    ("e2e-gptfast", c) for c in ("bf16/tp1", "int8_c/tp1", "int4_g32z/tp1", "bf16/tp2", "bf16/tp4",
                                                  "bf16/tp8", "int8_c/tp8", "int4_g32z/tp8")} | {
                    ("e2e-trtllm", c) for c in ("fp8/throughput_per_gpu", "fp8/throughput", "fp16/throughput",
                                                 "fp8/ttft", "fp16/ttft")} | {
                    ("e2e-frontier-published", c) for c in ("decode/ep72", "prefill/ep32", "prefill/ep32/uniform",
                                                             "decode/ep48/nvfp4")} | {("e2e-prefill-published", "bf16/ttft")} | {
                    ("e2e-mi300x-published", c) for c in ("sglang/tpot", "sglang/ttft", "vllm/tpot",
                                                           "vllm/offline_tok_s", "sglang/offline_tok_s")} | {
                    ("e2e-gaudi-published", c) for c in ("bf16/b2", "fp8/b300", "fp8/b896", "fp8/b120")} | {
                    ("e2e-mlperf", c) for c in ("tensorrt-llm/fp8", "vllm/fp8")} | {
                    ("e2e-serving-sglang", f"{e}/{m}") for e in ("sglang", "vllm")
                    for m in ("median_e2e_latency", "median_tpot", "output_token_throughput")} | {
                    ("e2e-serving-sglang", f"sglang/{m}") for m in ("median_ttft", "median_itl")} | {
                    ("hccl-gaudi", c) for c in ("allreduce", "allgather")} | {
                    ("mi300x-kernels", f"{k}{s}") for k in ("wvspltk-rocblas", "hipblaslt", "wvsplitk-vllm")
                    for s in ("", "-llc")} | {("mi300x-kernels", "wvsplitk-vllm-excluded"),
                    ("mi300x-kernels", "hipblaslt-maf"), ("vidur-attention", "decode"), ("vidur-attention", "prefill")} | {
                    ("rccl-mi300x", c) for c in ("allreduce", "allreduce-graph", "allreduce-inplace",
                                                 "allreduce-sub1k")} | {
                    ("attention-kernels", k) for k in ("aiter-asm", "fa2", "fa3", "fa4")} | {("membw-published", "copy"),
                    ("decode-attention-kernels", "fa2-paged"), ("decode-attention-kernels", "fa2-paged-check")} | {
                    ("fp8-gemm-kernels", k) for k in ("deepgemm", "deepgemm-grouped", "torch-bf16", "vllm-block-triton",
                                                      "vllm-block-cutlass")}  # shipped per-op rows
    rows = ev.case_rows()
    # pp: prompt tokens / TTFT; MAPE on the rate, bias = ln(measured rate / predicted rate) (> 0: too slow)
    pp = next(r for r in rows if r["op_class"] == "pp/f16")
    expected = 512 / predict("llama-3-8b", calibrated("rtx-4090"), input_len=512, output_len=1,
                             tier="roofline", framework="llamacpp", attention="naive",
                             max_prefill_tokens=512).ttft_s  # llama-bench's defaults: -fa 0, -ub 512
    assert pp["predicted_rate"] == pytest.approx(expected)
    g = next(g for g in ev.groups if g["op_class"] == "pp/f16")
    assert g["mape_pct"] == pytest.approx(100 * abs(expected - 9382.0) / 9382.0)
    assert g["bias"] == pytest.approx(math.log(9382.0 / expected))
    # tg: 1 / TPOT
    tg = next(r for r in rows if r["op_class"] == "tg/q4_k_m")
    p = predict("llama-3-8b", calibrated("rtx-4090"), input_len=1, output_len=512, weights="int4_g40z",
                tier="roofline", framework="llamacpp")
    assert tg["predicted_rate"] == pytest.approx(1 / p.tpot_s)
    # tokens per GPU-second: throughput / number of GPUs
    tp2 = next(r for r in rows if r["dataset"] == "e2e-fp6llm" and r["tp"] == 2)
    p = predict("llama-2-70b", calibrated("a100-sxm-80gb"), batch=8, input_len=512, output_len=1536, tp=2,
                framework="deepspeed", attention="mmha", tier="roofline")
    assert tp2["predicted_rate"] == pytest.approx(p.throughput_tok_s / 2)


def test_calibration_never_loads_the_e2e_sets():
    from tapeout.validate.registry import calibration_names, datasets, e2e_names

    assert set(e2e_names()) <= set(datasets()) and not set(e2e_names()) & set(calibration_names())
    assert all(datasets()[n].kind == "end-to-end" for n in e2e_names())


EXPECTED_E2E = {"e2e-fp6llm": 20, "e2e-flashllm": 24, "e2e-llamacpp": 346, "e2e-torchao": 7, "e2e-gptfast": 15,
                "e2e-trtllm": 57, "e2e-frontier-published": 4,
                "e2e-prefill-published": 8, "e2e-mi300x-published": 18, "e2e-gaudi-published": 4,
                "e2e-mlperf": 20, "e2e-serving-sglang": 28, "e2e-fastertransformer-published": 13}


def test_shared_e2e_row_counts(shared_data):
    from tapeout.validate.sources.llamacpp import llamacpp_selection

    cases = load_cases(shared_data, list(EXPECTED_E2E))
    counts = {}
    for c in cases:
        counts[c.dataset] = counts.get(c.dataset, 0) + 1
    assert counts == EXPECTED_E2E
    classes = {(c.dataset, c.op_class) for c in cases}
    assert {("e2e-fp6llm", "fp6"), ("e2e-fp6llm", "fp16"), ("e2e-flashllm", "fastertransformer"),
            ("e2e-flashllm", "deepspeed")} <= classes
    assert {oc.split("/pp")[0] for ds, oc in classes if ds == "e2e-llamacpp"} == {
        "pp/f16", "pp/q4_k_m", "tg/f16", "tg/q4_k_m"}
    _, skipped = llamacpp_selection(shared_data)
    # 800 rows = 346 used (170 single-GPU + 176 multi-GPU generation, as pipeline stages) + 16 suspicious
    # + 4 "OOM" + 206 multi-GPU prompt rows + 228 non-catalog; every row llama.cpp ran also fits tapeout's
    # memory plan (device capacities count GiB, as the hardware is built: 17 rows did not when they
    # counted decimal GB)
    assert skipped == {"graded": 16, "no_value": 4, "multi_gpu_prompt": 206, "no_catalog_device": 228,
                       "unknown_format": 0, "does_not_fit": 0}
    multi = [c for c in cases if c.dataset == "e2e-llamacpp" and c.get("gpus", 1) > 1]
    assert len(multi) == 176 and all(dict(c.scenario)["pp"] == c.get("gpus") and c.op_class.startswith("tg/")
                                     for c in multi)
    assert {c.device for c in cases if c.dataset == "e2e-llamacpp"} == {
        "rtx-3090", "rtx-4090", "a6000", "a40", "l40s", "a100-pcie-80gb", "a100-sxm-80gb", "h100-pcie"}


#: the serving load points (tapeout.simulate): 72 x 4 TensorRT-LLM metrics, 13 x 4 + 4 x 4 LMDeploy metrics
EXPECTED_SERVING = {"e2e-serving-trt014": 288, "e2e-serving-lmdeploy": 68}


def test_shared_e2e_groups_exist_with_finite_errors(shared_groups):
    e2e = [g for g in shared_groups if g["dataset"].startswith("e2e-")]
    assert {g["dataset"] for g in e2e} == set(EXPECTED_E2E) | set(EXPECTED_SERVING)
    assert sum(g["n"] for g in e2e) == sum(EXPECTED_E2E.values()) + sum(EXPECTED_SERVING.values())
    for g in e2e:
        assert math.isfinite(g["mape_pct"]) and math.isfinite(g["bias"]) and g["n"] >= 1


# ---- calibration ------------------------------------------------------------------------------------


def test_fit_recovers_known_efficiencies():
    """Cases priced with known efficiency numbers: the fit finds them again."""
    from tapeout.hardware.catalog import load_hardware
    from tapeout.perf import estimate
    from tapeout.fit.roofline import Design, fit
    from tapeout.validate.cases import Case

    truth = dict(matmul_eta=0.6, memory_eta=0.5, vector_memory_eta=0.35, launch_overhead_us=3.0)
    hw = load_hardware("a100-sxm-80gb").with_efficiency(**truth)
    ops = [gemm_op(m, n, k) for m in (1, 16, 256, 2048, 8192) for n, k in ((4096, 4096), (1024, 8192))]
    ops += [norm_op(t, 4096) for t in (1, 64, 1024, 16384)]
    cases = [Case("synthetic", "gemm" if o.kind is OpKind.GEMM else "norm", "a100-sxm-80gb", (o,),
                  estimate(o, hw).total_s) for o in ops]
    vals, loss = fit(Design.build(cases), tuple(truth), {})
    assert loss < 1e-3
    for k, v in truth.items():
        assert vals[k] == pytest.approx(v, rel=0.03), k


# ---- FlashAttention set, side-by-side tiers, plots ------------------------------------------------


def test_flashattention_set_is_loaded_by_default(shared_data):
    from tapeout.validate.registry import calibration_names, datasets

    assert "flashattention-h100" in datasets() and "flashattention-h100" not in calibration_names()
    cases = load_cases(shared_data, ["flashattention-h100"])
    assert {c.op_class for c in cases} == {"fa2", "fa3"} and {c.device for c in cases} == {"h100-sxm"}
    assert all(c.op.kind is OpKind.ATTENTION and "flash" in c.op.tags for c in cases)
    assert all(("fa2" in c.op.tags) == (c.op_class == "fa2") for c in cases)
    assert "flashattention-h100" in {c.dataset for c in load_cases(shared_data)}


def test_cli_table_shows_the_roofline_mape_beside_another_tier(tiny_data):
    res = CliRunner().invoke(app, ["validate", "--data", str(tiny_data), "--tier", "tiled"])
    assert res.exit_code == 0, res.output
    assert "roofline MAPE" in res.output
    res = CliRunner().invoke(app, ["validate", "--data", str(tiny_data), "--tier", "roofline"])
    assert res.exit_code == 0 and "roofline MAPE" not in res.output
    # the default tier is predict's (tiled on these devices), with the roofline column beside it
    res = CliRunner().invoke(app, ["validate", "--data", str(tiny_data)])
    assert res.exit_code == 0 and "roofline MAPE" in res.output and "tier default" in res.output


def test_cli_json_keys_stay_the_contract_unless_a_compare_tier_is_asked(tiny_data):
    res = CliRunner().invoke(app, ["validate", "--data", str(tiny_data), "--tier", "tiled", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    groups = [g for g in rows if "absent" not in g]
    assert groups and all(tuple(g) == GROUP_KEYS for g in groups)
    # then one row per dataset the directory lacks
    assert rows[len(groups):] and all(tuple(g) == GROUP_KEYS + ("absent",) for g in rows[len(groups):])
    res = CliRunner().invoke(app, ["validate", "--data", str(tiny_data), "--tier", "tiled", "--format", "json",
                                   "--compare-tier", "roofline"])
    assert res.exit_code == 0, res.output
    groups = [g for g in json.loads(res.stdout) if "absent" not in g]
    assert all(tuple(g) == GROUP_KEYS + ("compare_mape_pct",) for g in groups)
    roof = {(g["dataset"], g["op_class"], g["device"]): g["mape_pct"] for g in run_validation(tiny_data)}
    for g in groups:
        assert g["compare_mape_pct"] == pytest.approx(roof[(g["dataset"], g["op_class"], g["device"])], abs=1e-3)


def _hide(monkeypatch, *modules):
    import sys

    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)  # import raises ImportError


def test_plots_one_per_dataset(tiny_data, tmp_path):
    import importlib.util

    out = tmp_path / "plots"
    res = CliRunner().invoke(app, ["validate", "--data", str(tiny_data), "--tier", "tiled", "--plots", str(out)])
    assert res.exit_code == 0, res.output
    for ds in ("vidur-gemm", "vidur-allreduce", "llmcompass-matmul"):
        page = out / f"{ds}.html"
        assert page.is_file() and page.stat().st_size > 0
        if importlib.util.find_spec("matplotlib") is not None:
            png = out / f"{ds}.png"
            assert png.is_file() and png.stat().st_size > 0


def test_plots_fall_back_to_an_inline_svg_page(tiny_data, tmp_path, monkeypatch):
    from tapeout.validate import evaluate
    from tapeout.validate.plots import write_plots

    _hide(monkeypatch, "matplotlib", "plotly")
    ev = evaluate(tiny_data, "tiled")
    cmp = evaluate(tiny_data, "roofline", cases=[r.case for r in ev.results])
    written = write_plots(ev, tmp_path, tier="tiled", compare=cmp, compare_tier="roofline")
    assert sorted(p.name for p in written) == ["attention-kernels.html", "decode-attention-kernels.html", "e2e-fastertransformer-published.html",
                                               "e2e-frontier-published.html", "e2e-gaudi-published.html",
                                               "e2e-gptfast.html", "e2e-mi300x-published.html", "e2e-mlperf.html",
                                               "e2e-prefill-published.html", "e2e-serving-sglang.html", "e2e-torchao.html", "e2e-trtllm.html",
                                               "fp8-gemm-kernels.html", "hccl-gaudi.html", "llmcompass-matmul.html", "membw-published.html", "mi300x-kernels.html", "rccl-mi300x.html",
                                               "vidur-allreduce.html",
                                               "vidur-attention.html", "vidur-gemm.html"]
    text = (tmp_path / "vidur-gemm.html").read_text()
    assert "<svg" in text and "<circle" in text and "y = x" in text and "roofline" in text
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "plotly.min.js").exists()


def test_core_import_does_not_load_plotting_libraries():
    import subprocess
    import sys

    code = ("import sys, tapeout, tapeout.validate, tapeout.cli; "
            "print(any(m.split('.')[0] in ('matplotlib', 'plotly') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_flashllm_kernel_rows(shared_data):
    from tapeout.validate.registry import calibration_names
    from tapeout.validate.sources.flashllm import is_technique_case

    cases = load_cases(shared_data, ["flashllm-kernels"])
    by = {}
    for c in cases:
        by.setdefault(c.op_class, []).append(c)
    assert set(by) == {"cublas", "flash-llm", "sputnik"}  # SparTA is not modelled
    assert all(c.device == "a100-sxm-80gb" and c.harness == "kernel" for c in cases)
    # Flash-LLM's M (weight rows) is our n, its N (tokens) our m; the sparse rows pick their kernel
    c = by["flash-llm"][0]
    assert (c.op.dims()["m"], c.op.dims()["n"]) == (c.get("M"), c.get("N")) and c.op.kernel == "sparse_tc"
    assert all(x.op.kernel == "sparse_cuda" for x in by["sputnik"])
    assert all(x.op.kernel == "dense" and x.get("sparsity") == 0 for x in by["cublas"])
    # only the dense rows may be fitted on (device efficiencies); the sparse rows judge the technique models
    assert not any(is_technique_case(x) for x in by["cublas"])
    assert all(is_technique_case(x) for x in by["flash-llm"] + by["sputnik"])
    assert "flashllm-kernels" in calibration_names()
    # measured time = dense-equivalent FLOPs / printed TFLOP/s (spmm_test.cu)
    assert all(2e-5 < x.measured_s < 5e-3 for x in cases)


def test_torchao_rows_and_their_weight_bytes():
    """The typed torchao figures load, and tapeout's storage model reproduces their model sizes."""
    import tapeout
    from tapeout.models.catalog import load_model
    from tapeout.validate.registry import e2e_names
    from tapeout.validate.sources.torchao import load_e2e_torchao

    assert "e2e-torchao" in e2e_names()
    cases = load_e2e_torchao(None)
    assert sorted({c.op_class for c in cases}) == ["bf16", "int4_g128/2:4", "int4_g64z", "int8_c"]
    # torchao's harness is gpt-fast's generate.py (torch.compile, CUDA graphs): the gptfast profile
    assert len(cases) == 7 and all(c.quantity == "decode_step_s" and dict(c.scenario).get("framework") == "gptfast"
                                   for c in cases)
    for c in cases:
        sc = dict(c.scenario)
        p = tapeout.predict(sc["model"], c.device, batch=1, input_len=sc["input_len"], output_len=2,
                            weights=sc["weights"], activations="bf16", sparsity=sc.get("sparsity"),
                            scenario={"layers": [{"match": "lm_head", "weights": sc["lm_head"]}]}, tier="roofline")
        m = load_model(sc["model"])
        embedding = m.vocab_size * m.hidden_size * 2  # gpt-fast's model size leaves the embedding table out
        ours = (p.memory.weights_bytes - embedding) / 1e9
        assert ours == pytest.approx(c.get("model_size_gb"), rel=0.02), (c.op_class, sc["model"], ours)


#: end-to-end guard, tiled tier (MAPE % on the published rate): thresholds start a little above what the
#: model reaches (docs/calibration.md) and only go down
E2E_GUARD = {
    ("e2e-trtllm", "fp8/throughput_per_gpu", "h100-sxm"): 13.0,
    ("e2e-trtllm", "fp16/throughput", "a100-sxm-80gb"): 8.5,
    ("e2e-trtllm", "fp8/throughput", "l40s"): 6.5,
    # 5.0 until decode attention paid a fixed work per tile (fitted on vidur's paged FlashAttention-2 grid):
    # gpt-fast's batch-1 decode now runs 4-8 % slow (3.1 -> 7.4, 3.6 -> 6.7 %; docs/calibration.md)
    ("e2e-gptfast", "bf16/tp8", "a100-sxm-80gb"): 8.0,
    ("e2e-gptfast", "bf16/tp4", "a100-sxm-80gb"): 7.5,
    ("e2e-torchao", "int4_g64z", "a100-sxm-80gb"): 3.0,
    ("e2e-fp6llm", "fp6", "a100-sxm-80gb"): 9.0,
    ("e2e-fp6llm", "fp16", "a100-sxm-80gb"): 7.0,
    ("e2e-frontier-published", "decode/ep72", "h100-sxm"): 12.0,
}
#: held-out guard, tiled tier: each end-to-end source's MAPE % with every parameter its data constrained
#: refitted without it (``tapeout validate --cv``; docs/calibration.md, "Cross-validation"); the same rule.
#: e2e-llamacpp joins since its prompt rows run as ggml does (19.0 % held out, 346 rows; 30 % before, docs/calibration.md)
HELD_OUT_GUARD = {"fp6llm": 8.0, "flashllm": 17.0, "gptfast": 10.0, "torchao": 6.0, "trtllm": 16.5, "frontier": 10.0,
                  "llamacpp": 20.0}


@pytest.fixture(scope="module")
def e2e_cv(shared_data):
    from tapeout.fit.cv import cross_validate
    from tapeout.validate.registry import load, sources

    loaded = load(shared_data, [d for s in HELD_OUT_GUARD for d in sources()[s] if d.startswith("e2e-")])
    return cross_validate(loaded.cases, "tiled")


def test_end_to_end_groups_stay_below_their_thresholds(e2e_cv):
    got = {(g["dataset"], g["op_class"], g["device"]): g["mape_pct"] for g in e2e_cv.in_sample.groups}
    worse = {k: (round(got.get(k, float("nan")), 2), t) for k, t in E2E_GUARD.items() if not got.get(k, 1e9) <= t}
    assert not worse, f"MAPE above the committed threshold (got, threshold): {worse}"


def test_held_out_end_to_end_sources_stay_below_their_thresholds(e2e_cv):
    got = {f.source: f.summary() for f in e2e_cv.folds}
    assert set(got) == set(HELD_OUT_GUARD)
    worse = {s: (round(got[s]["held_out_mape_pct"], 2), t) for s, t in HELD_OUT_GUARD.items()
             if not got[s]["held_out_mape_pct"] <= t}
    assert not worse, f"held-out MAPE above the committed threshold (got, threshold): {worse}"
    # no fitted parameter read torchao's rows: held out is in-sample there
    assert got["torchao"]["refits"] == [] and got["torchao"]["held_out_mape_pct"] == got["torchao"]["in_sample_mape_pct"]


def test_vidur_attention_rows_are_the_typed_profile():
    """The typed rows of vidur's A100 attention profile: count, sources, a few published values, the shard."""
    from tapeout.validate.registry import datasets
    from tapeout.validate.sources.vidur import load_vidur_attention

    ds = datasets()["vidur-attention"]
    assert ds.shipped and not ds.calibration
    cases = load_vidur_attention(None)
    assert len(cases) == 125
    assert sum(c.op_class == "decode" for c in cases) == 117 and {c.device for c in cases} == {"a100-pcie-80gb"}
    assert all("microsoft/vidur data/profiling/a100/attention.csv (commit e2d00e9a" in c.get("source") for c in cases)
    by = {(c.op_class, c.get("batch"), c.get("context"), c.get("chunk")): c for c in cases}
    # published medians (ms): the short-context large-batch corner, the long-context one, a 4096-token prefill
    assert by[("decode", 128, 32, 0)].measured_s == pytest.approx(0.029e-3)
    assert by[("decode", 128, 4032, 0)].measured_s == pytest.approx(0.667e-3)
    assert by[("prefill", 1, 0, 4096)].measured_s == pytest.approx(2.314e-3)
    op = by[("decode", 128, 4032, 0)].op  # Llama-70B TP2 shard: 32 query, 4 KV heads of 128, fp16 cache
    assert dict(op.shape) == {"b": 128, "heads": 32, "kv_heads": 4, "sq": 1, "skv": 4032, "d": 128}
    assert op.bytes_read == 2 * 128 * 4032 * 4 * 128 * 2 + 128 * 32 * 128 * 2
    pre = by[("prefill", 1, 512, 3584)].op
    assert dict(pre.shape)["skv"] == 4096 and "causal" in pre.tags


def test_attention_op_matches_the_builders_decode_and_prefill():
    from tapeout import load_model
    from tapeout.workload.build import build_graph
    from tapeout.workload.scenario import Scenario
    from tapeout.workload.standalone import attention_op

    m = load_model("llama-2-7b")
    for phase, alone in (("decode", attention_op(4, 16, 16, 128, prefix=80, dtype="fp16")),
                         ("prefill", attention_op(4, 16, 16, 128, sq=64, dtype="fp16"))):
        g = build_graph(m, Scenario(batch=4, input_len=64, output_len=32, tp=2), phase, context=80)
        built = next(o for o in g.ops if o.name == "attention")
        assert (built.flops, built.bytes_read, built.bytes_written, dict(built.shape)) == (
            alone.flops, alone.bytes_read, alone.bytes_written, dict(alone.shape)), phase
    with pytest.raises(ValueError, match="heads a multiple of kv_heads"):
        attention_op(1, 12, 8, 128, prefix=10)


def test_vidur_attention_decode_error_stays_below_its_threshold():
    """The tiled decode attention on vidur's FlashAttention grid: 34 % MAPE without the per-tile fixed work
    (short contexts at 0.3-0.6 of the measured time), 15 % with it."""
    from tapeout.validate.runner import evaluate

    g = {r["op_class"]: r for r in evaluate(None, "tiled", datasets=["vidur-attention"]).groups}
    assert g["decode"]["mape_pct"] < 18 and abs(g["decode"]["bias"]) < 0.2
