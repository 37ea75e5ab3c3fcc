"""CI accuracy guard for the tiled tier: the error of every measured group stays below its committed
threshold (thresholds started at what the tier reached, rounded up slightly; they only go down).

The sets are the shared reference data (``shared/reference-data``) as ``tapeout validate`` loads
them, including the FlashAttention-2/3 forward rows on H100 (dataset ``flashattention-h100``).
Groups that are not present (data absent, or a harness mapping that changed device names) are
skipped; most guarded groups must be present. The issue's targets are checked where the tier
reaches them today (GPT-3 prefill total within 5 percent, decode total within 8 (see below),
all-reduce >= 1 MiB within 15 percent).
"""

import pytest

from tapeout.validate import metrics
from tapeout.validate.registry import load_cases
from tapeout.validate.runner import evaluate

SETS = ["vidur-gemm", "vidur-elementwise", "vidur-allreduce", "llmcompass-matmul", "llmcompass-softmax",
        "llmcompass-layernorm", "llmcompass-gelu", "llmcompass-gpt3-layer", "llmcompass-allreduce", "mamf",
        "flashattention-h100", "flashllm-kernels"]

#: (dataset, op class, device) -> max MAPE (percent), tier "tiled"; devices without a
#: micro-architecture are left out (the roofline fallback prices them)
THRESHOLDS = {
    ("vidur-gemm", "qkv", "a100-pcie-80gb"): 8.2,
    ("vidur-gemm", "out_proj", "a100-pcie-80gb"): 6.7,
    ("vidur-gemm", "mlp_up_gate", "a100-pcie-80gb"): 6.2,
    ("vidur-gemm", "mlp_down", "a100-pcie-80gb"): 6.3,
    ("vidur-gemm", "qkv", "a40"): 6.5,
    ("vidur-gemm", "out_proj", "a40"): 6.8,
    ("vidur-gemm", "mlp_up_gate", "a40"): 6.6,
    ("vidur-gemm", "mlp_down", "a40"): 6.2,
    ("vidur-gemm", "qkv", "h100-sxm"): 9.2,
    ("vidur-gemm", "out_proj", "h100-sxm"): 8.4,
    ("vidur-gemm", "mlp_up_gate", "h100-sxm"): 6.8,
    ("vidur-gemm", "mlp_down", "h100-sxm"): 10.1,
    # a100-pcie-80gb's stream_eta re-fit by tapeout fit (0.62, stale, -> 0.66: the four groups' mean MAPE is
    # lower, 35.34 -> 35.27 %: add 77.2 -> 68.2, the others up): norm, rope and act raised to the re-fit's figures
    ("vidur-elementwise", "norm", "a100-pcie-80gb"): 32.3,
    ("vidur-elementwise", "rope", "a100-pcie-80gb"): 22.0,
    ("vidur-elementwise", "act", "a100-pcie-80gb"): 20.0,
    ("vidur-elementwise", "add", "a100-pcie-80gb"): 69.0,
    ("vidur-elementwise", "norm", "a40"): 26.7,
    ("vidur-elementwise", "rope", "a40"): 20.3,
    ("vidur-elementwise", "act", "a40"): 10.6,
    ("vidur-elementwise", "add", "a40"): 23.9,
    ("vidur-elementwise", "norm", "h100-sxm"): 43.0,
    ("vidur-elementwise", "rope", "h100-sxm"): 28.1,
    ("vidur-elementwise", "act", "h100-sxm"): 31.2,
    ("vidur-elementwise", "add", "h100-sxm"): 53.8,
    ("vidur-allreduce", "allreduce", "a100-sxm-80gb"): 22.9,
    ("vidur-allreduce", "allreduce", "h100-sxm"): 15.7,
    ("vidur-allreduce", "allreduce", "a100-pcie-80gb"): 16.1,
    ("vidur-allreduce", "allreduce", "h100-pcie"): 10.9,
    # A100 SXM: raised from 5.0 (matmul), 16.2 / 21.8 (prefill attn_bmm / layernorm) and 2.9 (decode GEMMs)
    # when Flash-LLM's 108 kernel-timed cuBLAS rows (flashllm-kernels) joined the GEMM fit: they stream
    # weights at ~0.82 of 2,039 GB/s where the host-timed LLMCompass layer implied 0.92 (docs/tiled.md)
    ("llmcompass-matmul", "matmul", "a100-sxm-80gb"): 5.5,
    ("llmcompass-matmul", "matmul", "mi210"): 6.6,
    # softmax: raised from 7.7 / 2.6 when the LLMCompass host terms were refitted with the SXM calibration
    ("llmcompass-softmax", "softmax", "a100-sxm-80gb"): 9.7,
    ("llmcompass-softmax", "softmax", "mi210"): 11.4,
    ("llmcompass-layernorm", "layernorm", "a100-sxm-80gb"): 11.9,
    ("llmcompass-layernorm", "layernorm", "mi210"): 17.7,
    ("llmcompass-gelu", "gelu", "a100-sxm-80gb"): 5.2,
    ("llmcompass-gelu", "gelu", "mi210"): 7.2,
    ("llmcompass-gpt3-layer", "prefill/gemm", "a100-sxm-80gb"): 3.1,
    ("llmcompass-gpt3-layer", "prefill/attn_bmm", "a100-sxm-80gb"): 16.5,
    ("llmcompass-gpt3-layer", "prefill/softmax", "a100-sxm-80gb"): 7.1,
    ("llmcompass-gpt3-layer", "prefill/layernorm", "a100-sxm-80gb"): 22.0,
    ("llmcompass-gpt3-layer", "prefill/gelu", "a100-sxm-80gb"): 3.9,
    ("llmcompass-gpt3-layer", "prefill/allreduce", "a100-sxm-80gb"): 4.6,
    ("llmcompass-gpt3-layer", "decode/gemm", "a100-sxm-80gb"): 10.6,
    ("llmcompass-gpt3-layer", "decode/attn_bmm", "a100-sxm-80gb"): 15.2,
    ("llmcompass-gpt3-layer", "decode/softmax", "a100-sxm-80gb"): 7.9,
    ("llmcompass-gpt3-layer", "decode/layernorm", "a100-sxm-80gb"): 5.2,
    ("llmcompass-gpt3-layer", "decode/gelu", "a100-sxm-80gb"): 0.9,
    ("llmcompass-gpt3-layer", "decode/allreduce", "a100-sxm-80gb"): 23.6,
    ("llmcompass-allreduce", "allreduce", "a100-sxm-80gb"): 9.9,
    ("mamf", "matmul_bf16", "a100-sxm-80gb"): 3.3,
    ("mamf", "matmul_bf16", "gh200"): 17.8,
    ("mamf", "matmul_bf16", "a100-pcie-80gb"): 12.0,
    ("mamf", "matmul_bf16", "h100-sxm"): 9.9,
    ("mamf", "matmul_bf16", "mi300x"): 36.4,
    # raised with matrix.fp8_path_fraction (were 6.6, 20.5, 3.2): a best-shape fp8 row is now missed by the same ratio
    # as its device's best-shape bf16 row (gh200 16.5, h100-sxm 8.9 % above), which is what that fit asks; the lower
    # figures were the missing fp8 deficit cancelling that bias (docs/calibration.md, "FP8 GEMM kernels")
    ("mamf", "matmul_fp8", "gh200"): 16.0,
    ("mamf", "matmul_fp8", "h200"): 34.1,
    ("mamf", "matmul_fp8", "h100-sxm"): 9.3,
    ("flashattention-h100", "fa2", "h100-sxm"): 5.8,
    ("flashattention-h100", "fa3", "h100-sxm"): 7.1,
    ("vidur-allreduce", "allreduce>=1MiB", "a100-sxm-80gb"): 13.0,
    ("vidur-allreduce", "allreduce>=1MiB", "h100-sxm"): 11.3,
    ("vidur-allreduce", "allreduce>=1MiB", "a100-pcie-80gb"): 8.9,
    ("vidur-allreduce", "allreduce>=1MiB", "h100-pcie"): 3.6,
    ("llmcompass-allreduce", "allreduce>=1MiB", "a100-sxm-80gb"): 4.8,
    ("flashllm-kernels", "cublas", "a100-sxm-80gb"): 3.7,
    ("flashllm-kernels", "flash-llm", "a100-sxm-80gb"): 8.7,
    ("flashllm-kernels", "sputnik", "a100-sxm-80gb"): 8.7,
}

