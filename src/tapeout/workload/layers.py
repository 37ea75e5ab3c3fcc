"""Resolve a scenario's techniques per layer: global settings, then the scenario file's rules in order.

A :class:`LayerPlan` is what one transformer layer runs with: per linear slot (qkv_proj, out_proj,
up, down, expert_up, expert_down) the weight and activation formats and the sparsity, and the
channel-pruning fractions. Layers with equal plans form one group (one op x count in the graph).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tapeout.dtypes import DType
from tapeout.workload.kernels import sparse_weight_bytes, storage_layout
from tapeout.workload.techniques import LINEAR_SLOTS, LayerRule, Sparsity

if TYPE_CHECKING:  # pragma: no cover
    from tapeout.models.spec import ModelSpec
    from tapeout.workload.scenario import Scenario


@dataclass(frozen=True, slots=True)
class LinearTech:
    weights: DType
    activations: DType
    sparsity: Sparsity | None = None


@dataclass(frozen=True, slots=True)
class LayerPlan:
    slots: tuple[tuple[str, LinearTech], ...]
    keep_mlp: float = 1.0
    keep_heads: float = 1.0

    def __getitem__(self, slot: str) -> LinearTech:
        for s, t in self.slots:
            if s == slot:
                return t
        raise KeyError(slot)


def _apply(t: LinearTech, r: LayerRule) -> LinearTech:
    sp = None if r.dense else (r.sparsity if r.sparsity is not None else t.sparsity)
    return LinearTech(r.weights or t.weights, r.activations or t.activations, sp)


def resolve(sc: Scenario, layer: int | None = None) -> LayerPlan:
    """The plan of layer ``layer`` (None: rules with a layer selection are ignored)."""
    base = LinearTech(sc.weights, sc.activations, sc.sparsity)
    techs = dict.fromkeys(LINEAR_SLOTS, base)
    keep_mlp = keep_heads = 1.0
    for r in sc.layers:
        if r.layers is not None and (layer is None or layer not in r.layers):
            continue
        for slot in LINEAR_SLOTS:
            if r.applies(slot, layer):
                techs[slot] = _apply(techs[slot], r)
        if r.keep is not None:
            if r.match in ("mlp", "*"):
                keep_mlp = r.keep
            if r.match in ("attention", "*"):
                keep_heads = r.keep
    return LayerPlan(tuple(techs.items()), keep_mlp, keep_heads)


def lm_head_tech(sc: Scenario) -> LinearTech:
    """lm_head: 16-bit (fp32 when weights are fp32) unless a rule matches ``lm_head``."""
    hp = sc.high_precision
    t = LinearTech(hp, sc.activations, None)
    for r in sc.layers:
        if r.match == "lm_head":
            t = _apply(t, r)
    return t


def layer_groups(num_layers: int, sc: Scenario, layers: range | None = None) -> list[tuple[LayerPlan, tuple[int, ...]]]:
    """Layers grouped by plan, in order of first appearance; ``layers``: only those (a pipeline stage)."""
    ixs = range(num_layers) if layers is None else layers
    if not any(r.layers is not None for r in sc.layers):
        return [(resolve(sc, None), tuple(ixs))] if len(ixs) else []
    groups: dict[LayerPlan, list[int]] = {}
    for i in ixs:
        groups.setdefault(resolve(sc, i), []).append(i)
    return [(p, tuple(ix)) for p, ix in groups.items()]


def range_label(ix: tuple[int, ...]) -> str:
    """(0, 1, 2, 3, 10) -> "0-3,10"."""
    parts, start, prev = [], ix[0], ix[0]
    for i in ix[1:] + (None,):  # type: ignore[operator]
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


def kept_heads(model: ModelSpec, keep: float, tp: int) -> tuple[int, int]:
    """(query heads, KV heads) of the whole model after pruning heads to ``keep`` (before sharding).

    MHA prunes query and KV heads together; GQA/MQA keep the KV heads and prune whole query groups
    evenly. The result stays divisible by ``tp``.
    """
    from tapeout.errors import TapeoutError

    H, KV = model.num_heads, model.num_kv_heads
    if keep >= 1.0:
        return H, KV
    if KV == H:
        unit = tp
        h = max(unit, round(H * keep / unit) * unit)
        return h, h
    unit = KV * tp // _gcd(KV, tp)
    h = max(unit, round(H * keep / unit) * unit)
    if h > H:
        raise TapeoutError(f"cannot prune {model.name}'s heads to {keep:g} under tp={tp}", field="keep")
    return h, KV


def _gcd(a: int, b: int) -> int:
    import math

    return math.gcd(a, b)


def linear_weight_bytes(model: ModelSpec, sc: Scenario, layers: range | None = None) -> float:
    """Per-device bytes of the transformer's linear layers (with their biases) under the scenario's
    per-layer formats, sparsity layouts and pruning; ``layers``: only those (a pipeline stage).
    Embeddings, norms, router and lm_head are not included (see :func:`lm_head_bytes`)."""
    t = sc.tp
    h = model.hidden_size
    hd = model.head_dim
    hp = sc.high_precision
    ups = 2 if model.gated_mlp else 1  # gate + up are one fused GEMM
    dense_set = set(model.moe.dense_layers) if model.moe is not None else set(range(model.num_layers))
    total = 0.0
    for plan, ix in layer_groups(model.num_layers, sc, layers):
        H, KV = kept_heads(model, plan.keep_heads, t)
        heads = H // t
        kv = max(1, KV // t)

        def mat(slot: str, n: float, k: float) -> float:
            tech = plan[slot]
            return sparse_weight_bytes(tech.weights, n, k, tech.sparsity,
                                       storage_layout(tech.sparsity, sc.sparse_kernel))

        if model.mla is not None:  # q_a + kv_a replicated (one fused GEMM), q_b / kv_b / o split by heads
            a = model.mla
            if a.q_lora_rank:
                attn = mat("qkv_proj", a.q_lora_rank + a.cache_width, h) + mat("qkv_proj", heads * a.qk_head_dim,
                                                                                 a.q_lora_rank)
            else:
                attn = mat("qkv_proj", heads * a.qk_head_dim, h) + mat("qkv_proj", a.cache_width, h)
            attn += mat("qkv_proj", heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank)
            attn += mat("out_proj", h, heads * a.v_head_dim)
        else:
            attn = mat("qkv_proj", (heads + 2 * kv) * hd, h) + mat("out_proj", h, heads * hd)
            bias = ((heads + 2 * kv) * hd if model.qkv_bias else 0) + (h if model.out_bias else 0)
            attn += bias * hp.bytes
        n_dense = sum(1 for i in ix if i in dense_set)
        n_moe = len(ix) - n_dense

        def ffn(up: str, down: str, inter: float) -> float:
            b = mat(up, ups * inter, h) + mat(down, h, inter)
            if model.mlp_bias:
                b += (ups * inter + h / t) * hp.bytes
            return b

        inter = model.intermediate_size * plan.keep_mlp / t
        total += n_dense * (attn + ffn("up", "down", inter))
        if n_moe and model.moe is not None:
            m = model.moe
            if sc.ep == 1:  # every expert sliced over the tp devices
                experts = m.num_experts * ffn("expert_up", "expert_down", m.expert_intermediate_size * plan.keep_mlp / t)
            else:  # whole experts, ceil(E / ep) on the fullest device; with EPLB's copies (E + R) / ep on each
                experts = math.ceil((m.num_experts + sc.redundant_experts) / sc.ep) * ffn("expert_up", "expert_down",
                                                                 m.expert_intermediate_size * plan.keep_mlp)
            if m.num_shared_experts:
                experts += ffn("up", "down", m.num_shared_experts * m.shared_intermediate_size * plan.keep_mlp / t)
            total += n_moe * (attn + experts)
    return total


@dataclass(frozen=True, slots=True)
class KVRates:
    """KV-cache bytes per token on one device: ``full`` for the full-attention layers (every token stays), and
    per window (sliding or chunked layers) the bytes per token of the layers that keep at most that many."""

    full: float
    windowed: tuple[tuple[float, int], ...] = ()

    def sequence(self, tokens: int) -> float:
        """Bytes one sequence of ``tokens`` tokens holds."""
        return self.full * tokens + sum(r * min(tokens, w) for r, w in self.windowed)

    def per_token(self, tokens: int) -> float:
        """Mean bytes per token of a sequence of ``tokens`` tokens (the full rate without local layers)."""
        return self.full + sum(r * min(tokens, w) for r, w in self.windowed) / tokens

    @property
    def all_layers(self) -> float:
        """Bytes per token while the sequence is shorter than every window."""
        return self.full + sum(r for r, _ in self.windowed)


def kv_rates(model: ModelSpec, sc: Scenario, layers: range | None = None) -> KVRates:
    """KV-cache bytes per token on one device, all layers (or ``layers``), in the scenario's KV format, split
    by the layers' attention spans (a sliding or chunked layer holds at most its window of tokens).

    MLA: the latent and RoPE key of every token, replicated on every tp device (they serve all heads).
    Scales of a quantized KV cache: per-tensor and per-channel scales are static per layer
    (negligible, not counted); group scales (``int4_g64``: one per 64 channels of a token's head)
    are amortized in the per-element bytes.
    """
    full = 0.0
    windowed: dict[int, float] = {}
    for plan, ix in layer_groups(model.num_layers, sc, layers):
        if model.mla is not None:
            per_layer = model.mla.cache_width * sc.kv_cache.bytes
        else:
            _, KV = kept_heads(model, plan.keep_heads, sc.tp)
            kv = max(1, KV // sc.tp)
            per_layer = 2 * kv * model.head_dim * sc.kv_cache.bytes
        for span, n in model.attention_spans(ix):
            if span.kind == "full":
                full += n * per_layer
            else:
                windowed[span.window] = windowed.get(span.window, 0.0) + n * per_layer
    return KVRates(full, tuple(sorted((r, w) for w, r in windowed.items())))


def kv_bytes_per_token(model: ModelSpec, sc: Scenario, layers: range | None = None) -> float:
    """KV-cache bytes per token on one device while a sequence is shorter than every window (all layers, or
    ``layers``); :func:`kv_rates` splits them by span."""
    return kv_rates(model, sc, layers).all_layers


def lm_head_bytes(model: ModelSpec, sc: Scenario) -> float:
    """Per-device bytes of the (vocabulary-parallel) lm_head in its format."""
    tech = lm_head_tech(sc)
    n = model.lm_head_params() / model.hidden_size / sc.tp
    if not model.lm_head_params():
        return 0.0
    return sparse_weight_bytes(tech.weights, n, model.hidden_size, tech.sparsity,
                               storage_layout(tech.sparsity, sc.sparse_kernel))


__all__ = ["KVRates", "LayerPlan", "LinearTech", "kept_heads", "kv_rates", "layer_groups", "linear_weight_bytes", "lm_head_bytes",
           "lm_head_tech", "kv_bytes_per_token", "range_label", "resolve"]
