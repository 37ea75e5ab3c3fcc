"""Transformer architecture specs (decoder-only), validated and immutable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tapeout.specio import reject_bools

Activation = Literal["silu", "gelu", "gelu_tanh", "relu", "swiglu_oai"]
#: largest width (hidden, intermediate, head) a spec may give: sizes are bounded so that no count
#: overflows downstream (a config with 2^70 layers is a typo, not a model)
MAX_WIDTH = 10_000_000
#: most decoder layers a spec may give (the HF mappers check it before they expand per-layer lists)
MAX_LAYERS = 100_000

#: how a layer's attention bounds the keys it sees (docs/local-attention.md):
#: full (every earlier token), sliding (the last ``window`` tokens), chunked (the tokens of the query's own
#: ``window``-token chunk, Llama 4's ``attention_chunk_size``)
AttentionSpan = Literal["full", "sliding", "chunked"]


class LayerAttention(NamedTuple):
    """One layer's attention span: ``kind`` and its ``window`` (0 for full attention)."""

    kind: str
    window: int = 0

    @property
    def label(self) -> str:
        """"full", "sliding4096", "chunked8192" (op names of the layer group)."""
        return self.kind if self.kind == "full" else f"{self.kind}{self.window}"

    def cached(self, tokens: int) -> int:
        """Tokens of one sequence this layer's cache holds after ``tokens`` tokens: all of them (full), the
        last ``window`` (sliding), or at most one chunk (chunked: the allocation a chunk needs)."""
        return tokens if self.kind == "full" else min(tokens, self.window)

    def keys(self, context: Any) -> Any:
        """Keys the query at position ``context`` (1-based, itself included) attends to; ``context`` is an
        int, or an integer numpy array of positions (then an array of key counts)."""
        if self.kind == "full":
            return context
        if self.kind == "sliding":
            return np.minimum(context, self.window) if isinstance(context, np.ndarray) else min(context, self.window)
        return (context - 1) % self.window + 1

    def causal_pairs(self, s: int) -> float:
        """Query-key pairs of a causal prefill of ``s`` tokens (from position 1): sum of keys(i), i = 1..s."""
        w = self.window
        if self.kind == "full" or s <= w:
            return s * (s + 1) / 2
        if self.kind == "sliding":
            return w * (w + 1) / 2 + (s - w) * w
        full, rest = divmod(s, w)
        return full * w * (w + 1) / 2 + rest * (rest + 1) / 2


FULL = LayerAttention("full")


class LocalAttention(BaseModel):
    """Layers whose attention sees a bounded span of keys: sliding windows (Mistral, Gemma 2/3, gpt-oss,
    Phi-3) or chunks (Llama 4). Every other layer attends to the whole context."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)

    kind: Literal["sliding", "chunked"]
    window: int = Field(gt=0, le=1_000_000_000, description="tokens of the window (sliding) or chunk (chunked)")
    #: layer indices (0-based) with local attention; None: every layer
    layers: tuple[int, ...] | None = None


class MLASpec(BaseModel):
    """Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2; docs/mla.md). The cache holds, per token and
    layer, the compressed latent (``kv_lora_rank``) and the decoupled RoPE key (``qk_rope_head_dim``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)

    #: rank of the query's low-rank path (q_a_proj, q_a_layernorm, q_b_proj); None: one q_proj (V2-Lite)
    q_lora_rank: int | None = Field(None, gt=0, le=MAX_WIDTH)
    kv_lora_rank: int = Field(gt=0, le=MAX_WIDTH)
    qk_nope_head_dim: int = Field(gt=0, le=MAX_WIDTH)
    qk_rope_head_dim: int = Field(gt=0, le=MAX_WIDTH)
    v_head_dim: int = Field(gt=0, le=MAX_WIDTH)

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def cache_width(self) -> int:
        """Values one layer caches per token: the latent plus the shared RoPE key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


class MoESpec(BaseModel):
    """Mixture-of-experts MLP. Expert FFNs are gated (SwiGLU) unless ``gated`` is false."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)

    num_experts: int = Field(gt=0, le=100_000, description="routed experts per MoE layer")
    top_k: int = Field(gt=0, le=100_000, description="experts each token is routed to")
    expert_intermediate_size: int = Field(gt=0, le=MAX_WIDTH)
    num_shared_experts: int = Field(0, ge=0, le=100_000, description="always-active experts")
    shared_intermediate_size: int = Field(0, ge=0, le=MAX_WIDTH, description="intermediate size of one shared expert")
    #: layer indices (0-based) that keep a dense MLP instead of experts
    dense_layers: tuple[int, ...] = ()
    router_bias: bool = False
    #: sigmoid gate (hidden -> 1, no bias) scaling the shared experts' output (Qwen2-MoE)
    shared_expert_gate: bool = False
    #: group-limited routing (DeepSeek-V3's ``n_group`` / ``topk_group``): the experts in ``expert_groups``
    #: equal groups, each token's top_k chosen among the experts of ``groups_per_token`` groups; 1 / 1: plain
    expert_groups: int = Field(1, gt=0, le=100_000, description="equal expert groups of group-limited routing")
    groups_per_token: int = Field(1, gt=0, le=100_000, description="groups a token's experts come from")

    @model_validator(mode="after")
    def _check(self) -> "MoESpec":
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({self.top_k}) must be <= num_experts ({self.num_experts})")
        if self.num_experts % self.expert_groups:
            raise ValueError(f"expert_groups ({self.expert_groups}) must divide num_experts ({self.num_experts})")
        if self.groups_per_token > self.expert_groups:
            raise ValueError(f"groups_per_token ({self.groups_per_token}) must be <= expert_groups ({self.expert_groups})")
        if self.top_k > self.num_experts // self.expert_groups * self.groups_per_token:
            raise ValueError(f"top_k ({self.top_k}) must be <= the experts of groups_per_token groups "
                             f"({self.num_experts // self.expert_groups * self.groups_per_token})")
        if self.num_shared_experts and not self.shared_intermediate_size:
            raise ValueError("shared_intermediate_size is required when num_shared_experts > 0")
        return self


