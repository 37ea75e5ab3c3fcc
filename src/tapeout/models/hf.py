"""Hugging Face ``config.json`` -> :class:`ModelSpec` (offline; nothing is ever downloaded).

Each supported ``model_type`` has a small mapper that reads the keys its HF modelling code
reads, applying the same defaults HF applies when a key is absent (e.g. OPT and Falcon tie the
lm_head to the embeddings by default, GPT-J and GPT-NeoX do not). Parameter counts derived from
the result match the HF module's ``sum(p.numel())``.

Also accepted: the paper-hyper-parameter records of the shared reference data (``model_type``
"gpt3", or "opt" with ``intermediate_size`` instead of ``ffn_dim``), whose ``_source`` key becomes
the spec's source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tapeout.errors import TapeoutError
from tapeout.models.spec import MAX_LAYERS, ModelSpec
from tapeout.specio import build, read_mapping

#: HF activation names -> ModelSpec.activation
_ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_tanh": "gelu_tanh",
    "relu": "relu",
}

#: HF ``layer_types`` entries -> local attention kind (None: full attention)
_LAYER_TYPES = {"full_attention": None, "sliding_attention": "sliding", "chunked_attention": "chunked"}

_MISSING = object()


class _Cfg:
    """Read access to a config dict with one-line errors naming the key."""

    def __init__(self, cfg: Mapping[str, Any], model_type: str, origin: str) -> None:
        self.cfg = cfg
        self.model_type = model_type
        self.origin = origin

    def get(self, *keys: str, default: Any = None) -> Any:
        """The first key present with a non-null value, else ``default``."""
        for k in keys:
            v = self.cfg.get(k)
            if v is not None:
                return v
        return default

    def _missing(self, keys: tuple[str, ...]) -> TapeoutError:
        alt = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        return TapeoutError(
            f"{self.origin}: missing required key {keys[0]!r}{alt} for model_type {self.model_type!r}; "
            f"supported architectures: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )

    def int(self, *keys: str, default: Any = _MISSING) -> int:
        v = self.get(*keys)
        if v is None:
            if default is _MISSING:
                raise self._missing(keys)
            return default
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise TapeoutError(f"{self.origin}: {keys[0]!r} must be a positive integer, got {v!r}")
        return v

    def layers(self, *keys: str) -> int:
        """A layer count, bounded (ModelSpec's ``MAX_LAYERS``) before a mapper expands it into per-layer lists:
        a typo of 2^70 layers is a one-line error, not a loop that never ends."""
        n = self.int(*keys)
        if n > MAX_LAYERS:
            key = next(k for k in keys if self.cfg.get(k) is not None)
            raise TapeoutError(f"{self.origin}: {key!r} must be an integer in 1..{MAX_LAYERS}, got {n!r}")
        return n

    def sub(self, key: str) -> "_Cfg":
        """A nested config (``text_config``) with the same origin; the config itself when absent."""
        v = self.cfg.get(key)
        if v is None:
            return self
        if not isinstance(v, Mapping):
            raise TapeoutError(f"{self.origin}: {key!r} must be a JSON object, got {type(v).__name__}")
        return _Cfg(v, self.model_type, f"{self.origin} {key}")

    def float(self, key: str, default: float | None = None) -> float | None:
        v = self.cfg.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise TapeoutError(f"{self.origin}: {key!r} must be a positive number, got {v!r}")
        return float(v)

    def str_list(self, key: str, n: int, allowed: Mapping[str, Any]) -> list[str] | None:
        """A list of ``n`` strings from ``allowed`` (HF ``layer_types``), None when absent."""
        v = self.cfg.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or len(v) != n or any(x not in allowed for x in v):
            raise TapeoutError(f"{self.origin}: {key!r} must list {n} entries from {', '.join(allowed)}, got {v!r}")
        return v

    def count(self, key: str, default: int = 0) -> int:
        """A non-negative integer (a number of layers or experts that may be 0)."""
        v = self.cfg.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise TapeoutError(f"{self.origin}: {key!r} must be a non-negative integer, got {v!r}")
        return v

    def bool(self, key: str, default: bool) -> bool:
        v = self.cfg.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise TapeoutError(f"{self.origin}: {key!r} must be true or false, got {v!r}")
        return v

    def activation(self, *keys: str, default: str) -> str:
        v = self.get(*keys, default=default)
        act = _ACTIVATIONS.get(str(v).lower())
        if act is None:
            raise TapeoutError(
                f"{self.origin}: unsupported activation {keys[0]}={v!r}; allowed: {', '.join(sorted(_ACTIVATIONS))}"
            )
        return act

    def head_dim(self, hidden: int, heads: int, default: int | None = None) -> int:
        hd = self.get("head_dim")
        if hd is not None:
            return self.int("head_dim")
        if default is not None:
            return default
        if hidden % heads:
            raise TapeoutError(
                f"{self.origin}: hidden_size ({hidden}) is not a multiple of the number of heads ({heads}) "
                "and no head_dim is given"
            )
        return hidden // heads


# ---- per-architecture mappers -----------------------------------------------------------------
def _llama_like(c: _Cfg, family: str) -> dict[str, Any]:
    layers = c.layers("num_hidden_layers")
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    return {
        "family": family,
        "num_layers": layers,
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": c.int("num_key_value_heads", default=heads),
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": c.int("intermediate_size"),
        "gated_mlp": True,
        "activation": c.activation("hidden_act", default="silu"),
        "norm": "rmsnorm",
        "position": "rope",
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("max_position_embeddings"),
        "tie_embeddings": c.bool("tie_word_embeddings", False),
    }


def _llama(c: _Cfg) -> dict[str, Any]:
    d = _llama_like(c, "llama")
    bias = c.bool("attention_bias", False)  # q, k, v and o_proj
    d.update(qkv_bias=bias, out_bias=bias, mlp_bias=c.bool("mlp_bias", False))
    return d


def _local(c: _Cfg, d: dict[str, Any], layers: list[int] | None, kind: str = "sliding",
           key: str = "sliding_window") -> dict[str, Any]:
    """Local attention of ``kind`` over ``layers`` (None: every layer) with the window in ``key``; none when
    the key is absent or null, or the window reaches max_position_embeddings (it then never caps anything)."""
    w = c.int(key, default=None)
    if w is not None and w < d["max_position_embeddings"] and layers != []:
        d["local_attention"] = dict(kind=kind, window=w, layers=None if layers is None else tuple(layers))
    return d


def _typed_layers(c: _Cfg, n: int, kind: str) -> list[int] | None:
    """Layers whose HF ``layer_types`` entry is ``kind`` (None when the config has no layer_types)."""
    types = c.str_list("layer_types", n, _LAYER_TYPES)
    return None if types is None else [i for i, t in enumerate(types) if _LAYER_TYPES[t] == kind]


def _mistral(c: _Cfg, family: str = "mistral") -> dict[str, Any]:
    # MistralAttention passes config.sliding_window to every layer (Mistral-7B-v0.1: 4096; later releases null)
    d = _llama_like(c, family)
    return _local(c, d, None)


def _phi3(c: _Cfg) -> dict[str, Any]:
    # Phi3Attention: fused qkv_proj / gate_up_proj (same counts as llama), sliding_window on every layer
    d = _mistral(c, "phi3")
    bias = c.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias)
    return d


def _qwen_window(c: _Cfg, d: dict[str, Any]) -> dict[str, Any]:
    """Qwen2/Qwen3: with ``use_sliding_window`` the layers from ``max_window_layers`` on slide (the Qwen2
    default layer_types); the released configs have it false."""
    if not c.bool("use_sliding_window", False):
        return d
    n = d["num_layers"]
    start = c.int("max_window_layers", default=n)
    typed = _typed_layers(c, n, "sliding")
    return _local(c, d, typed if typed is not None else list(range(start, n)))


def _internlm(c: _Cfg) -> dict[str, Any]:
    d = _llama_like(c, "internlm")
    # InternLM (v1) modelling is MHA only: k/v projections use num_attention_heads.
    d["num_kv_heads"] = d["num_heads"]
    bias = c.bool("bias", True)  # q, k, v and o_proj; the MLP has none
    d.update(qkv_bias=bias, out_bias=bias)
    return d


def _internlm2(c: _Cfg) -> dict[str, Any]:
    """InternLM2 / InternLM2.5 (remote-code ``InternLM2ForCausalLM``): Llama's layer with q, k and v fused into
    one ``wqkv`` projection (GQA over ``num_key_value_heads``: the same weights and FLOPs as three), SwiGLU
    ``w1``/``w3``/``w2`` without bias, RMSNorm, an untied ``output`` head. ``bias`` puts a bias on wqkv and wo;
    InternLM2Config defaults it to true, the released configs write false."""
    d = _llama_like(c, "internlm2")
    bias = c.bool("bias", True)
    d.update(qkv_bias=bias, out_bias=bias)
    return d


def _qwen(c: _Cfg) -> dict[str, Any]:
    """Qwen (v1, remote-code ``QWenLMHeadModel``): multi-head attention with q, k and v fused into ``c_attn``, which
    always carries a bias; ``c_proj`` and the MLP's ``w1``/``w2``/``c_proj`` carry one only when ``no_bias`` is false
    (the released configs write true). The MLP is SwiGLU with two branches of ``intermediate_size // 2`` each (the
    config states the sum); ``kv_channels`` is the head width; RMSNorm, an untied ``lm_head``."""
    d = _llama_like(c, "qwen")
    d["num_kv_heads"] = d["num_heads"]  # QWenAttention splits c_attn into num_attention_heads for q, k and v alike
    d["head_dim"] = c.int("kv_channels", default=d["head_dim"])
    inter = d["intermediate_size"]
    if inter % 2:
        raise TapeoutError(f"{c.origin}: 'intermediate_size' must be even for model_type 'qwen' (two SwiGLU branches "
                           f"of half of it), got {inter!r}")
    bias = not c.bool("no_bias", True)
    d.update(intermediate_size=inter // 2, qkv_bias=True, out_bias=bias, mlp_bias=bias)
    return d


def _qwen2(c: _Cfg, family: str = "qwen2") -> dict[str, Any]:
    d = _llama_like(c, family)
    d.update(qkv_bias=True, out_bias=False)  # Qwen2: q/k/v carry a bias, o_proj does not
    return _qwen_window(c, d)


def _qwen3(c: _Cfg, family: str = "qwen3") -> dict[str, Any]:
    d = _llama_like(c, family)
    # Qwen3Config defaults head_dim to 128 (not hidden/heads)
    d["head_dim"] = c.head_dim(d["hidden_size"], d["num_heads"], default=128)
    bias = c.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias, qk_norm=True)
    return _qwen_window(c, d)


def _dense_layers(c: _Cfg, layers: int) -> tuple[int, ...]:
    """Layers that keep a dense MLP: mlp_only_layers, decoder_sparse_step, first_k_dense_replace."""
    step = c.int("decoder_sparse_step", default=1)
    only = c.get("mlp_only_layers", default=[])
    if not isinstance(only, list) or not all(isinstance(i, int) for i in only):
        raise TapeoutError(f"{c.origin}: 'mlp_only_layers' must be a list of layer indices, got {only!r}")
    first_k = c.get("first_k_dense_replace", default=0)
    if isinstance(first_k, bool) or not isinstance(first_k, int):
        raise TapeoutError(f"{c.origin}: 'first_k_dense_replace' must be an integer, got {first_k!r}")
    listed = set(only)  # a set: the membership test below runs once per layer
    dense = {i for i in range(layers) if i in listed or (i + 1) % step or i < first_k}
    return tuple(sorted(dense))


def _top_k(c: _Cfg, experts_key: str, experts: int) -> int:
    """``num_experts_per_tok``, checked against the expert count under the config's own key names."""
    k = c.int("num_experts_per_tok")
    if k > experts:
        raise TapeoutError(f"{c.origin}: 'num_experts_per_tok' ({k}) must be <= {experts_key!r} ({experts}): "
                           "a token cannot be routed to more experts than the layer has")
    return k


