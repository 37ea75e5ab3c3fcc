"""Transformer architecture specs (decoder-only), validated and immutable."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tapeout.specio import reject_bools

Activation = Literal["silu", "gelu", "gelu_tanh", "relu", "swiglu_oai"]
#: largest width (hidden, intermediate, head) a spec may give: sizes are bounded so that no count
#: overflows downstream (a config with 2^70 layers is a typo, not a model)
MAX_WIDTH = 10_000_000


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

    @model_validator(mode="after")
    def _check(self) -> "MoESpec":
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({self.top_k}) must be <= num_experts ({self.num_experts})")
        if self.num_shared_experts and not self.shared_intermediate_size:
            raise ValueError("shared_intermediate_size is required when num_shared_experts > 0")
        return self


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
    num_layers: int = Field(gt=0, le=100_000)
    hidden_size: int = Field(gt=0, le=MAX_WIDTH)
    num_heads: int = Field(gt=0, le=100_000)
    num_kv_heads: int = Field(gt=0, le=100_000, description="= num_heads for MHA, 1 for MQA, between for GQA")
    head_dim: int = Field(gt=0, le=MAX_WIDTH)
    intermediate_size: int = Field(gt=0, le=MAX_WIDTH, description="dense MLP hidden size")
    gated_mlp: bool = Field(description="SwiGLU/GeGLU (gate, up, down) vs plain (up, down)")
    activation: Activation
    norm: Literal["rmsnorm", "layernorm"]
    position: Literal["rope", "learned", "alibi"]
    vocab_size: int = Field(gt=0, le=100_000_000)
    max_position_embeddings: int = Field(gt=0, le=1_000_000_000)
    #: rows of a learned position table beyond max_position_embeddings (OPT keeps 2)
    position_offset: int = Field(0, ge=0, le=1_000_000)
    tie_embeddings: bool = False
    parallel_block: bool = Field(False, description="attention and MLP read the same input (GPT-J, Falcon)")
    #: norms before the blocks of one layer: 2 for sequential; 1 (GPT-J, Falcon-7B) or 2 (Falcon-40B+) for parallel
    norms_per_layer: int = Field(2, ge=1, le=2)
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    #: per-head norm on queries and keys (Qwen3): one q_norm and one k_norm of head_dim each per layer
    qk_norm: bool = False
    moe: MoESpec | None = None
    source: str = Field("", description="where the numbers come from")
    published_params: float | None = Field(None, description="published total parameter count")
    published_params_source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        if self.moe is not None:
            bad = [i for i in self.moe.dense_layers if not 0 <= i < self.num_layers]
            if bad:
                raise ValueError(f"moe.dense_layers {bad} outside 0..{self.num_layers - 1}")
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
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"

    @property
    def num_moe_layers(self) -> int:
        return 0 if self.moe is None else self.num_layers - len(self.moe.dense_layers)

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    # ---- parameter counts ----------------------------------------------------------------
    def attention_params(self) -> int:
        h = self.hidden_size
        p = h * self.q_size + 2 * h * self.kv_size + self.q_size * h
        if self.qkv_bias:
            p += self.q_size + 2 * self.kv_size
        if self.out_bias:
            p += h
        if self.qk_norm:
            p += 2 * self.head_dim * (2 if self.norm == "layernorm" else 1)
        return p

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
        p = self.hidden_size * m.num_experts
        p += m.top_k * self.mlp_params(m.expert_intermediate_size)
        p += m.num_shared_experts * self.mlp_params(m.shared_intermediate_size)
        if m.shared_expert_gate:
            p += self.hidden_size
        return p

    def norm_params(self) -> int:
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

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

    def active_params(self) -> int:
        """Parameters touched per token (MoE: top-k routed + shared experts)."""
        if self.moe is None:
            return self.total_params()
        p = self.embedding_params() + self.lm_head_params() + self.norm_params()
        p += self.num_dense_layers * self.layer_params(moe=False)
        per_moe = self.attention_params() + self.moe_active_params() + self.norms_per_layer * self.norm_params()
        return p + self.num_moe_layers * per_moe

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """KV-cache bytes per token across all layers (K and V, every KV head)."""
        return 2 * self.num_layers * self.kv_size * kv_bytes
