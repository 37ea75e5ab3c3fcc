"""A prefill runs in chunks of the engine's token budget (``max_prefill_tokens``): activation memory is one
chunk's, not the whole batch's prompts at once, and the prefill time is that of the forward passes the
budget splits it into (``tapeout.workload.chunks``, ``tapeout.system.chunked``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.errors import TapeoutError
from tapeout.workload.scenario import DEFAULT_PREFILL_TOKENS


def _p(model: str, hw: str, **kw):
    kw.setdefault("tier", "roofline")
    return tapeout.predict(model, hw, **kw)


def test_default_budget_is_the_engines_default():
    # vLLM's OpenAI server on >= 70 GiB GPUs and TensorRT-LLM's max_num_tokens both default to 8192 tokens
    assert DEFAULT_PREFILL_TOKENS == 8192


def test_activations_stop_growing_with_the_batch_once_prompts_exceed_the_budget():
    kw = dict(input_len=1024, output_len=16)
    a8, a64, a256 = (_p("llama-2-7b", "a100-sxm-80gb", batch=b, **kw).memory.activation_bytes for b in (8, 64, 256))
    assert a64 == pytest.approx(a8)  # 8 x 1024 tokens = the budget: same pass from batch 8 on
    assert a256 == pytest.approx(a8)
    # below the budget the activations still grow with the tokens of the pass
    assert _p("llama-2-7b", "a100-sxm-80gb", batch=2, **kw).memory.activation_bytes < a8 / 3
    # unchunked (a static engine's whole-batch context phase) they grow with the batch: 256 / 8 = 32x
    whole = _p("llama-2-7b", "a100-sxm-80gb", batch=256, max_prefill_tokens=None, **kw)
    assert whole.memory.activation_bytes == pytest.approx(32 * a8, rel=0.02)


def test_the_budget_bounds_memory_and_sets_the_passes():
    kw = dict(batch=64, input_len=1024, output_len=16)
    small = _p("llama-2-7b", "a100-sxm-80gb", max_prefill_tokens=2048, **kw)
    big = _p("llama-2-7b", "a100-sxm-80gb", **kw)
    assert small.tpot_s == big.tpot_s
    # 32 passes instead of 8: each reads the weights and launches its kernels again; the work is the same
    assert big.ttft_s < small.ttft_s < 1.1 * big.ttft_s
    # both passes carry the 64 x 1024-token prompts at a quarter and an eighth of the tokens
    assert small.memory.activation_bytes == pytest.approx(big.memory.activation_bytes / 4, rel=0.02)


@pytest.mark.parametrize("tier", ["roofline", "tiled"])
def test_a_pass_of_one_whole_prompt_is_a_batch_one_prefill(tier):
    # budget = one prompt: 8 passes, each exactly the prefill of one prompt (its tokens, its attention, its
    # lm_head); nothing is shared between passes
    eight = _p("llama-2-7b", "a100-sxm-80gb", batch=8, input_len=1024, output_len=2, max_prefill_tokens=1024,
               tier=tier)
    one = _p("llama-2-7b", "a100-sxm-80gb", batch=1, input_len=1024, output_len=2, tier=tier)
    assert eight.ttft_s == pytest.approx(8 * one.ttft_s, rel=1e-9)


def test_a_budget_that_holds_the_batch_is_one_pass():
    kw = dict(batch=4, input_len=2048, output_len=4)
    assert _p("llama-2-7b", "a100-sxm-80gb", max_prefill_tokens=8192, **kw).ttft_s == \
        _p("llama-2-7b", "a100-sxm-80gb", max_prefill_tokens=None, **kw).ttft_s


def test_chunks_of_one_prompt_attend_to_its_cached_tokens():
    # a 32k prompt in 8 chunks: chunk i's queries meet the 4096 i cached keys, read from the cache (fused
    # attention); the causal work is the whole prompt's. Eager (naive) attention computes each chunk's full
    # rectangle against the cache instead of the whole prompt's square: about half the score elements.
    kw = dict(batch=1, input_len=32_768, output_len=2)
    for attention, lo, hi in (("flash", 1.0, 1.1), ("naive", 0.5, 0.9)):
        chunked = _p("llama-2-7b", "a100-sxm-80gb", max_prefill_tokens=4096, attention=attention, **kw)
        whole = _p("llama-2-7b", "a100-sxm-80gb", max_prefill_tokens=None, attention=attention, **kw)
        assert lo * whole.ttft_s < chunked.ttft_s < hi * whole.ttft_s, attention
    rows = {o.name for o in chunked.result.prefill.ops}
    # one row per cached length, named by the tokens met (cached + new); the token ops merged over the passes
    assert {"attn_scores[0+4096]", "attn_scores[28672+4096]"} <= rows
    assert sum(o.count for o in chunked.result.prefill.ops if o.name == "qkv_proj") == 8 * 32
    assert sum(c.total_s for c in chunked.result.prefill.costs) == pytest.approx(chunked.ttft_s)


def test_a_single_prompt_longer_than_the_budget_is_chunked_too():
    long = _p("llama-2-7b", "a100-sxm-80gb", batch=1, input_len=32_768, output_len=2,
              max_prefill_tokens=4096)
    whole = _p("llama-2-7b", "a100-sxm-80gb", batch=1, input_len=32_768, output_len=2,
               max_prefill_tokens=None)
    assert long.memory.activation_bytes == pytest.approx(whole.memory.activation_bytes / 8, rel=0.02)
    # the KV pool reserves one chunk's activations, not the whole prompt's: it holds more tokens
    assert long.memory.kv_capacity_tokens > whole.memory.kv_capacity_tokens


def test_deepseek_v3_fp8_on_16_h100_at_batch_256_fits():
    """DeepSeek-V3 as shipped (fp8) on two HGX H100 nodes, data-parallel attention + EP16, 256 sequences of
    512 + 8 tokens per device: 131,072 prompt tokens per device run in 16 chunks of 8,192. Per device: the
    replicated non-expert weights and 16 of 256 routed experts per MoE layer, the latent cache of its 256
    sequences, one chunk's activations."""
    m = tapeout.load_model("deepseek-v3")
    p = _p(m, "h100-sxm", ep=16, batch=256, input_len=512, output_len=8)
    mem = p.memory
    expert = 3 * 7168 * 2048 * (1 + 4 / (128 * 128))  # fp8 gate/up/down, fp32 128 x 128 block scales
    assert mem.weights_bytes == pytest.approx(m.total_params() - 58 * 256 * 3 * 7168 * 2048
                                              + 58 * 16 * expert, rel=0.05)
    assert mem.weights_bytes == pytest.approx(60e9, rel=0.03)  # 671B fp8: ~42 GB of experts / 16 + ~19 GB replicated
    # the latent cache: (512 latent + 64 RoPE key) x 61 layers x 2 B = 70,272 B per token, bf16
    assert mem.kv_cache_bytes == pytest.approx(256 * 519 * 70_272)
    assert mem.activation_bytes < 3e9  # one 8,192-token chunk, not 131,072 tokens (~16x more)
    assert mem.total_bytes == pytest.approx(mem.weights_bytes + mem.kv_cache_bytes + mem.activation_bytes
                                            + mem.runtime_reserve_bytes)
    assert mem.fits and mem.total_bytes < 80 * 2**30
    assert p.result.concurrency == 256
    whole = _p(m, "h100-sxm", ep=16, batch=256, input_len=512, output_len=8, max_prefill_tokens=None)
    assert not whole.memory.fits and whole.memory.activation_bytes > 10 * mem.activation_bytes
    assert whole.ttft_s < p.ttft_s < 1.1 * whole.ttft_s  # 16 passes: the same work, weights read 16 times


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8192", True, 10**8])
def test_max_prefill_tokens_is_validated(bad):
    with pytest.raises(TapeoutError, match="max_prefill_tokens"):
        _p("llama-2-7b", "a100-sxm-80gb", max_prefill_tokens=bad)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 512), inp=st.integers(16, 16_384), budget=st.sampled_from([512, 2048, 8192, None]))
