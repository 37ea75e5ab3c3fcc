"""Turn (model, scenario) into the per-device operator graph of a prefill or a decode step.

Conventions (documented in docs/architecture.md):
- GEMM M = tokens, N = output features, K = input features; FLOPs = 2*M*N*K.
- Tensor parallelism is Megatron-style: QKV and gate/up are column-parallel, the output and
  down projections row-parallel, followed by an all-reduce; embedding and lm_head are split
  over the vocabulary. KV heads are split when tp divides them, replicated when they divide tp.
- Quantized *weight* formats apply to the transformer's linear layers; embedding and lm_head
  stay in 16-bit (as GPTQ/AWQ/FP6-LLM deployments do) unless weights are fp32.
- ``fuse_residual_norm``: each residual add runs inside the following norm (vLLM's fused add +
  RMSNorm, FasterTransformer's add-bias-residual-layernorm), one kernel instead of two; the first
  layer's norm is counted as fused too (one layer's worth of extra bytes).
- Causal prefill attention attends S(S+1)/2 query-key pairs per head (half the square) in the
  fused kernel; naive attention computes and stores the full square, then masks it.
- Compression techniques: each linear op is built by :func:`tapeout.workload.kernels.linear` from
  its layer's resolved formats and sparsity (:mod:`tapeout.workload.layers`); layers with equal
  techniques and pruned sizes form one group (op names get the group's layers, ``qkv_proj[0-3]``,
  when there is more than one group). A quantized KV cache is dequantized inside decode attention.
- Attention spans (docs/local-attention.md): a model with local attention gets one attention op per span
  in each layer group, named after it (``attention:sliding4096``, ``attention:full``); a sliding layer
  attends to min(context, W) keys, a chunked one to the keys of its chunk; prefill counts the causal
  pairs inside the span. Layers without RoPE (``nope_layers``) skip the RoPE op.
- MLA (docs/mla.md): q_a/kv_a projections replicated on every tp device, q_b/kv_b/o split by heads, the
  latent cache replicated; the naive form up-projects the latent (kv_b_proj) and runs per-head attention,
  the absorbed form folds W_UK into the query (q_absorb) and W_UV into the output (v_absorb) and attends in
  the latent space (one shared "KV head" of kv_lora + rope values, read once for all heads).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from tapeout import dtypes
from tapeout.dtypes import DType
from tapeout.errors import TapeoutError
from tapeout.frozen import evolve
from tapeout.models.spec import FULL, LayerAttention, ModelSpec
from tapeout.workload import kernels
from tapeout.workload.eplb import busiest_device_load, placement
from tapeout.workload.layers import LayerPlan, LinearTech, kept_heads, layer_groups, lm_head_tech, range_label
from tapeout.workload.standalone import (  # noqa: F401 (constants re-exported)
    ACT_FLOPS, ALIBI_FLOPS, CLAMP_FLOPS, NORM_FLOPS, ROPE_FLOPS, SAMPLING_FLOPS, SCALE_FLOPS, SOFTCAP_FLOPS,
    SOFTMAX_FLOPS, collective_op, elementwise_op,
)
from tapeout.workload.ops import Kernel, Op, OpGraph, OpKind, OpSweep
from tapeout.workload.routing import EPRouting
from tapeout.workload.scenario import Scenario



def check_parallelism(model: ModelSpec, tp: int) -> None:
    """Raise a clear error when ``tp`` cannot shard this model's heads."""
    if model.num_heads % tp:
        raise TapeoutError(
            f"tp={tp} does not divide {model.name}'s {model.num_heads} attention heads; "
            f"allowed: {', '.join(str(d) for d in _divisors(model.num_heads) if d <= 64)}",
            field="tp",
        )
    kv = model.num_kv_heads
    if kv % tp and tp % kv:
        raise TapeoutError(
            f"tp={tp} neither divides nor is a multiple of {model.name}'s {kv} KV heads", field="tp"
        )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def expected_active_experts(num_experts: int, top_k: int, tokens: int) -> float:
    """Expected number of distinct experts hit by ``tokens`` tokens routing uniformly to top_k."""
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def check_expert_parallel(model: ModelSpec, ep: int, redundant: int = 0) -> None:
    """Raise a clear error when expert parallelism is asked of a dense model, or of more devices than experts,
    or when ``redundant`` experts do not fill the ``ep`` devices evenly (EPLB's placement)."""
    if ep > 1 and model.moe is None:
        raise TapeoutError(f"ep={ep} needs a mixture-of-experts model; {model.name} is dense; allowed: 1", field="ep")
    if model.moe is not None and ep > model.moe.num_experts:
        raise TapeoutError(f"ep={ep} exceeds {model.name}'s {model.moe.num_experts} experts; "
                           f"allowed: 1..{model.moe.num_experts}", field="ep")
    if redundant and model.moe is not None and (model.moe.num_experts + redundant) % ep:
        first = -model.moe.num_experts % ep
        allowed = ", ".join(str(first + i * ep) for i in range(4))
        raise TapeoutError(f"redundant_experts={redundant}: ep={ep} must divide {model.name}'s "
                           f"{model.moe.num_experts} experts + the redundant ones; allowed: {allowed}, ...",
                           field="redundant_experts")


def busiest_device_experts(local: int, p_active: float, ep: int) -> float:
    """Expected active experts on the busiest of ``ep`` devices holding ``local`` experts each, every expert
    active with probability ``p_active`` (independently): E[max of ep Binomial(local, p)] =
    sum over j of P(max >= j) = sum_j 1 - F(j - 1)^ep. A step of an expert-parallel layer waits for that
    device."""
    p = min(max(p_active, 0.0), 1.0)
    cdf, total = 0.0, 0.0
    for j in range(local):
        cdf += math.comb(local, j) * p ** j * (1 - p) ** (local - j)
        total += 1.0 - min(cdf, 1.0) ** ep
    return total


def expert_load(experts: int, top_k: int, ep: int, tokens: float, redundant: int = 0) -> tuple[float, float, str]:
    """(active expert copies on the busiest device, the busiest device's load in whole experts' worth of tokens,
    why) for ``tokens`` tokens routed uniformly to ``top_k`` of ``experts`` spread over ``ep`` devices, with
    ``redundant`` EPLB copies (:mod:`tapeout.workload.eplb`). Each expert is active with probability
    hit / experts (:func:`expected_active_experts`) and an active expert serves the mean tokens of one; the
    step waits for the busiest device. Without copies both are :func:`busiest_device_experts` of
    ceil(experts / ep) experts."""
    p = expected_active_experts(experts, top_k, tokens) / experts
    slots = math.ceil((experts + redundant) / ep)
    active = busiest_device_experts(slots, p, ep)
    if not redundant:
        return active, active, (f"uniform routing: E[max over {ep} devices of the active experts among their "
                                f"{slots}] at {p:.3g} per expert")
    kinds = ", ".join(f"{n} x [{' '.join(f'1/{c}' if c > 1 else '1' for c in dev)}]" for dev, n in placement(
        experts, redundant, ep))
    return active, busiest_device_load(experts, redundant, ep, p), (
        f"uniform routing, EPLB's {redundant} redundant experts ({kinds}: devices x shares of their experts): "
        f"E[max over {ep} devices of the active shares] at {p:.3g} per expert")


def experts_per_device(model: ModelSpec, ep: int, redundant: int = 0) -> int:
    """Whole experts one device holds under expert parallelism ``ep`` (the last devices may hold one fewer), or
    with ``redundant`` EPLB copies, (experts + redundant) / ep (:func:`check_expert_parallel` checked it divides)."""
    assert model.moe is not None
    return math.ceil((model.moe.num_experts + redundant) / ep)


