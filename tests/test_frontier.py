"""Frontier architectures in the workload, memory and prediction: KV cache per layer span, MLA forms,
local attention in prefill and decode (docs/mla.md, docs/local-attention.md)."""

from __future__ import annotations

import pytest

import tapeout
from tapeout.errors import TapeoutError
from tapeout.models import load_model
from tapeout.system.memory import kv_rates
from tapeout.workload.build import build_graph
from tapeout.workload.ops import OpKind
from tapeout.workload.scenario import Scenario

#: bf16 KV bytes per token of one sequence from the shared index (index-frontier.json, kv_cache_bf16) and its
#: README table: (full-attention rate, windowed rate, window)
INDEX_KV = {
    "mistral-7b": (0, 131_072, 4096),
    "gemma-2-9b": (172_032, 172_032, 4096),
    "gemma-3-27b": (81_920, 425_984, 1024),
    "gpt-oss-120b": (36_864, 36_864, 128),
    "llama-4-scout": (49_152, 147_456, 8192),
    "deepseek-v3": (70_272, 0, 0),
    "phi-3-mini-4k": (0, 393_216, 2047),
}


def _ops(graph, prefix):  # noqa: ANN001, ANN202
    return [o for o in graph.ops if o.name.startswith(prefix)]


@pytest.mark.parametrize("name", sorted(INDEX_KV))
@pytest.mark.parametrize("tokens", [1024, 32 * 1024, 128 * 1024])
def test_memory_plan_kv_follows_the_index(name, tokens):
    """The memory plan's per-device KV (tp=1, bf16) of one sequence at L tokens, L capped at the model's
    max_position_embeddings, is full_rate x L + windowed_rate x min(L, W)."""
    m = load_model(name)
    full, windowed, w = INDEX_KV[name]
    L = min(tokens, m.max_position_embeddings)
    rates = kv_rates(m, Scenario(kv_cache="bf16", weights="bf16", activations="bf16"))
    assert rates.sequence(L) == full * L + windowed * min(L, w or L)


def test_mistral_7b_prediction_kv_is_capped_and_the_batch_grows():
    p = tapeout.predict("mistral-7b", "a100-sxm-80gb", batch=2, input_len=32_000, output_len=769, tier="roofline")
    assert p.memory.kv_cache_bytes == pytest.approx(2 * 4096 * 131_072)  # 1.07 GB, not 2 x 4.3 GB
    full = load_model("mistral-7b").model_copy(update={"local_attention": None})
    q = tapeout.predict(full, "a100-sxm-80gb", batch=2, input_len=32_000, output_len=769, tier="roofline")
    assert q.memory.kv_cache_bytes == pytest.approx(2 * 32_768 * 131_072)
    assert p.memory.max_batch > 2 * q.memory.max_batch  # (prefill activations bound it too)
    # the pool holds 8x the tokens: a sequence of 32,768 tokens costs 16 kB per token on average, not 128 kB
    assert p.memory.kv_cache_bytes_per_token == 131_072 * 4096 / 32_768
    assert p.memory.kv_capacity_tokens == pytest.approx(8 * q.memory.kv_capacity_tokens, rel=1e-6)
    # decode attention reads 4096 keys per layer, whatever the context
    step = p.result.decode_steps[-1].graph
    (att,) = _ops(step, "attention")
    assert att.name == "attention:sliding4096" and att.dims()["skv"] == 4096
    assert q.tpot_s > p.tpot_s


def test_decode_attention_reads_follow_each_span():
    sc = Scenario(batch=1, input_len=10_000, output_len=8)
    g = build_graph(load_model("llama-4-scout"), sc, "decode", context=10_000)
    spans = {o.name: (o.count, o.dims()["skv"]) for o in g.ops if o.kind is OpKind.ATTENTION}
    # 12 NoPE layers attend to the whole context, 36 chunked layers to position 10000's chunk: 10000 - 8192
    assert spans == {"attention:full": (12, 10_000), "attention:chunked8192": (36, 10_000 - 8192)}
    (rope,) = _ops(g, "rope")
    assert rope.count == 36  # the NoPE layers skip RoPE
    g = build_graph(load_model("gpt-oss-120b"), sc, "decode", context=10_000)
    spans = {o.name: (o.count, o.dims()["skv"]) for o in g.ops if o.kind is OpKind.ATTENTION}
    assert spans == {"attention:full": (18, 10_000), "attention:sliding128": (18, 128)}


