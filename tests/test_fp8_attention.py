"""FP8 decode attention (``fp8_attention``): the QK^T and PV matmuls at the device's fp8 rate over an fp8 cache,
no dequantization; off (the default), the cache is dequantized and the math runs at the 16-bit rate."""

import pytest

import tapeout
from tapeout import load_hardware, load_model
from tapeout.errors import TapeoutError
from tapeout.perf import estimate
from tapeout.perf.roofline import matrix_peak
from tapeout.workload.build import build_graph
from tapeout.workload.ops import OpKind
from tapeout.workload.scenario import Scenario


def _decode_attention(model: str, **sc):
    g = build_graph(load_model(model), Scenario(batch=64, input_len=4095, output_len=2, **sc), "decode", 4096)
    return [op for op in g.ops if op.kind == OpKind.ATTENTION]


@pytest.mark.parametrize("model", ["llama-3.1-8b", "deepseek-v3"])  # GQA flash decode; MLA absorbed decode
def test_fp8_attention_computes_in_fp8_without_dequantization(model):
    for op in _decode_attention(model, kv_cache="fp8", fp8_attention=True):
        assert op.compute_dtype.startswith("fp8")
        assert op.vector_ops == 0 and op.kernel.value == "dense"
    for op in _decode_attention(model, kv_cache="fp8"):  # the default: dequantized to 16 bits
        assert op.compute_dtype in ("fp16", "bf16")
        assert op.vector_ops > 0


@pytest.mark.parametrize("device", ["h100-sxm", "b200", "gb200"])
def test_fp8_attention_runs_at_the_devices_fp8_peak(device):
    hw = load_hardware(device)
    (op,) = _decode_attention("deepseek-v3", kv_cache="fp8", fp8_attention=True)
    key, peak = matrix_peak(hw, op.compute_dtype)
    assert key == "fp8" and peak == pytest.approx(hw.peak_tflops["fp8"] * 1e12)
    (dq,) = _decode_attention("deepseek-v3", kv_cache="fp8")
    # MLA's absorbed decode is compute-bound at batch 64: fp8 math is faster on both tiers
    for tier in ("roofline", "tiled"):
        assert estimate(op, hw, tier).total_s < estimate(dq, hw, tier).total_s


def test_fp8_attention_leaves_prefill_at_16_bits():
    g = build_graph(load_model("llama-3.1-8b"), Scenario(batch=2, input_len=512, output_len=1, kv_cache="fp8",
                                                         fp8_attention=True), "prefill")
    assert all(op.compute_dtype in ("fp16", "bf16") for op in g.ops if op.kind == OpKind.ATTENTION)


def test_fp8_attention_needs_an_fp8_cache_fused_kernels_and_fp8_tensor_cores():
    with pytest.raises(ValueError, match="fp8_attention needs an fp8 KV cache"):
        Scenario(batch=1, input_len=8, output_len=1, kv_cache="bf16", fp8_attention=True)
    with pytest.raises(ValueError, match="fused attention"):
        Scenario(batch=1, input_len=8, output_len=1, kv_cache="fp8", attention="naive", fp8_attention=True)
    with pytest.raises(TapeoutError, match="no fp8 matrix peak") as e:
        tapeout.predict("llama-3.1-8b", "a100-sxm-80gb", batch=1, input_len=128, output_len=4, kv_cache="fp8",
                        fp8_attention=True)
    assert e.value.field == "fp8_attention"
