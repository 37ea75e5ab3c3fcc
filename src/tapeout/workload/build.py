"""Turn (model, scenario) into the per-device operator graph of a prefill or a decode step.

Conventions (documented in docs/architecture.md):
- GEMM M = tokens, N = output features, K = input features; FLOPs = 2*M*N*K.
- Tensor parallelism is Megatron-style: QKV and gate/up are column-parallel, the output and
  down projections row-parallel, followed by an all-reduce; embedding and lm_head are split
  over the vocabulary. KV heads are split when tp divides them, replicated when they divide tp.
- Quantized *weight* formats apply to the transformer's linear layers; embedding and lm_head
  stay in 16-bit (as GPTQ/AWQ/FP6-LLM deployments do) unless weights are fp32.
- Causal prefill attention attends S(S+1)/2 query-key pairs per head (half the square) in the
  fused kernel; naive attention computes and stores the full square, then masks it.
"""

from __future__ import annotations

import math
from functools import lru_cache

from tapeout import dtypes
from tapeout.dtypes import DType
from tapeout.errors import TapeoutError
from tapeout.models.spec import ModelSpec
from tapeout.workload.ops import Op, OpGraph, OpKind
from tapeout.workload.scenario import Scenario

#: elementwise arithmetic per element (order of magnitude; these ops are bandwidth-bound)
NORM_FLOPS = {"rmsnorm": 4, "layernorm": 7}
ACT_FLOPS = {"silu": 4, "gelu": 8, "gelu_tanh": 8, "relu": 1, "swiglu_oai": 5}
SOFTMAX_FLOPS = 5
ROPE_FLOPS = 3
SAMPLING_FLOPS = 5


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