#: pooled vidur GEMMs on A100 (PCIe, see validate/sources/vidur.py) + H100; issue target: <= 10 percent,
#: <= 7 above 0.1 ms (reached: 6.8 and 6.9 after the A100 rows were mapped to the PCIe card)
POOLED_VIDUR_GEMM = {"all": 7.2, ">0.1ms": 7.0}


@pytest.fixture(scope="module")
def evaluation(shared_data):
    cases = load_cases(shared_data, SETS)
    return evaluate(shared_data, "tiled", cases=cases)


def test_group_errors_stay_below_their_thresholds(evaluation):
    got = {(g["dataset"], g["op_class"], g["device"]): g["mape_pct"] for g in evaluation.groups}
    present = [k for k in THRESHOLDS if k in got]
    assert len(present) >= 0.6 * len(THRESHOLDS), "most guarded groups are missing"
    worse = {k: (round(got[k], 2), THRESHOLDS[k]) for k in present if not got[k] <= THRESHOLDS[k]}
    assert not worse, f"MAPE above the committed threshold (got, threshold): {worse}"


#: issue target: both GPT-3 layer totals within 5 %. The decode total reached +0.8 % with A100 SXM
#: weight streams at 0.92 of peak; Flash-LLM's kernel-timed cuBLAS rows of the same shapes (e.g.
#: 8 x 12288 x 12288: 192 us device time, where LLMCompass's host-timed row is 186 us *with* its
#: 25 us harness term) put it at 0.82, and the joint fit follows the kernel timers: +7.9 %
GPT3_TOTAL_TOLERANCE = {"prefill/total": 0.05, "decode/total": 0.08}


