"""Quantized activations (W8A8, FP8) are GEMM inputs only: the residual stream, norms, attention and
all-reduces stay in 16 bits, and the kernel feeding a quantized GEMM writes a quantized copy."""

from __future__ import annotations

import pytest

from tapeout.models.catalog import load_model
from tapeout.workload.build import build_graph
from tapeout.workload.scenario import Scenario


def _ops(acts: str, phase: str = "prefill", tp: int = 2):
    m = load_model("llama-2-7b")
    sc = Scenario(batch=2, input_len=64, output_len=4, tp=tp, weights="fp8" if acts == "fp8" else "fp16",
                  activations=acts, kv_cache="fp16")
    g = build_graph(m, sc, phase, 64 if phase == "prefill" else 65)
    return {o.name: o for o in g.ops}, m


def test_allreduce_and_residual_stream_stay_16_bit():
    q, m = _ops("fp8")
    f, _ = _ops("fp16")
    T, h = 2 * 64, m.hidden_size
    # TensorRT-LLM and vLLM all-reduce the hidden states in 16 bits whatever the GEMM format
    assert q["tp_allreduce"].message_bytes == f["tp_allreduce"].message_bytes == T * h * 2
    assert q["attn_residual_add"].bytes_read == f["attn_residual_add"].bytes_read
    # attention computes in 16 bits (the engines' default kernels), reading 16-bit Q/K/V
    assert q["attention"].compute_dtype == f["attention"].compute_dtype == "fp16"


def test_producers_of_quantized_gemm_inputs_write_a_quantized_copy():
    q, m = _ops("fp8")
    f, _ = _ops("fp16")
    T, h = 2 * 64, m.hidden_size
    inter = m.intermediate_size // 2  # per device under tp 2
    assert q["attn_norm"].bytes_written - f["attn_norm"].bytes_written == pytest.approx(T * h * 1)
    assert q["mlp_norm"].bytes_written - f["mlp_norm"].bytes_written == pytest.approx(T * h * 1)
    assert q["mlp_act"].bytes_written - f["mlp_act"].bytes_written == pytest.approx(T * inter * 1)
    heads = m.num_heads // 2
    assert q["attention"].bytes_written - f["attention"].bytes_written == pytest.approx(T * heads * m.head_dim)
    # the GEMMs read the quantized copy: 1 byte per input element
    assert q["qkv_proj"].bytes_read - q["qkv_proj"].weight_bytes == pytest.approx(T * h * 1)
    # a 16-bit run writes no copy
    assert "quantized" not in dict(f["attn_norm"].formats)


def test_int8_smoothquant_has_the_same_stream():
    q, _ = _ops("int8")
    assert dict(q["attn_norm"].formats)["quantized"] == "int8"
    assert dict(q["attn_norm"].formats)["act"] in ("fp16", "bf16")