def test_prefill_attention_counts_the_pairs_inside_the_window():
    m = load_model("gemma-2-9b")
    S, W = 8192, 4096
    g = build_graph(m, Scenario(input_len=S), "prefill")
    att = {o.name: o for o in g.ops if o.kind is OpKind.ATTENTION}
    per_pair = 4.0 * m.num_heads * m.head_dim
    assert att["attention:full"].flops == per_pair * S * (S + 1) / 2
    assert att["attention:sliding4096"].flops == per_pair * (W * (W + 1) / 2 + (S - W) * W)
    assert "softcap" in att["attention:full"].tags  # Gemma 2's soft-capped scores cost a tanh per score
    assert any(o.name == "logit_softcap" for o in g.ops) and sum(o.name.endswith("post_norm") for o in g.ops) == 2
    t = {o.name: c.total_s for o, c in zip(*_priced(m, S))}
    assert t["attention:sliding4096"] < t["attention:full"]


def _priced(m, S):  # noqa: ANN001, ANN202
    p = tapeout.predict(m, "h100-sxm", batch=1, input_len=S, output_len=2, tier="tiled")
    return p.result.prefill.ops, p.result.prefill.costs


def test_mla_latent_cache_is_replicated_over_tp():
    m = load_model("deepseek-v2-lite")
    for tp in (1, 2, 4):
        r = kv_rates(m, Scenario(tp=tp, kv_cache="bf16", weights="bf16", activations="bf16"))
        assert r.all_layers == 27 * (512 + 64) * 2  # 31,104 B/token on every device (index: 31,104)


def test_mla_forms_default_per_phase_and_are_named():
    p = tapeout.predict("deepseek-v2-lite", "h100-sxm", batch=4, input_len=1024, output_len=16)
    assert p.to_dict()["model_info"]["mla_forms"] == {"prefill": "naive", "decode": "absorbed"}
    pre = [o.name for o in p.result.prefill.ops]
    dec = [o.name for o in p.result.decode_steps[0].ops]
    assert "attention:mla-naive" in pre and "kv_b_proj:mla-naive" in pre and "q_absorb" not in pre
    assert "attention:mla-absorbed" in dec and "q_absorb" in dec and "v_absorb" in dec
    assert not any(n.startswith("kv_b_proj") for n in dec)
    # absorbed decode reads the latent cache once for all heads: (512 + 64) values per token, no per-head K/V
    (att,) = [o for o in p.result.decode_steps[0].ops if o.name == "attention:mla-absorbed"]
    ctx = p.result.decode_steps[0].graph.context
    q = 4 * 16 * 576 * 2
    assert att.bytes_read == 4 * ctx * 576 * 2 + q
    assert att.dims()["kv_heads"] == 1 and att.dims()["latent"] == 1


def test_mla_absorbed_wins_decode_and_naive_wins_prefill():
    """Why engines pick the forms per phase: absorbed decode reads only the latent cache, naive decode
    up-projects the whole context every step; naive prefill does ~3.4x fewer attention FLOPs per pair."""
    kw = dict(batch=8, input_len=8192, output_len=8, tier="tiled")
    naive = tapeout.predict("deepseek-v2-lite", "h100-sxm", mla_attention="naive", **kw)
    absorbed = tapeout.predict("deepseek-v2-lite", "h100-sxm", mla_attention="absorbed", **kw)
    assert absorbed.tpot_s < naive.tpot_s
    assert naive.ttft_s < absorbed.ttft_s
    assert absorbed.memory.kv_cache_bytes == naive.memory.kv_cache_bytes  # the cache is latent either way


def test_mla_with_eager_attention_is_refused():
    with pytest.raises(TapeoutError, match="allowed: flash"):
        tapeout.predict("deepseek-v2-lite", "h100-sxm", attention="naive")
    with pytest.raises(TapeoutError, match="mla_attention"):
        tapeout.predict("deepseek-v2-lite", "h100-sxm", mla_attention="fused")


def test_deepseek_v3_fp8_weights_per_device_on_8_h200():
    """Weights per device ~ 671 GB / 8 in fp8 (embedding, lm_head and norms stay 16-bit), plus the latent cache
    at batch 1 and 256."""
    for batch in (1, 256):
        p = tapeout.predict("deepseek-v3", "h200", tp=8, weights="fp8", batch=batch, input_len=1024,
                            output_len=64, tier="roofline")
        mem = p.memory
        assert mem.weights_bytes == pytest.approx(671e9 / 8, rel=0.03)
        assert mem.kv_cache_bytes == pytest.approx(batch * 1087 * 70_272)  # 61 x 576 x 2 B, replicated
        assert mem.fits


def test_vision_tower_is_loaded_not_run():
    scout = load_model("llama-4-scout")
    p = tapeout.predict(scout, "h100-sxm", tp=4, batch=1, input_len=128, output_len=2, tier="roofline")
    text_only = tapeout.predict(scout.model_copy(update={"vision_params": 0}), "h100-sxm", tp=4, batch=1,
                                input_len=128, output_len=2, tier="roofline")
    assert p.memory.weights_bytes - text_only.memory.weights_bytes == pytest.approx(scout.vision_params * 2 / 4)
    assert p.ttft_s == text_only.ttft_s


