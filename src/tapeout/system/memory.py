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

    Linear layers are stored in ``sc.weights``; embeddings, lm_head, norms and the MoE router
    in 16-bit (fp32 when weights are fp32).
    """
    t = sc.tp
    h, hd = model.hidden_size, model.head_dim
    heads = model.num_heads // t
    kv = max(1, model.num_kv_heads // t)
    w = sc.weights.bytes
    hp = (sc.weights if sc.weights.bits >= 16 else dtypes.parse("fp16")).bytes
    attn = h * (heads + 2 * kv) * hd + heads * hd * h
    if model.qkv_bias:
        attn += (heads + 2 * kv) * hd
    if model.out_bias:
        attn += h
    linear = model.num_dense_layers * (attn + model.mlp_params() / t)
    high = model.num_layers * model.norms_per_layer * model.norm_params() + model.norm_params()
    if model.moe is not None:
        m = model.moe
        experts = m.num_experts * model.mlp_params(m.expert_intermediate_size)
        experts += m.num_shared_experts * model.mlp_params(m.shared_intermediate_size)
        linear += model.num_moe_layers * (attn + experts / t)
        high += model.num_moe_layers * model.hidden_size * m.num_experts
    emb = model.embedding_params()
    if model.position == "learned":  # the position table is replicated, the vocabulary split
        pos = (model.max_position_embeddings + model.position_offset) * h
        emb = (emb - pos) / t + pos
    else:
        emb = emb / t
    high += emb + model.lm_head_params() / t
    return linear * w + high * hp


def kv_bytes_per_token(model: ModelSpec, sc: Scenario) -> float:
    """KV-cache bytes per token on one device (all layers)."""
    kv = max(1, model.num_kv_heads // sc.tp)
    return 2 * model.num_layers * kv * model.head_dim * sc.kv_cache.bytes


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
