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
from tapeout.models.spec import ModelSpec
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
    layers = c.int("num_hidden_layers")
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


def _mistral(c: _Cfg) -> dict[str, Any]:
    return _llama_like(c, "mistral")


def _internlm(c: _Cfg) -> dict[str, Any]:
    d = _llama_like(c, "internlm")
    # InternLM (v1) modelling is MHA only: k/v projections use num_attention_heads.
    d["num_kv_heads"] = d["num_heads"]
    bias = c.bool("bias", True)  # q, k, v and o_proj; the MLP has none
    d.update(qkv_bias=bias, out_bias=bias)
    return d


def _qwen2(c: _Cfg, family: str = "qwen2") -> dict[str, Any]:
    d = _llama_like(c, family)
    d.update(qkv_bias=True, out_bias=False)  # Qwen2: q/k/v carry a bias, o_proj does not
    return d


def _qwen3(c: _Cfg, family: str = "qwen3") -> dict[str, Any]:
    d = _llama_like(c, family)
    # Qwen3Config defaults head_dim to 128 (not hidden/heads)
    d["head_dim"] = c.head_dim(d["hidden_size"], d["num_heads"], default=128)
    bias = c.bool("attention_bias", False)
    d.update(qkv_bias=bias, out_bias=bias, qk_norm=True)
    return d


def _dense_layers(c: _Cfg, layers: int) -> tuple[int, ...]:
    """Layers that keep a dense MLP: mlp_only_layers, decoder_sparse_step, first_k_dense_replace."""
    step = c.int("decoder_sparse_step", default=1)
    only = c.get("mlp_only_layers", default=[])
    if not isinstance(only, list) or not all(isinstance(i, int) for i in only):
        raise TapeoutError(f"{c.origin}: 'mlp_only_layers' must be a list of layer indices, got {only!r}")
    first_k = c.get("first_k_dense_replace", default=0)
    if isinstance(first_k, bool) or not isinstance(first_k, int):
        raise TapeoutError(f"{c.origin}: 'first_k_dense_replace' must be an integer, got {first_k!r}")
    dense = {i for i in range(layers) if i in only or (i + 1) % step or i < first_k}
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
        "num_layers": c.int("num_hidden_layers"),
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
        "num_layers": c.int("n_layer", "num_hidden_layers"),
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


def _gptj(c: _Cfg) -> dict[str, Any]:
    hidden = c.int("n_embd")
    heads = c.int("n_head")
    return {
        "family": "gptj",
        "num_layers": c.int("n_layer"),
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
        "num_layers": c.int("num_hidden_layers"),
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
        "num_layers": c.int("num_hidden_layers", "n_layer"),
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


_MAPPERS: dict[str, Callable[[_Cfg], dict[str, Any]]] = {
    "falcon": _falcon,
    "refinedweb": _falcon,
    "refinedwebmodel": _falcon,
    "gpt2": _gpt2,
    "gpt3": _gpt3,
    "gpt_neox": _gpt_neox,
    "gptj": _gptj,
    "internlm": _internlm,
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "opt": _opt,
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
    if mapper is None:
        raise TapeoutError(
            f"{origin}: unsupported model_type {model_type!r}; supported architectures: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    fields = mapper(_Cfg(cfg, str(model_type), origin))
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
