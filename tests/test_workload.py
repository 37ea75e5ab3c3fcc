"""Operator graphs: facts about FLOPs and bytes, not restatements of our formulas."""

import math

import pytest

from tapeout import load_model
from tapeout.workload.build import build_graph, expected_active_experts
from tapeout.workload.ops import OpKind
from tapeout.workload.scenario import Scenario


def _op(graph, name):
    (op,) = [o for o in graph.ops if o.name == name]
    return op


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-2-70b", "opt-13b", "gpt-j-6b", "falcon-40b", "qwen2.5-7b"])
def test_decode_flops_per_token_is_two_times_params_plus_attention(name):
    """Kaplan et al. 2020: forward FLOPs/token ~ 2 N + 2 n_layer n_ctx d_attn (N without embeddings)."""
    m = load_model(name)
    ctx = 1024
    g = build_graph(m, Scenario(batch=1, input_len=ctx - 1, output_len=2), "decode", ctx)
    matmul = sum(o.flops * o.count for o in g.ops if o.kind in (OpKind.GEMM, OpKind.ATTENTION, OpKind.BMM))
    # N without embeddings; the lm_head is a matmul per token whether or not it is tied
    n_no_embed = m.total_params() - m.embedding_params() - m.lm_head_params() + m.vocab_size * m.hidden_size
    expected = 2 * n_no_embed + 2 * m.num_layers * ctx * m.q_size * 2  # QK^T and AV
    assert matmul == pytest.approx(expected, rel=0.01)


def test_prefill_gemm_flops_scale_with_tokens_but_lm_head_only_last_token():
    m = load_model("llama-2-7b")
    g = build_graph(m, Scenario(batch=2, input_len=512, output_len=1), "prefill")
    assert _op(g, "qkv_proj").dims()["m"] == 1024
    assert _op(g, "lm_head").dims()["m"] == 2
    assert _op(g, "qkv_proj").count == 32


def test_causal_prefill_attention_is_half_the_square():
    m = load_model("llama-2-7b")
    S = 4096
    g = build_graph(m, Scenario(batch=1, input_len=S, output_len=1), "prefill")
    full = 4 * m.num_heads * m.head_dim * S * S  # QK^T + AV without a mask
    assert _op(g, "attention").flops / full == pytest.approx(0.5, rel=1e-3)


def test_gqa_decode_reads_kv_only_for_kv_heads():
    """Llama-2-70B: 8 KV heads of 128 -> 2*8*128*2 B = 4 KiB per token per layer in fp16."""
    m = load_model("llama-2-70b")
    B, ctx = 4, 3000
    g = build_graph(m, Scenario(batch=B, input_len=ctx - 1, output_len=2), "decode", ctx)
    att = _op(g, "attention")
    kv = B * ctx * 4096
    assert kv <= att.bytes_read <= kv * 1.01


def test_kv_cache_format_sets_attention_bytes():
    m = load_model("llama-2-7b")
    g16 = build_graph(m, Scenario(input_len=4000, output_len=2), "decode", 4001)
    g8 = build_graph(m, Scenario(input_len=4000, output_len=2, kv_cache="int8"), "decode", 4001)
    assert _op(g8, "attention").bytes_read == pytest.approx(_op(g16, "attention").bytes_read / 2, rel=0.01)


def test_tensor_parallel_shards_heads_and_adds_two_allreduces_per_layer():
    m = load_model("llama-2-70b")
    g1 = build_graph(m, Scenario(tp=1), "prefill")
    g4 = build_graph(m, Scenario(tp=4), "prefill")
    assert _op(g4, "qkv_proj").flops == pytest.approx(_op(g1, "qkv_proj").flops / 4)
    assert _op(g4, "tp_allreduce").count == 2 * m.num_layers
    assert not [o for o in g1.ops if o.kind is OpKind.ALLREDUCE]


def test_parallel_block_has_one_allreduce_per_layer():
    m = load_model("gpt-j-6b")
    g = build_graph(m, Scenario(tp=2), "decode", 100)
    assert _op(g, "tp_allreduce").count == m.num_layers