def _mixtral(c: _Cfg) -> dict[str, Any]:
    d = _llama_like(c, "mixtral")
    experts = c.int("num_local_experts")
    # a mapping, not a MoESpec: ModelSpec validation turns any remaining mistake into a one-line error
    d["moe"] = dict(
        num_experts=experts,
        top_k=_top_k(c, "num_local_experts", experts),
        expert_intermediate_size=d["intermediate_size"],
        dense_layers=_dense_layers(c, d["num_layers"]),
    )
    return d


def _qwen_moe(c: _Cfg, d: dict[str, Any], *, shared: bool) -> dict[str, Any]:
    experts = c.int("num_experts")
    shared_size = c.int("shared_expert_intermediate_size") if shared else 0
    d["moe"] = dict(
        num_experts=experts,
        top_k=_top_k(c, "num_experts", experts),
        expert_intermediate_size=c.int("moe_intermediate_size"),
        num_shared_experts=1 if shared_size else 0,
        shared_intermediate_size=shared_size,
        shared_expert_gate=bool(shared_size),
        dense_layers=_dense_layers(c, d["num_layers"]),
    )
    return d


def _qwen2_moe(c: _Cfg) -> dict[str, Any]:
    return _qwen_moe(c, _qwen2(c, "qwen2_moe"), shared=True)


