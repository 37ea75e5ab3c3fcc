"""Redundant experts (EPLB): their placement, the busiest device's load, their memory and the option's errors
(workload/eplb.py, docs/wide-ep.md)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.errors import TapeoutError
from tapeout.workload.build import expert_load
from tapeout.workload.eplb import busiest_device_load, placement

V3, H100 = "deepseek-v3", "h100-sxm"


def test_placement_fills_every_device_as_the_v3_report_says():
    # DeepSeek-V3 report 3.4: 32 redundant experts over the 32 prefill GPUs, "each GPU hosts 8 + 1 experts"
    kinds = placement(256, 32, 32)
    assert sum(n for _, n in kinds) == 32
    assert all(len(dev) == 9 for dev, _ in kinds)
    # every expert's copies add up to one expert: 256 experts' worth, 8 per device (uniform expected load)
    assert all(sum(1 / c for c in dev) == pytest.approx(8) for dev, _ in kinds)
    # 256 experts over 72 devices cannot be even: 288 copies, 4 per device, some devices 4 whole experts
    kinds72 = dict(placement(256, 32, 72))
    assert sum(kinds72.values()) == 72
    assert max(sum(1 / c for c in dev) for dev in kinds72) == 4


@pytest.mark.parametrize("redundant, ep", [(0, 32), (32, 32), (256, 16), (32, 72)])
def test_busiest_load_matches_sampling(redundant, ep):
    # the convolved distribution against sampling the same model: each expert active with p, its copies sharing it
    rng = np.random.default_rng(0)
    p = 0.35
    kinds = placement(256, redundant, ep)
    devices = [dev for dev, n in kinds for _ in range(n)]
    draws = 20000
    loads = np.stack([sum(rng.binomial(1, p, draws) / c for c in dev) for dev in devices])
    assert busiest_device_load(256, redundant, ep, p) == pytest.approx(loads.max(axis=0).mean(), rel=0.01)


def _imbalance(tokens, ep, redundant):
    from tapeout.workload.build import expected_active_experts
    _, load, _ = expert_load(256, 8, ep, tokens, redundant)
    return load * ep / expected_active_experts(256, 8, tokens)


@given(ep=st.sampled_from([8, 16, 32, 64]), j=st.integers(0, 7), tokens=st.integers(1, 4096))
@settings(max_examples=120, deadline=None)
def test_imbalance_falls_toward_one_with_replicas_and_tokens(ep, j, tokens):
    r = ep * j  # every device gets as many copies
    f = _imbalance(tokens, ep, r)
    assert f >= 1.0 - 1e-9
    assert _imbalance(tokens, ep, r + ep) <= f + 1e-9  # more replicas: no busier
    assert _imbalance(tokens * 2, ep, r) <= f + 1e-9  # more tokens: no busier
    assert _imbalance(10 ** 7, ep, r) == pytest.approx(1.0, abs=1e-6)  # every expert active: balanced


def _moe_rows(p):
    ph = p.result.decode_representative
    return [(o, c) for o, c in zip(ph.ops, ph.costs) if o.name.split("[")[0] in ("moe_gate_up", "ep_dispatch")]


def test_replicas_take_memory_and_rows_state_the_imbalance():
    kw = dict(tp=1, ep=32, batch=4, input_len=1024, output_len=2)
    plain = tapeout.predict(V3, H100, **kw)
    eplb = tapeout.predict(V3, H100, redundant_experts=32, **kw)
    # one more expert per device in each of the 58 MoE layers: gate, up and down, 7168 x 2048 fp8 each
    one_expert = 58 * 3 * 7168 * 2048
    assert eplb.memory.weights_bytes - plain.memory.weights_bytes == pytest.approx(one_expert, rel=0.01)
    assert eplb.to_dict()["inputs"]["redundant_experts"] == 32
    for p, word in ((plain, "uniform routing"), (eplb, "32 redundant experts")):
        rows = _moe_rows(p)
        assert {o.name.split("[")[0] for o, _ in rows} == {"moe_gate_up", "ep_dispatch"}
        for _, c in rows:
            assert c.terms["expert_imbalance"] >= 1.0
            assert word in c.terms["expert_imbalance_basis"]
    # at 256 sequences on EP72 every expert is active; 8 devices hold 4 whole experts (256 / 72 = 3.56 on average)
    big = tapeout.predict(V3, H100, tp=1, ep=72, batch=256, input_len=2000, output_len=2, redundant_experts=32)
    assert _moe_rows(big)[0][1].terms["expert_imbalance"] == pytest.approx(4 * 72 / 256, rel=1e-6)


def test_redundant_experts_errors_name_the_field():
    with pytest.raises(TapeoutError, match="redundant_experts=30: ep=72 must divide .* allowed: 32, 104"):
        tapeout.predict(V3, H100, tp=1, ep=72, redundant_experts=30)
    with pytest.raises(TapeoutError, match="redundant_experts=8 needs whole experts per device"):
        tapeout.predict(V3, H100, tp=8, redundant_experts=8)
    with pytest.raises(TapeoutError, match="redundant_experts"):
        tapeout.predict(V3, H100, tp=1, ep=32, redundant_experts=-32)
