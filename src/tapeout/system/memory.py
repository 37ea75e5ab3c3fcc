"""Per-device memory: weights, KV cache, peak activations, runtime reserve; the largest batch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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
    #: tokens the engine's KV pool holds per batch in flight: kv_fraction x (capacity - reserve - weights -
    #: one sequence's activations) / KV bytes per token
    kv_capacity_tokens: int = 0
    #: sequences that run at once: batch, or fewer when the pool cannot hold batch x final context
    concurrency: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def weight_bytes(model: ModelSpec, sc: Scenario, stage: int | None = None) -> float:
    """Bytes of weights one device holds under tensor parallelism ``sc.tp`` (on pipeline stage ``stage``;
    None: all layers, as without pipeline parallelism).

    Linear layers are stored in their per-layer formats and sparse layouts, pruned layers with
    their smaller dimensions (:func:`tapeout.workload.layers.linear_weight_bytes`); embeddings,
    norms and the MoE router in 16-bit (fp32 when weights are fp32); lm_head in its own format
    (16-bit unless a scenario rule sets it). The first stage holds the embedding, the last the final
    norm and the lm_head (tied embeddings: the last stage keeps its own copy, as pipelined runtimes do).
    """
    from tapeout.workload.layers import linear_weight_bytes, lm_head_bytes

    t = sc.tp
    h = model.hidden_size
    hp = sc.high_precision.bytes
    from tapeout.workload.build import stage_ranges

    layers = None if stage is None else stage_ranges(model, sc)[stage]
    first = stage is None or stage == 0
    last = stage is None or stage == sc.pp - 1
    n_layers = model.num_layers if layers is None else len(layers)
    high = n_layers * model.norms_per_layer * model.norm_params() + (model.norm_params() if last else 0)
    # per-layer extras (zero for the classic families): QK norms (split over tp when each head has its own),
    # attention sinks (per head, split over tp), MLA's latent norms (replicated)
    extra = model.qk_norm_params() / (t if model.qk_norm_per_head else 1)
    extra += model.num_heads / t if model.attention_sinks else 0
    if model.mla is not None:
        extra += (model.mla.q_lora_rank or 0) + model.mla.kv_lora_rank
    high += n_layers * extra
    if model.moe is not None:
        moe_layers = [i for i in (layers or range(model.num_layers)) if i not in set(model.moe.dense_layers)]
        high += len(moe_layers) * model.hidden_size * model.moe.num_experts
    emb = model.embedding_params()
    if model.position == "learned":  # the position table is replicated, the vocabulary split
        pos = (model.max_position_embeddings + model.position_offset) * h
        emb = (emb - pos) / t + pos
    else:
        emb = emb / t
    if first:  # the embedding, and a vision tower the checkpoint ships (loaded with the model, split over tp)
        high += emb + model.vision_params / t
    lm = lm_head_bytes(model, sc) if last else 0.0
    if last and not first and not model.lm_head_params():  # tied: the last stage holds a copy of the table
        lm = model.vocab_size * h / t * hp
    return linear_weight_bytes(model, sc, layers) + high * hp + lm


def kv_rates(model: ModelSpec, sc: Scenario, stage: int | None = None):  # noqa: ANN201 - layers.KVRates
    """KV-cache bytes per token on one device (all layers, or pipeline stage ``stage``'s; pruned heads per
    layer group), split by attention span (:class:`tapeout.workload.layers.KVRates`)."""
    from tapeout.workload.layers import kv_rates as rates
    from tapeout.workload.build import stage_ranges

    layers = None if stage is None else stage_ranges(model, sc)[stage]
    return rates(model, sc, layers)


def kv_bytes_per_token(model: ModelSpec, sc: Scenario, stage: int | None = None) -> float:
    """KV-cache bytes per token on one device while a sequence is shorter than every window."""
    return kv_rates(model, sc, stage).all_layers


@dataclass(frozen=True, slots=True)
class Activations:
    """Live activation bytes of one forward pass as a function of the batch: one sequence's residual stream
    and largest op (all of them linear in the sequences of a pass: flash attention's Q/K/V/O of the new
    tokens, naive attention's score rows, the MoE's routed copies, the logits), for the prefill and for a
    decode step. A prefill runs in chunks of at most ``budget`` tokens (``Scenario.max_prefill_tokens``;
    None: the whole batch in one pass), so it holds at most ``budget / prompt`` sequences' worth at once."""

    prefill_residual: float
    prefill_op: float
    decode_residual: float
    decode_op: float
    prompt: int
    budget: int | None

    def at(self, batch: float) -> float:
        """Peak bytes with ``batch`` sequences: the largest residual stream plus the largest op's live bytes."""
        pre = batch if self.budget is None else min(batch, self.budget / self.prompt)
        return max(self.prefill_residual * pre, self.decode_residual * batch) \
            + max(self.prefill_op * pre, self.decode_op * batch)