def test_gpt3_layer_totals(evaluation):
    totals = [r for r in evaluation.results if r.case.op_class.endswith("/total")]
    assert len(totals) == 2
    for r in totals:
        assert abs(r.predicted_s / r.case.measured_s - 1) <= GPT3_TOTAL_TOLERANCE[r.case.op_class], r.case.op_class


def test_allreduce_of_1mib_and_more_within_15pct(evaluation):
    groups = [g for g in evaluation.groups if g["op_class"] == "allreduce>=1MiB"]
    assert groups
    for g in groups:
        assert g["mape_pct"] <= 15.0, g


def test_pooled_vidur_gemms(evaluation):
    rs = [r for r in evaluation.results if r.case.dataset == "vidur-gemm" and r.case.device != "a40"]
    big = [r for r in rs if r.case.measured_s > 1e-4]
    mape = metrics.mape_pct([r.predicted_s for r in rs], [r.case.measured_s for r in rs])
    mape_big = metrics.mape_pct([r.predicted_s for r in big], [r.case.measured_s for r in big])
    assert mape <= POOLED_VIDUR_GEMM["all"], mape
    assert mape_big <= POOLED_VIDUR_GEMM[">0.1ms"], mape_big


def test_flashattention_h100_within_15pct(evaluation):
    groups = [g for g in evaluation.groups if g["dataset"] == "flashattention-h100"]
    assert {g["op_class"] for g in groups} == {"fa2", "fa3"}
    for g in groups:
        assert g["mape_pct"] <= 15.0, g


def test_a100_flash_attention_2_forward_peak_as_published():
    """FlashAttention-2 on A100 (arXiv 2307.08691 §4: "FLASHATTENTION-2 reaches up to 230 TFLOPs/s, 73% of the
    theoretical maximum TFLOPs/s on A100 GPUs"; §4.1: A100 80GB SXM4, hidden 2048, head dim 64 or 128, 16k
    tokens per batch, sequence 512-16k). No A100 attention row is fitted on: the device takes the median
    attention efficiency of other devices' native kernels (fitted/tiled.toml [default.attention]), so this checks
    that the carried value reproduces the one published A100 forward peak."""
    from tapeout.hardware.catalog import load_hardware
    from tapeout.perf import estimate
    from tapeout.validate.sources.flashattention import flash_attention_op

    hw = load_hardware("a100-sxm-80gb")
    rates = []
    for d in (64, 128):
        for causal in (False, True):
            for s in (512, 1024, 2048, 4096, 8192, 16384):
                op = flash_attention_op(16384 // s, s, 2048 // d, d, causal, "fa3")  # the device's native path
                rates.append(op.flops / estimate(op, hw, "tiled").time_s / 1e12)
    assert max(rates) == pytest.approx(230.0, rel=0.05)