def check_pipeline(model: ModelSpec, pp: int) -> None:
    """Raise a clear error when ``pp`` stages cannot each hold at least one layer."""
    if pp > model.num_layers:
        raise TapeoutError(f"pp={pp} exceeds {model.name}'s {model.num_layers} layers; allowed: 1..{model.num_layers}",
                           field="pp")


@lru_cache(maxsize=512)
def stage_ranges(model: ModelSpec, sc: Scenario) -> tuple[range, ...]:
    """Each pipeline stage's layers, balanced by weights: the first stage's embedding table and the last
    stage's lm_head (a copy of the table when tied) count as that many layers' worth of parameters.
    Computed once per (model, scenario)."""
    if sc.pp == 1:
        return (range(model.num_layers),)
    per_layer = max(model.total_params() - model.embedding_params() - model.lm_head_params(), 1) / model.num_layers
    head = model.embedding_params() / per_layer
    tail = (model.lm_head_params() or model.vocab_size * model.hidden_size) / per_layer
    return tuple(sc.stage_layers(model.num_layers, head, tail))


def check_scenario(model: ModelSpec, sc: Scenario) -> None:
    """Raise a clear error when the scenario's parallelism (or attention variant) cannot run this model."""
    if model.mla is not None and sc.attention != "flash":
        raise TapeoutError(f"attention={sc.attention!r} is not modelled for {model.name}'s multi-head latent "
                           "attention; allowed: flash (pick the MLA form with mla_attention: auto, naive, absorbed)",
                           field="attention")
    check_parallelism(model, sc.tp)
    check_pipeline(model, sc.pp)
    check_expert_parallel(model, sc.ep, sc.redundant_experts)


def _stage_groups(model: ModelSpec, sc: Scenario, stage: int) -> list[tuple[LayerPlan, tuple[int, ...]]]:
    return layer_groups(model.num_layers, sc, stage_ranges(model, sc)[stage] if sc.pp > 1 else None)


