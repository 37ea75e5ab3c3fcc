"""Per-operator cost models behind one seam: ``estimate(op, hardware, tier)``."""

from __future__ import annotations

from collections.abc import Callable

from tapeout.errors import TapeoutError
from tapeout.frozen import evolve
from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import roofline
from tapeout.perf.core import fp32_activations
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op, OpKind, OpSweep

Estimator = Callable[[Op, HardwareSpec], OpCost]


def _tiled(op: Op, hardware: HardwareSpec) -> OpCost:
    """Tier "tiled" (tile-level mapper on the micro-architecture), imported on first use (numpy)."""
    from tapeout.perf.tiled import estimate as tiled_estimate

    TIERS["tiled"] = tiled_estimate
    return tiled_estimate(op, hardware)


#: registry of performance tiers; later tiers (calibrated tables) register here
TIERS: dict[str, Estimator] = {roofline.TIER: roofline.estimate, "tiled": _tiled}


def _tiled_sweep(s: OpSweep, hardware: HardwareSpec):  # noqa: ANN202
    from tapeout.perf.tiled import sweep as tiled_sweep

    SWEEPS["tiled"] = tiled_sweep
    return tiled_sweep(s, hardware)


#: vectorised pricing of one op at several decode contexts, per tier (optional; see :func:`sweep`)
SWEEPS: dict[str, Callable] = {roofline.TIER: roofline.sweep, "tiled": _tiled_sweep}


def estimate(op: Op, hardware: HardwareSpec, tier: str = "roofline") -> OpCost:
    try:
        fn = TIERS[tier]
    except KeyError:
        raise TapeoutError(f"unknown tier {tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier") from None
    viewed = fp32_activations(op) if hardware.efficiency.fp32_activations else op
    cost = fn(viewed, hardware)
    if viewed is not op and not viewed.prologue:  # say what the framework moved (matmuls name their kernels)
        cost = evolve(cost, terms={**cost.terms, "fp32_activation_bytes": viewed.bytes_total})
    op = viewed
    if hardware.efficiency.stream_bytes_per_core_clock is not None:
        cost = stream_capped(cost, op, hardware)
    host_us = prefill_host_us(hardware)
    if op.eager and host_us > 0:
        cost = host_launched(cost, host_us)
    seq_us = hardware.efficiency.sequence_host_overhead_us
    if op.kind is OpKind.SAMPLING and seq_us > 0:
        cost = sequence_host(cost, op, seq_us)
    if op.routing is not None and op.routing.imbalance_basis:  # the routed experts' wait, stated on their rows
        cost = evolve(cost, terms={**cost.terms, **op.routing.terms()})
    return cost


def prefill_host_us(hw: HardwareSpec) -> float:
    """Host dispatch time of each kernel the engine launches eagerly (the prefill's), us: the framework's
    ``prefill_host_overhead_us``, none on a device whose runtime runs every pass as one compiled graph
    (``HardwareSpec.graph_compiled``: Gaudi)."""
    return 0.0 if hw.graph_compiled else hw.efficiency.prefill_host_overhead_us


def with_overhead(cost: OpCost, add_us: float, term: str) -> OpCost:
    """``cost`` with ``add_us`` more fixed time (host time the GPU waits for), stated as ``terms[term]``; the
    op becomes overhead-bound when its fixed costs then exceed its compute, memory and network times."""
    over = cost.overhead_s + add_us * 1e-6
    bound = "overhead" if over > max(cost.compute_s, cost.memory_s, cost.network_s) else cost.bound
    return evolve(cost, time_s=cost.time_s + add_us * 1e-6, overhead_s=over, bound=bound,
                  terms={**cost.terms, term: add_us})


def host_launched(cost: OpCost, host_us: float) -> OpCost:
    """The cost of a kernel the host launches itself (no CUDA graph): its dispatch time ``host_us`` is added
    to the fixed costs (``terms["prefill_host_us"]``)."""
    return with_overhead(cost, host_us, "prefill_host_us")


def sequence_host(cost: OpCost, op: Op, seq_us: float) -> OpCost:
    """The sampling op of a step carries the engine's per-sequence host work (``sequence_host_overhead_us``):
    the scheduler's and the output processing's time for each sequence that produced a token, which an engine
    without an overlap scheduler spends between steps while the GPU waits. ``terms["sequence_host_us"]`` is
    the added time, us; the op's ``batch`` (its sequences) scales it."""
    return with_overhead(cost, seq_us * dict(op.shape).get("batch", 1), "sequence_host_us")


def sweep(s: OpSweep, hardware: HardwareSpec, tier: str = "roofline"):  # noqa: ANN201
    """Seconds per run of one op at several decode contexts (:class:`~tapeout.workload.ops.OpSweep`) as a
    numpy array equal to ``[estimate(o, hardware, tier).time_s for o in s.ops()]``, computed in one
    vectorised pass; None where the tier has no vectorised model for it (callers then use
    :func:`estimate`). A framework's streaming cap and fp32 activations are applied by :func:`estimate` only,
    so they get None."""
    fn = SWEEPS.get(tier)
    if fn is None or not s.n or not s.uniform or hardware.efficiency.stream_bytes_per_core_clock is not None \
            or hardware.efficiency.fp32_activations or s.op.eager:
        return None
    return fn(s, hardware)


def core_clock(hw: HardwareSpec) -> tuple[int, float] | None:
    """(cores, clock Hz) from the micro-architecture, else the datasheet; None when neither gives both."""
    if hw.microarch is not None:
        return hw.microarch.cores, hw.microarch.clock_mhz * 1e6
    if hw.sm_count and hw.boost_clock_mhz:
        return hw.sm_count, hw.boost_clock_mhz * 1e6
    return None


def stream_capped(cost: OpCost, op: Op, hw: HardwareSpec) -> OpCost:
    """A framework whose kernels keep few loads in flight streams at most ``stream_bytes_per_core_clock``
    bytes per core per clock (Little's law: bytes in flight / latency), whatever the DRAM bandwidth: the
    op's DRAM bytes take at least bytes / (cores x clock x that). Collectives are left alone."""
    from dataclasses import replace

    from tapeout.workload.ops import COLLECTIVE_KINDS

    cc = core_clock(hw)
    per = hw.efficiency.stream_bytes_per_core_clock
    if cc is None or per is None or op.kind in COLLECTIVE_KINDS:
        return cost
    cap_s = op.bytes_total / (cc[0] * cc[1] * per)
    main = cost.time_s - cost.overhead_s
    if cap_s <= main:
        return cost
    terms = {**cost.terms, "stream_cap_s": cap_s, "stream_bytes_per_core_clock": per,
             "stream_cap_gbps": cc[0] * cc[1] * per / 1e9}
    return replace(cost, time_s=cap_s + cost.overhead_s, memory_s=max(cost.memory_s, cap_s), bound="memory",
                   terms=terms)


__all__ = ["OpCost", "SWEEPS", "TIERS", "core_clock", "estimate", "prefill_host_us", "sequence_host", "stream_capped",
           "sweep"]