def activations(model: ModelSpec, sc: Scenario, graphs: list[OpGraph]) -> Activations:
    """One sequence's activations per pass kind, from the priced graphs of ``sc.batch`` sequences."""
    res = model.hidden_size * sc.activations.bytes / sc.batch

    def peak(phase: str) -> tuple[float, float]:
        gs = [g for g in graphs if g.phase == phase]
        if not gs:
            return 0.0, 0.0
        return (max(g.tokens for g in gs) * res, max(o.activation_bytes for g in gs for o in g.ops) / sc.batch)

    (pr, po), (dr, do) = peak("prefill"), peak("decode")
    return Activations(pr, po, dr, do, sc.input_len, sc.max_prefill_tokens)


def plan(model: ModelSpec, hw: HardwareSpec, sc: Scenario, graphs: list[OpGraph],
         same_as: Sequence[int] | None = None) -> MemoryPlan:
    """Memory of the binding device: without pipeline parallelism every device holds the same; with it,
    the stage whose total is largest (its KV cache holds ``pp_microbatches`` batches in flight).
    ``same_as[s]``: a stage whose layers, formats and first/last role equal stage s's (its plan is reused).
    Activations are those of one forward pass, a prefill chunked to ``sc.max_prefill_tokens`` (:class:`Activations`)."""
    act = activations(model, sc, graphs)
    if sc.pp == 1:
        return _plan(model, hw, sc, act, None)
    done: dict[int, MemoryPlan] = {}
    plans = []
    for s in range(sc.pp):
        r = s if same_as is None else same_as[s]
        if r not in done:
            done[r] = _plan(model, hw, sc, act, r)
        plans.append(done[r])
    worst = max(plans, key=lambda p: p.total_bytes)
    from dataclasses import replace

    return replace(worst, fits=all(p.fits for p in plans), max_batch=min(p.max_batch for p in plans),
                   kv_capacity_tokens=min(p.kv_capacity_tokens for p in plans),
                   concurrency=min(p.concurrency for p in plans))


def _largest(fits, hi: int) -> int:  # noqa: ANN001 - int -> bool, monotone (true up to some n)
    """The largest n in [0, hi] with fits(n) (0 when none), by bisection."""
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _plan(model: ModelSpec, hw: HardwareSpec, sc: Scenario, act: Activations, stage: int | None) -> MemoryPlan:
    """``act``: the activations of one pass as a function of the batch. A sequence's KV cache follows its
    layers' spans: sliding and chunked layers hold at most their window (``kv_cache_bytes_per_token`` is
    then the mean per token at the final context)."""
    per_token = kv_rates(model, sc, stage).per_token(sc.final_context)
    kv = sc.pp_microbatches * sc.batch * sc.final_context * per_token
    wts = weight_bytes(model, sc, stage)
    cap = hw.memory_capacity
    reserve = hw.efficiency.runtime_reserve_gb * 1e9
    peak = act.at(sc.batch)
    total = wts + kv + peak + reserve
    free = cap - reserve - wts
    kv_seq = kv / sc.batch
    # the largest batch: its KV cache and its pass's activations fill what the weights leave
    hi = int(min(2**31, free / max(kv_seq, 1.0))) + 1 if free > 0 else 0
    max_batch = _largest(lambda b: b * kv_seq + act.at(b) <= free, hi)
    # the KV pool: what the engine allocates once weights and the activations of one sequence (one budget at
    # most) are placed (prefill runs in token chunks, so its activations do not grow with the number of sequences)
    pool = sc.kv_fraction * max(0.0, free - act.at(1))
    pool_tokens = math.floor(pool / (per_token * sc.pp_microbatches)) if per_token > 0 else 2**62
    concurrency = min(sc.batch, pool_tokens // sc.final_context)
    return MemoryPlan(
        weights_bytes=wts, kv_cache_bytes=kv, activation_bytes=peak, runtime_reserve_bytes=reserve,
        total_bytes=total, capacity_bytes=cap, fits=total <= cap, max_batch=max_batch,
        kv_cache_bytes_per_token=per_token, kv_capacity_tokens=int(min(pool_tokens, 2**62)),
        concurrency=int(concurrency),
    )
