"""Per-device memory: weights, KV cache, peak activations, runtime reserve; the largest batch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from tapeout import dtypes
from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.workload.ops import OpGraph
from tapeout.workload.scenario import Scenario


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    runtime_reserve_bytes: float
    total_bytes: float
    capacity_bytes: float
    fits: bool
    max_batch: int
    kv_cache_bytes_per_token: float

    def to_dict(self) -> dict:
        return asdict(self)


def weight_bytes(model: ModelSpec, sc: Scenario) -> float:
    """Bytes of weights one device holds under tensor parallelism ``sc.tp``.

    Linear layers are stored in their per-layer formats and sparse layouts, pruned layers with
    their smaller dimensions (:func:`tapeout.techniques.layers.linear_weight_bytes`); embeddings,
    norms and the MoE router in 16-bit (fp32 when weights are fp32); lm_head in its own format
    (16-bit unless a scenario rule sets it).
    """
    from tapeout.techniques.layers import linear_weight_bytes, lm_head_bytes

    t = sc.tp
    h = model.hidden_size
    hp = (sc.weights if sc.weights.bits >= 16 else dtypes.parse("fp16")).bytes
    high = model.num_layers * model.norms_per_layer * model.norm_params() + model.norm_params()
    if model.moe is not None:
        high += model.num_moe_layers * model.hidden_size * model.moe.num_experts
    emb = model.embedding_params()
    if model.position == "learned":  # the position table is replicated, the vocabulary split
        pos = (model.max_position_embeddings + model.position_offset) * h
        emb = (emb - pos) / t + pos
    else:
        emb = emb / t
    high += emb
    return linear_weight_bytes(model, sc) + high * hp + lm_head_bytes(model, sc)


def kv_bytes_per_token(model: ModelSpec, sc: Scenario) -> float:
    """KV-cache bytes per token on one device (all layers; pruned heads per layer group)."""
    from tapeout.techniques.layers import kv_bytes_per_token as per_token

    return per_token(model, sc)


def plan(model: ModelSpec, hw: HardwareSpec, sc: Scenario, graphs: list[OpGraph]) -> MemoryPlan:
    per_token = kv_bytes_per_token(model, sc)
    kv = sc.batch * sc.final_context * per_token
    residual = max(g.tokens for g in graphs) * model.hidden_size * sc.activations.bytes
    act = residual + max(o.activation_bytes for g in graphs for o in g.ops)
    wts = weight_bytes(model, sc)
    cap = hw.memory_capacity
    reserve = hw.efficiency.runtime_reserve_gb * 1e9
    total = wts + kv + act + reserve
    per_seq = (kv + act) / sc.batch  # both grow linearly with batch
    free = cap - reserve - wts
    max_batch = max(0, math.floor(free / per_seq)) if free > 0 else 0
    return MemoryPlan(
        weights_bytes=wts, kv_cache_bytes=kv, activation_bytes=act, runtime_reserve_bytes=reserve,
        total_bytes=total, capacity_bytes=cap, fits=total <= cap, max_batch=max_batch,
        kv_cache_bytes_per_token=per_token,
    )