def _qwen3_moe(c: _Cfg) -> dict[str, Any]:
    return _qwen_moe(c, _qwen3(c, "qwen3_moe"), shared=False)


def _deepseek_moe(c: _Cfg, layers: int) -> dict[str, Any]:
    """DeepSeek's MoE (V1, V2, V3): ``n_routed_experts`` fine-grained experts of ``moe_intermediate_size``,
    ``num_experts_per_tok`` of them per token, ``n_shared_experts`` of the same size always on, the first
    ``first_k_dense_replace`` layers dense (and all but every ``moe_layer_freq``-th after)."""
    first_k = c.count("first_k_dense_replace")
    freq = c.int("moe_layer_freq", default=1)
    moe_inter = c.int("moe_intermediate_size")
    shared = c.count("n_shared_experts")
    # a mapping, not a MoESpec: ModelSpec validation turns any remaining mistake into a one-line error
    return dict(
        num_experts=c.int("n_routed_experts"),
        top_k=c.int("num_experts_per_tok"),
        expert_intermediate_size=moe_inter,
        num_shared_experts=shared,
        shared_intermediate_size=moe_inter if shared else 0,
        # noaux_tc routing adds a per-expert score-correction bias to the gate
        router_bias=c.get("topk_method") == "noaux_tc",
        # group-limited routing: top_k among the experts of topk_group of n_group groups
        expert_groups=c.int("n_group", default=1),
        groups_per_token=c.int("topk_group", default=1),
        dense_layers=tuple(i for i in range(layers) if i < first_k or i % freq),
    )


def _deepseek_v1(c: _Cfg) -> dict[str, Any]:
    """DeepSeek-MoE (remote-code ``DeepseekForCausalLM``, model_type ``deepseek``): Llama's attention (MHA or
    GQA, ``attention_bias``), layer 0..first_k_dense_replace-1 a dense SwiGLU MLP of ``intermediate_size``, the
    rest DeepSeek's MoE (:func:`_deepseek_moe`)."""
    d = _llama_like(c, "deepseek")
    bias = c.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias, moe=_deepseek_moe(c, d["num_layers"]))
    return d


def _deepseek(c: _Cfg) -> dict[str, Any]:
    """DeepSeek-V2/V3 and Kimi-K2 (the V3 architecture): MLA, DeepSeek's MoE (:func:`_deepseek_moe`), MTP
    modules apart."""
    heads = c.int("num_attention_heads")
    q_lora = c.get("q_lora_rank")
    # mappings, not spec objects: ModelSpec validation turns any remaining mistake into a one-line error
    mla = dict(
        q_lora_rank=None if q_lora is None else c.int("q_lora_rank"),
        kv_lora_rank=c.int("kv_lora_rank"),
        qk_nope_head_dim=c.int("qk_nope_head_dim"),
        qk_rope_head_dim=c.int("qk_rope_head_dim"),
        v_head_dim=c.int("v_head_dim"),
    )
    if c.bool("attention_bias", False):
        raise TapeoutError(f"{c.origin}: MLA with attention_bias=true is not supported; allowed: false")
    mtp = c.count("num_nextn_predict_layers")
    d = _llama_like(c, c.model_type.lower())
    d.update({
        "num_kv_heads": heads,  # every head has its own K and V after the up-projection
        "head_dim": mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"],
        "mla": mla,
        "mtp_layers": mtp,
        "moe": _deepseek_moe(c, d["num_layers"]),
    })
    return d


