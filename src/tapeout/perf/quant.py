"""Kernel models of compression techniques: how an op's extra work becomes time on a device.

The builder (:mod:`tapeout.workload.kernels`) states the work of a kernel in device-free units
(``Op.matrix_flops``, ``vector_ops``, ``onchip_bytes``, ``cuda_core_flops``, ``skinny_rows``,
``sparse_peak``, ``overlap``); this module turns them into seconds with the device's rates, so that
any tier can reuse it (:func:`core_time`).

Rates, from hardware facts (``HardwareSpec.microarch`` when present, else the datasheet):
- vector ALU lane-instructions/s = cores x INT32 lanes per core x clock (``vector.int32_lanes_per_core``
  when the micro-architecture gives it, else the FP32 lanes: exact on A100, where both are 64 per SM;
  without a micro-architecture: vector FP32 FLOP/s / 2, i.e. FMA lanes x clock);
- shared-memory bytes/s = cores x ``smem_bytes_per_clock`` (32 banks x 4 B) x clock (datasheet
  fallback: ``sm_count`` x 128 B x ``boost_clock_mhz``; without either: 10 x DRAM bandwidth);
- the MMA's n granule (activation rows a skinny kernel pads to) = ``matrix.instruction_shape[1]``
  (8 for mma.m16n8k16; 8 without a micro-architecture).

Combination (per op):
    matrix_s = matrix FLOPs x (padding of skinny rows) / (peak x eta_compute)   [2:4: the sparse peak]
    vector_s = (vector_ops [+ fallback_vector_ops when the device lacks the native path]) / ALU rate
               + cuda_core_flops / vector FLOP/s
    onchip_s = onchip_bytes / (shared-memory bandwidth x onchip_eta)
    "serial": core = max(matrix_s + vector_s, onchip_s)    (dequantize in registers, then MMA)
    "max":    core = max(matrix_s, vector_s + onchip_s)    (staging overlapped with the MMAs)
    time = max(core, DRAM time) + overheads          (roofline.estimate)

``onchip_eta`` is the one fitted constant: the fraction of shared-memory bandwidth Flash-LLM's
sparse-to-dense staging sustains (scattered 16-bit stores, barriers), fitted on the whole Flash-LLM
kernel set (A100, 108 rows of Flash-LLM SpMM timings, roofline and tiled tiers together; ``tapeout
fit``, stored in ``fitted/kernels.toml``; docs/techniques.md). A device's efficiency data or a call may
override it (``EfficiencySpec.onchip_eta``; None keeps the stored fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tapeout import fitted
from tapeout.hardware.spec import HardwareSpec
from tapeout.workload.ops import Kernel, Op


@dataclass(frozen=True, slots=True)
class Rates:
    alu_ops: float  # lane-instructions / s
    smem_bytes: float  # B / s
    vector_flops: float  # FLOP / s
    mma_n: int
    source: str


def rates(hw: HardwareSpec) -> Rates:
    ua = hw.microarch
    if ua is not None:
        clock = (ua.vector_clock_mhz or ua.clock_mhz) * 1e6
        lanes = ua.vector.int32_lanes_per_core or ua.vector.fp32_lanes_per_core
        alu = ua.cores * lanes * clock
        smem = ua.cores * getattr(ua, "smem_bytes_per_clock", 128.0) * ua.clock_mhz * 1e6
        return Rates(alu, smem, hw.vector_flops, int(ua.matrix.instruction_shape[1]), "microarch")
    alu = hw.vector_flops / 2
    if hw.sm_count and hw.boost_clock_mhz:
        smem = hw.sm_count * 128.0 * hw.boost_clock_mhz * 1e6
    else:
        smem = 10 * hw.memory_bandwidth
    return Rates(alu, smem, hw.vector_flops, 8, "datasheet")


def onchip_eta(hw: HardwareSpec) -> float:
    """The device's (or call's) ``onchip_eta``, else the stored fit."""
    return hw.efficiency.onchip_eta or fitted.kernel_constants().onchip_eta


def stream_fraction(op: Op, hw: HardwareSpec) -> float:
    """The fraction of a dense GEMM's DRAM streaming efficiency ``op``'s kernel reaches on ``hw``: Flash-LLM's
    Tiled-CSL register loads (``Kernel.SPARSE_TC``) sustain less than a dense GEMM's cp.async pipeline (the
    device's or call's ``tiled_csl_stream_eta``, else the stored fit); every other kernel streams as the dense one."""
    if op.kernel != Kernel.SPARSE_TC:
        return 1.0
    return hw.efficiency.tiled_csl_stream_eta or fitted.kernel_constants().tiled_csl_stream_eta


def pad_factor(rows: float, granule: int) -> float:
    """Executed / useful MMA work when ``rows`` activation rows are padded to the instruction granule."""
    if rows <= 0:
        return 1.0
    return math.ceil(rows / granule) * granule / rows


def core_time(op: Op, hw: HardwareSpec, peak: float, eta_compute: float, *,
              fallback: bool = False) -> tuple[float, dict[str, float | str]]:
    """(on-core seconds, terms) of a technique kernel; ``fallback``: the device lacks the native path."""
    r = rates(hw)
    mflops = op.flops if op.matrix_flops is None else op.matrix_flops
    pad = pad_factor(op.skinny_rows, r.mma_n)
    matrix_s = mflops * pad / (peak * eta_compute) if mflops else 0.0
    vops = op.vector_ops + (op.fallback_vector_ops if fallback else 0.0)
    vector_s = vops / r.alu_ops + (op.cuda_core_flops / r.vector_flops if op.cuda_core_flops else 0.0)
    eta_s = onchip_eta(hw)
    onchip_s = op.onchip_bytes / (r.smem_bytes * eta_s) if op.onchip_bytes else 0.0
    if op.overlap == "serial":
        core = max(matrix_s + vector_s, onchip_s)
    else:
        core = max(matrix_s, vector_s + onchip_s)
    label = "extract_s" if op.kernel.extracts else "dequant_s"
    terms: dict[str, float | str] = {
        "kernel": op.kernel, "matrix_s": matrix_s, label: vector_s + onchip_s, "overlap": op.overlap,
        "alu_tops": r.alu_ops / 1e12, "rates_from": r.source,
    }
    if pad != 1.0:
        terms["mma_padding"] = pad
    if op.onchip_bytes:
        terms.update(onchip_s=onchip_s, smem_tbps=r.smem_bytes / 1e12, eta_onchip=eta_s)
    if fallback:
        terms["fallback"] = "no native matrix path: operands converted on the vector units"
    return core, terms


__all__ = ["Rates", "core_time", "onchip_eta", "pad_factor", "rates", "stream_fraction"]