def test_the_largest_batch_fits_and_one_more_does_not(batch, inp, budget):
    kw = dict(tp=2, input_len=inp, output_len=32, max_prefill_tokens=budget)
    mb = _p("llama-2-13b", "a100-sxm-80gb", batch=batch, **kw).memory.max_batch
    assert mb > 0
    assert _p("llama-2-13b", "a100-sxm-80gb", batch=mb, **kw).memory.fits
    assert not _p("llama-2-13b", "a100-sxm-80gb", batch=mb + 1, **kw).memory.fits


@settings(max_examples=200, deadline=None)
@given(batch=st.integers(1, 64), input_len=st.integers(1, 5000), budget=st.integers(1, 20_000))
def test_passes_cover_every_prompt_token_once(batch, input_len, budget):
    from tapeout.workload.chunks import prefill_passes

    passes = prefill_passes(batch, input_len, budget)
    assert sum(p.tokens * p.repeat for p in passes) == batch * input_len
    assert sum(p.heads * p.repeat for p in passes) == batch  # every prompt yields its first token once
    assert sum(p.repeat for p in passes if p.tokens) == -(-batch * input_len // min(budget, batch * input_len))
    for p in passes:
        assert p.repeat >= 1 and 0 <= p.tokens <= budget
        assert sum(n * c for n, c, _ in p.segments) == p.tokens
        assert all(n >= 1 and c >= 1 and c + prior <= input_len for n, c, prior in p.segments)


def test_sampled_passes_price_like_every_pass(monkeypatch):
    """Beyond MAX_KINDS kinds of pass, runs of consecutive passes are stood for by their middle one: the
    prefill time stays within 1 % of pricing every kind."""
    from tapeout.system.compose import clear_caches
    from tapeout.workload import chunks

    kw = dict(batch=300, input_len=777, output_len=2, max_prefill_tokens=2048, tier="roofline")
    assert len(chunks.prefill_passes(300, 777, 2048)) > chunks.MAX_KINDS  # 113 full passes, 777 kinds
    sampled = _p("llama-2-7b", "a100-sxm-80gb", **kw).ttft_s
    monkeypatch.setattr(chunks, "MAX_KINDS", 10_000)
    clear_caches()
    exact = _p("llama-2-7b", "a100-sxm-80gb", **kw).ttft_s
    clear_caches()
    assert sampled == pytest.approx(exact, rel=0.01)