class _Builder:
    """Builds one stage's graph. Only :meth:`_attention` reads the context (the KV length): the decode
    template (:class:`StepTemplate`) prices every other op once and replays the recorded attention slots
    per context."""

    def __init__(self, model: ModelSpec, sc: Scenario, stage: int = 0,
                 groups: list[tuple[LayerPlan, tuple[int, ...]]] | None = None) -> None:
        check_scenario(model, sc)
        if not 0 <= stage < sc.pp:
            raise TapeoutError(f"stage {stage} out of range; allowed: 0..{sc.pp - 1}", field="stage")
        self.m = model
        self.sc = sc
        self.stage = stage
        self.first, self.last = stage == 0, stage == sc.pp - 1
        t = sc.tp
        self.t = t
        self.hd = model.head_dim
        self.h = model.hidden_size
        self.vocab = math.ceil(model.vocab_size / t)
        self.w: DType = sc.weights
        self.kv: DType = sc.kv_cache
        self.hp: DType = sc.high_precision
        #: the activations between kernels (residual stream, norms, attention, all-reduces): quantized
        #: activations (W8A8, FP8) are GEMM inputs only; engines keep the stream in 16 bits and the kernel
        #: that feeds a quantized GEMM writes a quantized copy of its output (``_quantized_copy``)
        self.a: DType = sc.activations if sc.activations.bits >= 16 else self.hp
        #: the format decode attention's matmuls run in: the KV cache's with ``fp8_attention`` (no dequantization),
        #: else the activations' (the cache dequantized on the fly)
        self.kv_math: DType = self.kv if sc.fp8_attention else self.a
        self.groups = groups if groups is not None else _stage_groups(model, sc, stage)
        self.lm_tech = lm_head_tech(sc)
        self._set_plan(self.groups[0][0])
        self.suffix = ""
        self.phase = "prefill"
        self.ops: list[Op] = []
        #: attention slots: (first op index, end index, plan, suffix, layers, attention span)
        self.slots: list[tuple[int, int, LayerPlan, str, int, LayerAttention]] = []
        #: index of the first op that scales with the sequences (lm_head, logits, sampling) in the last build
        self.head_start = 0
        #: wide expert parallelism: the tokens of all ep ranks that reach the experts (None: this device's
        #: tokens x ep, every rank running as many; the serving simulator sets it for uneven ranks)
        self.expert_tokens: int | None = None

    def _set_plan(self, plan: LayerPlan) -> None:
        """Per-group dimensions: heads and MLP channels after pruning, per device."""
        m, t = self.m, self.t
        self.plan = plan
        H, KV = kept_heads(m, plan.keep_heads, t)
        self.heads = H // t
        self.kv_heads = max(1, KV // t)
        self.inter = math.ceil(m.intermediate_size * plan.keep_mlp / t)
        self.expert_inter = (math.ceil(m.moe.expert_intermediate_size * plan.keep_mlp / t)
                             if m.moe is not None else 0)

    # ---- op constructors -----------------------------------------------------------------
    def gemm(self, name: str, m: float, n: int, k: int, count: int, *, slot: str | None = None,
             tech: LinearTech | None = None, bias: bool = False, experts: float = 1.0,
             tokens_routed: float | None = None, routing: EPRouting | None = None) -> None:
        """A GEMM with a weight matrix (k x n) per expert; ``m`` tokens per expert.

        ``slot`` names the layer's linear slot whose techniques apply (qkv_proj, out_proj, up, down,
        expert_up, expert_down); ``tech`` gives them directly (lm_head, router); ``routing``: the routed experts'
        facts, for the imbalance their rows state.
        """
        if count <= 0:
            return
        if tech is None:
            tech = self.plan[slot] if slot is not None else LinearTech(self.hp, self.a, None)
        op = kernels.linear(
            name + self.suffix, m=m, n=n, k=k, count=count, w=tech.weights,
            a=tech.activations, sparsity=tech.sparsity, sparse_kernel=self.sc.sparse_kernel, experts=experts,
            tokens_routed=tokens_routed, bias=bias, constants=self.sc.kernel_constants,
        )
        self.ops.append(op if routing is None else evolve(op, routing=routing))

    def elementwise(self, name: str, kind: OpKind, elems_in: float, elems_out: float, flops_per: float,
                    count: int, *, out_dtype: DType | None = None, feeds: tuple[str, float] | None = None) -> None:
        """``feeds`` = (linear slot, elements): the output also feeds that GEMM, whose input format it
        writes as a second copy when the slot's activations are quantized."""
        if count > 0:
            op = elementwise_op(name + self.suffix, kind, elems_in, elems_out, flops_per,
                                dtype=self.a, out_dtype=out_dtype, count=count, tags=_token_tags(name, kind))
            self.ops.append(self._quantized_copy(op, feeds))

    def _up_slot(self) -> str:
        """The linear slot the MLP norm feeds: the experts' up projection in an MoE model, else the MLP's."""
        return "expert_up" if self.m.moe is not None else "up"

    def _quantized_copy(self, op: Op, feeds: tuple[str, float] | None) -> Op:
        """``op`` also writing its ``feeds`` elements in the quantized input format of the GEMM slot they feed
        (per-token or per-tensor quantization fused into the producer, as TensorRT-LLM's norm and activation
        plugins and vLLM's fused norm-quant kernels do): extra bytes written, no extra kernel."""
        if feeds is None:
            return op
        slot, elems = feeds
        q = self.plan[slot].activations
        if q.bits >= 16:
            return op
        extra = elems * q.bytes
        return replace(op, bytes_written=op.bytes_written + extra, activation_bytes=op.activation_bytes + extra,
                       formats=op.formats + (("quantized", q.name),))

    def collective(self, name: str, kind: OpKind, message_bytes: float, count: int) -> None:
        if self.t > 1 and count > 0:
            self.ops.append(collective_op(kind, message_bytes, self.t, dtype=self.a, name=name + self.suffix,
                                          count=count))

    # ---- the model -----------------------------------------------------------------------
    def build(self, phase: str, context: int) -> OpGraph:
        g = self._build(phase, context)
        if phase != "prefill":
            return g
        # serving engines replay CUDA graphs for decode steps only: the prefill's kernels launch from the host
        return replace(g, ops=tuple(evolve(o, eager=True) for o in g.ops))

    def _build(self, phase: str, context: int, batch: int | None = None, seq: int | None = None) -> OpGraph:
        m, sc, a = self.m, self.sc, self.a
        B = sc.batch if batch is None else batch
        S = (sc.input_len if phase == "prefill" else 1) if seq is None else seq
        T = B * S
        self.phase = phase
        h = self.h

        if self.first:  # embedding (vocab-parallel gather; learned positions add a second gather)
            gathers = 2 if m.position == "learned" else 1
            self.ops.append(Op(
                name="embedding", kind=OpKind.EMBEDDING, flops=0.0,
                bytes_read=gathers * T * h * self.hp.bytes / self.t, bytes_written=T * h * a.bytes, count=1,
                shape=(("tokens", T), ("hidden", h)), compute_dtype="fp32", formats=(("table", self.hp.name),),
                activation_bytes=T * h * a.bytes,
            ))
            self.collective("embedding_allreduce", OpKind.ALLREDUCE, T * h * a.bytes, 1)

        norm_f = NORM_FLOPS[m.norm]
        dense_set = set(m.moe.dense_layers) if m.moe is not None else set(range(m.num_layers))
        for plan, ix in self.groups:
            self._set_plan(plan)
            self.suffix = f"[{range_label(ix)}]" if len(self.groups) > 1 else ""
            n_dense = sum(1 for i in ix if i in dense_set)
            self._layer(phase, B, S, T, context, ix, n_dense, len(ix) - n_dense, norm_f)
        self.suffix = ""

        if not self.last:  # the hidden states go to the next pipeline stage (each device of this tp group
            # sends its copy to its peer there: one point-to-point message of the tokens' hidden states)
            self.ops.append(collective_op(OpKind.SEND, T * h * a.bytes, 2, dtype=a, name="pp_send"))
            self.head_start = len(self.ops)
            return OpGraph(phase=phase, ops=tuple(self.ops), tokens=T, context=context)
        if self.sc.fuse_residual_norm:  # the last layer's residual add runs inside the final norm
            extra = 3 if m.parallel_block else 2
            self.elementwise("residual_add_final_norm", OpKind.NORM, extra * T * h, T * h, norm_f + extra - 1, 1)
        else:
            self.elementwise("final_norm", OpKind.NORM, T * h, T * h, norm_f, 1)
        # lm_head on the last token of each sequence only
        self.head_start = len(self.ops)  # from here on, the ops scale with the sequences, not the tokens
        self.gemm("lm_head", B, self.vocab, h, 1, tech=self.lm_tech, bias=m.lm_head_bias)
        if m.final_logit_softcap:
            self.elementwise("logit_softcap", OpKind.ELEMENTWISE, B * self.vocab, B * self.vocab, SOFTCAP_FLOPS, 1)
        if m.logit_scale is not None:  # vLLM's LogitsProcessor(scale=logit_scale): its own multiply on the logits
            self.elementwise("logit_scale", OpKind.ELEMENTWISE, B * self.vocab, B * self.vocab, SCALE_FLOPS, 1)
        self.collective("logits_allgather", OpKind.ALLGATHER, B * self.vocab * a.bytes, 1)
        self.ops.append(Op(
            name="sampling", kind=OpKind.SAMPLING, flops=SAMPLING_FLOPS * B * m.vocab_size,
            bytes_read=B * m.vocab_size * 4.0, bytes_written=B * 8.0, count=1,
            shape=(("batch", B), ("vocab", m.vocab_size)), compute_dtype="fp32",
            activation_bytes=B * m.vocab_size * 4.0,
        ))
        return OpGraph(phase=phase, ops=tuple(self.ops), tokens=T, context=context)

    def _layer(self, phase: str, B: int, S: int, T: int, context: int, ix: tuple[int, ...], dense_L: int,
               moe_L: int, norm_f: int) -> None:
        """The ops of the layers ``ix`` (same plan; ``dense_L`` with a dense MLP, ``moe_L`` with experts)."""
        m = self.m
        L = len(ix)
        h, hd = self.h, self.hd
        q, kvs = self.heads * hd, self.kv_heads * hd
        nope = set(m.nope_layers)
        rope_L = sum(1 for i in ix if i not in nope) if m.position == "rope" else 0
        fuse = self.sc.fuse_residual_norm
        if fuse:  # the previous layer's residual add(s) run inside this norm: read x (+ r), write sum and norm
            extra = 3 if m.parallel_block else 2
            self.elementwise("residual_add_attn_norm", OpKind.NORM, extra * T * h, 2 * T * h,
                             norm_f + extra - 1, L, feeds=("qkv_proj", T * h))
        else:
            self.elementwise("attn_norm", OpKind.NORM, T * h, T * h, norm_f, L, feeds=("qkv_proj", T * h))
        if m.mla is not None:
            self._mla_block(phase, B, S, T, context, L, norm_f)
        else:
            self.gemm("qkv_proj", T, q + 2 * kvs, h, L, slot="qkv_proj", bias=m.qkv_bias)
            if m.qkv_clip is not None:  # vLLM's DbrxAttention: qkv.clamp_ after Wqkv, its own kernel
                self.elementwise("qkv_clip", OpKind.ELEMENTWISE, T * (q + 2 * kvs), T * (q + 2 * kvs), CLAMP_FLOPS, L)
            if rope_L:
                self.elementwise("rope", OpKind.ELEMENTWISE, T * (q + kvs), T * (q + kvs), ROPE_FLOPS, rope_L)
            self.elementwise("kv_cache_write", OpKind.ELEMENTWISE, T * 2 * kvs, T * 2 * kvs, 1, L,
                             out_dtype=self.kv)
            for span, n in m.attention_spans(ix):
                self._attention_slot(phase, B, S, context, n, span)
            self.gemm("out_proj", T, h, q, L, slot="out_proj", bias=m.out_bias)
        allreduces = 1 if m.parallel_block else 2
        self.collective("tp_allreduce", OpKind.ALLREDUCE, T * h * self.a.bytes, allreduces * L)
        if m.norms_per_layer == 4:  # sandwich norms: the attention output is normed before its residual add
            self.elementwise("attn_post_norm", OpKind.NORM, T * h, T * h, norm_f, L)
        if m.parallel_block:
            if m.norms_per_layer == 2:
                self.elementwise("mlp_norm", OpKind.NORM, T * h, T * h, norm_f, L, feeds=(self._up_slot(), T * h))
        elif fuse:
            self.elementwise("residual_add_mlp_norm", OpKind.NORM, 2 * T * h, 2 * T * h, norm_f + 1, L,
                             feeds=(self._up_slot(), T * h))
        else:
            self.elementwise("attn_residual_add", OpKind.ELEMENTWISE, 2 * T * h, T * h, 1, L)
            self.elementwise("mlp_norm", OpKind.NORM, T * h, T * h, norm_f, L, feeds=(self._up_slot(), T * h))
        self._mlp(T, dense_L, moe_L)
        if m.norms_per_layer == 4:
            self.elementwise("mlp_post_norm", OpKind.NORM, T * h, T * h, norm_f, L)
        if fuse:
            return  # the block's residual add runs in the next norm (or the final norm)
        if m.parallel_block:
            self.elementwise("residual_add", OpKind.ELEMENTWISE, 3 * T * h, T * h, 2, L)
        else:
            self.elementwise("mlp_residual_add", OpKind.ELEMENTWISE, 2 * T * h, T * h, 1, L)

    def _attention_slot(self, phase: str, B: int, S: int, context: int, L: int, span: LayerAttention) -> None:
        """The attention ops of ``L`` layers of one span, recorded as a slot (the decode template replays the
        slots per context, the serving iteration per request group)."""
        start = len(self.ops)
        self._attention(phase, B, S, context, L, span)
        self.slots.append((start, len(self.ops), self.plan, self.suffix, L, span))

    def _name(self, base: str, span: LayerAttention) -> str:
        """``base`` tagged with the layer group's span when the model has local attention."""
        return base + (f":{span.label}" if self.m.local_attention is not None else "") + self.suffix

    def _mla_block(self, phase: str, B: int, S: int, T: int, context: int, L: int, norm_f: int) -> None:
        """MLA from the attention norm's output to o_proj (docs/mla.md). q_a_proj and kv_a_proj_with_mqa run
        as one GEMM replicated on every tp device (vLLM's and SGLang's fused_qkv_a_proj), q_b/kv_b/o are split
        by heads; the latent cache is replicated."""
        m = self.m
        a = m.mla
        assert a is not None
        h, H = self.h, self.heads
        form = self.sc.mla_form(phase)
        lat, rope = a.kv_lora_rank, a.qk_rope_head_dim
        if a.q_lora_rank:
            self.gemm("qkv_a_proj", T, a.q_lora_rank + a.cache_width, h, L, slot="qkv_proj")
            self.elementwise("q_a_norm", OpKind.NORM, T * a.q_lora_rank, T * a.q_lora_rank, norm_f, L,
                             feeds=("qkv_proj", T * a.q_lora_rank))
            self.gemm("q_b_proj", T, H * a.qk_head_dim, a.q_lora_rank, L, slot="qkv_proj")
        else:
            self.gemm("q_proj", T, H * a.qk_head_dim, h, L, slot="qkv_proj")
            self.gemm("kv_a_proj", T, a.cache_width, h, L, slot="qkv_proj")
        self.elementwise("kv_a_norm", OpKind.NORM, T * lat, T * lat, norm_f, L)
        self.elementwise("rope", OpKind.ELEMENTWISE, T * (H + 1) * rope, T * (H + 1) * rope, ROPE_FLOPS, L)
        self.elementwise("kv_cache_write", OpKind.ELEMENTWISE, T * a.cache_width, T * a.cache_width, 1, L,
                         out_dtype=self.kv)
        if form == "absorbed":  # W_UK folded into the query: each head's q_nope -> the latent space
            self.gemm("q_absorb", T, lat, a.qk_nope_head_dim, L, slot="qkv_proj", experts=H)
        self._attention_slot(phase, B, S, context, L, FULL)
        if form == "absorbed":  # W_UV: each head's latent output -> v_head_dim
            self.gemm("v_absorb", T, a.v_head_dim, lat, L, slot="qkv_proj", experts=H)
        self.gemm("out_proj", T, h, H * a.v_head_dim, L, slot="out_proj", bias=m.out_bias)

    def _mla_attention(self, phase: str, B: int, S: int, context: int, L: int) -> None:
        """MLA attention of one step. Naive: kv_b_proj up-projects the latent of every attended token to
        per-head K_nope and V (prefill: the new tokens; decode: the whole context, each step), then per-head
        attention (head dims qk_nope + rope and v). Absorbed: one shared latent "KV head" of kv_lora + rope
        values serves every head as K and (its first kv_lora values) as V; decode reads only the cache."""
        a = self.m.mla
        assert a is not None
        act, H = self.a, self.heads
        form = self.sc.mla_form(phase)
        lat, w = a.kv_lora_rank, a.cache_width
        prefill = phase == "prefill"
        keys, sq = (S, S) if prefill else (context, 1)
        pairs = B * S * (S + 1) / 2 if prefill else B * context
        tags = ("causal", "flash") if prefill else ("decode",)
        name = f"attention:mla-{form}"
        if form == "naive":
            qk, v = a.qk_head_dim, a.v_head_dim
            self.gemm(f"kv_b_proj:mla-{form}", B * keys, H * (a.qk_nope_head_dim + v), lat, L, slot="qkv_proj")
            q_bytes = B * sq * H * qk * act.bytes
            kv_bytes = B * keys * H * (qk + v) * act.bytes
            out = B * sq * H * v * act.bytes
            self.ops.append(self._quantized_copy(Op(
                name=name + self.suffix, kind=OpKind.ATTENTION, flops=2.0 * H * (qk + v) * pairs,
                bytes_read=q_bytes + kv_bytes, bytes_written=out, count=L,
                shape=(("b", B), ("heads", H), ("kv_heads", H), ("sq", sq), ("skv", keys), ("d", qk), ("dv", v)),
                compute_dtype=act.name, formats=(("act", act.name),), tags=tags,
                activation_bytes=q_bytes + kv_bytes + out,
            ), ("out_proj", B * sq * H * v) if prefill else None))
            return
        kv = self.kv if not prefill else act  # prefill attends to the new tokens' latents as computed
        q_bytes = B * sq * H * w * act.bytes
        kv_elems = B * keys * w
        out = B * sq * H * lat * act.bytes
        math_dtype = act if prefill else self.kv_math
        dq = kernels.kv_attention_work(kv_elems, kv, math_dtype, self.sc.kernel_constants) if not prefill else 0.0
        self.ops.append(Op(
            name=name + self.suffix, kind=OpKind.ATTENTION, flops=2.0 * H * (w + lat) * pairs,
            bytes_read=q_bytes + kv_elems * kv.bytes, bytes_written=out, count=L,
            shape=(("b", B), ("heads", H), ("kv_heads", 1), ("sq", sq), ("skv", keys), ("d", w), ("dv", lat),
                   ("latent", 1)),
            compute_dtype=math_dtype.name, formats=(("act", act.name), ("kv", kv.name)), tags=tags,
            activation_bytes=q_bytes + out + (kv_elems * kv.bytes if prefill else 0.0),
            **({"kernel": Kernel.KV_DEQUANT, "vector_ops": dq, "overlap": "serial"} if dq else {}),
        ))

    def _attention(self, phase: str, B: int, S: int, context: int, L: int, span: LayerAttention = FULL) -> None:
        """Attention of ``L`` layers of span ``span``: prefill over ``S`` new tokens (causal pairs inside the
        span), or a decode step at ``context`` (the span's keys: :meth:`LayerAttention.keys`)."""
        if self.m.mla is not None:
            self._mla_attention(phase, B, S, context, L)
            return
        a, hd = self.a, self.hd
        H, KV = self.heads, self.kv_heads
        attn_dtype = a.name
        softcap = self.m.attn_logit_softcap is not None
        alibi = self.m.position == "alibi"
        local = (() if span.kind == "full" else
                 ((("window", span.window),) if span.kind == "sliding" else (("chunk", span.window),)))
        if phase == "prefill":
            pairs = B * span.causal_pairs(S)  # causal query-key pairs per head, inside the span
            q_bytes = B * S * H * hd * a.bytes
            kv_bytes = 2 * B * S * KV * hd * a.bytes
            if self.sc.attention in ("flash", "mmha"):  # fused prefill kernels share K/V across a GQA group
                self.ops.append(self._quantized_copy(Op(
                    name=self._name("attention", span), kind=OpKind.ATTENTION, flops=4.0 * H * hd * pairs,
                    bytes_read=q_bytes + kv_bytes, bytes_written=q_bytes, count=L,
                    shape=(("b", B), ("heads", H), ("kv_heads", KV), ("sq", S), ("skv", context), ("d", hd))
                    + local, compute_dtype=attn_dtype, formats=(("act", a.name),),
                    tags=("causal", "flash") + (("softcap",) if softcap else ()) + (("alibi",) if alibi else ()),
                    activation_bytes=2 * q_bytes + kv_bytes,
                ), ("out_proj", B * S * H * hd)))
                return
            # the full rectangle of the S queries against every key in the cache (``context``: S for a whole
            # prompt, prior + S for a chunk after cached tokens) is computed and materialized, then masked: the
            # executed work is not halved (nor cut to a window: eager attention masks the keys outside it)
            scores = B * H * S * context * a.bytes
            square = B * S * context
            k_rep = B * H * context * hd * a.bytes  # naive GQA repeats K/V per query head
            self.ops.append(Op(
                name=self._name("attn_scores", span), kind=OpKind.BMM, flops=2.0 * H * hd * square,
                bytes_read=q_bytes + k_rep, bytes_written=scores, count=L,
                shape=(("b", B * H), ("m", S), ("n", context), ("k", hd)), compute_dtype=attn_dtype,
                formats=(("act", a.name),), tags=("causal",), activation_bytes=q_bytes + k_rep + scores,
            ))
            if softcap:
                self.ops.append(elementwise_op(self._name("attn_softcap", span), OpKind.ELEMENTWISE, B * H * S * context,
                                               B * H * S * context, SOFTCAP_FLOPS, dtype=self.a, count=L))
            if alibi:
                self.ops.append(elementwise_op(self._name("attn_alibi", span), OpKind.ELEMENTWISE, B * H * S * context,
                                               B * H * S * context, ALIBI_FLOPS, dtype=self.a, count=L))
            self.ops.append(Op(
                name=self._name("attn_softmax", span), kind=OpKind.SOFTMAX, flops=SOFTMAX_FLOPS * B * H * S * context,
                bytes_read=scores, bytes_written=scores, count=L, shape=(("rows", B * H * S), ("cols", context)),
                compute_dtype="fp32", formats=(("act", a.name),), activation_bytes=2 * scores,
            ))
            self.ops.append(Op(
                name=self._name("attn_context", span), kind=OpKind.BMM, flops=2.0 * H * hd * square,
                bytes_read=scores + k_rep, bytes_written=q_bytes, count=L,
                shape=(("b", B * H), ("m", S), ("n", hd), ("k", context)), compute_dtype=attn_dtype,
                formats=(("act", a.name),), tags=("causal",), activation_bytes=scores + k_rep + q_bytes,
            ))
            return
        keys = span.keys(context)
        if self.sc.attention == "naive":
            self._naive_decode_attention(B, keys, L, span)
            return
        # decode: one query per sequence against the whole KV cache (dequantized on the fly when quantized);
        # "mmha" kernels load K/V once per query head: GQA/MQA sharing is not used
        if self.sc.attention == "mmha":
            KV = H
        work = self._decode_work(B, keys, KV)
        q_bytes = B * H * hd * a.bytes
        dq = work["vector_ops"]
        self.ops.append(Op(
            name=self._name("attention", span), kind=OpKind.ATTENTION, flops=work["flops"],
            bytes_read=work["bytes_read"], bytes_written=q_bytes, count=L,
            shape=(("b", B), ("heads", H), ("kv_heads", KV), ("sq", 1), ("skv", keys), ("d", hd)),
            compute_dtype=self.kv_math.name, formats=(("act", a.name), ("kv", self.kv.name)), tags=("decode",),
            activation_bytes=2 * q_bytes,
            **({"kernel": Kernel.KV_DEQUANT, "vector_ops": dq, "overlap": "serial"} if dq else {}),
        ))

    def _decode_work(self, B: int, keys: Any, KV: int) -> dict[str, Any]:
        """The fields of fused decode attention (``KV`` heads of K/V read) that grow with its ``keys``: FLOPs,
        bytes read and KV dequantization instructions of one run. ``keys`` is an int, or an array of key
        counts (:meth:`_decode_sweep`: the same formulas over every context at once)."""
        a, hd, H = self.a, self.hd, self.heads
        kv_elems = 2 * B * keys * KV * hd
        kv_read = kv_elems * self.kv.bytes
        q_bytes = B * H * hd * a.bytes
        return {"flops": 4.0 * B * H * hd * keys, "bytes_read": kv_read + q_bytes,
                "vector_ops": kernels.kv_attention_work(kv_elems, self.kv, self.kv_math, self.sc.kernel_constants)}

    def _decode_sweep(self, B: int, contexts: np.ndarray, L: int, span: LayerAttention) -> OpSweep | None:
        """The slot's decode attention at every context of ``contexts``, one fused kernel, as an
        :class:`OpSweep` from :meth:`_decode_work` over all of them; None where the slot is several kernels
        (naive attention) or MLA, which the template replays per context instead."""
        if self.m.mla is not None or self.sc.attention == "naive":
            return None
        self._attention("decode", B, 1, int(contexts[0]), L, span)
        op = self.ops[-1]
        keys = span.keys(contexts)
        work = self._decode_work(B, keys, dict(op.shape)["kv_heads"])
        return OpSweep(op, len(contexts), {k: v for k, v in work.items() if np.ndim(v)}, {"skv": keys})

    def _naive_decode_attention(self, B: int, context: int, L: int, span: LayerAttention = FULL) -> None:
        """Eager (Hugging Face-style) decode attention over ``context`` keys: GQA K/V are expanded to every
        query head each step (``repeat_kv`` materializes them), then QK^T, softmax and AV run as separate
        kernels."""
        a, hd = self.a, self.hd
        H, KV = self.heads, self.kv_heads
        cache = B * context * KV * hd  # elements of K (and of V) in the cache
        full = B * context * H * hd  # elements of K (and of V) seen by the query heads
        q_bytes = B * H * hd * a.bytes
        k_in = cache * self.kv.bytes
        if H != KV:  # repeat_kv: read the cache, write the expanded copies of K and V
            self.ops.append(replace(elementwise_op(self._name("repeat_kv", span), OpKind.ELEMENTWISE, 2 * cache,
                                                   2 * full, 0, dtype=self.a, count=L), bytes_read=2 * k_in))
            k_in = full * a.bytes
        scores = B * H * context * a.bytes
        self.ops.append(Op(
            name=self._name("attn_scores", span), kind=OpKind.BMM, flops=2.0 * full,
            bytes_read=q_bytes + k_in, bytes_written=scores, count=L,
            shape=(("b", B * H), ("m", 1), ("n", context), ("k", hd)), compute_dtype=a.name,
            formats=(("act", a.name),), tags=("decode",), activation_bytes=q_bytes + scores,
        ))
        if self.m.attn_logit_softcap is not None:
            self.ops.append(elementwise_op(self._name("attn_softcap", span), OpKind.ELEMENTWISE, B * H * context,
                                           B * H * context, SOFTCAP_FLOPS, dtype=self.a, count=L))
        if self.m.position == "alibi":
            self.ops.append(elementwise_op(self._name("attn_alibi", span), OpKind.ELEMENTWISE, B * H * context,
                                           B * H * context, ALIBI_FLOPS, dtype=self.a, count=L))
        self.ops.append(Op(
            name=self._name("attn_softmax", span), kind=OpKind.SOFTMAX, flops=SOFTMAX_FLOPS * B * H * context,
            bytes_read=scores, bytes_written=scores, count=L, shape=(("rows", B * H), ("cols", context)),
            compute_dtype="fp32", formats=(("act", a.name),), activation_bytes=2 * scores,
        ))
        self.ops.append(Op(
            name=self._name("attn_context", span), kind=OpKind.BMM, flops=2.0 * full,
            bytes_read=scores + k_in, bytes_written=q_bytes, count=L,
            shape=(("b", B * H), ("m", 1), ("n", hd), ("k", context)), compute_dtype=a.name,
            formats=(("act", a.name),), tags=("decode",), activation_bytes=scores + q_bytes,
        ))

    def _mlp(self, T: int, dense_L: int, moe_L: int) -> None:
        m = self.m
        h = self.h
        act_f = ACT_FLOPS[m.activation]
        mats = 2 if m.gated_mlp else 1
        if dense_L:
            self._ffn("mlp", T, self.inter, dense_L, act_f, mats)
        if m.moe is None or not moe_L:
            return
        moe = m.moe
        E, k = moe.num_experts, moe.top_k
        router = LinearTech(self.hp, self.a, None)
        self.gemm("moe_router", T, E, h, moe_L, tech=router, bias=moe.router_bias)
        self.elementwise("moe_topk", OpKind.SOFTMAX, T * E, T * k, SOFTMAX_FLOPS, moe_L,
                         out_dtype=dtypes.parse("fp32"))
        ep = self.sc.ep
        wide = self.sc.dp > 1  # data-parallel attention: every device's own tokens meet the experts of all ep
        if ep == 1:  # every expert sliced over the tp devices: all token-expert pairs, 1/tp of each expert
            active = expected_active_experts(E, k, T)
            routed = T * k  # token-expert pairs
            ie = self.expert_inter
            imbalance = (1.0, "")
        else:  # whole experts, E/ep per device; the step waits for the device with the most active experts
            # wide: the ep devices' tokens; else the tp group's (replicated)
            tokens = (T * ep if self.expert_tokens is None else self.expert_tokens) if wide else T
            hit = expected_active_experts(E, k, tokens)
            active, load, why = expert_load(E, k, ep, tokens, self.sc.redundant_experts)
            routed = tokens * k / hit * load  # each active expert serves tokens k / (active experts) pairs
            ie = math.ceil(moe.expert_intermediate_size * self.plan.keep_mlp)
            imbalance = (routed / (tokens * k / ep), why)
        # DeepEP's kernels as engines pick them: normal for a prefill, low-latency for decode steps
        routing = EPRouting(T, k, E, moe.expert_groups, moe.groups_per_token,
                            "normal" if self.phase == "prefill" else "low_latency", *imbalance)
        if wide:  # dispatch: each token's k copies to their experts' devices, in the experts' input format
            q = self.plan["expert_up"].activations
            fmt = q if q.bits < self.a.bits else self.a
            self.ops.append(collective_op(OpKind.ALLTOALL, T * k * h * fmt.bytes, ep, dtype=fmt,
                                          name="ep_dispatch" + self.suffix, count=moe_L, routing=routing))
        self.gemm("moe_gate_up" if m.gated_mlp else "moe_up", routed / max(active, 1e-9), mats * ie, h, moe_L,
                  slot="expert_up", experts=active, tokens_routed=routed, routing=routing)
        self.elementwise("moe_act", OpKind.ELEMENTWISE, routed * mats * ie, routed * ie, act_f, moe_L,
                         feeds=("expert_down", routed * ie))
        self.gemm("moe_down", routed / max(active, 1e-9), h, ie, moe_L, slot="expert_down", experts=active,
                  tokens_routed=routed, routing=routing)
        if wide:  # combine: the expert outputs back to their tokens' devices, 16-bit
            self.ops.append(collective_op(OpKind.ALLTOALL, T * k * h * self.a.bytes, ep, dtype=self.a,
                                          name="ep_combine" + self.suffix, count=moe_L, routing=routing))
        self.elementwise("moe_combine", OpKind.ELEMENTWISE, routed * h, T * h, 2, moe_L)
        if moe.num_shared_experts:
            si = math.ceil(moe.num_shared_experts * moe.shared_intermediate_size * self.plan.keep_mlp / self.t)
            self._ffn("shared_expert", T, si, moe_L, act_f, mats)

    def _ffn(self, prefix: str, T: int, inter: int, L: int, act_f: int, mats: int) -> None:
        bias = self.m.mlp_bias
        self.gemm(f"{prefix}_gate_up" if mats == 2 else f"{prefix}_up", T, mats * inter, self.h, L, slot="up",
                  bias=bias)
        self.elementwise(f"{prefix}_act", OpKind.ELEMENTWISE, T * mats * inter, T * inter, act_f, L,
                         feeds=("down", T * inter))
        self.gemm(f"{prefix}_down", T, self.h, inter, L, slot="down", bias=bias)


#: the routed experts' ops (``_mlp``): under data-parallel attention their work is the tokens of every rank
def _token_tags(name: str, kind: OpKind) -> tuple[str, ...]:
    """The per-token kernel an engine runs for a builder op (``token:<kind>``, :data:`tapeout.workload.ops.TOKEN_KERNELS`): every norm
    (fused residual-add norms included), the rotary embedding, the MLP / expert activations."""
    if kind is OpKind.NORM:
        return ("token:norm",)
    if name == "rope":
        return ("token:rope",)
    if kind is OpKind.ELEMENTWISE and name.endswith("_act"):
        return ("token:act",)
    return ()


ROUTED_EXPERT_OPS = frozenset({"moe_gate_up", "moe_up", "moe_act", "moe_down", "moe_combine"})
#: the routed experts' GEMMs and activation, between the dispatch and the combine of a wide-EP layer
EXPERT_FFN_OPS = frozenset({"moe_gate_up", "moe_up", "moe_act", "moe_down"})
#: the ops an MoE layer runs besides the routed experts and its all-to-alls (the shared experts: ``shared_expert_*``)
MOE_LAYER_OPS = frozenset({"moe_router", "moe_topk", "moe_combine"})
#: a dense layer's MLP (``_ffn("mlp", ...)``)
DENSE_FFN_OPS = frozenset({"mlp_gate_up", "mlp_up", "mlp_act", "mlp_down"})
#: the ops before the first layer and after the last (``_build``)
EMBEDDING_OPS = frozenset({"embedding", "embedding_allreduce"})
HEAD_OPS = frozenset({"residual_add_final_norm", "final_norm", "lm_head", "logit_softcap", "logit_scale",
                      "logits_allgather", "sampling", "pp_send"})


def base_name(op: Op) -> str:
    """The name ``build`` gave ``op``'s kind of work, without its layer group (``[0-3]``), attention span
    (``:sliding4096``), chunk segment or ``#i``, stage or micro-batch prefix (``s1/``, ``mb0/``)."""
    name = op.name.rsplit("/", 1)[-1]
    for sep in ("[", ":", "#"):
        name = name.split(sep, 1)[0]
    return name


def is_shared(op: Op) -> bool:
    """Under data-parallel attention, whether ``op`` runs across the ranks (the routed experts and their
    all-to-alls), not on one rank's own tokens."""
    return op.kind is OpKind.ALLTOALL or op.name.split("[", 1)[0] in ROUTED_EXPERT_OPS


class StepTemplate:
    """One stage's decode step as a function of the context (the KV length attended to).

    ``ops`` is the step at the reference ``context``. The ops at the ``varying`` positions read the KV
    cache (decode attention, and eager attention's K/V expansion, scores, softmax and context) and are
    rebuilt per context by replaying the builder's attention slots (memoised per context); every other op
    (``fixed``) is the same at every context, so a composition prices it once per phase.
    """

    __slots__ = ("_replay", "_memo", "_sweeps", "ops", "varying", "fixed", "tokens", "context")

    def __init__(self, builder: _Builder, ops: tuple[Op, ...], context: int, tokens: int) -> None:
        self.ops = ops
        self.context = context
        self.tokens = tokens
        self.varying: tuple[int, ...] = tuple(i for a, b, *_ in builder.slots for i in range(a, b))
        vary = set(self.varying)
        self.fixed: tuple[Op, ...] = tuple(o for i, o in enumerate(ops) if i not in vary)
        self._memo: dict[int, tuple[Op, ...]] = {context: tuple(ops[i] for i in self.varying)}
        self._sweeps: dict[bytes, tuple[OpSweep, ...]] = {}
        # one builder state per attention slot (its layer group's plan and name suffix), copied per replay
        replay = []
        for start, end, plan, suffix, layers, span in builder.slots:
            b = copy.copy(builder)
            b._set_plan(plan)
            b.suffix = suffix
            replay.append((b.__dict__, layers, span, end - start))
        self._replay = tuple(replay)

    @staticmethod
    def _builder(state: dict) -> _Builder:
        """A fresh builder in a slot's state (the template stays pure)."""
        b = object.__new__(_Builder)
        b.__dict__.update(state)
        b.ops = []
        return b

    def varying_ops(self, context: int) -> tuple[Op, ...]:
        """The context-dependent ops at ``context``, in graph order."""
        hit = self._memo.get(context)
        if hit is None:
            out: list[Op] = []
            for state, layers, span, _ in self._replay:
                b = self._builder(state)
                b._attention("decode", b.sc.batch, 1, context, layers, span)
                out.extend(b.ops)
            if len(out) != len(self.varying):  # the slots' op count cannot depend on the context
                raise AssertionError(f"decode attention built {len(out)} ops at context {context}, "
                                     f"{len(self.varying)} at {self.context}")
            if len(self._memo) > 8192:
                self._memo = {self.context: self._memo[self.context]}
            hit = self._memo[context] = tuple(out)
        return hit

    def sweeps(self, contexts: np.ndarray) -> tuple[OpSweep, ...]:
        """Each context-dependent op at every context of ``contexts`` (an integer array), in graph order: a
        slot that is one fused decode kernel from its formulas over all contexts at once
        (:meth:`_Builder._decode_sweep`), any other read off its ops at each context (:meth:`varying_ops`).
        ``sweeps(cs)[j].op_at(i)`` equals ``varying_ops(cs[i])[j]``. Memoised per contexts."""
        key = contexts.tobytes()
        hit = self._sweeps.get(key)
        if hit is None:
            out: list[OpSweep] = []
            per: list[tuple[Op, ...]] | None = None
            pos = 0
            for state, layers, span, width in self._replay:
                b = self._builder(state)
                s = b._decode_sweep(b.sc.batch, contexts, layers, span)
                if s is not None and width == 1:
                    out.append(s)
                else:
                    if per is None:
                        per = [self.varying_ops(int(c)) for c in contexts]
                    out.extend(OpSweep.of([v[j] for v in per]) for j in range(pos, pos + width))
                pos += width
            if len(self._sweeps) > 64:
                self._sweeps.clear()
            hit = self._sweeps[key] = tuple(out)
        return hit

    def graph(self, context: int) -> OpGraph:
        """The whole step at ``context``."""
        ops = list(self.ops)
        for i, o in zip(self.varying, self.varying_ops(context)):
            ops[i] = o
        return OpGraph(phase="decode", ops=tuple(ops), tokens=self.tokens, context=context)


class IterationTemplate:
    """One stage's ops of a serving iteration of any composition (``tapeout.serving``): prefill chunks of
    several requests and decode steps of others run as one forward pass.

    The ops of a forward pass split into three families, each a function of few numbers:

    - :meth:`token_ops` (``tokens``): every op but attention and the sequence head -- embedding, norms,
      projections, MLP/experts, all-reduces, the pipeline send; the GEMMs see the prefill and decode tokens
      together (``tokens`` = prefill tokens + decoding sequences);
    - :meth:`head_ops` (``seqs``): lm_head, the logits all-gather and sampling of the sequences that produce
      a token;
    - attention per request group: :meth:`prefill_attention` (``seqs`` chunks of ``chunk`` new tokens after
      ``prior`` cached ones, causal) and :meth:`decode_attention` (``seqs`` queries over ``context`` keys).

    A prefill of ``batch`` x ``input_len`` is token_ops(batch x input_len) + head_ops(batch) +
    prefill_attention(batch, input_len, 0), all ``eager``; a decode step at context c is token_ops(batch) +
    head_ops(batch) + decode_attention(batch, c): the ops of :func:`pipeline`'s graphs, op for op.
    """

    __slots__ = ("_builder", "_slots")

    def __init__(self, model: ModelSpec, sc: Scenario, stage: int = 0,
                 groups: list[tuple[LayerPlan, tuple[int, ...]]] | None = None) -> None:
        self._builder = _Builder(model, sc, stage, groups)
        probe = self._fresh()
        probe._build("decode", 2, batch=1, seq=1)
        self._slots = tuple((plan, suffix, layers, span) for _, _, plan, suffix, layers, span in probe.slots)

    def _fresh(self) -> _Builder:
        b = copy.copy(self._builder)
        b.ops, b.slots = [], []
        return b

    def token_ops(self, tokens: int, eager: bool = False) -> tuple[Op, ...]:
        """``eager``: the iteration has prefill tokens (launched from the host; MLA runs its prefill form)."""
        b = self._fresh()
        b._build("prefill" if eager else "decode", 2, batch=tokens, seq=1)
        attn = {i for start, end, *_ in b.slots for i in range(start, end)}
        return _eager(tuple(o for i, o in enumerate(b.ops[:b.head_start]) if i not in attn), eager)

    def shared_ops(self, tokens: int, expert_tokens: int, eager: bool = False) -> tuple[Op, ...]:
        """Data-parallel attention (wide EP): the ops of :meth:`token_ops` that every rank runs together -- the
        dispatch and combine all-to-alls at this device's ``tokens`` (the busiest sender's) and the routed
        experts (:data:`ROUTED_EXPERT_OPS`) at ``expert_tokens``, all ranks' tokens. The rest of
        ``token_ops(t)`` is one rank's own; with every rank at t, ``shared_ops(t, t x ep)`` is exactly that
        part of ``token_ops(t)``."""
        b = self._fresh()
        b.expert_tokens = expert_tokens
        b._build("prefill" if eager else "decode", 2, batch=tokens, seq=1)
        return _eager(tuple(o for o in b.ops[:b.head_start] if is_shared(o)), eager)

    def head_ops(self, seqs: int, eager: bool = False) -> tuple[Op, ...]:
        b = self._fresh()
        b._build("decode", 2, batch=seqs, seq=1)
        return _eager(tuple(b.ops[b.head_start:]), eager)

    def _attention(self, phase: str, seqs: int, tokens: int, context: int, prior: int = 0) -> tuple[Op, ...]:
        b = self._fresh()
        for plan, suffix, layers, span in self._slots:
            b._set_plan(plan)
            b.suffix = suffix
            start = len(b.ops)
            b._attention(phase, seqs, tokens, context, layers, span)
            if prior:  # the chunk's queries (positions prior+1 .. prior+tokens) also meet cached keys
                alone = span.causal_pairs(tokens)
                ratio = (span.causal_pairs(prior + tokens) - span.causal_pairs(prior)) / alone
                mla = self._builder.m.mla
                per_token = (mla.cache_width if mla is not None else 2.0 * b.kv_heads * b.hd) * b.kv.bytes
                kv_read = seqs * min(prior, span.keys(prior + tokens)) * per_token
                b.ops[start:] = [replace(o, flops=o.flops * ratio, bytes_read=o.bytes_read + kv_read)
                                 if o.kind is OpKind.ATTENTION else o for o in b.ops[start:]]
        return tuple(b.ops)

    def prefill_attention(self, seqs: int, chunk: int, prior: int = 0, eager: bool = True) -> tuple[Op, ...]:
        """Causal attention of ``seqs`` chunks of ``chunk`` new tokens, each after ``prior`` tokens already in
        the KV cache (chunked prefill): the causal pairs of positions prior + 1 .. prior + chunk inside each
        layer's span (chunk x prior + chunk (chunk + 1) / 2 for full attention), and the prior keys and values
        (MLA: latents) read from the cache."""
        return _eager(self._attention("prefill", seqs, chunk, prior + chunk, prior), eager)

    def decode_attention(self, seqs: int, context: int, eager: bool = False) -> tuple[Op, ...]:
        """Attention of ``seqs`` decoding sequences, each over ``context`` keys."""
        return _eager(self._attention("decode", seqs, 1, context), eager)


def _eager(ops: tuple[Op, ...], eager: bool) -> tuple[Op, ...]:
    return tuple(evolve(o, eager=True) for o in ops) if eager else ops


@dataclass(frozen=True, eq=False)
class StageGraphs:
    """One pipeline stage's prefill graph and decode-step template."""

    prefill: OpGraph
    decode: StepTemplate


@dataclass(frozen=True, eq=False)
class Pipeline:
    """Every stage's graphs of one (model, scenario). Stages whose contents are equal (first/last, layer
    groups with their plans, layer and dense-layer counts) share one :class:`StageGraphs`, so building and
    pricing a pipeline grows with its distinct stages, not with ``pp``."""

    ranges: tuple[range, ...]
    stages: tuple[StageGraphs, ...]
    #: for each stage, the first stage with equal contents (itself when it is the first)
    same_as: tuple[int, ...]

    def distinct(self) -> tuple[StageGraphs, ...]:
        """The stages' distinct graph sets, in first-use order."""
        return tuple({id(s): s for s in self.stages}.values())


def _stage_graphs(model: ModelSpec, sc: Scenario, stage: int,
                  groups: list[tuple[LayerPlan, tuple[int, ...]]]) -> StageGraphs:
    prefill = _Builder(model, sc, stage, groups).build("prefill", sc.input_len)
    b = _Builder(model, sc, stage, groups)
    ctx = sc.input_len + 1
    step = b.build("decode", ctx)
    return StageGraphs(prefill, StepTemplate(b, step.ops, ctx, step.tokens))


@lru_cache(maxsize=256)
def pipeline(model: ModelSpec, scenario: Scenario) -> Pipeline:
    """The graphs of every pipeline stage of ``scenario`` (memoised per (model, scenario))."""
    check_scenario(model, scenario)
    ranges = stage_ranges(model, scenario)
    dense = set(model.moe.dense_layers) if model.moe is not None else None
    last = scenario.pp - 1
    shared: dict[tuple, tuple[int, StageGraphs]] = {}
    stages, same_as = [], []
    for s in range(scenario.pp):
        groups = _stage_groups(model, scenario, s)
        multi = len(groups) > 1
        key = (s == 0, s == last, tuple(
            (plan, len(ix), len(ix) if dense is None else sum(1 for i in ix if i in dense),
             range_label(ix) if multi else "") for plan, ix in groups))
        hit = shared.get(key)
        if hit is None:
            hit = shared[key] = (s, _stage_graphs(model, scenario, s, groups))
        same_as.append(hit[0])
        stages.append(hit[1])
    return Pipeline(ranges, tuple(stages), tuple(same_as))



class SharedTemplate:
    """A pipeline stage's :class:`IterationTemplate` with its op tuples memoised. The ops of an iteration do not
    depend on the device, so the pricers of many devices (explore's design points, the serving simulator's
    iterations, chunked prefills) build them once; only their prices are per device."""

    __slots__ = ("t", "memo")

    def __init__(self, t: IterationTemplate) -> None:
        self.t, self.memo = t, {}

    def _get(self, name: str, *args) -> tuple[Op, ...]:  # noqa: ANN002
        key = (name, *args)
        v = self.memo.get(key)
        if v is None:
            if len(self.memo) >= 200_000:
                self.memo.clear()
            v = self.memo[key] = getattr(self.t, name)(*args)
        return v

    def token_ops(self, tokens: int, eager: bool = False) -> tuple[Op, ...]:
        return self._get("token_ops", tokens, eager)

    def head_ops(self, seqs: int, eager: bool = False) -> tuple[Op, ...]:
        return self._get("head_ops", seqs, eager)

    def decode_attention(self, seqs: int, context: int, eager: bool = False) -> tuple[Op, ...]:
        return self._get("decode_attention", seqs, context, eager)

    def prefill_attention(self, seqs: int, chunk: int, prior: int = 0, eager: bool = True) -> tuple[Op, ...]:
        return self._get("prefill_attention", seqs, chunk, prior, eager)

    def shared_ops(self, tokens: int, expert_tokens: int, eager: bool = False) -> tuple[Op, ...]:
        return self._get("shared_ops", tokens, expert_tokens, eager)


_TEMPLATES: dict[tuple, SharedTemplate] = {}


def shared_template(model: ModelSpec, sc: Scenario, stage: int) -> SharedTemplate:
    """The memoised iteration template of ``stage``: one per model, formats and parallelism (the batch and the
    lengths do not shape a template; an iteration gives its tokens)."""
    key = (model, sc.model_copy(update={"batch": 1, "input_len": 1, "output_len": 1}), stage)
    hit = _TEMPLATES.get(key)
    if hit is None:
        if len(_TEMPLATES) >= 64:
            _TEMPLATES.clear()
        hit = _TEMPLATES[key] = SharedTemplate(IterationTemplate(model, sc, stage, _stage_groups(model, sc, stage)))
    return hit

def clear_caches() -> None:
    """Forget the memoised stage ranges, pipelines and iteration templates."""
    pipeline.cache_clear()
    stage_ranges.cache_clear()
    _TEMPLATES.clear()


def build_graph(model: ModelSpec, scenario: Scenario, phase: str, context: int | None = None,
                stage: int = 0) -> OpGraph:
    """The per-device op graph of ``phase`` ("prefill" or "decode") on pipeline stage ``stage``.

    For decode, ``context`` is the KV length attended to (including the new token). Under pipeline
    parallelism (``scenario.pp`` > 1) a stage runs its contiguous layers
    (:meth:`Scenario.stage_layers`); the first stage also the embedding, the last the final norm, lm_head
    and sampling; every stage but the last ends with a point-to-point send of the hidden states.
    Graphs come from the memoised :func:`pipeline`.
    """
    if phase not in ("prefill", "decode"):
        raise TapeoutError(f"unknown phase {phase!r}; allowed: prefill, decode", field="phase")
    if phase == "decode" and (context is None or context < 1):
        raise TapeoutError("decode needs a context length >= 1", field="context")
    stages = pipeline(model, scenario).stages
    if not 0 <= stage < len(stages):
        raise TapeoutError(f"stage {stage} out of range; allowed: 0..{len(stages) - 1}", field="stage")
    st = stages[stage]
    return st.prefill if phase == "prefill" else st.decode.graph(context)  # type: ignore[arg-type]