# ---- formats: MXFP4, NVFP4, block-scaled fp8, and checkpoints that ship in them -------------------------
def test_microscaling_and_block_formats_store_exactly():
    from tapeout import dtypes

    n, k = 2880, 5760  # one gpt-oss-120b expert's gate_up matrix
    mx = dtypes.parse("mxfp4")  # OCP MX: 4-bit e2m1 values, one 8-bit e8m0 scale per 32 along K
    assert (mx.name, mx.bits, mx.scale_format) == ("fp4_e2m1_g32_e8m0", 4, "e8m0")
    assert mx.matrix_bytes(n, k) == n * k / 2 + n * (k // 32)
    nv = dtypes.parse("nvfp4")  # e2m1 values, an e4m3 scale per 16, and one fp32 scale per tensor
    assert nv.matrix_bytes(n, k) == n * k / 2 + n * (k // 16) + 4
    assert nv.bytes == 4.5 / 8 and dtypes.parse(nv.name) == nv
    b = dtypes.parse("fp8_b128")  # DeepSeek-V3: e4m3 weights, one fp32 scale per 128 x 128 block
    assert b.name == "fp8_e4m3_b128"
    assert b.matrix_bytes(7168, 2112) == 7168 * 2112 + 56 * 17 * 4  # ceil(2112 / 128) = 17 blocks per row
    with pytest.raises(TapeoutError, match="allowed"):
        dtypes.parse("fp8_b0")


def test_codec_block_and_nvfp4_scales():
    import numpy as np

    from tapeout import dtypes
    from tapeout.numerics import codec

    x = np.random.default_rng(1).standard_normal((300, 260)) * np.linspace(0.01, 100.0, 260)
    q = codec.quantize(x, "fp8_b128")
    assert q.scales.shape == (3, 3) and q.nbytes == 300 * 260 + 9 * 4
    assert np.abs(q.dequantize() - x).max() <= np.abs(x).max() * 2.0 ** -4  # e4m3: 3 mantissa bits
    q = codec.quantize(x, "nvfp4")
    t = np.abs(x).max() / (6.0 * 448.0)  # the fp32 tensor scale
    rel = q.scales / np.float32(t)
    e4m3 = codec.decode(codec.encode(rel, dtypes.element(dtypes.parse("fp8"))), dtypes.element(dtypes.parse("fp8")))
    assert np.allclose(rel, e4m3, rtol=1e-6)  # every block scale is an e4m3 value times the tensor scale
    assert q.nbytes == 300 * 260 // 2 + 300 * 17 + 4


def test_gpt_oss_120b_fits_one_h100_in_mxfp4_as_shipped_not_in_bf16():
    p = tapeout.predict("gpt-oss-120b", "h100-sxm", batch=1, input_len=1024, output_len=16, tier="roofline")
    ck = p.to_dict()["inputs"]["checkpoint_format"]
    assert ck["weights"] == "mxfp4" and ck["layers"] == "experts"
    assert p.memory.fits
    (up,) = [o for o in p.result.prefill.ops if o.name == "moe_gate_up"]
    assert dict(up.formats)["weights"] == "fp4_e2m1_g32_e8m0"
    (qkv,) = [o for o in p.result.prefill.ops if o.name.startswith("qkv_proj")]
    assert dict(qkv.formats)["weights"] == "fp16"  # attention stays 16-bit (modules_to_not_convert)
    bf16 = tapeout.predict("gpt-oss-120b", "h100-sxm", weights="bf16", batch=1, input_len=1024, output_len=16,
                           tier="roofline")
    assert bf16.to_dict()["inputs"]["checkpoint_format"] is None
    assert not bf16.memory.fits and bf16.memory.weights_bytes > 2 * 116.8e9 * 0.99


def test_deepseek_v3_ships_block_fp8():
    p = tapeout.predict("deepseek-v3", "h200", tp=8, batch=1, input_len=512, output_len=8, tier="roofline")
    i = p.to_dict()["inputs"]
    assert (i["weights"], i["activations"], i["kv_cache"]) == ("fp8_e4m3_b128", "fp8_e4m3_g128", "fp16")
    assert p.memory.weights_bytes == pytest.approx(671e9 / 8, rel=0.03)
    # a rule that sets weights, or weights given, replaces the shipped format
    q = tapeout.predict("deepseek-v3", "h200", tp=8, batch=1, input_len=512, output_len=8, tier="roofline",
                        scenario={"layers": [{"match": "experts", "weights": "int4"}]})
    assert q.to_dict()["inputs"]["checkpoint_format"] is None
