"""Tier "roofline": time = max(FLOPs / (peak * eta_c), bytes / (BW * eta_m)) + overhead.

Compression techniques (ops whose ``kernel`` is not "dense") replace the compute term by the
on-core time of :func:`tapeout.perf.quant.core_time` (matrix work at the activation or
low-precision peak, dequantization / sparse extraction on the vector units and shared memory,
combined per the kernel's overlap rule); ops with ``alternatives`` get the fastest candidate.

Matrix ops use the dense matrix peak of their compute format (falling back to a wider format
the device supports, e.g. fp8 on A100 runs at the fp16 rate); at the fp8 peak their efficiency is
scaled by ``EfficiencySpec.fp8_path_fraction`` (:func:`fp8_path`). Other ops use the vector FP32
peak. Collectives use an alpha-beta model of a ring over the scale-up link. Every term and the
efficiency factors used are returned in ``OpCost.terms``.
"""

from __future__ import annotations

from tapeout import dtypes
from tapeout.errors import TapeoutError
from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import core, quant
from tapeout.perf.core import oneshot_allreduce
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import COLLECTIVE_KINDS, MATRIX_KINDS, Kernel, Op, OpKind, OpSweep
from tapeout.workload.routing import EPRouting

TIER = "roofline"


def matrix_peak(hw: HardwareSpec, compute_dtype: str) -> tuple[str, float]:
    """(peak key used, FLOP/s) for a matrix kernel computing in ``compute_dtype`` (:func:`core.peak_key`;
    every device has fp16 or bf16, validated)."""
    k = core.peak_key(compute_dtype, lambda k: hw.peak_flops(k) is not None) or "fp16"
    k = core.accumulate_key(k, hw, hw.peak_tflops.__contains__)
    return k, hw.peak_flops(k)  # type: ignore[return-value]


def on_fp8_peak(key: str) -> bool:
    """Whether the matrix peak ``key`` (:func:`matrix_peak`, :func:`sparse_matrix_peak`) is the fp8 one."""
    return key.split(" ", 1)[0] == "fp8"


def fp8_path(hw: HardwareSpec, key: str) -> float:
    """The factor on a matrix op's compute efficiency for the peak ``key`` it runs at: the device's
    ``fp8_path_fraction`` on the fp8 peak (dense or 2:4 sparse), 1 on every other."""
    return hw.efficiency.fp8_path_fraction if on_fp8_peak(key) else 1.0


def link_for(hw: HardwareSpec, group: int) -> tuple[str, float]:
    """(link name, bytes/s per direction per device) that a collective over ``group`` devices uses."""
    ic = hw.interconnect
    if ic is not None and ic.topology != "pcie" and group <= ic.max_devices:
        if not (ic.topology == "pairwise" and group > 2):
            return ic.kind, ic.bandwidth
    if hw.pcie_gbps_per_direction:
        return "pcie", hw.pcie_gbps_per_direction * 1e9
    if ic is not None:
        return ic.kind, ic.bandwidth
    raise TapeoutError(f"{hw.name} has no interconnect or PCIe bandwidth; cannot run tp={group}", field="tp")


def link_bandwidth(hw: HardwareSpec, group: int) -> tuple[str, float]:
    """(link, bytes/s per direction per device) a collective over ``group`` devices can use: on a ``mesh`` of
    direct links (Infinity Fabric, Gaudi's RoCE ports) only the links to its ``group - 1`` peers (``links``
    in the spec, one per peer) carry it; other topologies give :func:`link_for`'s bandwidth."""
    link, bw = link_for(hw, group)
    ic = hw.interconnect
    if ic is not None and link == ic.kind and ic.topology == "mesh" and ic.links:
        bw = bw * min(ic.links, max(group - 1, 1)) / ic.links
    return link, bw


def direct_exchange(hw: HardwareSpec, group: int) -> bool:
    """Whether collectives over ``group`` devices run as direct exchanges with every peer at once: a
    scale-up fabric of RDMA ports with links to each peer (``InterconnectSpec.fabric`` "nic", Gaudi's
    HCCL) and a group inside one domain."""
    ic = hw.interconnect
    return ic is not None and ic.fabric == "nic" and 1 < group <= ic.max_devices and link_for(hw, group)[0] == ic.kind


def collective_time(hw: HardwareSpec, kind: OpKind, message_bytes: float, group: int,
                    routing: EPRouting | None = None) -> tuple[float, float, dict]:
    """(bandwidth time, latency time, terms) of a ring collective (a point-to-point message for a send; a
    framework's one-shot all-reduce, when faster; direct exchanges over the peer links on an RDMA-port
    fabric, :func:`direct_exchange`); message_bytes is per device."""
    eff = hw.efficiency
    if kind is OpKind.ALLTOALL:
        return core.alltoall(hw, message_bytes, group, eff.interconnect_eta, eff.collective_latency_us * 1e-6, routing)
    direct = direct_exchange(hw, group)
    link, bw = link_bandwidth(hw, group) if direct else link_for(hw, group)
    name = core.collective_name(kind)
    kept = ("direct", "p2p", "local") if direct else ("ring", "p2p", "local")
    algorithm, steps, wire = next(a for a in core.algorithms(name, group, message_bytes, direct_allreduce=direct)
                                  if a[0] in kept)
    beta = wire / (bw * eff.interconnect_eta)
    alpha = steps * eff.collective_latency_us * 1e-6
    terms = {"algorithm": algorithm, "link": link, "link_gbps_per_direction": bw / 1e9,
             "eta_interconnect": eff.interconnect_eta, "alpha_us_per_step": eff.collective_latency_us,
             "steps": steps, "wire_bytes": wire}
    one = oneshot_allreduce(hw, message_bytes, group, eff.interconnect_eta) if kind is OpKind.ALLREDUCE else None
    if one is not None and one[0] + one[1] < beta + alpha:
        return one
    return beta, alpha, terms


