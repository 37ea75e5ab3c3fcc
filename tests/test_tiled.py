"""Tier "tiled": physical properties that catch real modelling bugs."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.hardware.catalog import load_hardware
from tapeout.perf import TIERS, estimate, roofline
from tapeout.perf import tiled
from tapeout.perf.tiled import attention, collective, elementwise, mapper
from tapeout.perf.tiled.device import device, with_dev
from tapeout.workload.ops import Kernel, Op, OpKind
from tapeout.workload.standalone import (attention_op, bmm_op, collective_op, elementwise_op, gemm_op, norm_op,
                                         softmax_op)

DEVICES = ("a100-sxm-80gb", "h100-sxm", "mi210")


def attn_op(b, h, kv, sq, skv, d, *, causal=True, decode=False, tags=()):
    e = 2.0
    if decode:
        flops = 4.0 * b * h * d * skv
        rd, wr = 2 * b * skv * kv * d * e + b * h * d * e, b * h * d * e
        t = ("decode",)
    else:
        pairs = b * sq * (sq + 1) / 2 if causal else b * sq * skv
        flops = 4.0 * h * d * pairs
        q = b * sq * h * d * e
        rd, wr = q + 2 * b * skv * kv * d * e, q
        t = ("flash",) + (("causal",) if causal else ())
    return Op(name="attention", kind=OpKind.ATTENTION, flops=flops, bytes_read=rd, bytes_written=wr,
              shape=(("b", b), ("heads", h), ("kv_heads", kv), ("sq", sq), ("skv", skv), ("d", d)),
              compute_dtype="fp16", formats=(("act", "fp16"), ("kv", "fp16")), tags=t + tuple(tags))


def with_microarch(hw, **changes):
    return hw.model_copy(update={"microarch": hw.microarch.model_copy(update=changes)})


def with_bandwidth(hw, factor):
    mem = hw.memory.model_copy(update={"bandwidth_gbps": hw.memory.bandwidth_gbps * factor})
    return hw.model_copy(update={"memory": mem})


def sample_ops(seed=0, n=40):
    rng = random.Random(seed)
    ops = []
    for _ in range(n):
        m, nn, k = rng.choice([1, 7, 64, 300, 2048, 8192]), rng.randint(64, 20000), rng.randint(64, 20000)
        ops.append(gemm_op(m, nn, k))
    ops += [bmm_op(64, 2048, 2048, 128), bmm_op(768, 1, 3072, 128), bmm_op(32, 512, 128, 512)]
    ops += [attn_op(2, 32, 8, 4096, 4096, 128), attn_op(8, 32, 8, 1, 8192, 128, decode=True),
            attn_op(1, 64, 8, 1, 2048, 128, decode=True), attn_op(4, 16, 16, 1024, 1024, 64, causal=False)]
    ops += [norm_op(4096, 8192), softmax_op(4096, 4096), softmax_op(64, 512),
            elementwise_op("gelu", OpKind.ELEMENTWISE, 1 << 24, 1 << 24, 8)]
    return ops


# ---- registry and fallback ----------------------------------------------------------------------


def test_tier_is_registered_and_named():
    assert "tiled" in TIERS
    c = estimate(gemm_op(512, 4096, 4096), load_hardware("a100-sxm-80gb"), "tiled")
    assert c.tier == "tiled" and c.time_s > 0
    assert c.terms["mapping"] and c.terms["model"] == "tiled GEMM mapper"


@pytest.mark.parametrize("name", ["gaudi2", "tpu-v5e", "gaudi3"])
def test_device_without_microarch_falls_back_to_roofline(name):
    hw = load_hardware(name)
    assert hw.microarch is None
    op = gemm_op(256, 4096, 4096, dtype="bf16")
    c, r = estimate(op, hw, "tiled"), roofline.estimate(op, hw)
    assert c.terms["model"] == "roofline fallback" and "micro-architecture" in c.terms["fallback"]
    assert c.time_s == pytest.approx(r.time_s)


def test_every_cost_of_a_model_names_its_mapping():
    p = tapeout.predict("llama-3-8b", "h100-sxm", tp=2, batch=4, input_len=512, output_len=8, tier="tiled")
    rows = p.ops()
    assert rows
    for r in rows:
        terms = r["terms"] or {}
        assert terms.get("mapping"), r["name"]


# ---- monotonicity: more hardware is never slower -------------------------------------------------


@pytest.mark.parametrize("name", DEVICES)
def test_more_cores_or_bandwidth_is_never_slower(name):
    hw = load_hardware(name)
    more_cores = with_microarch(hw, cores=hw.microarch.cores * 2)
    more_bw = with_bandwidth(hw, 2.0)
    for op in sample_ops():
        base = estimate(op, hw, "tiled").time_s
        assert estimate(op, more_cores, "tiled").time_s <= base * (1 + 1e-9), op
        assert estimate(op, more_bw, "tiled").time_s <= base * (1 + 1e-9), op


def test_faster_links_never_slow_a_collective():
    hw = load_hardware("a100-sxm-80gb")
    ic = hw.interconnect.model_copy(update={"bandwidth_gbps_per_direction": 600})
    fast = hw.model_copy(update={"interconnect": ic})
    for size in (2e3, 1e6, 64e6, 1e9):
        for p in (2, 4, 8):
            op = collective_op(OpKind.ALLREDUCE, size, p)
            assert estimate(op, fast, "tiled").time_s <= estimate(op, hw, "tiled").time_s * (1 + 1e-12)


# ---- wave quantization, padding ------------------------------------------------------------------


def _compute_only(dev):
    """The device with memory made free, so that only the matrix units matter."""
    return with_dev(dev, dram_bw=1e18, l2_bw=1e18, core_bw=1e18, latency=1e-15)


def test_wave_quantization_step_when_tiles_cross_a_multiple_of_the_cores():
    dev = _compute_only(device(load_hardware("a100-sxm-80gb")))
    cores = dev.cores
    n, k = 128 * cores, 8192  # one row of 128x128 tiles is exactly one wave
    t = {m: mapper.plan_gemm(dev, m, n, k, 1, "fp16", 2.0, 2.0, 2.0, tile=(128, 128)) for m in (128, 129, 256, 257)}
    assert t[128].waves == 1 and t[129].waves == 2 and t[256].waves == 2 and t[257].waves == 3
    assert t[129].time_s > 1.8 * t[128].time_s  # one more row of tiles: a whole extra wave
    assert t[256].time_s == pytest.approx(t[129].time_s, rel=0.02)  # the tail wave costs a full tile time
    assert t[257].time_s > 1.4 * t[256].time_s


def test_mapper_smooths_quantization_with_other_tiles():
    """The free search picks tiles that fill the cores better than a pinned tile."""
    dev = _compute_only(device(load_hardware("a100-sxm-80gb")))
    n = 128 * dev.cores
    pinned = mapper.plan_gemm(dev, 129, n, 8192, 1, "fp16", 2.0, 2.0, 2.0, tile=(128, 128))
    free = mapper.plan_gemm(dev, 129, n, 8192, 1, "fp16", 2.0, 2.0, 2.0)
    assert free.time_s < 0.8 * pinned.time_s


@pytest.mark.parametrize("name", ["a100-sxm-80gb", "h100-sxm"])
def test_m1_costs_a_full_instruction_tile_of_compute(name):
    dev = _compute_only(device(load_hardware(name)))
    im = dev.instr[0]
    t1 = mapper.plan_gemm(dev, 1, 8192, 8192, 1, "fp16", 2.0, 2.0, 2.0)
    tm = mapper.plan_gemm(dev, im, 8192, 8192, 1, "fp16", 2.0, 2.0, 2.0)
    assert t1.compute_s == pytest.approx(tm.compute_s, rel=1e-9)
    assert t1.tile_m >= im
    # one row more than an instruction tile needs more compute
    t2 = mapper.plan_gemm(dev, im + 1, 8192, 8192, 1, "fp16", 2.0, 2.0, 2.0)
    assert t2.time_s > tm.time_s


def test_candidates_respect_register_and_shared_memory_limits():
    for name in DEVICES:
        dev = device(load_hardware(name))
        c = mapper._candidates(dev, 1024.0, 2.0, 2.0, 2.0, 2.0, False, mapper.SPLITS)
        assert c.n > 50
        assert (c.st * c.stage_bytes * c.cta <= dev.smem + 1e-9).all()
        assert (c.bm * c.bn * 4.0 * c.cta <= 0.5 * dev.regs + 1e-9).all()
        assert (c.bm >= dev.instr[0]).all() and (c.bn >= dev.instr[1]).all()


def test_split_k_fills_the_machine_for_skinny_gemms_only():
    dev = device(load_hardware("a100-sxm-80gb"))
    skinny = mapper.plan_gemm(dev, 16, 1024, 16384, 1, "fp16", 2.0, 2.0, 2.0)
    big = mapper.plan_gemm(dev, 8192, 8192, 8192, 1, "fp16", 2.0, 2.0, 2.0)
    assert skinny.split_k > 1
    assert big.split_k == 1


# ---- bounds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEVICES)
def test_tiled_never_beats_the_roofline_bound_with_eta_one(name):
    hw = load_hardware(name)
    ideal = hw.with_efficiency(matmul_eta=1, attention_eta=1, memory_eta=1, vector_eta=1, vector_memory_eta=1,
                               launch_overhead_us=0, host_overhead_us=0)
    for op in sample_ops(seed=3):
        t = estimate(op, hw, "tiled").time_s
        bound = roofline.estimate(op, ideal)
        assert t >= max(bound.compute_s, bound.memory_s) * (1 - 1e-9), op


def test_cached_plans_are_reused_and_keyed_by_device():
    a = device(load_hardware("a100-sxm-80gb"))
    h = device(load_hardware("h100-sxm"))
    p1 = mapper.plan_gemm(a, 777, 4096, 4096, 1, "fp16", 2.0, 2.0, 2.0)
    assert mapper.plan_gemm(a, 777, 4096, 4096, 1, "fp16", 2.0, 2.0, 2.0) is p1
    assert mapper.plan_gemm(h, 777, 4096, 4096, 1, "fp16", 2.0, 2.0, 2.0).time_s < p1.time_s
    tiled.clear_caches()
    assert mapper.plan_gemm(a, 777, 4096, 4096, 1, "fp16", 2.0, 2.0, 2.0) is not p1


# ---- attention -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a100-sxm-80gb", "h100-sxm"])
def test_causal_prefill_is_about_half_the_full_square_at_long_sequence(name):
    hw = load_hardware(name)
    full = estimate(attn_op(1, 32, 32, 16384, 16384, 128, causal=False), hw, "tiled").time_s
    causal = estimate(attn_op(1, 32, 32, 16384, 16384, 128, causal=True), hw, "tiled").time_s
    assert 0.45 <= causal / full <= 0.6


def test_gqa_prefill_reads_less_kv_than_mha():
    hw = load_hardware("h100-sxm")
    mha = estimate(attn_op(4, 32, 32, 4096, 4096, 128), hw, "tiled")
    gqa = estimate(attn_op(4, 32, 8, 4096, 4096, 128), hw, "tiled")
    assert gqa.terms["dram_mb"] < mha.terms["dram_mb"]
    assert gqa.time_s <= mha.time_s


@pytest.mark.parametrize("name", DEVICES)
def test_decode_attention_is_bandwidth_bound(name):
    hw = load_hardware(name)
    dev = device(hw)
    op = attn_op(16, 32, 8, 1, 32768, 128, decode=True)
    c = estimate(op, hw, "tiled")
    kv = 2 * 16 * 32768 * 8 * 128 * 2.0
    assert c.bound == "memory"
    assert c.memory_s == pytest.approx(kv / (dev.dram_bw * dev.dram_eta), rel=0.02)
    assert c.time_s < 1.15 * kv / (dev.dram_bw * dev.dram_eta) + dev.launch * 3


def test_decode_splits_the_context_when_sequences_times_heads_are_few():
    hw = load_hardware("h100-sxm")
    few = estimate(attn_op(1, 8, 1, 1, 65536, 128, decode=True), hw, "tiled")
    many = estimate(attn_op(64, 32, 8, 1, 4096, 128, decode=True), hw, "tiled")
    assert few.terms["split_kv"] > 1
    assert many.terms["split_kv"] == 1


def test_fa2_path_is_slower_than_native_on_hopper_only():
    h100, a100 = load_hardware("h100-sxm"), load_hardware("a100-sxm-80gb")
    for hw, slower in ((h100, True), (a100, False)):
        fa3 = estimate(attn_op(2, 16, 16, 8192, 8192, 128), hw, "tiled").time_s
        fa2 = estimate(attn_op(2, 16, 16, 8192, 8192, 128, tags=("fa2",)), hw, "tiled").time_s
        assert (fa2 > 1.2 * fa3) if slower else (fa2 >= fa3)


# ---- elementwise -------------------------------------------------------------------------------


def test_small_tensors_do_not_reach_peak_bandwidth():
    hw = load_hardware("a100-sxm-80gb")
    rates = []
    for n in (1 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 28):
        c = estimate(elementwise_op("gelu", OpKind.ELEMENTWISE, n, n, 8), hw, "tiled")
        rates.append(4.0 * n / c.time_s)
    assert all(b > a for a, b in zip(rates, rates[1:]))
    dev = device(hw)
    assert rates[-1] == pytest.approx(dev.dram_bw * dev.stream_eta, rel=0.05)
    assert rates[0] < 0.02 * rates[-1]


def test_long_row_softmax_reads_twice():
    hw = load_hardware("a100-sxm-80gb")
    short = estimate(softmax_op(1 << 16, 512), hw, "tiled")
    long = estimate(softmax_op(1 << 10, 32768), hw, "tiled")
    assert short.terms["input_passes"] == 1 and long.terms["input_passes"] == 2
    assert long.memory_s > 1.4 * short.memory_s


# ---- collectives -------------------------------------------------------------------------------


def test_collective_algorithms_and_topologies():
    hw = load_hardware("mi300x")  # Infinity Fabric mesh, 7 links
    _, bw8 = collective.link_bandwidth(hw, 8)
    _, bw2 = collective.link_bandwidth(hw, 2)
    assert bw2 == pytest.approx(bw8 / 7)  # two devices share one of the seven links
    for kind in collective.COLLECTIVES:
        net, lat, terms = collective.collective_time(hw, kind, 64e6, 8)
        assert net > 0 and lat >= 0 and terms["algorithm"]
    ring = dict((a, (s, w)) for a, s, w in collective.algorithms("allreduce", 8, 1.0))
    assert ring["ring"] == (14.0, pytest.approx(1.75))
    assert collective.algorithms("allreduce", 8, 1.0, nodes=2)[1][1] == 2 * math.ceil(math.log2(8))
    pcie = load_hardware("a100-pcie-80gb")  # pairwise NVLink bridges: PCIe beyond two devices
    assert collective.link_bandwidth(pcie, 2)[0] != collective.link_bandwidth(pcie, 4)[0]


def test_large_allreduce_is_bandwidth_bound_small_latency_bound():
    hw = load_hardware("a100-sxm-80gb")
    big = estimate(collective_op(OpKind.ALLREDUCE, 1e9, 8), hw, "tiled")
    small = estimate(collective_op(OpKind.ALLREDUCE, 4096, 8), hw, "tiled")
    assert big.bound == "network" and small.bound == "overhead"


def test_technique_kernels_are_priced_with_their_dequant_terms():
    """A weight-only or sparse GEMM must not be priced as a dense one by the tiled tier."""
    import tapeout

    p = tapeout.predict("opt-30b", "a100-sxm-80gb", batch=4, input_len=512, output_len=64, weights="int4",
                        tier="tiled")
    up = next(o for o in p.ops() if o["phase"] == "decode" and o["name"] == "mlp_up")
    assert up["terms"]["kernel"] == "weight_only" and "dequant_s" in up["terms"]
    dense = tapeout.predict("opt-30b", "a100-sxm-80gb", batch=4, input_len=512, output_len=64, tier="tiled")
    assert p.tpot_s < dense.tpot_s


# ---- technique kernels (weight-only, sparse) priced by the tiled tier --------------------------

from dataclasses import replace as _replace  # noqa: E402

TECHNIQUE_OPS = [
    dict(weights="int4"), dict(weights="fp6_e3m2"), dict(weights="int4_g128"),
    dict(sparsity=0.8, sparse_kernel="tensor"), dict(sparsity=0.9, sparse_kernel="cuda"),
    dict(sparsity="2:4"), dict(sparsity="1x4:0.5"), dict(sparsity=0.7), dict(weights="fp6_e3m2", sparsity=0.8),
]


def _solo(op):
    return _replace(op, alternatives=())


def test_int4_weight_only_crossover_emerges_on_a100():
    hw = load_hardware("a100-sxm-80gb")
    n = k = 8192
    q1, d1 = tiled.estimate(gemm_op(1, n, k, weights="int4"), hw), tiled.estimate(gemm_op(1, n, k), hw)
    q512, d512 = tiled.estimate(gemm_op(512, n, k, weights="int4"), hw), tiled.estimate(gemm_op(512, n, k), hw)
    # priced by the mapper + perf.quant, not the roofline fallback
    assert q1.terms["model"] == "tiled GEMM mapper + perf.quant" and q1.terms["mapping"]
    assert q1.terms["kernel"] == "weight_only" and q1.terms["dequant_s"] > 0
    assert q1.time_s < 0.6 * d1.time_s       # decode: 4x fewer weight bytes pay
    assert q512.time_s > d512.time_s         # large batch: MMA + dequantization exceed the fp16 loads
    # the dequantization is on the cores: the skinny kernel at batch 512 is compute-bound
    assert tiled.estimate(_solo(gemm_op(512, n, k, weights="int4")), hw).bound == "compute"


def test_flash_llm_sparse_gemm_beats_dense_and_reports_extraction():
    hw = load_hardware("a100-sxm-80gb")
    for n, k in ((7168, 7168), (28672, 7168), (9216, 36864)):
        op = gemm_op(16, n, k, sparsity=0.8, sparse_kernel="tensor")
        c, d = tiled.estimate(op, hw), tiled.estimate(gemm_op(16, n, k), hw)
        assert c.terms["kernel"] == "sparse_tc" and c.terms["mapping"]
        assert c.terms["extract_s"] > 0 and c.terms["onchip_s"] > 0
        assert c.time_s < d.time_s / 1.2
        # compute as dense: the matrix part is the dense GEMM's MMA work (same mapper rate)
        assert c.terms["matrix_rate_factor"] == pytest.approx(1.0)
    # more sparsity, fewer bytes and less extraction: faster
    ts = [tiled.estimate(gemm_op(16, 7168, 7168, sparsity=s, sparse_kernel="tensor"), hw).time_s
          for s in (0.7, 0.8, 0.9)]
    assert ts[0] > ts[1] > ts[2]


@pytest.mark.parametrize("name", DEVICES)
def test_technique_time_never_below_the_ideal_roofline(name):
    hw = load_hardware(name)
    ideal = hw.with_efficiency(matmul_eta=1.0, memory_eta=1.0, launch_overhead_us=0.0, host_overhead_us=0.0)
    for kw in TECHNIQUE_OPS:
        for m in (1, 16, 300, 4096):
            op = gemm_op(m, 5120, 13824, **kw)
            for o in (op, *(_solo(x) for x in (_solo(op), *op.alternatives))):
                c, r = tiled.estimate(o, hw), roofline.estimate(o, ideal)
                assert c.terms["model"] != "roofline fallback", (kw, m, o.kernel)
                assert c.time_s >= r.time_s * (1 - 1e-9), (name, kw, m, o.kernel, c.time_s, r.time_s)


def test_alternatives_keep_the_fastest_kernel():
    hw = load_hardware("a100-sxm-80gb")
    seen = set()
    for kw, m in ((dict(weights="int4"), 2048), (dict(sparsity="1x4:0.5"), 64), (dict(sparsity="2:4"), 4096),
                  (dict(weights="fp6_e3m2", sparsity=0.8), 1), (dict(sparsity=0.97), 16)):
        op = gemm_op(m, 8192, 8192, **kw)
        assert op.alternatives, kw
        cands = (_solo(op), *(_solo(a) for a in op.alternatives))
        times = [tiled.estimate(o, hw).time_s for o in cands]
        best = tiled.estimate(op, hw)
        i = times.index(min(times))
        assert best.time_s == min(times)
        assert best.terms["kernel"] == cands[i].kernel
        assert best.terms["alternatives"].count(" us") == len(cands)
        seen.add(cands[i].kernel)
    assert len(seen) >= 2  # the choice depends on the shape, not on the order of the candidates


def test_technique_bytes_and_peaks_reach_the_mapper():
    hw = load_hardware("a100-sxm-80gb")
    # the Tiled-CSL stream fraction, read from the device at pricing time, slows a memory-bound sparse_tc kernel
    op = _solo(gemm_op(1, 8192, 8192, sparsity=0.5, sparse_kernel="tensor"))
    assert op.kernel is Kernel.SPARSE_TC
    full, half = (tiled.estimate(op, hw.with_efficiency(tiled_csl_stream_eta=x)) for x in (1.0, 0.5))
    assert half.time_s > 1.3 * full.time_s and half.terms["dram_eta"] == pytest.approx(full.terms["dram_eta"] / 2)
    dense = _solo(gemm_op(1, 8192, 8192, weights="int4"))  # other kernels stream as the dense GEMM
    assert tiled.estimate(dense, hw.with_efficiency(tiled_csl_stream_eta=0.5)).time_s == tiled.estimate(dense, hw).time_s
    # CUDA-core SpMM: no MMA work
    c = tiled.estimate(_solo(gemm_op(16, 8192, 8192, sparsity=0.95, sparse_kernel="cuda")), hw)
    assert c.terms["kernel"] == "sparse_cuda" and c.terms["matrix_s"] == 0.0 and c.terms["extract_s"] > 0
    # 2:4 on A100's sparse tensor cores: a large GEMM's matrix part at twice the dense rate
    s = tiled.estimate(_solo(gemm_op(8192, 8192, 8192, sparsity="2:4")), hw)
    d = tiled.estimate(gemm_op(8192, 8192, 8192), hw)
    assert "2:4 sparse" in s.terms["peak"] and s.terms["matrix_rate_factor"] == pytest.approx(2.0)
    assert s.terms["matrix_s"] == pytest.approx(d.compute_s / 2, rel=0.05)
    # a technique op of a kind without a tiled technique model still falls back, labelled
    att = _replace(attn_op(1, 32, 32, 1, 2048, 128, decode=True), kernel=Kernel.WEIGHT_ONLY)
    c = tiled.estimate(att, hw)
    assert c.terms["model"] == "roofline fallback" and "technique kernel" in c.terms["fallback"]


def test_prefill_of_a_prompt_shorter_than_every_kv_block():
    """A 6-token prompt (skv below half the smallest K/V block) still gets a tile: no recursion, a finite time."""
    import tapeout

    p = tapeout.predict("llama-3-8b", "a100-sxm-80gb", batch=1, input_len=6, output_len=4, tier="tiled")
    attn = [c for o, c in zip(p.result.prefill.ops, p.result.prefill.costs) if o.kind.value == "attention"]
    assert attn and all(0 < c.total_s < 1e-3 for c in attn)
    assert attn[0].terms["block_kv"] == 32


# ---- decode attention: the fixed work of each tile (docs/tiled.md, decode attention) ---------------------

@pytest.mark.parametrize("name", ("a100-pcie-80gb", "h100-sxm", "mi210"))
def test_decode_many_short_tiles_cost_more_than_few_long_ones_at_equal_bytes(name):
    """Same KV bytes: 1024 sequences of 64 keys (8192 tiles) against 16 sequences of 4096 keys (128 tiles);
    the short tiles each pay their fixed work (vidur's A100 grid: 512 tiles of 32 keys take 29 us for
    8.4 MB, 7x their DRAM time)."""
    hw = load_hardware(name)
    short = estimate(attention_op(1024, 32, 8, 128, prefix=64), hw, "tiled")
    long = estimate(attention_op(16, 32, 8, 128, prefix=4096), hw, "tiled")
    assert short.terms["kv_mb"] == pytest.approx(long.terms["kv_mb"])
    assert short.terms["tile_rounds"] > long.terms["tile_rounds"]
    assert short.time_s > 1.3 * long.time_s


def test_decode_time_steps_up_when_the_tiles_outgrow_one_round():
    """At a short context the fixed work dominates: one more tile than the cores hold at once costs a round."""
    hw = load_hardware("a100-pcie-80gb")
    dev = device(hw)
    per_round = dev.cores * estimate(attention_op(1, 32, 4, 128, prefix=32), hw, "tiled").terms["tiles_per_core"]
    full, over = (estimate(attention_op(b, 32, 4, 128, prefix=32), hw, "tiled") for b in (per_round // 4,
                                                                                          per_round // 4 + 1))
    assert (full.terms["tile_rounds"], over.terms["tile_rounds"]) == (1, 2)
    assert over.time_s - full.time_s > 0.5 * dev.tile_latencies * dev.latency


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 2048), skv=st.integers(1, 65536), group=st.sampled_from([1, 4, 8]),
       kv=st.sampled_from([1, 2, 8, 32]), name=st.sampled_from(["a100-pcie-80gb", "h100-sxm", "mi300x", "l40s"]))
def test_decode_attention_is_never_faster_than_reading_its_cache(b, skv, group, kv, name):
    hw = load_hardware(name)
    op = attention_op(b, kv * group, kv, 128, prefix=skv)
    c = estimate(op, hw, "tiled")
    assert math.isfinite(c.time_s)
    assert c.time_s >= op.bytes_read / hw.memory.bandwidth
