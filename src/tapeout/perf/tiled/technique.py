"""Technique GEMMs (weight-only quantized, sparse; docs/techniques.md) priced through the mapper.

The op states its work in device-free fields (:class:`~tapeout.workload.ops.Op`); this module runs
the tile mapper on the matrix part and adds the on-core vector / shared-memory terms of
:func:`tapeout.perf.quant.core_time`:

- **matrix part**: the mapper's plan of the (m x k) @ (k x n) product with the device's MAC rate
  scaled by ``flops / matrix_flops`` (compute-as-dense, 1xN waste) and, for ``sparse_peak`` on a
  device with ``sparse_peak_tflops``, by sparse / dense peak; ``matrix_flops == 0`` (CUDA-core
  SpMM) prices no MMA (the plan then only gives the DRAM stream and the mapping). A *skinny*
  kernel (``0 < skinny_rows <= kernels.M_TILE``: weight-only and sparse kernels at decode batch)
  keeps the weights in the MMA's 16-row operand and the activation rows in its n side: its matrix
  time is the MMA work with the rows padded to the instruction's n (8 on mma.m16n8k16) at
  ``matrix_eta``, not a cuBLAS block tile's padding and shared-memory operand feed;
- **bytes**: the weight operand carries every byte the op states beyond its activations and
  output (``bytes_read + bytes_written``: low-bit values and scales, sparse values and indices, a
  16-bit copy written and read), streamed at ``dram_eta`` x the kernel's ``perf.quant.stream_fraction`` (Tiled-CSL: below 1);
- **on-core**: vector work and staging from ``perf.quant.core_time``, combined with the plan's
  matrix time per the op's overlap rule ("serial": max(matrix + vector, onchip); "max":
  max(matrix, vector + onchip)); main loop = max((matrix^p + dram^p)^(1/p), core, on-chip bounds):
  the mapper's MMA / DRAM interference stays on the matrix part, the vector and staging work is
  software-pipelined with the loads; plus the plan's prologue/epilogue, launch and host terms.
  With no vector work this is the dense mapper's main loop.
"""

from __future__ import annotations

from tapeout import dtypes
from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import quant
from tapeout.perf.cost import OpCost
from tapeout.perf.roofline import sparse_matrix_peak
from tapeout.perf.tiled.common import fmt_bytes, make_cost
from tapeout.perf.tiled.device import Dev, device, with_dev
from tapeout.perf.tiled.gemm import gemm_dims, plan_terms
from tapeout.perf.tiled.mapper import plan_gemm
from tapeout.workload.kernels import M_TILE
from tapeout.workload.ops import Op, OpKind

def handles(op: Op) -> bool:
    """GEMM / BMM ops whose kernel transforms the weights on the cores (``Kernel.transforms_weights``) are
    priced here; ``lowp`` and ``kv_dequant`` stay with the dense models."""
    return op.kernel.transforms_weights and op.kind in (OpKind.GEMM, OpKind.BMM)


def _scaled(dev: Dev, key: str, factor: float) -> Dev:
    if factor == 1.0:
        return dev
    return with_dev(dev, macs=tuple((k, v * factor if k == key else v) for k, v in dev.macs))


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    dev = device(hw)
    b, m, n, k = gemm_dims(op)
    a = fmt_bytes(op, "act")
    key, macs = dev.macs_for(op.compute_dtype)
    fallback = key != dtypes.parse(op.compute_dtype).peak_key
    factor, peak_label = 1.0, key
    if op.sparse_peak:
        sp = sparse_matrix_peak(hw, op.compute_dtype)
        dense_peak = hw.peak_flops(sp[0]) if sp is not None else None
        if sp is not None and dense_peak:
            factor, peak_label, fallback = sp[1] / dense_peak, f"{sp[0]} (2:4 sparse)", False
        else:
            fallback = True  # no sparse tensor cores: expand the values, dense MMA
    mflops = op.flops if op.matrix_flops is None else op.matrix_flops
    if mflops > 0 and op.flops > 0:
        factor *= op.flops / mflops
    # every byte beyond the activations and the output streams with the weight operand
    act, out = b * m * k * a, b * m * n * a
    w = max(op.bytes_total - act - out, 0.0) / max(b * n * k, 1)
    pdev = _scaled(dev, key, factor)
    stream = quant.stream_fraction(op, hw)
    if stream != 1.0:
        pdev = with_dev(pdev, dram_eta=dev.dram_eta * stream)
    p = plan_gemm(pdev, m, n, k, b, op.compute_dtype, a, w, a, "fa2" in op.tags)

    skinny = 0 < op.skinny_rows <= M_TILE
    if mflops <= 0:
        matrix_s = 0.0
    elif skinny:
        # a skinny kernel (TC-FPx, Marlin-like, Flash-LLM) holds the weights in the MMA's 16-row operand
        # and the few activation rows in its n side: the MMAs pad the rows to the instruction's n
        # granule, not to a cuBLAS block tile, and the weight fragments come from registers (after
        # dequantization / extraction), not through the shared-memory operand feed
        rate = 2.0 * macs * factor * dev.cores * dev.clock * dev.matrix_eta
        matrix_s = op.flops * quant.pad_factor(op.skinny_rows, dev.instr[1]) / rate
    else:
        matrix_s = p.compute_s
    _, extra = quant.core_time(op, hw, 1.0, 1.0, fallback=fallback)  # its matrix_s is replaced below
    onchip_s = float(extra.get("onchip_s", 0.0))
    label = "extract_s" if op.kernel.extracts else "dequant_s"
    vector_s = float(extra[label]) - onchip_s
    if op.overlap == "serial":
        core = max(matrix_s + vector_s, onchip_s)
    else:
        core = max(matrix_s, vector_s + onchip_s)
    q = dev.overlap_p
    # the mapper's MMA / DRAM interference (p-norm) stays on the matrix part; the vector and staging
    # work is software-pipelined with the loads (docs/techniques.md: it overlaps the DRAM stream)
    main = max((matrix_s ** q + p.dram_s ** q) ** (1.0 / q), core, p.chip_s)
    total = main + p.overhead_s

    terms = plan_terms(p, pdev)
    terms.update(extra)
    terms.update(model="tiled GEMM mapper + perf.quant", peak=peak_label, matrix_s=matrix_s,
                 matrix_from="skinny MMA (rows padded to the instruction n)" if skinny else "mapper plan",
                 core_s=core, weight_bytes_per_element=w, matrix_rate_factor=factor,
                 dram_eta=pdev.dram_eta, launch_us=dev.launch * 1e6, host_us=dev.host * 1e6,
                 overlap_loss_us=(main - max(core, p.memory_s)) * 1e6)
    memory = p.memory_s
    return make_cost(op, compute=core, memory=memory,
                     overhead=total - max(core, memory) + dev.launch + dev.host, terms=terms)


__all__ = ["estimate", "handles"]
