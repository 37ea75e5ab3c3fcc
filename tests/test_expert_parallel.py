"""Expert parallelism of MoE layers: whole experts per device, the busiest device sets the step."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.errors import TapeoutError
from tapeout.workload.build import busiest_device_experts

MIX, H100 = "mixtral-8x7b", "h100-sxm"


@given(local=st.integers(1, 16), p=st.floats(0.0, 1.0), ep=st.integers(1, 16))
@settings(max_examples=200, deadline=None)
def test_busiest_device_is_between_the_mean_and_all_its_experts(local, p, ep):
    m = busiest_device_experts(local, p, ep)
    assert local * p - 1e-9 <= m <= local + 1e-9
    assert busiest_device_experts(local, p, ep + 1) >= m - 1e-12  # more devices, a busier busiest one


def _moe_ops(p, phase="decode"):
    ph = p.result.prefill if phase == "prefill" else p.result.decode_representative
    return [(o, c) for o, c in zip(ph.ops, ph.costs) if o.name in ("moe_gate_up", "moe_down")]


def test_experts_spread_over_the_tp_devices():
    sliced = tapeout.predict(MIX, H100, tp=8, batch=1, input_len=128, output_len=8)
    spread = tapeout.predict(MIX, H100, tp=8, ep=8, batch=1, input_len=128, output_len=8)
    assert spread.to_dict()["inputs"]["ep"] == 8
    # the same weights per device (8 experts over 8 devices), whole experts instead of slices
    assert spread.memory.weights_bytes == pytest.approx(sliced.memory.weights_bytes, rel=1e-3)
    o_sliced = dict(_moe_ops(sliced))
    o_spread = dict(_moe_ops(spread))
    up_s = next(o for o in o_sliced if o.name == "moe_gate_up")
    up_e = next(o for o in o_spread if o.name == "moe_gate_up")
    assert up_e.dims()["n"] == 8 * up_s.dims()["n"]  # a whole expert's gate+up rows
    # batch 1 decode: two experts are active; the device holding one streams all of it, while slicing
    # spreads the two over every device: expert parallelism is slower here
    assert spread.tpot_s > sliced.tpot_s
    # a long prefill hits every expert: the same MoE FLOPs per device either way
    big = [tapeout.predict(MIX, H100, tp=8, ep=e, batch=8, input_len=2048, output_len=2) for e in (1, 8)]
    fl = [sum(o.flops * o.count for o, _ in _moe_ops(p, "prefill")) for p in big]
    assert fl[1] == pytest.approx(fl[0], rel=0.02)


def test_expert_parallel_errors_name_the_field():
    with pytest.raises(TapeoutError, match="ep"):
        tapeout.predict("llama-2-7b", H100, tp=2, ep=2)  # dense model
    with pytest.raises(TapeoutError, match="ep"):
        tapeout.predict(MIX, H100, tp=8, ep=4)  # ep must be 1 or tp


# ---- wide expert parallelism: data-parallel attention, ep > tp (docs/wide-ep.md) ----------------------------
def test_wide_ep_rules():
    with pytest.raises(TapeoutError, match="tp = 1"):
        tapeout.predict(MIX, H100, tp=2, ep=4)  # attention TP inside data-parallel groups: not modelled
    with pytest.raises(TapeoutError, match="pp"):
        tapeout.predict(MIX, H100, ep=4, pp=2)
    with pytest.raises(TapeoutError, match="exceeds mixtral-8x7b's 8 experts"):
        tapeout.predict(MIX, H100, ep=16)
    with pytest.raises(TapeoutError, match="scale_out"):  # 2 nodes of 8 A100s: no scale-out link in its spec
        tapeout.predict("deepseek-v2-lite", "a100-sxm-80gb", ep=16, batch=1, input_len=64, output_len=2)


def test_deepseek_v3_over_two_h100_nodes():
    """DeepSeek-V3 as shipped (fp8) on 16 H100s: data-parallel attention, EP16. Each device holds the
    non-expert weights and 16 of the 256 routed experts per MoE layer; the all-to-alls cross the NICs."""
    m = tapeout.load_model("deepseek-v3")
    for batch in (1, 256):
        p = tapeout.predict(m, H100, ep=16, batch=batch, input_len=512, output_len=8, tier="roofline")
        d = p.to_dict()
        assert d["inputs"]["dp_attention"] == 16 and d["model_info"]["mla_forms"]["decode"] == "absorbed"
        assert d["phases"]["decode"]["all_to_all_s"] > 0
        per_layer_expert = 3 * 7168 * 2048  # fp8 weights, plus 128 x 128 block scales
        experts = 58 * 16 * per_layer_expert
        others = m.total_params() - 58 * 256 * per_layer_expert
        assert p.memory.weights_bytes == pytest.approx(experts + others, rel=0.05)
        assert p.memory.kv_cache_bytes == pytest.approx(batch * 519 * 70_272)
    ops = {o.name: o for o in p.result.decode_steps[0].ops}
    assert ops["ep_dispatch"].group == 16 and ops["ep_dispatch"].count == 58
    assert ops["ep_dispatch"].message_bytes == pytest.approx(256 * 8 * 7168 * (1 + 4 / 128))  # fp8 + 1x128 scales
    assert ops["ep_combine"].message_bytes == 256 * 8 * 7168 * 2
    assert "tp_allreduce" not in ops  # attention runs on one device


def test_alltoall_crosses_the_scale_out_link_beyond_a_node():
    from tapeout.perf import estimate
    from tapeout.workload.ops import OpKind
    from tapeout.workload.standalone import collective_op

    hw = tapeout.load_hardware(H100)
    size = 64e6
    one, two = (estimate(collective_op(OpKind.ALLTOALL, size, g), hw, "roofline") for g in (8, 16))
    eta = hw.efficiency.interconnect_eta
    assert one.network_s == pytest.approx(size * 7 / 8 / (450e9 * eta))  # NVLink only
    # 16 devices: 7/16 of the bytes over NVLink, 8/16 over the 50 GB/s NIC at the same time; the NIC is slower
    assert two.network_s == pytest.approx(size * 8 / 16 / (50e9 * eta))
    assert two.terms["bound_by"] == "scale-out" and two.terms["nodes"] == 2
    tiled = estimate(collective_op(OpKind.ALLTOALL, size, 16), hw, "tiled")
    assert tiled.network_s >= size * 8 / 16 / 50e9 and tiled.terms["bound_by"] == "scale-out"  # <= line rate


def test_wide_ep_throughput_counts_every_group():
    """Sixteen data-parallel groups of batch b run in step: 16x the sequences of one group, at one group's
    TPOT; the step is slower than one device alone by the dispatch/combine and the busiest device's experts."""
    p = tapeout.predict("deepseek-v2-lite", H100, ep=8, batch=4, input_len=256, output_len=16, tier="roofline")
    r = p.result
    assert r.throughput_tok_s == pytest.approx(8 * 4 * 16 / (r.ttft_s + 15 * r.tpot_s))
