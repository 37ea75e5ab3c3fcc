"""Two-batch overlap of wide expert parallelism (system/overlap.py, docs/wide-ep.md): two micro-batches, one's
all-to-alls under the other's compute, on a compute and a communication stream."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tapeout
from tapeout.api import predict
from tapeout.cli import app
from tapeout.errors import TapeoutError
from tapeout.system.overlap import (
    DEEPEP_NORMAL_SMS, Stages, micro_batches, schedule, schedule_contended, schedule_shared,
)
from tapeout.workload.ops import OpKind

V3, H100 = "deepseek-v3", "h100-sxm"
#: the LMSYS blog's decode and prefill setups on H100 (EP72, 256 sequences per GPU at 2,000 tokens; EP32,
#: 16,384 tokens per device of 4,096-token prompts in one pass)
DECODE = dict(batch=256, input_len=2000, output_len=2, tp=1, ep=72, kv_cache="bf16")
PREFILL = dict(batch=4, input_len=4096, output_len=1, tp=1, ep=32, kv_cache="bf16", max_prefill_tokens=16384)

seconds = st.floats(0.0, 10.0, allow_nan=False)
stage_sets = st.builds(Stages, pre=seconds, attn=seconds, dispatch=seconds, experts=seconds, combine=seconds,
                       head=seconds, layers=st.integers(0, 12))


def _serial(s: Stages) -> float:
    return float(s.compute + s.communication)


@given(a=stage_sets, b=stage_sets, layers=st.integers(0, 12))
@settings(max_examples=300, deadline=None)
def test_the_schedule_lies_between_the_busiest_stream_and_the_micro_batches_back_to_back(a, b, layers):
    a = Stages(a.pre, a.attn, a.dispatch, a.experts, a.combine, a.head, layers)
    b = Stages(b.pre, b.attn, b.dispatch, b.experts, b.combine, b.head, layers)
    t = float(schedule(a, b))
    tol = 1e-9 * (1 + _serial(a) + _serial(b))
    # never slower than one micro-batch after the other, never faster than either stream's own work
    assert t <= _serial(a) + _serial(b) + tol
    assert t >= float(a.compute + b.compute) - tol
    assert t >= float(a.communication + b.communication) - tol
    # free all-to-alls: the compute stream never waits
    free = [Stages(s.pre, s.attn, 0.0, s.experts, 0.0, s.head, layers) for s in (a, b)]
    assert float(schedule(*free)) == pytest.approx(float(free[0].compute + free[1].compute), rel=1e-12, abs=1e-12)
    assert float(schedule(a, None)) == pytest.approx(_serial(a), rel=1e-12, abs=1e-12)


@given(a=stage_sets, b=stage_sets, layers=st.integers(0, 12), rate=st.floats(0.05, 1.0))
@settings(max_examples=300, deadline=None)
def test_a_compute_stream_slowed_under_communication_costs_at_most_what_it_overlaps(a, b, layers, rate):
    a = Stages(a.pre, a.attn, a.dispatch, a.experts, a.combine, a.head, layers)
    b = Stages(b.pre, b.attn, b.dispatch, b.experts, b.combine, b.head, layers)
    free, serial = float(schedule(a, b)), _serial(a) + _serial(b)
    tol = 1e-9 * (1 + serial)
    # the event simulation is the closed-form schedule when nothing slows the compute
    t1, lost1 = schedule_shared(a, b, 1.0)
    assert t1 == pytest.approx(free, rel=1e-9, abs=1e-9) and lost1 == pytest.approx(0.0, abs=tol)
    t, lost = schedule_shared(a, b, rate)
    comm = float(a.communication + b.communication)
    # slower than the free overlap, never slower than one micro-batch after the other; the compute loses at most
    # (1 - rate) of the time it runs beside an all-to-all, which is at most the all-to-alls' seconds
    assert free - tol <= t <= serial + tol
    assert 0.0 <= lost <= comm * (1.0 - rate) + tol
    assert t >= float(a.compute + b.compute) + lost - tol


def test_balanced_stages_hide_the_communication_behind_the_compute():
    # per layer 1 s of compute per stage and 1 s per all-to-all: the streams alternate without a gap once filled,
    # 4 s per layer, plus the first micro-batch's first compute stage before any all-to-all and the last combine
    s = Stages(pre=0.0, attn=1.0, dispatch=1.0, experts=1.0, combine=1.0, head=0.0, layers=10)
    assert schedule(s, s) == pytest.approx(4 * 10 + 1)
    assert _serial(s) * 2 == 80


def test_micro_batches_split_the_sequences_and_the_pass():
    sc = predict(V3, H100, tier="roofline", two_batch_overlap=True, **PREFILL).scenario
    a, b = micro_batches(sc)
    assert (a.batch, b.batch) == (2, 2) and a.max_prefill_tokens == b.max_prefill_tokens == 8192
    assert not a.two_batch_overlap and not b.two_batch_overlap
    odd = predict(V3, H100, tier="roofline", two_batch_overlap=True, **{**DECODE, "batch": 255}).scenario
    assert [m.batch for m in micro_batches(odd)] == [128, 127]
    one = predict(V3, H100, tier="roofline", two_batch_overlap=True, **{**DECODE, "batch": 1}).scenario
    assert micro_batches(one)[1] is None


@pytest.fixture(scope="module")
def runs():
    """Both blog setups with and without TBO, and their micro-batches alone (roofline: fast)."""
    out = {}
    for name, kw in (("decode", DECODE), ("prefill", PREFILL)):
        half = {**kw, "batch": kw["batch"] // 2}
        if "max_prefill_tokens" in kw:
            half["max_prefill_tokens"] = kw["max_prefill_tokens"] // 2
        out[name] = {
            "tbo": tapeout.predict(V3, H100, tier="roofline", two_batch_overlap=True, **kw),
            "plain": tapeout.predict(V3, H100, tier="roofline", **kw),
            "half": tapeout.predict(V3, H100, tier="roofline", **half),
        }
    return out


def _phase(p, name):
    return p.result.prefill if name == "prefill" else p.result.decode_representative


def _time(p, name):
    return p.ttft_s if name == "prefill" else p.result.decode_representative.time_s


@pytest.mark.parametrize("name", ["decode", "prefill"])
def test_a_step_between_its_compute_and_its_micro_batches_back_to_back(runs, name):
    r = runs[name]
    ph = _phase(r["tbo"], name)
    half = _phase(r["half"], name)
    t = _time(r["tbo"], name)
    # the micro-batch of half the sequences run twice, one after the other: the slowest TBO can be
    assert t <= 2 * _time(r["half"], name) * (1 + 1e-9)
    compute = sum(c.total_s for o, c in zip(half.ops, half.costs) if o.kind is not OpKind.ALLTOALL)
    assert t >= 2 * compute * (1 - 1e-9)
    # the rows are both micro-batches' ops; their compute plus the all-to-alls' exposed seconds is the step
    names = [o.name for o in ph.ops]
    assert sum(n.startswith("mb0/") for n in names) == sum(n.startswith("mb1/") for n in names) == len(half.ops)
    exposed = sum(c.terms["tbo_exposed_s"] if o.kind is OpKind.ALLTOALL else c.total_s
                  for o, c in zip(ph.ops, ph.costs))
    assert exposed == pytest.approx(t, rel=1e-9)
    a2a = [c for o, c in zip(ph.ops, ph.costs) if o.kind is OpKind.ALLTOALL]
    assert a2a and all(0.0 <= c.terms["tbo_hidden_fraction"] <= 1.0 for c in a2a)
    d = r["tbo"].to_dict()["phases"]["prefill" if name == "prefill" else "decode"]
    assert 0.0 <= d["all_to_all_exposed_s"] < d["all_to_all_s"]


def test_free_all_to_alls_give_the_micro_batches_compute_back_to_back():
    hw = tapeout.load_hardware(H100)
    fast = hw.model_copy(update={
        "interconnect": hw.interconnect.model_copy(update={"bandwidth_gbps_per_direction": 1e9}),
        "scale_out": hw.scale_out.model_copy(update={"bandwidth_gbps_per_direction": 1e9})})
    eff = {"collective_latency_us": 0.0, "launch_overhead_us": 0.0, "prefill_host_overhead_us": 0.0}
    kw = {**DECODE, "batch": 64}
    tbo = tapeout.predict(V3, fast, tier="roofline", efficiency=eff, two_batch_overlap=True, **kw)
    # a micro-batch: half the sequences, half the engine's pass of 8,192 tokens
    half = tapeout.predict(V3, fast, tier="roofline", efficiency=eff, **{**kw, "batch": 32, "max_prefill_tokens": 4096})
    d = half.to_dict()["phases"]  # the all-to-alls cost (next to) nothing
    assert d["prefill"]["all_to_all_s"] < 1e-6 * half.ttft_s and d["decode"]["all_to_all_s"] < 1e-6 * half.tpot_s
    assert tbo.tpot_s == pytest.approx(2 * half.tpot_s, rel=1e-6)
    assert tbo.ttft_s == pytest.approx(2 * half.ttft_s, rel=1e-6)


def test_a_batch_of_one_is_not_split():
    kw = {**DECODE, "batch": 1, "input_len": 512}
    a = tapeout.predict(V3, H100, tier="roofline", two_batch_overlap=True, **kw)
    b = tapeout.predict(V3, H100, tier="roofline", **kw)
    assert a.tpot_s == pytest.approx(b.tpot_s, rel=1e-12) and a.ttft_s == pytest.approx(b.ttft_s, rel=1e-12)


def test_the_blogs_decode_ablation_has_the_same_sign():
    """LMSYS (the blog's "Ablation Study: Two-batch Overlap"): TBO speeds decode up by 25.5 % at 256 tokens per
    device and slows it by 27 % at 32. An independent check: nothing here is fitted to it."""
    speedup = {}
    for b in (32, 256):
        kw = {**DECODE, "batch": b}
        speedup[b] = (tapeout.predict(V3, H100, **kw).tpot_s
                      / tapeout.predict(V3, H100, two_batch_overlap=True, **kw).tpot_s)
    assert speedup[256] > 1.0 > speedup[32]


@pytest.mark.parametrize("kw, needle", [
    ({}, "two_batch_overlap needs wide expert parallelism"),
    ({"tp": 8, "ep": 8}, "two_batch_overlap needs wide expert parallelism"),
])
def test_tbo_without_wide_ep_is_a_one_line_error(kw, needle):
    with pytest.raises(TapeoutError, match=needle) as e:
        tapeout.predict(V3, H100, two_batch_overlap=True, **kw)
    assert "\n" not in str(e.value)
    with pytest.raises(TapeoutError, match="two_batch_overlap"):
        tapeout.predict(V3, H100, two_batch_overlap="yes", ep=16)
    with pytest.raises(TapeoutError, match=needle) as s:  # the simulator's is the same line
        tapeout.simulate(V3, H100, two_batch_overlap=True, **kw)
    assert str(s.value) == str(e.value)


def test_cli_option_and_its_error():
    runner = CliRunner()
    base = ["predict", "--model", V3, "--hardware", H100, "--batch", "8", "--input-len", "256", "--output-len", "2"]
    r = runner.invoke(app, base + ["--two-batch-overlap", "true"])
    assert r.exit_code == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "two_batch_overlap" in lines[0]
    r = runner.invoke(app, base + ["--ep", "16", "--two-batch-overlap", "true"])
    assert r.exit_code == 0, r.output
    assert "two-batch overlap" in r.stdout


def test_prefill_compute_loses_the_sms_deepeps_normal_kernels_hold():
    """DeepEP's normal kernels run on Buffer.num_sms = 20 SMs (deep_ep/buffer.py); the H100 has 132 (whitepaper):
    the prefill's overlapped compute runs on 112 of them. Decode's low-latency kernels hold none."""
    assert DEEPEP_NORMAL_SMS == 20
    hw = tapeout.load_hardware(H100)
    assert hw.sm_count == 132
    tbo = tapeout.predict(V3, H100, tier="roofline", two_batch_overlap=True, **PREFILL)
    ph = tbo.result.prefill
    a2a = [c for o, c in zip(ph.ops, ph.costs) if o.kind is OpKind.ALLTOALL]
    assert all("20 of 132 SMs" in c.terms["tbo_contention"] for c in a2a)
    lost = sum(c.terms["tbo_contention_s"] for c in a2a)
    assert lost > 0
    # without the SM count the contention is not priced, and the rows say so
    bare = tapeout.predict(V3, hw.model_copy(update={"sm_count": None}), tier="roofline", two_batch_overlap=True,
                           **PREFILL)
    bph = bare.result.prefill
    assert all("not priced" in c.terms["tbo_contention"] for o, c in zip(bph.ops, bph.costs)
               if o.kind is OpKind.ALLTOALL)
    # the lost compute lengthens the step by at most itself (a slower compute stream waits less for the all-to-alls)
    assert bare.ttft_s < tbo.ttft_s <= (bare.ttft_s + lost) * (1 + 1e-9)
    dec = tapeout.predict(V3, H100, tier="roofline", two_batch_overlap=True, **DECODE).result.decode_representative
    assert all("low-latency kernels hold no SMs" in c.terms["tbo_contention"]
               for o, c in zip(dec.ops, dec.costs) if o.kind is OpKind.ALLTOALL)


@given(a=stage_sets, b=stage_sets, layers=st.integers(0, 12),
       rates=st.fixed_dictionaries({k: st.floats(0.05, 1.0) for k in ("dispatch", "combine")}))
@settings(max_examples=150, deadline=None)
def test_a_rate_per_communication_stage_lies_between_free_and_the_slowest(a, b, layers, rates):
    a = Stages(a.pre, a.attn, a.dispatch, a.experts, a.combine, a.head, layers)
    b = Stages(b.pre, b.attn, b.dispatch, b.experts, b.combine, b.head, layers)
    t, lost = schedule_contended(a, b, lambda mb, stage, cmb, comm: rates[comm])
    tol = 1e-9 * (1 + _serial(a) + _serial(b))
    assert schedule_contended(a, b, lambda *_: 1.0)[0] == pytest.approx(float(schedule(a, b)), abs=tol)
    assert float(schedule(a, b)) - tol <= t <= float(schedule(a, b)) + lost + tol
    assert schedule_shared(a, b, min(rates.values()))[0] >= t - tol  # the slowest rate throughout: no faster


def test_the_all_to_alls_hbm_traffic_slows_the_overlapped_dram_stream():
    """Every byte an all-to-all's links carry is read from the sender's HBM and written into the receiver's (a
    device receives what it sends): while one runs, the other micro-batch's DRAM stream has the rest of the
    3.35 TB/s. Decode's low-latency kernels hold no SMs, so that is all its overlapped compute loses."""
    hw = tapeout.load_hardware(H100)
    dec = tapeout.predict(V3, H100, tier="roofline", two_batch_overlap=True, **DECODE).result.decode_representative
    pairs = list(zip(dec.ops, dec.costs))
    a2a = [c for o, c in pairs if o.kind is OpKind.ALLTOALL]
    assert all(c.terms["hbm_bytes"] == pytest.approx(2 * c.terms["wire_bytes"]) for c in a2a)
    assert all("HBM traffic" in c.terms["tbo_contention"] for c in a2a)
    share = max(c.terms["hbm_bytes"] / c.time_s / hw.memory_bandwidth for c in a2a)
    assert 0.0 < share < 0.1  # links of tens of GB/s against HBM of thousands
    memory = sum(c.memory_s * o.count for o, c in pairs if o.kind is not OpKind.ALLTOALL)
    lost = sum(c.terms["tbo_contention_s"] for c in a2a)
    # the DRAM stream slowed by 1 / (1 - share) at most, and only while an all-to-all runs beside it
    assert 0.0 < lost <= memory * share / (1 - share) * (1 + 1e-9)