def _vision_params(c: _Cfg, text_hidden: int) -> int:
    """Parameters of the vision encoder and the projector into the text stack (Llama 4's
    ``llama4_vision_model``; Gemma 3's SigLIP tower and ``mm_input_projection``), as the HF modules define
    them; 0 without a vision_config."""
    v = c.cfg.get("vision_config")
    if v is None:
        return 0
    vc = c.sub("vision_config")
    kind = str(v.get("model_type", ""))
    h, i, n = vc.int("hidden_size"), vc.int("intermediate_size"), vc.layers("num_hidden_layers")
    ch, patch, image = vc.int("num_channels", default=3), vc.int("patch_size"), vc.int("image_size")
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h  # q/k/v/o, fc1/fc2 with biases, 2 LayerNorms
    if kind == "llama4_vision_model":
        # unfold-conv patch linear (no bias), class embedding, positions (patches + CLS), pre/post LayerNorm,
        # pixel-shuffle MLP (fc1: intermediate -> projector_input, fc2: projector_output^2, no biases),
        # multi_modal_projector (vision_output_dim -> text hidden, no bias)
        p_in, p_out = vc.int("projector_input_dim"), vc.int("projector_output_dim")
        tower = ch * patch * patch * h + h + ((image // patch) ** 2 + 1) * h + 2 * 2 * h
        adapter = i * p_in + p_out * p_out
        return n * layer + tower + adapter + vc.int("vision_output_dim") * text_hidden
    if kind == "siglip_vision_model":
        # patch conv with bias, learned positions, post LayerNorm (no pooling head when vision_use_head is
        # false); Gemma 3's projector: mm_input_projection_weight (vision -> text hidden) + mm_soft_emb_norm
        if vc.bool("vision_use_head", True):
            raise TapeoutError(f"{c.origin}: a SigLIP vision_config with vision_use_head=true is not supported")
        tower = ch * patch * patch * h + h + (image // patch) ** 2 * h + 2 * h
        return n * layer + tower + h * text_hidden + h
    raise TapeoutError(f"{c.origin}: unsupported vision_config model_type {kind!r}; allowed: "
                       "llama4_vision_model, siglip_vision_model")


def _llama4(c: _Cfg) -> dict[str, Any]:
    """Llama 4: MoE layers every ``interleave_moe_layer_step`` (routed experts plus one shared expert), dense
    layers of ``intermediate_size_mlp``; chunked attention on the RoPE layers, full attention on the NoPE
    layers (``no_rope_layers``, default every 4th); the vision tower counted apart."""
    t = c.sub("text_config")
    d = _llama_like(t, "llama4")
    n = d["num_layers"]
    step = t.int("interleave_moe_layer_step", default=1)
    moe_layers = set(range(step - 1, n, step))
    expert = t.int("intermediate_size")
    d["intermediate_size"] = t.int("intermediate_size_mlp")
    d["moe"] = dict(num_experts=t.int("num_local_experts"), top_k=t.int("num_experts_per_tok"),
                    expert_intermediate_size=expert, num_shared_experts=1, shared_intermediate_size=expert,
                    dense_layers=tuple(i for i in range(n) if i not in moe_layers))
    rope = t.get("no_rope_layers", default=[])
    if not isinstance(rope, list) or any(x not in (0, 1) for x in rope) or (rope and len(rope) != n):
        raise TapeoutError(f"{t.origin}: 'no_rope_layers' must list 0/1 for each of {n} layers, got {rope!r}")
    if not rope:  # Llama4TextConfig's default: every no_rope_layer_interval-th layer has no RoPE
        every = t.int("no_rope_layer_interval", default=4)
        rope = [int((i + 1) % every != 0) for i in range(n)]
    d["nope_layers"] = tuple(i for i, r in enumerate(rope) if not r)
    bias = t.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias)
    d = _local(t, d, [i for i, r in enumerate(rope) if r], kind="chunked", key="attention_chunk_size")
    d["vision_params"] = _vision_params(c, d["hidden_size"])
    return d


def _gemma(c: _Cfg, family: str) -> dict[str, Any]:
    """Gemma 2 / Gemma 3 text stacks: head_dim from the config, GeGLU, sandwich norms (4 per layer), tied
    embeddings by default; sliding-window layers in the family's pattern (or the config's layer_types)."""
    t = c.sub("text_config")
    gemma3 = family == "gemma3"
    # Gemma3TextConfig defaults for keys its minimal hub configs leave out (see the shared hf-configs README)
    d = _llama_like(_Cfg({"vocab_size": 262_208, "max_position_embeddings": 131_072, **t.cfg}, t.model_type,
                         t.origin) if gemma3 else t, family)
    d["activation"] = t.activation("hidden_activation", "hidden_act", default="gelu_pytorch_tanh")
    d["tie_embeddings"] = t.bool("tie_word_embeddings", True)
    d["norms_per_layer"] = 4
    bias = t.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias, qk_norm=gemma3)
    n = d["num_layers"]
    sliding = _typed_layers(t, n, "sliding")
    if sliding is None and gemma3:  # layer i is global iff (i + 1) % sliding_window_pattern == 0
        every = t.int("sliding_window_pattern", default=6)
        sliding = [i for i in range(n) if (i + 1) % every]
    elif sliding is None:  # Gemma 2: even layers slide
        sliding = [i for i in range(n) if i % 2 == 0]
    d = _local(t, d, sliding)
    # Gemma2Config's defaults are 50 and 30; Gemma 3 has none (QK-norm instead)
    d["attn_logit_softcap"] = t.float("attn_logit_softcapping", None if gemma3 else 50.0)
    d["final_logit_softcap"] = t.float("final_logit_softcapping", None if gemma3 else 30.0)
    d["vision_params"] = _vision_params(c, d["hidden_size"])
    return d


def _gemma1(c: _Cfg) -> dict[str, Any]:
    """Gemma (1): Llama's layout with head_dim from the config, GeGLU (HF GemmaMLP reads hidden_activation,
    default gelu_pytorch_tanh, not hidden_act) and tied embeddings by default."""
    d = _llama_like(c, "gemma")
    d["activation"] = c.activation("hidden_activation", default="gelu_pytorch_tanh")
    d["tie_embeddings"] = c.bool("tie_word_embeddings", True)
    bias = c.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias)
    return d