def test_moe_decode_batch_one_reads_top_k_experts_only():
    m = load_model("mixtral-8x7b")
    g = build_graph(m, Scenario(batch=1, input_len=10, output_len=2), "decode", 11)
    up = _op(g, "moe_gate_up")
    one_expert = 2 * m.hidden_size * m.moe.expert_intermediate_size * 2  # gate+up, fp16
    assert up.weight_bytes == pytest.approx(2 * one_expert, rel=1e-6)
    big = build_graph(m, Scenario(batch=256, input_len=10, output_len=2), "decode", 11)
    assert _op(big, "moe_gate_up").weight_bytes == pytest.approx(8 * one_expert, rel=1e-3)


def test_expected_active_experts_limits():
    assert expected_active_experts(8, 2, 1) == pytest.approx(2)
    assert expected_active_experts(8, 2, 10_000) == pytest.approx(8)
    assert expected_active_experts(64, 4, 2) == pytest.approx(64 * (1 - (60 / 64) ** 2))


def test_naive_attention_materializes_scores():
    m = load_model("llama-2-7b")
    S = 2048
    g = build_graph(m, Scenario(input_len=S, output_len=1, attention="naive"), "prefill")
    scores = _op(g, "attn_scores")
    assert scores.bytes_written == m.num_heads * S * S * 2
    assert _op(g, "attn_softmax").kind is OpKind.SOFTMAX


def test_identical_layers_are_one_op_times_layers():
    m = load_model("llama-3.1-405b")
    g = build_graph(m, Scenario(tp=8), "prefill")
    assert len(g.ops) < 30
    assert max(o.count for o in g.ops) >= m.num_layers
    assert math.isfinite(g.flops)


@pytest.mark.parametrize("name", ["llama-2-7b", "gpt-j-6b", "falcon-40b"])
def test_fused_residual_norm_saves_kernels_and_traffic_but_not_work(name):
    m = load_model(name)
    plain = build_graph(m, Scenario(batch=4, input_len=512, output_len=2), "decode", 513)
    fused = build_graph(m, Scenario(batch=4, input_len=512, output_len=2, fuse_residual_norm=True), "decode", 513)
    launches = sum(o.count for o in plain.ops)
    assert sum(o.count for o in fused.ops) == launches - (2 if not m.parallel_block else 1) * m.num_layers
    vec = lambda g: sum(o.bytes_total * o.count for o in g.ops if o.kind in (OpKind.NORM, OpKind.ELEMENTWISE))  # noqa: E731
    assert vec(fused) < vec(plain)
    gemm = lambda g: sum(o.flops * o.count for o in g.ops if o.kind is OpKind.GEMM)  # noqa: E731
    assert gemm(fused) == gemm(plain)


def test_naive_decode_attention_expands_gqa_kv_like_eager_frameworks():
    """HF eager attention repeats each KV head for its query group every step (repeat_kv)."""
    m = load_model("llama-2-70b")  # 64 query heads, 8 KV heads
    B, ctx = 2, 1000
    flash = build_graph(m, Scenario(batch=B, input_len=ctx - 1, output_len=2), "decode", ctx)
    naive = build_graph(m, Scenario(batch=B, input_len=ctx - 1, output_len=2, attention="naive"), "decode", ctx)
    cache = 2 * B * ctx * 8 * 128 * 2  # K and V bytes of one layer, fp16
    rep = _op(naive, "repeat_kv")
    assert rep.bytes_read == cache and rep.bytes_written == 8 * cache
    attn = sum(o.bytes_total for o in naive.ops if o.name.startswith(("repeat_kv", "attn_")))
    assert attn > 8 * _op(flash, "attention").bytes_read
    mha = load_model("llama-2-7b")
    g = build_graph(mha, Scenario(input_len=99, output_len=2, attention="naive"), "decode", 100)
    assert not [o for o in g.ops if o.name == "repeat_kv"]


