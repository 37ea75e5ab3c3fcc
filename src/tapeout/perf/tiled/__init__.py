"""Tier "tiled": tile-level models on the device's micro-architecture (docs/tiled.md).

``estimate(op, hw)`` dispatches by op kind:

- GEMM, BMM -> :mod:`~tapeout.perf.tiled.mapper` (block tiles, split-K, stages, raster order);
- ATTENTION -> :mod:`~tapeout.perf.tiled.attention` (FlashAttention prefill, split-K decode);
- NORM, SOFTMAX, ELEMENTWISE, EMBEDDING, SAMPLING -> :mod:`~tapeout.perf.tiled.elementwise`;
- ALLREDUCE, ALLGATHER -> :mod:`~tapeout.perf.tiled.collective` (ring / tree / direct, topology).

Technique GEMMs (weight-only quantized, sparse: ``Kernel.transforms_weights``) -> :mod:`~tapeout.perf.tiled.technique`
(the mapper on the matrix part, :func:`tapeout.perf.quant.core_time` for the vector / on-chip terms);
an op with ``alternatives`` is priced per candidate kernel and the fastest kept
(``terms["kernel"]``, ``terms["alternatives"]``).

A device without a micro-architecture description, and a technique kernel on an op kind without a
tiled technique model, are priced by the roofline tier; the cost then says so
(``terms["model"] == "roofline fallback"``). Every cost names its mapping in ``terms``.
"""

from __future__ import annotations

from dataclasses import replace

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import core, roofline
from tapeout.perf.cost import OpCost
from tapeout.perf.tiled import attention, collective, elementwise, gemm, technique
from tapeout.perf.tiled.common import TIER
from tapeout.perf.tiled.mapper import clear_caches as _clear_mapper
from tapeout.workload.ops import Op, OpKind, OpSweep

_BY_KIND = {
    OpKind.GEMM: gemm.estimate,
    OpKind.BMM: gemm.estimate,
    OpKind.ATTENTION: attention.estimate,
    OpKind.SOFTMAX: elementwise.estimate,
    OpKind.NORM: elementwise.estimate,
    OpKind.ELEMENTWISE: elementwise.estimate,
    OpKind.EMBEDDING: elementwise.estimate,
    OpKind.SAMPLING: elementwise.estimate,
    OpKind.ALLREDUCE: collective.estimate,
    OpKind.ALLGATHER: collective.estimate,
    OpKind.SEND: collective.estimate,
    OpKind.ALLTOALL: collective.estimate,
}


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    """Time of one run of ``op`` on ``hw`` under the tiled tier."""
    if hw.microarch is None:
        return fallback(op, hw, f"{hw.name} has no micro-architecture description")
    if op.alternatives or op.prologue:
        # other kernels computing the same result (docs/techniques.md): price each, keep the fastest
        return core.fastest(op, lambda o: _estimate(o, hw), hw)
    return _estimate(op, hw)


def _estimate(op: Op, hw: HardwareSpec) -> OpCost:
    if op.kernel.transforms_weights:
        if technique.handles(op):
            return technique.estimate(op, hw)
        # kernels whose dequantization / sparse extraction runs on the cores, on op kinds other than GEMM / BMM:
        # perf.quant's terms through the roofline tier. LOWP (a scale epilogue) and KV_DEQUANT stay with the
        # dense tiled models, which price their bytes and matrix rate; their small vector work is not added.
        return fallback(op, hw, f"no tiled model for technique kernel {op.kernel.value!r} on {op.kind.value}")
    fn = _BY_KIND.get(op.kind)
    if fn is None:
        return fallback(op, hw, f"no tiled model for op kind {op.kind.value}")
    return fn(op, hw)


def sweep(s: OpSweep, hw: HardwareSpec):  # noqa: ANN201 - numpy array or None
    """``estimate(op, hw).time_s`` of one op at several decode contexts (a uniform
    :class:`~tapeout.workload.ops.OpSweep`), in one pass where a model is vectorised over the context
    (decode attention; the roofline fallback); None otherwise."""
    if hw.microarch is None:
        return roofline.sweep(s, hw)
    op = s.op
    if op.kind is not OpKind.ATTENTION or op.kernel.transforms_weights or op.alternatives:
        return None
    return attention.decode_sweep(s, hw)


def fallback(op: Op, hw: HardwareSpec, why: str) -> OpCost:
    """The roofline tier's cost, labelled as the tiled tier's fallback."""
    c = roofline.estimate(op, hw)
    return replace(c, tier=TIER, terms={**c.terms, "model": "roofline fallback", "fallback": why})


def clear_caches() -> None:
    """Forget every cached plan (GEMM, attention, streaming kernels) and device view."""
    from tapeout.perf.tiled import device as _device

    _clear_mapper()
    attention.plan_prefill.cache_clear()
    attention.plan_decode.cache_clear()
    elementwise.stream_time.cache_clear()
    _device._CACHE.clear()


__all__ = ["TIER", "clear_caches", "estimate", "fallback", "sweep"]