def _gemma2(c: _Cfg) -> dict[str, Any]:
    return _gemma(c, "gemma2")


def _gemma3(c: _Cfg) -> dict[str, Any]:
    return _gemma(c, "gemma3")


def _gpt_oss(c: _Cfg) -> dict[str, Any]:
    """gpt-oss: every layer MoE (top-k of ``num_local_experts``, biases on experts and router), q/k/v/o
    biases, one sink logit per head, alternating sliding (``layer_types``) and full attention."""
    d = _llama_like(c, "gpt_oss")
    n = d["num_layers"]
    d.update(activation="swiglu_oai", qkv_bias=c.bool("attention_bias", True), out_bias=c.bool("attention_bias", True),
             mlp_bias=True, attention_sinks=True)
    d["moe"] = dict(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok", "experts_per_token"),
                    expert_intermediate_size=d["intermediate_size"], router_bias=True)
    sliding = _typed_layers(c, n, "sliding")
    return _local(c, d, sliding if sliding is not None else [i for i in range(n) if i % 2 == 0])


#: weight widths each integer method's checkpoints and kernels use: GPTQ 2, 3, 4 and 8 bits (AutoGPTQ /
#: GPTQModel ``bits``; vLLM's gptq kernels serve the same), AWQ 4 bits only (AutoAWQ quantizes ``w_bit`` 4)
_INT_BITS = {"gptq": (2, 3, 4, 8), "awq": (4,)}