class _Builder:
    def __init__(self, model: ModelSpec, sc: Scenario) -> None:
        check_parallelism(model, sc.tp)
        self.m = model
        self.sc = sc
        t = sc.tp
        self.t = t
        self.heads = model.num_heads // t
        self.kv_heads = max(1, model.num_kv_heads // t)
        self.hd = model.head_dim
        self.h = model.hidden_size
        self.inter = math.ceil(model.intermediate_size / t)
        self.vocab = math.ceil(model.vocab_size / t)
        self.w: DType = sc.weights
        self.a: DType = sc.activations
        self.kv: DType = sc.kv_cache
        self.hp: DType = sc.weights if sc.weights.bits >= 16 else dtypes.parse("fp16")
        self.mm = dtypes.matmul_compute_dtype(sc.weights, sc.activations)
        self.ops: list[Op] = []

    # ---- op constructors -----------------------------------------------------------------
    def gemm(self, name: str, m: float, n: int, k: int, count: int, *, w: DType | None = None,
             bias: bool = False, experts: float = 1.0, tokens_routed: float | None = None) -> None:
        """A GEMM with a weight matrix (k x n) per expert; ``m`` tokens per expert."""
        w = w or self.w
        a = self.a
        compute = self.mm if w is self.w else dtypes.matmul_compute_dtype(w, a)
        rows = m * experts if tokens_routed is None else tokens_routed
        wbytes = experts * n * k * w.bytes + (experts * n * a.bytes if bias else 0.0)
        act_in = rows * k * a.bytes
        act_out = rows * n * a.bytes
        self.ops.append(Op(
            name=name, kind=OpKind.GEMM, flops=2.0 * rows * n * k,
            bytes_read=wbytes + act_in, bytes_written=act_out, count=count,
            shape=(("m", round(m)), ("n", n), ("k", k)) + ((("experts", round(experts)),) if experts != 1 else ()),
            compute_dtype=compute.name, formats=(("weights", w.name), ("act", a.name)),
            weight_bytes=wbytes, activation_bytes=act_in + act_out,
        ))

    def elementwise(self, name: str, kind: OpKind, elems_in: float, elems_out: float, flops_per: float,
                    count: int, *, out_dtype: DType | None = None) -> None:
        a = self.a
        out = out_dtype or a
        rd, wr = elems_in * a.bytes, elems_out * out.bytes
        self.ops.append(Op(
            name=name, kind=kind, flops=flops_per * max(elems_in, elems_out), bytes_read=rd, bytes_written=wr,
            count=count, shape=(("elements", round(elems_out)),), compute_dtype="fp32",
            formats=(("act", a.name),) + ((("out", out.name),) if out is not a else ()),
            activation_bytes=rd + wr,
        ))

    def collective(self, name: str, kind: OpKind, message_bytes: float, count: int) -> None:
        if self.t == 1:
            return
        self.ops.append(Op(
            name=name, kind=kind, flops=0.0, bytes_read=message_bytes, bytes_written=message_bytes,
            count=count, shape=(("bytes", round(message_bytes)),), compute_dtype="fp32",
            formats=(("act", self.a.name),), group=self.t, message_bytes=message_bytes,
            activation_bytes=2 * message_bytes,
        ))

    # ---- the model -----------------------------------------------------------------------
    def build(self, phase: str, context: int) -> OpGraph:
        m, sc, a = self.m, self.sc, self.a
        B = sc.batch
        S = sc.input_len if phase == "prefill" else 1
        T = B * S
        L = m.num_layers
        h, hd = self.h, self.hd
        q, kvs = self.heads * hd, self.kv_heads * hd

        # embedding (vocab-parallel gather; learned positions add a second gather)
        gathers = 2 if m.position == "learned" else 1
        self.ops.append(Op(
            name="embedding", kind=OpKind.EMBEDDING, flops=0.0,
            bytes_read=gathers * T * h * self.hp.bytes / self.t, bytes_written=T * h * a.bytes, count=1,
            shape=(("tokens", T), ("hidden", h)), compute_dtype="fp32", formats=(("table", self.hp.name),),
            activation_bytes=T * h * a.bytes,
        ))
        self.collective("embedding_allreduce", OpKind.ALLREDUCE, T * h * a.bytes, 1)

        norm_f = NORM_FLOPS[m.norm]
        self.elementwise("attn_norm", OpKind.NORM, T * h, T * h, norm_f, L)
        self.gemm("qkv_proj", T, q + 2 * kvs, h, L, bias=m.qkv_bias)
        if m.position == "rope":
            self.elementwise("rope", OpKind.ELEMENTWISE, T * (q + kvs), T * (q + kvs), ROPE_FLOPS, L)
        self.elementwise("kv_cache_write", OpKind.ELEMENTWISE, T * 2 * kvs, T * 2 * kvs, 1, L, out_dtype=self.kv)
        self._attention(phase, B, S, context, L)
        self.gemm("out_proj", T, h, q, L, bias=m.out_bias)
        allreduces = 1 if m.parallel_block else 2
        self.collective("tp_allreduce", OpKind.ALLREDUCE, T * h * a.bytes, allreduces * L)
        if m.parallel_block:
            if m.norms_per_layer == 2:
                self.elementwise("mlp_norm", OpKind.NORM, T * h, T * h, norm_f, L)
        else:
            self.elementwise("attn_residual_add", OpKind.ELEMENTWISE, 2 * T * h, T * h, 1, L)
            self.elementwise("mlp_norm", OpKind.NORM, T * h, T * h, norm_f, L)
        self._mlp(T, L)
        if m.parallel_block:
            self.elementwise("residual_add", OpKind.ELEMENTWISE, 3 * T * h, T * h, 2, L)
        else:
            self.elementwise("mlp_residual_add", OpKind.ELEMENTWISE, 2 * T * h, T * h, 1, L)

        self.elementwise("final_norm", OpKind.NORM, T * h, T * h, norm_f, 1)
        # lm_head on the last token of each sequence only
        self.gemm("lm_head", B, self.vocab, h, 1, w=self.hp, bias=m.lm_head_bias)
        self.collective("logits_allgather", OpKind.ALLGATHER, B * self.vocab * a.bytes, 1)
        self.ops.append(Op(
            name="sampling", kind=OpKind.SAMPLING, flops=SAMPLING_FLOPS * B * m.vocab_size,
            bytes_read=B * m.vocab_size * 4.0, bytes_written=B * 8.0, count=1,
            shape=(("batch", B), ("vocab", m.vocab_size)), compute_dtype="fp32",
            activation_bytes=B * m.vocab_size * 4.0,
        ))
        return OpGraph(phase=phase, ops=tuple(self.ops), tokens=T, context=context)

    def _attention(self, phase: str, B: int, S: int, context: int, L: int) -> None:
        a, hd = self.a, self.hd
        H, KV = self.heads, self.kv_heads
        attn_dtype = a.name
        if phase == "prefill":
            pairs = B * S * (S + 1) / 2  # causal query-key pairs per head
            q_bytes = B * S * H * hd * a.bytes
            kv_bytes = 2 * B * S * KV * hd * a.bytes
            if self.sc.attention == "flash":
                self.ops.append(Op(
                    name="attention", kind=OpKind.ATTENTION, flops=4.0 * H * hd * pairs,
                    bytes_read=q_bytes + kv_bytes, bytes_written=q_bytes, count=L,
                    shape=(("b", B), ("heads", H), ("kv_heads", KV), ("sq", S), ("skv", context), ("d", hd)),
                    compute_dtype=attn_dtype, formats=(("act", a.name),), tags=("causal", "flash"),
                    activation_bytes=2 * q_bytes + kv_bytes,
                ))
                return
            # the full square is computed and materialized, then masked: the executed work is not halved
            scores = B * H * S * S * a.bytes
            square = B * S * S
            k_rep = B * H * S * hd * a.bytes  # naive GQA repeats K/V per query head
            self.ops.append(Op(
                name="attn_scores", kind=OpKind.BMM, flops=2.0 * H * hd * square,
                bytes_read=q_bytes + k_rep, bytes_written=scores, count=L,
                shape=(("b", B * H), ("m", S), ("n", S), ("k", hd)), compute_dtype=attn_dtype,
                formats=(("act", a.name),), tags=("causal",), activation_bytes=q_bytes + k_rep + scores,
            ))
            self.ops.append(Op(
                name="attn_softmax", kind=OpKind.SOFTMAX, flops=SOFTMAX_FLOPS * B * H * S * S,
                bytes_read=scores, bytes_written=scores, count=L, shape=(("rows", B * H * S), ("cols", S)),
                compute_dtype="fp32", formats=(("act", a.name),), activation_bytes=2 * scores,
            ))
            self.ops.append(Op(
                name="attn_context", kind=OpKind.BMM, flops=2.0 * H * hd * square,
                bytes_read=scores + k_rep, bytes_written=q_bytes, count=L,
                shape=(("b", B * H), ("m", S), ("n", hd), ("k", S)), compute_dtype=attn_dtype,
                formats=(("act", a.name),), tags=("causal",), activation_bytes=scores + k_rep + q_bytes,
            ))
            return
        # decode: one query per sequence against the whole KV cache
        kv_read = 2 * B * context * KV * hd * self.kv.bytes
        q_bytes = B * H * hd * a.bytes
        self.ops.append(Op(
            name="attention", kind=OpKind.ATTENTION, flops=4.0 * B * H * hd * context,
            bytes_read=kv_read + q_bytes, bytes_written=q_bytes, count=L,
            shape=(("b", B), ("heads", H), ("kv_heads", KV), ("sq", 1), ("skv", context), ("d", hd)),
            compute_dtype=attn_dtype, formats=(("act", a.name), ("kv", self.kv.name)), tags=("decode",),
            activation_bytes=2 * q_bytes,
        ))

    def _mlp(self, T: int, L: int) -> None:
        m = self.m
        h = self.h
        act_f = ACT_FLOPS[m.activation]
        mats = 2 if m.gated_mlp else 1
        dense_L = m.num_dense_layers
        if dense_L:
            self._ffn("mlp", T, self.inter, dense_L, act_f, mats)
        if m.moe is None:
            return
        moe = m.moe
        ML = m.num_moe_layers
        E, k = moe.num_experts, moe.top_k
        self.gemm("moe_router", T, E, h, ML, w=self.hp, bias=moe.router_bias)
        self.elementwise("moe_topk", OpKind.SOFTMAX, T * E, T * k, SOFTMAX_FLOPS, ML, out_dtype=dtypes.parse("fp32"))
        active = expected_active_experts(E, k, T)
        routed = T * k  # token-expert pairs
        ie = math.ceil(moe.expert_intermediate_size / self.t)
        self.gemm("moe_gate_up" if m.gated_mlp else "moe_up", routed / E, mats * ie, h, ML,
                  experts=active, tokens_routed=routed)
        self.elementwise("moe_act", OpKind.ELEMENTWISE, routed * mats * ie, routed * ie, act_f, ML)
        self.gemm("moe_down", routed / E, h, ie, ML, experts=active, tokens_routed=routed)
        self.elementwise("moe_combine", OpKind.ELEMENTWISE, routed * h, T * h, 2, ML)
        if moe.num_shared_experts:
            si = math.ceil(moe.num_shared_experts * moe.shared_intermediate_size / self.t)
            self._ffn("shared_expert", T, si, ML, act_f, mats)

    def _ffn(self, prefix: str, T: int, inter: int, L: int, act_f: int, mats: int) -> None:
        bias = self.m.mlp_bias
        self.gemm(f"{prefix}_gate_up" if mats == 2 else f"{prefix}_up", T, mats * inter, self.h, L, bias=bias)
        self.elementwise(f"{prefix}_act", OpKind.ELEMENTWISE, T * mats * inter, T * inter, act_f, L)
        self.gemm(f"{prefix}_down", T, self.h, inter, L, bias=bias)


@lru_cache(maxsize=4096)
def build_graph(model: ModelSpec, scenario: Scenario, phase: str, context: int | None = None) -> OpGraph:
    """The per-device op graph of ``phase`` ("prefill" or "decode").

    For decode, ``context`` is the KV length attended to (including the new token).
    """
    if phase == "prefill":
        return _Builder(model, scenario).build("prefill", scenario.input_len)
    if phase == "decode":
        if context is None or context < 1:
            raise TapeoutError("decode needs a context length >= 1", field="context")
        return _Builder(model, scenario).build("decode", context)
    raise TapeoutError(f"unknown phase {phase!r}; allowed: prefill, decode", field="phase")
