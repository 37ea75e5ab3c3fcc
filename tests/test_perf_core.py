"""The cost core both tiers share (perf/core.py): bound rule, fastest kernel, peak fallback, collectives."""

import pytest

import tapeout
from tapeout.perf import core, estimate
from tapeout.perf.roofline import collective_time
from tapeout.perf.tiled import collective as tiled_collective
from tapeout.workload.ops import OpKind
from tapeout.workload.standalone import collective_op, gemm_op


def test_bound_names_the_largest_term_in_both_tiers():
    op = gemm_op(8, 4096, 4096)
    assert core.make_cost(op, tier="x", compute=2.0, memory=1.0, overhead=0.5, terms={}).bound == "compute"
    assert core.make_cost(op, tier="x", compute=1.0, memory=2.0, overhead=0.5, terms={}).bound == "memory"
    assert core.make_cost(op, tier="x", compute=1.0, memory=1.0, overhead=3.0, terms={}).bound == "overhead"
    net = core.make_cost(op, tier="x", compute=0.0, memory=0.0, network=1.0, overhead=0.5, terms={})
    assert net.bound == "network" and net.time_s == 1.5 and net.terms["overhead_us"] == 0.5e6
    # no wire time: an all-zero body is not "network"
    assert core.make_cost(op, tier="x", compute=0.0, memory=0.0, overhead=0.0, terms={}).bound == "compute"


@pytest.mark.parametrize("tier", ["roofline", "tiled"])
def test_both_tiers_keep_the_fastest_kernel_and_report_it_alike(tier):
    p = tapeout.predict("opt-13b", "a100-sxm-80gb", batch=2, input_len=64, output_len=2, sparsity=0.8, tier=tier)
    ops = [o for o in p.result.decode_representative.ops if o.alternatives]
    assert ops
    hw = p.hardware
    for op in ops:
        c = estimate(op, hw, tier)
        cands = [estimate(o, hw, tier) for o in (op, *op.alternatives)]
        best = min(range(len(cands)), key=lambda i: cands[i].time_s)
        assert c.time_s == cands[best].time_s
        assert c.terms["kernel"] == (op, *op.alternatives)[best].kernel
        assert c.terms["alternatives"].count(" us") == len(cands)


def test_peak_key_falls_back_to_wider_formats_then_16_bit():
    table = {"fp16", "bf16", "int8"}
    assert core.peak_key("fp8", table.__contains__) == "fp16"  # fp8 without fp8 runs at the fp16 rate
    assert core.peak_key("int8", table.__contains__) == "int8"
    assert core.peak_key("fp8", {"int8"}.__contains__) is None
    assert core.peak_key("fp8", {"int8"}.__contains__, last_resort=False) is None
    assert core.peak_key("fp4", {"bf16"}.__contains__) == "bf16"


@pytest.mark.parametrize("kind,name", [(OpKind.ALLREDUCE, "allreduce"), (OpKind.ALLGATHER, "allgather"),
                                       (OpKind.SEND, "send")])
def test_roofline_prices_the_tables_ring_and_tiled_chooses_from_the_same_table(kind, name):
    hw = tapeout.load_hardware("a100-sxm-80gb")
    size = 64e6  # large: the bandwidth term dominates, no one-shot
    group = 2 if kind is OpKind.SEND else 8
    beta, alpha, terms = collective_time(hw, kind, size, group)
    algo, steps, wire = core.algorithms(name, group, size)[0]
    assert terms["algorithm"] == algo and terms["steps"] == steps and terms["wire_bytes"] == wire
    assert beta == pytest.approx(wire / (hw.interconnect.bandwidth * hw.efficiency.interconnect_eta))
    _, _, tiled_terms = tiled_collective.collective_time(hw, name, size, group)
    assert tiled_terms["algorithm"] in {a for a, _, _ in core.algorithms(name, group, size)}
    op = collective_op(kind, size, group, name="x")
    assert estimate(op, hw, "roofline").bound == "network"


