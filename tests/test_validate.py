"""Accuracy harness: metrics, loaders, the runner, the CLI command and the calibration fit."""

import json
import math

import pytest
from typer.testing import CliRunner

from tapeout.cli import app
from tapeout.errors import TapeoutError
from tapeout.validate import GROUP_KEYS, load_cases, metrics, run_validation
from tapeout.validate.datasets import (
    load_llmcompass_matmul,
    load_vidur_allreduce,
    load_vidur_gemm,
    resolve_data_dir,
)
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

_HEADER = ("source,source_detail,hardware,hardware_class,num_gpus,software,model,op_or_stage,M,N,K,batch,"
           "input_len,output_len,weight_precision,act_precision,kv_precision,sparsity,tp,metric,value,unit,"
           "confidence,notes\n")


def _gemm_row(m, value, confidence="exact"):
    return (f'"vidur data/profiling/compute/a100/x/mlp.csv",row,A100,A100 (variant unstated),1,sw,x,'
            f'"mlp_down_proj: MLP down projection",{m},4096,11008,{m},,,fp16,fp16,,0,1,op_latency_median,'
            f"{value},ms,{confidence},\n")


@pytest.fixture()
def tiny_data(tmp_path):
    (tmp_path / "measured").mkdir()
    (tmp_path / "measured" / "vidur_gemm_extract.csv").write_text(
        _HEADER + _gemm_row(1, 0.1) + _gemm_row(64, 0.12) + _gemm_row(128, 9.9, "suspicious")
        + _gemm_row(256, "", "missing"))
    (tmp_path / "measured" / "vidur_allreduce_extract.csv").write_text(
        _HEADER + '"vidur network/a100_dgx/all_reduce.csv","rank 0 row size=1048576, num_workers=4",'
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
    assert (c.dataset, c.op_class, c.device) == ("vidur-gemm", "mlp_down", "a100-sxm-80gb")
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
    assert names == {"vidur-gemm", "vidur-allreduce", "llmcompass-matmul"}
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
    "llmcompass-allreduce": 32, "mamf": 14,
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
    assert {c.device for c in cases if c.dataset == "vidur-gemm"} == {"a100-sxm-80gb", "h100-sxm", "a40"}


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


# ---- calibration ------------------------------------------------------------------------------------


def test_fit_recovers_known_efficiencies():
    """Cases priced with known efficiency numbers: the fit finds them again."""
    from tapeout.hardware.catalog import load_hardware
    from tapeout.perf import estimate
    from tapeout.validate.calibrate import Design, fit
    from tapeout.validate.datasets import Case

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