def test_mmha_decode_reads_kv_once_per_query_head():
    """mmha: a fused decode kernel that loads K/V for every query head (no GQA sharing): 8x the KV bytes of
    Llama-2-70B's flash decode (64 query heads, 8 KV heads); prefill and multi-head models are unchanged."""
    from tapeout.models.catalog import load_model
    from tapeout.workload.build import build_graph
    from tapeout.workload.scenario import Scenario

    m70, m7 = load_model("llama-2-70b"), load_model("llama-2-7b")
    att = {}
    for mode in ("flash", "mmha"):
        sc = Scenario(batch=4, input_len=64, output_len=8, attention=mode)
        att[mode] = next(o for o in build_graph(m70, sc, "decode", 100).ops if o.name == "attention")
        pre = next(o for o in build_graph(m70, sc, "prefill").ops if o.name == "attention")
        att[mode + "_prefill"] = pre.bytes_read
        att[mode + "_mha"] = next(o for o in build_graph(m7, sc, "decode", 100).ops if o.name == "attention").bytes_read
    q = 4 * 64 * 128 * 2
    assert att["mmha"].bytes_read - q == pytest.approx(8 * (att["flash"].bytes_read - q))
    assert att["mmha_prefill"] == att["flash_prefill"] and att["mmha_mha"] == att["flash_mha"]


# ---- ALiBi (Falcon-RW's alibi, BLOOM / MPT style): a per-head linear bias on each score, no rotary op ----------
def _alibi_pair():
    # a Falcon (RefinedWebModel layout: one norm, parallel block, MQA) config with and without alibi
    from tapeout.models import from_hf_config

    cfg = {"model_type": "falcon", "hidden_size": 2048, "num_attention_heads": 32, "num_hidden_layers": 4,
           "vocab_size": 50304, "new_decoder_architecture": False, "multi_query": False, "parallel_attn": False}
    return from_hf_config(cfg | {"alibi": True}), from_hf_config(cfg)


def test_alibi_adds_its_bias_where_rope_would_rotate():
    alibi, rope = _alibi_pair()
    assert (alibi.position, rope.position) == ("alibi", "rope")
    assert alibi.total_params() == rope.total_params()  # the slopes are computed, not weights
    sc = Scenario(batch=2, input_len=128, output_len=2)
    flash = build_graph(alibi, sc, "prefill")
    assert not any(o.name == "rope" for o in flash.ops)
    att = next(o for o in flash.ops if o.kind == OpKind.ATTENTION)
    assert "alibi" in att.tags and "alibi" not in next(o for o in build_graph(rope, sc, "prefill").ops
                                                        if o.kind == OpKind.ATTENTION).tags
    # eager attention adds the bias tensor to the scores: one read and one write of every score per layer
    sc_naive = Scenario(batch=2, input_len=128, output_len=2, attention="naive")
    for phase, context, scores in (("prefill", None, 2 * 32 * 128 * 128), ("decode", 200, 2 * 32 * 200)):
        g = build_graph(alibi, sc_naive, phase, context) if context else build_graph(alibi, sc_naive, phase)
        bias = [o for o in g.ops if o.name.startswith("attn_alibi")]
        assert len(bias) == 1 and bias[0].count == 4
        assert bias[0].bytes_read == bias[0].bytes_written == pytest.approx(scores * 2)
        plain = build_graph(rope, sc_naive, phase, context) if context else build_graph(rope, sc_naive, phase)
        assert not any(o.name.startswith("attn_alibi") for o in plain.ops)


def test_alibi_costs_flash_prefill_lane_work():
    from tapeout.hardware import load_hardware
    from tapeout.perf.tiled import attention as tiled

    alibi, rope = _alibi_pair()
    sc = Scenario(batch=8, input_len=4096, output_len=2)
    hw = load_hardware("h100-sxm")
    t = {}
    for name, m in (("alibi", alibi), ("rope", rope)):
        att = next(o for o in build_graph(m, sc, "prefill").ops if o.kind == OpKind.ATTENTION)
        t[name] = tiled.estimate(att, hw).time_s
    # a multiply and an add per score on the vector lanes: slower, but far from doubling the kernel
    assert t["rope"] < t["alibi"] < 1.5 * t["rope"]