@pytest.mark.parametrize("tier", ["roofline", "tiled"])
def test_dequantize_then_gemm_is_two_kernels_whose_times_add(tier):
    """The large-M alternative of a weight-only GEMM writes a 16-bit copy of the weights in one kernel and
    multiplies in another: it costs the sum (it was priced as one kernel overlapping the copy with the MMAs)."""
    from dataclasses import replace

    from tapeout import dtypes
    from tapeout.workload.kernels import linear
    from tapeout.workload.ops import Kernel

    hw = tapeout.load_hardware("a100-sxm-80gb")
    op = linear("up", m=512, n=14336, k=4096, count=1, w=dtypes.parse("int4_g128"), a=dtypes.parse("fp16"))
    (alt,) = [o for o in op.alternatives if o.kernel is Kernel.DEQUANT_DENSE]
    (pass_,) = alt.prologue
    assert pass_.bytes_read == pytest.approx(14336 * 4096 * dtypes.parse("int4_g128").bytes)
    assert pass_.bytes_written == alt.weight_bytes == 14336 * 4096 * 2  # the fp16 copy, then read by the GEMM
    gemm = estimate(replace(alt, prologue=()), hw, tier).time_s
    both = estimate(alt, hw, tier)  # the tier prices the prologue with it (core.with_prologue)
    assert both.time_s == pytest.approx(gemm + estimate(pass_, hw, tier).time_s)
    assert both.time_s >= max(both.compute_s, both.memory_s) and both.terms["prologue_s"] > 0
    # a framework that ships only this kernel (llama.cpp's cuBLAS path) gets it; the default keeps the faster
    only = hw.model_copy(update={"efficiency": hw.efficiency.model_copy(update={"large_m_weight_only": "dequant_dense"})})
    assert estimate(op, only, tier).terms["kernel"] is Kernel.DEQUANT_DENSE
    default = estimate(op, hw, tier)
    assert default.time_s <= estimate(op, only, tier).time_s


def _ggml(hw_name: str):
    """``hw_name`` as the llamacpp profile prepares it (fp32 activations, fp16 accumulation)."""
    from tapeout.system.frameworks import framework

    hw = tapeout.load_hardware(hw_name)
    return hw.model_copy(update={"efficiency": hw.efficiency.model_copy(update=framework("llamacpp").efficiency())})


def test_ggml_converts_around_cublas_matmuls_only():
    # ggml-cuda's cuBLAS path: src1 fp32 -> fp16 before the GEMM, the fp16 result -> fp32 after it
    big = core.fp32_activations(gemm_op(512, 14336, 4096))
    assert [p.name for p in big.prologue] == ["gemm.to_fp16", "gemm.to_fp32"]
    to16, to32 = big.prologue
    assert (to16.bytes_read, to16.bytes_written) == (512 * 4096 * 4, 512 * 4096 * 2)
    assert (to32.bytes_read, to32.bytes_written) == (512 * 14336 * 2, 512 * 14336 * 4)
    # quantized weights up to MMQ_MAX_BATCH_SIZE = 32 rows run ggml's own kernels on the fp32 input
    assert not core.fp32_activations(gemm_op(32, 4096, 4096, weights="int4_g32z")).prologue
    assert core.fp32_activations(gemm_op(33, 4096, 4096, weights="int4_g32z")).prologue
    # 16-bit weights go to cuBLAS from two rows on; one row is a matrix-vector kernel
    assert not core.fp32_activations(gemm_op(1, 4096, 4096)).prologue
    assert core.fp32_activations(gemm_op(2, 4096, 4096)).prologue


def test_ggml_elementwise_kernels_move_fp32():
    from tapeout.workload.standalone import elementwise_op

    add = elementwise_op("add", OpKind.ELEMENTWISE, 2 * 4096, 4096, 1)
    f32 = core.fp32_activations(add)
    assert (f32.bytes_read, f32.bytes_written) == (2 * add.bytes_read, 2 * add.bytes_written)
    # a write into the fp16 KV cache keeps its bytes; only the fp32 read doubles
    kv = core.fp32_activations(elementwise_op("kv", OpKind.ELEMENTWISE, 1024, 1024, 1, out_dtype="fp8"))
    assert kv.bytes_written == 1024 and kv.bytes_read == 4 * 1024


def test_fp16_accumulation_doubles_geforce_matmuls_only():
    # NVIDIA's Ada and GA102 whitepapers: RTX 4090 330.3 / 165.2 and RTX 3090 142 / 71 dense TFLOP/s for fp16
    # with fp16 / fp32 accumulation; data-centre and workstation cards run both at one rate
    assert tapeout.load_hardware("rtx-4090").peak_tflops["fp16_acc16"] == 330.3
    assert tapeout.load_hardware("rtx-3090").peak_tflops["fp16_acc16"] == 142
    op = gemm_op(4096, 4096, 4096)
    for tier in ("roofline", "tiled"):
        plain, ggml = estimate(op, tapeout.load_hardware("rtx-4090"), tier), estimate(op, _ggml("rtx-4090"), tier)
        # compute-bound: the MMAs take half the time (the conversions add their own memory time)
        assert ggml.terms.get("prologue_s", 0) > 0
        assert (ggml.time_s - ggml.terms["prologue_s"]) == pytest.approx(plain.time_s / 2, rel=0.1), tier
        a100 = estimate(op, _ggml("a100-sxm-80gb"), tier)
        assert a100.time_s - a100.terms["prologue_s"] == pytest.approx(
            estimate(op, tapeout.load_hardware("a100-sxm-80gb"), tier).time_s, rel=1e-6), tier
