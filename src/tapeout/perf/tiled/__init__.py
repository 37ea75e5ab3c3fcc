"""Tier "tiled": tile-level models on the device's micro-architecture (docs/tiled.md).

``estimate(op, hw)`` dispatches by op kind:

- GEMM, BMM -> :mod:`~tapeout.perf.tiled.mapper` (block tiles, split-K, stages, raster order);
- ATTENTION -> :mod:`~tapeout.perf.tiled.attention` (FlashAttention prefill, split-K decode);
- NORM, SOFTMAX, ELEMENTWISE, EMBEDDING, SAMPLING -> :mod:`~tapeout.perf.tiled.elementwise`;
- ALLREDUCE, ALLGATHER -> :mod:`~tapeout.perf.tiled.collective` (ring / tree / direct, topology).

A device without a micro-architecture description, and a technique kernel (weight-only quantized,
sparse; see ``_QUANT_KERNELS``), are priced by the roofline tier, whose technique terms come from
:mod:`tapeout.perf.quant`; the cost then says so (``terms["model"] == "roofline fallback"``). Every cost names its mapping in ``terms``.
"""

from __future__ import annotations

from dataclasses import replace

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import roofline
from tapeout.perf.cost import OpCost
from tapeout.perf.tiled import attention, collective, elementwise, gemm
from tapeout.perf.tiled.common import TIER
from tapeout.perf.tiled.mapper import clear_caches as _clear_mapper
from tapeout.workload.ops import Op, OpKind

#: technique kernels whose dequantization / sparse extraction dominates on the cores: priced by the
#: roofline tier with perf.quant's terms. "lowp" (W8A8/FP8: a scale epilogue) and "kv_dequant" stay
#: with the tiled models, which price their bytes and matrix rate; their small vector work is not added.
_QUANT_KERNELS = frozenset({"weight_only", "dequant_dense", "sparse_tc", "sparse_cuda", "sparse_24", "block_1xn"})

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
}


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    """Time of one run of ``op`` on ``hw`` under the tiled tier."""
    if hw.microarch is None:
        return fallback(op, hw, f"{hw.name} has no micro-architecture description")
    if op.kernel in _QUANT_KERNELS or op.alternatives:
        # quantized / sparse kernels: their dequantization, extraction and CUDA-core terms are
        # modelled once, in perf.quant (docs/techniques.md), which the roofline tier applies
        return fallback(op, hw, f"technique kernel {op.kernel!r} is priced by perf.quant")
    fn = _BY_KIND.get(op.kind)
    if fn is None:
        return fallback(op, hw, f"no tiled model for op kind {op.kind.value}")
    return fn(op, hw)


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


__all__ = ["TIER", "clear_caches", "estimate", "fallback"]
