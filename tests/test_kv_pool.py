"""The engine's KV pool limits how many sequences run at once (issue: large-batch throughput)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.errors import TapeoutError


def _p(batch: int, **kw):
    args = dict(tp=4, input_len=2048, output_len=2048, tier="roofline")
    args.update(kw)
    return tapeout.predict("llama-2-70b", "a100-sxm-80gb", batch=batch, **args)


def test_llama2_70b_kv_bytes_per_token_is_the_published_architecture():
    # Llama-2-70B: 80 layers, 8 KV heads of 128 (GQA), fp16: 2 x 80 x 8 x 128 x 2 B = 327,680 B per token,
    # a quarter of it per device under TP4
    assert _p(1).memory.kv_cache_bytes_per_token == 327_680 / 4


def test_a_batch_that_fits_runs_whole():
    p = _p(16)
    assert p.memory.fits and p.result.concurrency == 16


def test_a_batch_beyond_the_pool_runs_in_waves():
    small, big = _p(64), _p(1024)
    c = big.result.concurrency
    assert 0 < c < 1024 and not big.memory.fits
    # the sequences running at once fit the pool at their final context
    assert c * (2048 + 2048 - 1) <= big.memory.kv_capacity_tokens
    assert (c + 1) * (2048 + 2048 - 1) > big.memory.kv_capacity_tokens
    # the first wave is a batch of c: same step times as asking for c directly
    direct = _p(c)
    assert big.tpot_s == pytest.approx(direct.tpot_s, rel=1e-9)
    assert big.ttft_s == pytest.approx(direct.ttft_s, rel=1e-9)
    # throughput is capped near the concurrency's rate, far below what 1024 at once would give
    assert big.throughput_tok_s <= direct.throughput_tok_s * 1.0001
    assert big.throughput_tok_s > small.throughput_tok_s
    # finishing 1024 sequences takes about 1024 / c first-wave latencies
    assert big.e2e_latency_s > (1024 // c) * direct.e2e_latency_s


def test_a_smaller_pool_share_admits_fewer_sequences():
    assert _p(1024, kv_fraction=0.5).result.concurrency < _p(1024).result.concurrency


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_kv_fraction_is_validated(bad):
    with pytest.raises(TapeoutError, match="kv_fraction"):
        _p(1, kv_fraction=bad)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3000), inp=st.integers(1, 8192), out=st.integers(1, 4096))
def test_concurrent_sequences_never_exceed_the_pool(batch, inp, out):
    p = tapeout.predict("llama-3-8b", "l40s", batch=batch, input_len=inp, output_len=out, tier="roofline")
    c = p.result.concurrency
    assert 1 <= c <= batch
    if c < batch:
        assert c * (inp + out - 1) <= p.memory.kv_capacity_tokens
    assert p.throughput_tok_s > 0 and p.e2e_latency_s >= p.ttft_s
