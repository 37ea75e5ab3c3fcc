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