#: a model's linear layers by class: the classes a checkpoint format or a scenario's per-layer rule
#: (workload/techniques.py) may match, and the linear ops (build.py names without the mlp/moe prefix) they cover
LAYER_CLASSES: dict[str, tuple[str, ...]] = {
    "*": ("qkv_proj", "out_proj", "up", "down", "expert_up", "expert_down"),
    "attention": ("qkv_proj", "out_proj"),
    "mlp": ("up", "down", "expert_up", "expert_down"),
    "experts": ("expert_up", "expert_down"),
    "qkv_proj": ("qkv_proj",),
    "out_proj": ("out_proj",),
    "up": ("up", "expert_up"),
    "down": ("down", "expert_down"),
    "lm_head": ("lm_head",),
}
#: the linear-op slots a layer has (lm_head is resolved once, outside the layers)
LINEAR_SLOTS = ("qkv_proj", "out_proj", "up", "down", "expert_up", "expert_down")


class CheckpointFormat(BaseModel):
    """The number format a released checkpoint stores its linear weights in (HF ``quantization_config``);
    a prediction uses it unless weights are given (``api.predict``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: the weight format (tapeout.dtypes name): fp8_e4m3_b128 (DeepSeek-V3), mxfp4 (gpt-oss experts)
    weights: str
    #: the layer class it covers (LAYER_CLASSES): "*" or "experts"
    match: str = "*"
    #: the layer indices (0-based) it covers; None: every layer (Meta's Llama-3.1-405B FP8 leaves the first and
    #: last layer 16-bit)
    layers: tuple[int, ...] | None = None
    #: the format the shipped kernels quantize the GEMM inputs to at run time (DeepSeek's dynamic fp8 per
    #: 1 x 128 group); None: 16-bit activations
    activations: str | None = None
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> "CheckpointFormat":
        from tapeout import dtypes
        from tapeout.errors import TapeoutError

        for k in ("weights", "activations"):
            v = getattr(self, k)
            try:
                if v is not None:
                    dtypes.parse(v)
            except TapeoutError:
                raise ValueError(f"{k}: unknown format {v!r}; allowed: {dtypes.EXAMPLES}") from None
        if self.match not in LAYER_CLASSES:
            raise ValueError(f"checkpoint.match {self.match!r}; allowed: {', '.join(LAYER_CLASSES)}")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValueError(f"checkpoint.layers {list(self.layers)!r}; allowed: a non-empty list of layer indices >= 0")
        return self

    @property
    def covers_all(self) -> bool:
        """True when the format covers every linear layer (``match`` "*", no layer subset)."""
        return self.match == "*" and self.layers is None

    @property
    def scope(self) -> str:
        """The layers it covers in words: "every linear layer", "the experts", "the mlp of layers 1-124"."""
        what = "every linear layer" if self.match == "*" else f"the {self.match}"
        if self.layers is None:
            return what
        ix = sorted(self.layers)
        span = f"{ix[0]}-{ix[-1]}" if ix == list(range(ix[0], ix[-1] + 1)) else ", ".join(map(str, ix))
        return f"{what} of layers {span}"


class ModelSpec(BaseModel):
    """A decoder-only transformer. Sizes are per model (unsharded)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)

    name: str
    hf_id: str | None = None
    family: str = Field(description="architecture family, e.g. llama, opt, gptj, falcon, mixtral, qwen2")
    num_layers: int = Field(gt=0, le=MAX_LAYERS)
    hidden_size: int = Field(gt=0, le=MAX_WIDTH)
    num_heads: int = Field(gt=0, le=100_000)
    num_kv_heads: int = Field(gt=0, le=100_000, description="= num_heads for MHA, 1 for MQA, between for GQA")
    head_dim: int = Field(gt=0, le=MAX_WIDTH)
    intermediate_size: int = Field(gt=0, le=MAX_WIDTH, description="dense MLP hidden size")
    gated_mlp: bool = Field(description="SwiGLU/GeGLU (gate, up, down) vs plain (up, down)")
    activation: Activation
    norm: Literal["rmsnorm", "layernorm"]
    #: LayerNorm's additive bias (beta); DBRX's and Cohere's LayerNorms scale only (HF ``nn.LayerNorm(bias=False)``,
    #: ``CohereLayerNorm``). RMSNorm has no bias whatever this says.
    norm_bias: bool = True
    position: Literal["rope", "learned", "alibi"]
    vocab_size: int = Field(gt=0, le=100_000_000)
    max_position_embeddings: int = Field(gt=0, le=1_000_000_000)
    #: rows of a learned position table beyond max_position_embeddings (OPT keeps 2)
    position_offset: int = Field(0, ge=0, le=1_000_000)
    tie_embeddings: bool = False
    parallel_block: bool = Field(False, description="attention and MLP read the same input (GPT-J, Falcon)")
    #: norms of one layer: 2 for sequential; 1 (GPT-J, Falcon-7B) or 2 (Falcon-40B+) for parallel; 4 for
    #: sandwich norms (Gemma 2/3: a norm before and after both attention and MLP)
    norms_per_layer: int = Field(2, ge=1, le=4)
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    #: per-head norm on queries and keys (Qwen3): one q_norm and one k_norm of head_dim each per layer
    qk_norm: bool = False
    #: Cohere (Command R+ ``use_qk_norm``): the q_norm / k_norm weights are (heads, head_dim) and
    #: (kv_heads, head_dim), one vector per head, instead of one head_dim vector shared by the heads
    qk_norm_per_head: bool = False
    #: DBRX (``clip_qkv``): the QKV projection's output is clamped to +-qkv_clip (an elementwise op on it)
    qkv_clip: float | None = Field(None, gt=0, le=1e6)
    #: Cohere (``logit_scale``): the logits are multiplied by this constant (an elementwise op on them)
    logit_scale: float | None = Field(None, gt=0, le=1e6)
    moe: MoESpec | None = None
    #: multi-head latent attention (replaces the q/k/v projections and the per-head KV cache)
    mla: MLASpec | None = None
    #: sliding-window or chunked attention and the layers that use it
    local_attention: LocalAttention | None = None
    #: layers without rotary position embedding (Llama 4's global layers)
    nope_layers: tuple[int, ...] = ()
    #: Gemma 2: attention scores pass through cap * tanh(score / cap) (the cost of a tanh per score)
    attn_logit_softcap: float | None = Field(None, gt=0, le=1e6)
    #: Gemma 2: the logits pass through cap * tanh(logit / cap)
    final_logit_softcap: float | None = Field(None, gt=0, le=1e6)
    #: gpt-oss: one learned sink logit per head and layer joins every softmax (no cache, no keys)
    attention_sinks: bool = False
    #: multi-token-prediction modules shipped with the checkpoint (DeepSeek-V3's ``num_nextn_predict_layers``);
    #: reported apart (:meth:`mtp_params`), neither counted in the main parameters nor run nor loaded
    mtp_layers: int = Field(0, ge=0, le=100)
    #: parameters outside the text stack that the checkpoint ships and a server loads (vision encoder and
    #: projector of Llama 4 and Gemma 3), counted from the HF config; not run for text
    vision_params: int = Field(0, ge=0, le=10**13)
    #: the format the released checkpoint ships its linear weights in (None: 16-bit)
    checkpoint: CheckpointFormat | None = None
    source: str = Field("", description="where the numbers come from")
    published_params: float | None = Field(None, description="published total parameter count")
    published_params_source: str | None = None
    published_active_params: float | None = Field(None, description="published parameters active per token")
    published_active_params_source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        for label, ix in (("moe.dense_layers", self.moe.dense_layers if self.moe else ()),
                          ("local_attention.layers", (self.local_attention.layers or ()) if self.local_attention
                           else ()), ("nope_layers", self.nope_layers),
                         ("checkpoint.layers", (self.checkpoint.layers or ()) if self.checkpoint else ())):
            bad = [i for i in ix if not 0 <= i < self.num_layers]
            if bad:
                raise ValueError(f"{label} {bad} outside 0..{self.num_layers - 1}")
        if self.qk_norm_per_head and not self.qk_norm:
            raise ValueError("qk_norm_per_head needs qk_norm: true")
        if self.mla is not None:
            if self.local_attention is not None:
                raise ValueError("local_attention is not defined for MLA models")
            if self.head_dim != self.mla.qk_head_dim:
                raise ValueError(f"head_dim ({self.head_dim}) must be mla.qk_nope_head_dim + mla.qk_rope_head_dim "
                                 f"({self.mla.qk_head_dim})")
        return self

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def attention_kind(self) -> str:
        if self.mla is not None:
            return "MLA"
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"

    @property
    def num_moe_layers(self) -> int:
        return 0 if self.moe is None else self.num_layers - len(self.moe.dense_layers)

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    # ---- attention per layer ---------------------------------------------------------------
    def layer_attention(self, layer: int) -> LayerAttention:
        """The attention span of layer ``layer`` (0-based)."""
        la = self.local_attention
        if la is None or (la.layers is not None and layer not in la.layers):
            return FULL
        return LayerAttention(la.kind, la.window)

    def attention_spans(self, layers: Iterable[int] | None = None) -> list[tuple[LayerAttention, int]]:
        """(span, number of layers) over ``layers`` (default: all), full attention first."""
        if self.local_attention is None:  # every layer attends to the whole context
            n = self.num_layers if layers is None else sum(1 for _ in layers)
            return [(FULL, n)] if n else []
        la = self.local_attention
        local = LayerAttention(la.kind, la.window)
        # a set, not the tuple: one lookup per layer, not a scan of the list (quadratic at 10^5 layers)
        on = None if la.layers is None else frozenset(la.layers)
        counts: dict[LayerAttention, int] = {}
        for i in range(self.num_layers) if layers is None else layers:
            a = local if on is None or i in on else FULL
            counts[a] = counts.get(a, 0) + 1
        return sorted(counts.items(), key=lambda kv: (kv[0].kind != "full", kv[0].kind, kv[0].window))

    @property
    def kv_width(self) -> int:
        """Values one layer caches per token: K and V of every KV head, or MLA's latent plus RoPE key."""
        return self.mla.cache_width if self.mla is not None else 2 * self.kv_size

    # ---- parameter counts ----------------------------------------------------------------
    def attention_params(self) -> int:
        h = self.hidden_size
        if self.mla is not None:
            return self._mla_params() + (self.num_heads if self.attention_sinks else 0)
        p = h * self.q_size + 2 * h * self.kv_size + self.q_size * h
        if self.qkv_bias:
            p += self.q_size + 2 * self.kv_size
        if self.out_bias:
            p += h
        p += self.qk_norm_params()
        if self.attention_sinks:
            p += self.num_heads
        return p

    def qk_norm_params(self) -> int:
        """Parameters of one layer's q_norm and k_norm (0 without QK norm): a scale (and a LayerNorm bias) of
        head_dim shared by the heads, or one per query and KV head (:attr:`qk_norm_per_head`)."""
        if not self.qk_norm:
            return 0
        rows = self.num_heads + self.num_kv_heads if self.qk_norm_per_head else 2
        return rows * self.head_dim * self._norm_vectors

    @property
    def _norm_vectors(self) -> int:
        """Vectors one norm holds: scale and bias (LayerNorm with bias), else the scale."""
        return 2 if self.norm == "layernorm" and self.norm_bias else 1

    def _mla_params(self) -> int:
        """q (q_a_proj + q_a_layernorm + q_b_proj, or q_proj), kv_a_proj_with_mqa + kv_a_layernorm, kv_b_proj,
        o_proj; no biases (DeepSeek's ``attention_bias`` is false)."""
        a, h, n = self.mla, self.hidden_size, self.num_heads
        assert a is not None
        if a.q_lora_rank:
            q = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * n * a.qk_head_dim
        else:
            q = h * n * a.qk_head_dim
        kv = h * a.cache_width + a.kv_lora_rank + a.kv_lora_rank * n * (a.qk_nope_head_dim + a.v_head_dim)
        return q + kv + n * a.v_head_dim * h

    def mlp_params(self, intermediate: int | None = None) -> int:
        i = self.intermediate_size if intermediate is None else intermediate
        h = self.hidden_size
        mats = 3 if self.gated_mlp else 2
        p = mats * h * i
        if self.mlp_bias:
            p += (mats - 1) * i + h
        return p

    def moe_params(self) -> int:
        """Parameters of one MoE layer's MLP part: router, routed and shared experts."""
        assert self.moe is not None
        m = self.moe
        p = self.hidden_size * m.num_experts + (m.num_experts if m.router_bias else 0)
        p += m.num_experts * self.mlp_params(m.expert_intermediate_size)
        p += m.num_shared_experts * self.mlp_params(m.shared_intermediate_size)
        if m.shared_expert_gate:
            p += self.hidden_size
        return p

    def moe_active_params(self) -> int:
        assert self.moe is not None
        m = self.moe
        p = self.hidden_size * m.num_experts + (m.num_experts if m.router_bias else 0)
        p += m.top_k * self.mlp_params(m.expert_intermediate_size)
        p += m.num_shared_experts * self.mlp_params(m.shared_intermediate_size)
        if m.shared_expert_gate:
            p += self.hidden_size
        return p

    def norm_params(self) -> int:
        return self.hidden_size * self._norm_vectors

    def embedding_params(self) -> int:
        p = self.vocab_size * self.hidden_size
        if self.position == "learned":
            p += (self.max_position_embeddings + self.position_offset) * self.hidden_size
        return p

    def lm_head_params(self) -> int:
        if self.tie_embeddings:
            return self.vocab_size if self.lm_head_bias else 0
        return self.vocab_size * self.hidden_size + (self.vocab_size if self.lm_head_bias else 0)

    def layer_params(self, *, moe: bool) -> int:
        mlp = self.moe_params() if moe else self.mlp_params()
        return self.attention_params() + mlp + self.norms_per_layer * self.norm_params()

    def total_params(self) -> int:
        p = self.embedding_params() + self.lm_head_params() + self.norm_params()
        p += self.num_dense_layers * self.layer_params(moe=False)
        if self.moe is not None:
            p += self.num_moe_layers * self.layer_params(moe=True)
        return p

    def loaded_params(self) -> int:
        """What the checkpoint's served weights hold: the text stack plus :attr:`vision_params` (the MTP
        module is left out; :meth:`mtp_params`)."""
        return self.total_params() + self.vision_params

    def mtp_params(self) -> int:
        """Parameters of the multi-token-prediction modules (DeepSeek-V3: per module, the enorm and hnorm,
        eh_proj (2h -> h), one MoE decoder layer, the shared-head norm, and its own copies of the embedding
        and the lm_head as the checkpoint stores them)."""
        if not self.mtp_layers:
            return 0
        h = self.hidden_size
        per = 3 * self.norm_params() + 2 * h * h + self.layer_params(moe=self.moe is not None)
        per += self.vocab_size * h * 2
        return self.mtp_layers * per

    def active_params(self, *, input_embedding: bool = True) -> int:
        """Parameters touched per token (MoE: top-k routed + shared experts). ``input_embedding=False`` leaves
        out the embedding table (one row is read per token), the convention of the gpt-oss model card."""
        if not input_embedding:
            return self.active_params() - self.vocab_size * self.hidden_size
        if self.moe is None:
            return self.total_params()
        p = self.embedding_params() + self.lm_head_params() + self.norm_params()
        p += self.num_dense_layers * self.layer_params(moe=False)
        per_moe = self.attention_params() + self.moe_active_params() + self.norms_per_layer * self.norm_params()
        return p + self.num_moe_layers * per_moe

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """KV-cache bytes per token across all layers (K and V of every KV head, or MLA's latent and RoPE key)
        while the sequence is shorter than every window."""
        return self.num_layers * self.kv_width * kv_bytes

    def kv_cache_bytes(self, tokens: int, kv_bytes: float = 2.0) -> float:
        """KV-cache bytes of one sequence of ``tokens`` tokens: each layer holds what its span keeps
        (:meth:`LayerAttention.cached`)."""
        return sum(n * self.kv_width * kv_bytes * a.cached(tokens) for a, n in self.attention_spans())