def _int_checkpoint(c: _Cfg, q: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A GPTQ or AWQ ``quantization_config`` as a weight-only integer format with per-group scales.

    The keys as the producers write them (transformers ``GPTQConfig`` / ``AwqConfig``, e.g.
    TheBloke/Llama-2-13B-chat-GPTQ quantize_config.json ``{"bits": 4, "group_size": 128, "desc_act": false,
    "sym": true}``, TheBloke/Mistral-7B-OpenOrca-AWQ config.json ``{"quant_method": "awq", "bits": 4,
    "group_size": 128, "zero_point": true, "version": "gemm"}``): ``bits``; ``group_size`` (-1: one scale per
    output channel; transformers' default 128); GPTQ ``sym`` (default true: scales only, the kernels' zero is
    the constant 2^(bits-1)) or AWQ ``zero_point`` (default true: a zero per group). GPTQ's ``desc_act``
    (act-order) permutes the groups' input channels, which changes neither bytes nor FLOPs here (its g_idx,
    one int32 per input channel, is not counted); a quantized lm_head (GPTQModel's ``lm_head: true``) is refused.
    """
    where = f"{c.origin}: quantization_config"
    bits = q.get("bits")
    if bits not in _INT_BITS[method] or isinstance(bits, bool):
        raise TapeoutError(f"{where}.bits {bits!r} for {method}; allowed: {', '.join(map(str, _INT_BITS[method]))}")
    group = q.get("group_size", 128)
    if isinstance(group, bool) or not isinstance(group, int) or not (group == -1 or group > 0):
        raise TapeoutError(f"{where}.group_size {group!r}; allowed: a positive integer, or -1 (per channel)")
    key, default = ("sym", True) if method == "gptq" else ("zero_point", True)
    flag = q.get(key, default)
    if not isinstance(flag, bool):
        raise TapeoutError(f"{where}.{key} {flag!r}; allowed: true, false")
    zero = not flag if method == "gptq" else flag
    if q.get("lm_head", False) is not False:
        raise TapeoutError(f"{where}.lm_head {q.get('lm_head')!r}: a quantized lm_head is not read; allowed: false "
                           "(give the lm_head's format as a per-layer rule instead)")
    gran = "c" if group == -1 else f"g{group}"
    from tapeout import dtypes

    weights = dtypes.parse(f"int{bits}_{gran}{'z' if zero else ''}").name
    return dict(weights=weights, source=f"HF config.json quantization_config (quant_method {method}: {bits}-bit, "
                f"{'per channel' if group == -1 else f'group {group}'}, {'zero point' if zero else 'symmetric'})")


def _checkpoint(c: _Cfg) -> dict[str, Any] | None:
    """The shipped weight format from ``quantization_config``: ``fp8`` (``fmt`` e4m3/e5m2; square
    ``weight_block_size`` blocks with fp32 scales; dynamic activations quantized per 1 x block group),
    ``mxfp4`` (gpt-oss: the experts, everything in ``modules_to_not_convert`` stays 16-bit) and ``gptq`` /
    ``awq`` (weight-only integers with group scales, :func:`_int_checkpoint`). Other methods are not read:
    give their format as ``weights``."""
    q = c.cfg.get("quantization_config")
    if not isinstance(q, Mapping):
        return None
    method = str(q.get("quant_method", "")).lower()
    if method in _INT_BITS:
        return _int_checkpoint(c, q, method)
    if method == "fp8":
        fmt = str(q.get("fmt", "e4m3")).lower()
        if fmt not in ("e4m3", "e5m2"):
            raise TapeoutError(f"{c.origin}: quantization_config.fmt {fmt!r}; allowed: e4m3, e5m2")
        block = q.get("weight_block_size")
        if block is None:
            weights = acts = f"fp8_{fmt}"
        else:
            if (not isinstance(block, list) or len(block) != 2 or block[0] != block[1]
                    or not isinstance(block[0], int) or block[0] <= 0):
                raise TapeoutError(f"{c.origin}: quantization_config.weight_block_size must be [N, N], got {block!r}")
            weights, acts = f"fp8_{fmt}_b{block[0]}", f"fp8_{fmt}_g{block[0]}"
        dynamic = q.get("activation_scheme", "dynamic") == "dynamic"
        return dict(weights=weights, activations=acts if dynamic else None,
                    source="HF config.json quantization_config (quant_method fp8)")
    if method == "mxfp4":
        skip = " ".join(str(x) for x in q.get("modules_to_not_convert") or [])
        match = "experts" if "self_attn" in skip else "*"
        return dict(weights="mxfp4", match=match,
                    source=f"HF config.json quantization_config (quant_method mxfp4; not converted: {skip or 'none'})")
    return None


def _opt(c: _Cfg) -> dict[str, Any]:
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    proj = c.int("word_embed_proj_dim", default=hidden)
    if proj != hidden:
        raise TapeoutError(
            f"{c.origin}: OPT with word_embed_proj_dim ({proj}) != hidden_size ({hidden}) "
            "(project_in/project_out, OPT-350m) is not supported"
        )
    if not c.bool("do_layer_norm_before", True) or not c.bool("layer_norm_elementwise_affine", True):
        raise TapeoutError(
            f"{c.origin}: OPT with do_layer_norm_before=false or layer_norm_elementwise_affine=false is not supported"
        )
    bias = c.bool("enable_bias", True)
    return {
        "family": "opt",
        "num_layers": c.layers("num_hidden_layers"),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": heads,
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": c.int("ffn_dim", "intermediate_size"),
        "gated_mlp": False,
        "activation": c.activation("activation_function", default="relu"),
        "norm": "layernorm",
        "position": "learned",
        "position_offset": 2,  # OPTLearnedPositionalEmbedding keeps 2 extra rows
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("max_position_embeddings"),
        "tie_embeddings": c.bool("tie_word_embeddings", True),
        "qkv_bias": bias,
        "out_bias": bias,
        "mlp_bias": bias,
    }


def _gpt2(c: _Cfg, family: str = "gpt2") -> dict[str, Any]:
    """GPT-2 layout (also GPT-3): learned positions, biases everywhere, tied lm_head."""
    hidden = c.int("n_embd", "hidden_size")
    heads = c.int("n_head", "num_attention_heads")
    return {
        "family": family,
        "num_layers": c.layers("n_layer", "num_hidden_layers"),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": heads,
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": c.int("n_inner", "intermediate_size", default=4 * hidden),
        "gated_mlp": False,
        "activation": c.activation("activation_function", default="gelu_new"),
        "norm": "layernorm",
        "position": "learned",
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("n_positions", "max_position_embeddings"),
        "tie_embeddings": c.bool("tie_word_embeddings", True),
        "qkv_bias": True,
        "out_bias": True,
        "mlp_bias": True,
    }


def _gpt3(c: _Cfg) -> dict[str, Any]:
    return _gpt2(c, "gpt3")


def _jais(c: _Cfg) -> dict[str, Any]:
    """JAIS (remote-code ``JAISLMHeadModel``; vLLM's ``jais.py``): GPT-2's block (LayerNorms with bias, c_attn and
    c_proj with biases, MHA) whose MLP is SwiGLU (c_fc, c_fc2, c_proj, all with biases) when
    ``activation_function`` is "swiglu"; ALiBi or a learned position table (``position_embedding_type``, default
    learned); lm_head tied by default; the logits multiplied by ``width_scale`` or ``mup_output_alpha`` x
    ``mup_width_scale`` (the logit_scale op). The muP multiply of the input embeddings
    (``mup_embeddings_scale``) is not priced, as Gemma's embedding scale is not."""
    swiglu = str(c.get("activation_function", default="gelu_new")).lower() == "swiglu"
    position = c.get("position_embedding_type", default="learned")
    if position not in ("learned", "alibi"):
        raise TapeoutError(f"{c.origin}: 'position_embedding_type' {position!r}; allowed: learned, alibi")
    scale = c.float("width_scale") or c.float("mup_output_alpha", 1.0) * c.float("mup_width_scale", 1.0)
    # "swiglu" is c_fc(x) * silu(c_fc2(x)): GPT-2's MLP, gated, with SiLU
    layout = _Cfg({**c.cfg, "activation_function": "silu"}, c.model_type, c.origin) if swiglu else c
    d = _gpt2(layout, "jais")
    d.update(gated_mlp=swiglu, position=position, logit_scale=None if scale == 1.0 else scale)
    return d


def _gptj(c: _Cfg) -> dict[str, Any]:
    hidden = c.int("n_embd")
    heads = c.int("n_head")
    return {
        "family": "gptj",
        "num_layers": c.layers("n_layer"),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": heads,
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": c.int("n_inner", default=4 * hidden),
        "gated_mlp": False,
        "activation": c.activation("activation_function", default="gelu_new"),
        "norm": "layernorm",
        "position": "rope",  # rotary over rotary_dim of each head
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("n_positions"),
        "tie_embeddings": c.bool("tie_word_embeddings", False),
        "parallel_block": True,
        "norms_per_layer": 1,  # ln_1 feeds both attention and MLP
        "qkv_bias": False,
        "out_bias": False,
        "mlp_bias": True,
        "lm_head_bias": True,
    }


def _gpt_neox(c: _Cfg) -> dict[str, Any]:
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    bias = c.bool("attention_bias", True)
    return {
        "family": "gpt_neox",
        "num_layers": c.layers("num_hidden_layers"),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": heads,
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": c.int("intermediate_size"),
        "gated_mlp": False,
        "activation": c.activation("hidden_act", default="gelu"),
        "norm": "layernorm",
        "position": "rope",
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("max_position_embeddings"),
        "tie_embeddings": c.bool("tie_word_embeddings", False),
        "parallel_block": c.bool("use_parallel_residual", True),
        "norms_per_layer": 2,  # input_layernorm and post_attention_layernorm, parallel or not
        "qkv_bias": bias,
        "out_bias": bias,
        "mlp_bias": True,
    }


def _falcon(c: _Cfg) -> dict[str, Any]:
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads", "n_head")
    # the original RefinedWeb (40B/180B) code is the new decoder architecture; RefinedWebModel (7B) is not
    new_arch = c.bool("new_decoder_architecture", c.model_type.lower() == "refinedweb")
    if new_arch:
        kv_heads = c.int("num_kv_heads", "n_head_kv", default=heads)
    else:
        kv_heads = 1 if c.bool("multi_query", True) else heads
    parallel = new_arch or c.bool("parallel_attn", True)
    if not parallel:
        norms = 2
    elif new_arch:
        norms = c.int("num_ln_in_parallel_attn", default=2)
    else:
        norms = 1
    bias = c.bool("bias", False)
    return {
        "family": "falcon",
        "num_layers": c.layers("num_hidden_layers", "n_layer"),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": c.int("ffn_hidden_size", default=4 * hidden),
        "gated_mlp": False,
        "activation": c.activation("activation", default="gelu"),
        "norm": "layernorm",
        "position": "alibi" if c.bool("alibi", False) else "rope",
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("max_position_embeddings", default=2048),
        "tie_embeddings": c.bool("tie_word_embeddings", True),
        "parallel_block": parallel,
        "norms_per_layer": norms,
        "qkv_bias": bias,
        "out_bias": bias,
        "mlp_bias": bias,
    }


def _required_sub(c: _Cfg, key: str) -> _Cfg:
    """A nested config the architecture cannot do without (DBRX's ``attn_config`` / ``ffn_config``)."""
    if c.cfg.get(key) is None:
        raise c._missing((key,))
    return c.sub(key)


def _dbrx(c: _Cfg) -> dict[str, Any]:
    """DBRX (HF ``DbrxForCausalLM``): one fused Wqkv whose output is clamped to +-``clip_qkv``, GQA with
    ``kv_n_heads``, LayerNorms without bias, every layer MoE (``moe_top_k`` of ``moe_num_experts`` GLU experts
    w1/v1/w2 and a router, none with a bias), untied lm_head. Absent keys of the nested configs take
    DbrxAttentionConfig's / DbrxFFNConfig's defaults."""
    attn, ffn = _required_sub(c, "attn_config"), _required_sub(c, "ffn_config")
    hidden, heads = c.int("d_model"), c.int("n_heads")
    act = ffn.cfg.get("ffn_act_fn") or {"name": "silu"}
    if not isinstance(act, Mapping):
        raise TapeoutError(f"{c.origin}: 'ffn_config.ffn_act_fn' must be a JSON object with a 'name', got {act!r}")
    experts = ffn.int("moe_num_experts", default=4)
    return {
        "family": "dbrx",
        "num_layers": c.layers("n_layers"),
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": attn.int("kv_n_heads", default=1),
        "head_dim": c.head_dim(hidden, heads),
        "intermediate_size": ffn.int("ffn_hidden_size", default=3584),
        "gated_mlp": True,
        "activation": _Cfg(act, c.model_type, f"{c.origin} ffn_config.ffn_act_fn").activation("name", default="silu"),
        "norm": "layernorm",
        "norm_bias": False,
        "position": "rope",
        "vocab_size": c.int("vocab_size"),
        "max_position_embeddings": c.int("max_seq_len"),
        "tie_embeddings": c.bool("tie_word_embeddings", False),
        "qkv_clip": attn.float("clip_qkv"),
        "moe": dict(num_experts=experts, top_k=ffn.int("moe_top_k", default=1),
                    expert_intermediate_size=ffn.int("ffn_hidden_size", default=3584)),
    }


def _cohere(c: _Cfg) -> dict[str, Any]:
    """Cohere (Command-R, HF ``CohereForCausalLM``): Llama's projections in a parallel block behind one
    LayerNorm without bias (``input_layernorm``), logits multiplied by ``logit_scale`` (CohereConfig's default
    0.0625), tied embeddings by default; ``use_qk_norm`` (Command R+) adds LayerNorms of one weight per head."""
    d = _llama_like(c, "cohere")
    bias = c.bool("attention_bias", False)
    qk_norm = c.bool("use_qk_norm", False)
    d.update(norm="layernorm", norm_bias=False, parallel_block=True, norms_per_layer=1, qkv_bias=bias,
             out_bias=bias, tie_embeddings=c.bool("tie_word_embeddings", True),
             logit_scale=c.float("logit_scale", 0.0625), qk_norm=qk_norm, qk_norm_per_head=qk_norm)
    return d


#: architectures whose distinctive parts the model spec has no field or op for, by HF model_type: what is missing
#: (a refusal names it rather than pricing a different model)
UNSUPPORTED_MODEL_TYPES: dict[str, str] = {
    "phi3small": "blocksparse attention (dense_attention_every_n_layers, blocksparse_*), the gegelu activation and "
                 "muP scaling have no op or field in the model spec",
}

_MAPPERS: dict[str, Callable[[_Cfg], dict[str, Any]]] = {
    "cohere": _cohere,
    "dbrx": _dbrx,
    "deepseek": _deepseek_v1,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "kimi_k2": _deepseek,
    "falcon": _falcon,
    "gemma": _gemma1,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3,
    "gpt_oss": _gpt_oss,
    "llama4": _llama4,
    "llama4_text": _llama4,
    "phi3": _phi3,
    "refinedweb": _falcon,
    "refinedwebmodel": _falcon,
    "gpt2": _gpt2,
    "gpt3": _gpt3,
    "gpt_neox": _gpt_neox,
    "gptj": _gptj,
    "internlm": _internlm,
    "internlm2": _internlm2,
    "jais": _jais,
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "opt": _opt,
    "qwen": _qwen,
    "qwen2": _qwen2,
    "qwen2_moe": _qwen2_moe,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
}

#: model_type values accepted by :func:`from_hf_config` (RefinedWeb* are Falcon's original names)
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(
    sorted({"RefinedWeb", "RefinedWebModel", *(k for k in _MAPPERS if not k.startswith("refinedweb"))})
)


def _hf_id(cfg: Mapping[str, Any]) -> str | None:
    """``_name_or_path`` when it looks like an ``org/repo`` hub id (not a local path)."""
    v = cfg.get("_name_or_path")
    if isinstance(v, str) and v.count("/") == 1 and not v.startswith((".", "/", "~")):
        return v
    return None


def from_hf_config(cfg: Mapping[str, Any], *, name: str | None = None, source: str = "") -> ModelSpec:
    """Build a ModelSpec from a parsed HF ``config.json`` dict (or a shared paper record)."""
    return _convert(cfg, name=name, source=source, origin=f"HF config {name!r}" if name else "HF config")


def _convert(cfg: Mapping[str, Any], *, name: str | None, source: str, origin: str) -> ModelSpec:
    if not isinstance(cfg, Mapping):
        raise TapeoutError(f"{origin} must be a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    if model_type is None:
        raise TapeoutError(
            f"{origin}: missing required key 'model_type'; supported architectures: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    mapper = _MAPPERS.get(str(model_type).lower())
    if str(model_type).lower() in UNSUPPORTED_MODEL_TYPES:
        raise TapeoutError(f"{origin}: model_type {model_type!r} is not supported: "
                           f"{UNSUPPORTED_MODEL_TYPES[str(model_type).lower()]}")
    if mapper is None:
        raise TapeoutError(
            f"{origin}: unsupported model_type {model_type!r}; supported architectures: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    fields = mapper(_Cfg(cfg, str(model_type), origin))
    fields["checkpoint"] = _checkpoint(_Cfg(cfg, str(model_type), origin))
    hf_id = _hf_id(cfg)
    fields["name"] = name or (hf_id.split("/")[-1] if hf_id else str(model_type))
    fields["hf_id"] = hf_id
    fields["source"] = source or str(cfg.get("_source") or (f"HF config.json {hf_id}" if hf_id else "HF config.json"))
    n_params = cfg.get("n_params")  # paper records carry the published count
    if isinstance(n_params, (int, float)) and not isinstance(n_params, bool):
        fields["published_params"] = float(n_params)
        fields["published_params_source"] = str(cfg.get("_source", "")) or None
    return build(ModelSpec, fields, origin=f"model from {origin}")


def load_hf_config(path: str | Path) -> ModelSpec:
    """Read an HF ``config.json`` (or a model directory holding one) into a ModelSpec."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    cfg = read_mapping(p)
    hf_id = _hf_id(cfg)
    if hf_id:
        name = hf_id.split("/")[-1]
    else:
        name = p.parent.name if p.stem == "config" and p.parent.name else p.stem
    source = str(cfg.get("_source") or f"HF config file {p}")
    return _convert(cfg, name=name or None, source=source, origin=f"HF config {p.name}")