def sparse_matrix_peak(hw: HardwareSpec, compute_dtype: str) -> tuple[str, float] | None:
    """(key, FLOP/s) of the 2:4-sparse matrix path for ``compute_dtype``; None without sparse tensor cores.

    Sparse peaks count dense-equivalent FLOPs (2x the dense rate for the same format).
    """
    k = core.peak_key(compute_dtype, hw.sparse_peak_tflops.__contains__, last_resort=False)
    return None if k is None else (k, hw.sparse_peak_tflops[k] * 1e12)


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    """Price ``op``; with alternative kernels (sparse, large-M dequantization), the fastest one
    (:func:`core.fastest`)."""
    if not op.alternatives and not op.prologue:
        return _estimate(op, hw)
    return core.fastest(op, lambda o: _estimate(o, hw), hw)


def _technique(op: Op) -> bool:
    return op.kernel != Kernel.DENSE


def _estimate(op: Op, hw: HardwareSpec) -> OpCost:
    eff = hw.efficiency
    overhead = (eff.launch_overhead_us + eff.host_overhead_us) * 1e-6
    terms: dict[str, float | str] = {}
    compute = memory = network = 0.0
    if op.kind in COLLECTIVE_KINDS:
        network, alpha, terms = collective_time(hw, op.kind, op.message_bytes, op.group, op.routing)
        overhead += alpha
    else:
        if op.kind in MATRIX_KINDS:
            key, peak = matrix_peak(hw, op.compute_dtype)
            fallback = key != dtypes.parse(op.compute_dtype).peak_key
            if op.sparse_peak:
                sp = sparse_matrix_peak(hw, op.compute_dtype)
                if sp is not None:
                    key, peak = f"{sp[0]} (2:4 sparse)", sp[1]
                    fallback = False
                else:
                    fallback = True  # no sparse tensor cores: expand the values, dense MMA
            eta_c = (eff.attention_eta if op.kind is OpKind.ATTENTION else eff.matmul_eta) * fp8_path(hw, key)
            eta_m = eff.memory_eta
            terms.update(peak=key, peak_tflops=peak / 1e12, eta_compute=eta_c)
            if on_fp8_peak(key):
                terms["fp8_path_fraction"] = eff.fp8_path_fraction
            if _technique(op):
                compute, extra = quant.core_time(op, hw, peak, eta_c, fallback=fallback)
                eta_m = eta_m * quant.stream_fraction(op, hw)
                memory = op.bytes_total / (hw.memory_bandwidth * eta_m)
                terms.update(extra)
                terms.update(bandwidth_gbps=hw.memory.bandwidth_gbps, eta_memory=eta_m)
                return _finish(op, hw, compute, memory, 0.0, overhead, terms)
        else:
            peak, eta_c = hw.vector_flops, eff.vector_eta
            # non-matrix kernels (norms, activations, ...) stream at their own fraction when one is given
            eta_m = eff.vector_memory_eta if eff.vector_memory_eta is not None else eff.memory_eta
            terms.update(peak="vector_fp32", peak_tflops=peak / 1e12, eta_compute=eta_c)
        compute = op.flops / (peak * eta_c)
        memory = op.bytes_total / (hw.memory_bandwidth * eta_m)
        terms.update(bandwidth_gbps=hw.memory.bandwidth_gbps, eta_memory=eta_m)
    return _finish(op, hw, compute, memory, network, overhead, terms)


def _finish(op: Op, hw: HardwareSpec, compute: float, memory: float, network: float, overhead: float,
            terms: dict) -> OpCost:
    return core.make_cost(op, tier=TIER, compute=compute, memory=memory, network=network, overhead=overhead,
                          terms=terms)


def sweep(s: OpSweep, hw: HardwareSpec):  # noqa: ANN201 - numpy array or None
    """``estimate(op, hw).time_s`` of one op at several decode contexts (a uniform
    :class:`~tapeout.workload.ops.OpSweep`), in one numpy pass: the terms of :func:`_estimate` for plain
    (dense, single-kernel) matrix and vector ops; None for other ops (techniques, alternatives,
    collectives), which are priced one by one."""
    import numpy as np

    op = s.op
    if op.kind in COLLECTIVE_KINDS:
        return None
    eff = hw.efficiency
    matrix = op.kind in MATRIX_KINDS
    if op.alternatives or op.prologue or (matrix and (_technique(op) or op.sparse_peak)):
        return None
    if matrix:
        key, peak = matrix_peak(hw, op.compute_dtype)
        eta_c = (eff.attention_eta if op.kind is OpKind.ATTENTION else eff.matmul_eta) * fp8_path(hw, key)
        eta_m = eff.memory_eta
    else:
        peak, eta_c = hw.vector_flops, eff.vector_eta
        eta_m = eff.vector_memory_eta if eff.vector_memory_eta is not None else eff.memory_eta
    compute = s.field("flops") / (peak * eta_c)
    memory = (s.field("bytes_read") + s.field("bytes_written")) / (hw.memory_bandwidth * eta_m)
    overhead = (eff.launch_overhead_us + eff.host_overhead_us) * 1e-6
    return np.maximum(np.maximum(compute, memory), 0.0) + overhead
