"""GEMM and batched-matmul ops priced through the mapper (:mod:`tapeout.perf.tiled.mapper`)."""

from __future__ import annotations

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf.cost import OpCost
from tapeout.perf.tiled.common import fmt_bytes, make_cost
from tapeout.perf.tiled.device import Dev, device
from tapeout.perf.tiled.mapper import GemmPlan, plan_gemm
from tapeout.workload.ops import Op, OpKind


def gemm_dims(op: Op) -> tuple[int, int, int, int]:
    """(batch, m, n, k) of a GEMM (batch = experts) or a BMM (batch = b)."""
    d = op.dims()
    if op.kind is OpKind.BMM:
        return int(d.get("b", 1)), int(d["m"]), int(d["n"]), int(d["k"])
    return int(round(d.get("experts", 1))), int(d["m"]), int(d["n"]), int(d["k"])


def plan_for(op: Op, dev: Dev) -> GemmPlan:
    b, m, n, k = gemm_dims(op)
    a = fmt_bytes(op, "act")
    w = fmt_bytes(op, "weights") if op.kind is OpKind.GEMM else a
    return plan_gemm(dev, m, n, k, b, op.compute_dtype, a, w, a, "fa2" in op.tags)


def plan_terms(p: GemmPlan, dev: Dev) -> dict[str, float | str]:
    return {
        "model": "tiled GEMM mapper",
        "mapping": p.mapping,
        "tile_m": p.tile_m, "tile_n": p.tile_n, "tile_k": p.tile_k, "stages": p.stages,
        "split_k": p.split_k, "raster": p.raster, "ctas_per_core": p.ctas_per_core,
        "tiles": p.tiles, "waves": p.waves, "core_utilization": round(p.utilization, 4),
        "main_loop_bound": p.bound, "dram_mb": p.dram_bytes / 1e6, "l2_mb": p.l2_bytes / 1e6,
        "peak": p.peak_key, "matrix_eta": dev.matrix_eta, "dram_eta": dev.dram_eta,
        "prologue_epilogue_us": p.overhead_s * 1e6, "candidates": p.candidates,
    }


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    dev = device(hw)
    p = plan_for(op, dev)
    terms = plan_terms(p, dev)
    # the plan's time exceeds max(compute, memory) by the prologue/epilogue and the imperfect overlap
    overlap = p.time_s - p.overhead_s - max(p.compute_s, p.memory_s)
    terms.update(launch_us=dev.launch * 1e6, host_us=dev.host * 1e6, overlap_loss_us=overlap * 1e6)
    return make_cost(op, compute=p.compute_s, memory=p.memory_s,
                     overhead=p.time_s - max(p.compute_s, p.memory_s) + dev.launch + dev.host, terms=terms)
