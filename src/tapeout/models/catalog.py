"""The built-in model catalog (``models/catalog/*.toml``) and name/file resolution."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from tapeout.errors import TapeoutError, UnknownNameError
from tapeout.models.spec import ModelSpec
from tapeout.specio import build, load_catalog, read_mapping

CATALOG_DIR = Path(__file__).with_name("catalog")
#: released checkpoints that share a catalog entry's architecture but ship something else (a quantized weight
#: format, a longer max_position_embeddings): ``base`` names the entry, the other keys replace its fields
VARIANTS_DIR = CATALOG_DIR / "variants"

#: extra ids (case-insensitive) for catalog entries: pre-rename HF repo ids (Llama-3.1 was
#: "Meta-Llama-3.1-*"), the shared reference-data ids of the two paper-only models, and releases whose
#: config.json equals an entry's in every architecture field (each with the copy that shows it)
_ALIASES: dict[str, str] = {
    "meta-llama/Meta-Llama-3.1-8B": "llama-3.1-8b",
    "meta-llama/Meta-Llama-3.1-70B": "llama-3.1-70b",
    "meta-llama/Meta-Llama-3.1-405B": "llama-3.1-405b",
    "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8": "llama-3.1-405b-instruct-fp8",
    "facebook/opt-175b": "opt-175b",
    "openai/gpt-3-175b": "gpt-3-175b",
    # Llama-3.3-70B-Instruct: 80 layers, hidden 8192, 64 / 8 heads, head_dim 128, intermediate 28672, vocab
    # 128256, max_position_embeddings 131072, untied, no biases = llama-3.1-70b (copy of its config.json:
    # github:NetX-lab/Frontier data/config/models/llama3.3-70b.json @4f71d6852e761e24f24638a48b12e338925070ab)
    "meta-llama/Llama-3.3-70B-Instruct": "llama-3.1-70b",
    "meta-llama/Llama-3.3-70B": "llama-3.1-70b",
    # Llama-3.1-Nemotron-70B-Instruct-HF: the same fields (LlamaConfig printout: github:Retruth/deontic
    # nlp_models/nemotron/README.md @a77cf87a77779d63bd2acc1ef6d031e5cba833ff; LitGPT's transcription:
    # github:Lightning-AI/litgpt litgpt/config.py @0006c973aa7d6ace293e2a5fedaf1f8f804f960c)
    "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF": "llama-3.1-70b",
    # DeepSeek-R1-Distill-Llama-8B: Llama-3.1-8B's fields (LitGPT's transcription of its config.json:
    # github:Lightning-AI/litgpt litgpt/config.py R1-Distill-Llama-8B @0006c973aa7d6ace293e2a5fedaf1f8f804f960c:
    # block_size 131072, padded_vocab_size 128256, 32 layers, 32 / 8 heads, n_embd 4096 (the default), intermediate
    # 14336, no bias, rope_base 500000 with the llama3 adjustments); its safetensors total, 8,030,261,248, is exactly
    # llama-3.1-8b's count (HF model API record: github:daniel-p-green/alain-ai-learning-platform
    # out/research-deepseek-ai-deepseek-r1-distill-llama-8b/sources/huggingface/model.json
    # @522537bc54b2efa439c7755a8c5dedd6f8b001da)
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": "llama-3.1-8b",
    # DeepSeek-R1-Distill-Qwen-7B: Qwen2.5-7B's priced fields (rope_theta 10000 is not one): its GGUF metadata as
    # llama.cpp prints it (likelovewant/ollama-for-amd issue #54: general.name DeepSeek R1 Distill Qwen 7B,
    # block_count 28, context_length 131072, embedding_length 3584, feed_forward_length 18944, 28 / 4 heads) and
    # the loaded module tree with its Qwen2Config (github:VainF/Torch-Pruning examples/LLMs/readme.md, the stored
    # version the public-code index holds as file id 2750760194: Embedding(152064, 3584), 28 layers, q 3584 -> 3584
    # and k/v 3584 -> 512 with bias, gate/up 18944, a separate lm_head 3584 -> 152064; max_position_embeddings
    # 131072, tie_word_embeddings false, vocab_size 152064)
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": "qwen2.5-7b",
    # DeepSeek-R1-Distill-Llama-70B: Llama-3.3-70B-Instruct's fields, i.e. llama-3.1-70b's (LitGPT's transcription of
    # its config.json: github:Lightning-AI/litgpt litgpt/config.py R1-Distill-Llama-70B
    # @0006c973aa7d6ace293e2a5fedaf1f8f804f960c: block_size 131072, padded_vocab_size 128256, 80 layers, 64 / 8 heads,
    # n_embd 8192, intermediate 28672, no bias, rope_base 500000 with the llama3 adjustments); its GGUF as llama.cpp
    # loads it (open-webui/open-webui issue #9788: general.name DeepSeek R1 Distill Llama 70B, 724 tensors) and a GGUF
    # reading of the checkpoint (public-code index file id 69538494549: Arch llama, NLayers 80, CtxTrain 131072,
    # Params 70553706496) give llama-3.1-70b's count to the parameter
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": "llama-3.1-70b",
    # DeepSeek-R1-Distill-Qwen-14B: Qwen2.5-14B's priced fields (rope_theta 1e6 is not one): its GGUF metadata as
    # llama.cpp prints it (open-webui/open-webui issue #8919, also ollama/ollama issue #9245: general.name DeepSeek R1
    # Distill Qwen 14B, qwen2 block_count 48, context_length 131072, embedding_length 5120, feed_forward_length 13824,
    # 40 / 8 heads, 152064 tokens); the checkpoint's count, 14.77B (14770033664) for deepseek-r1:14b (ollama-tools
    # README, public-code index file id 147148655), is qwen2.5-14b's exactly (untied lm_head, q/k/v biases)
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": "qwen2.5-14b",
    # DeepSeek-R1-Distill-Qwen-32B: Qwen2.5-32B's priced fields: its GGUF as llama.cpp prints it
    # (abetlen/llama-cpp-python pull request #1901: general.name DeepSeek R1 Distill Qwen 32B, n_ff 27648, n_vocab
    # 152064, n_ctx_orig_yarn 131072, freq_base_train 1e6, model params 32.76 B) and the HF model API record of
    # deepseek-ai/DeepSeek-R1-Distill-Qwen-32B @711ad2ea6aa40cfca18895e8aca02ab92df1a746 (github:daniel-p-green/
    # alain-ai-learning-platform out/research-deepseek-ai-deepseek-r1-distill-qwen-32b/sources/huggingface/model.json
    # @522537bc54b2efa439c7755a8c5dedd6f8b001da: Qwen2ForCausalLM, safetensors BF16 total 32,763,876,352 =
    # qwen2.5-32b's count to the parameter, which only its 64 layers of 40 / 8 heads reach at that width)
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": "qwen2.5-32b",
    # DeepSeek-R1-0528: DeepSeek-R1's priced fields and its shipped format (61 layers, hidden 7168, MLA q_lora 1536 /
    # kv_lora 512 / rope 64 / nope 128 / v 128, 128 heads, 256 routed experts of 2048, 8 per token, 1 shared,
    # first_k_dense_replace 3, n_group 8 / topk_group 4, vocab 129280, 163840 positions, 1 MTP layer,
    # quantization_config fp8 e4m3 with 128 x 128 weight blocks and dynamic activations); copy of its config.json:
    # github:NetX-lab/Frontier data/config/models/deepseek-r1-0528.json @3d1cabdee3959a27be89a72945d48f13b861501e (one
    # key, moe_layers_enum, is not a DeepseekV3Config key: Frontier's own addition, the MoE layers 3-60 it lists agree)
    # InternLM2 chat releases: the base models' sizes (the chat tune sits inside the repo name, where the fine-tune
    # suffix rule does not reach); internlm2-chat-20b's own config.json as InternVL2-26B embeds it is catalog entry
    # internlm2-20b's source
    "internlm/internlm2-chat-7b": "internlm2-7b",
    "internlm/internlm2-chat-20b": "internlm2-20b",
    "deepseek-ai/DeepSeek-R1-0528": "deepseek-r1",
    # QwQ-32B: Qwen2.5-32B's priced fields: LitGPT's transcription of its config.json (github:Lightning-AI/litgpt
    # litgpt/config.py QwQ-32B @0006c973aa7d6ace293e2a5fedaf1f8f804f960c: block_size 131072, padded vocab 152064, 64
    # layers, 40 heads, 8 query groups, n_embd 5120, attn_bias, intermediate 27648) and its model card (public-code index
    # file id 522341811: 32.5B, 31.0B non-embedding, 64 layers, 40 / 8 heads, context 131,072 tokens: qwen2.5-32b's card
    # figures)
    "Qwen/QwQ-32B": "qwen2.5-32b",
    # TinyLlama-1.1B-Chat-v1.0: the base checkpoint's fields (LitGPT transcribes TinyLlama-1.1B-intermediate-step-1431k-3T
    # and TinyLlama-1.1B-Chat-v1.0 with one config: github:Lightning-AI/litgpt litgpt/config.py tiny-llama-1.1b
    # @0006c973aa7d6ace293e2a5fedaf1f8f804f960c; the chat config.json copy is catalog entry tinyllama-1.1b's source);
    # its "-v1.0" would otherwise be kept as a point release
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": "tinyllama-1.1b",
    # OLMo 2 13B's SFT and DPO stages: LitGPT transcribes the base, -SFT, -DPO and -Instruct releases with one config
    # (litgpt/config.py OLMo-2-1124-13B{} @0006c973aa7d6ace293e2a5fedaf1f8f804f960c)
    "allenai/OLMo-2-1124-13B-SFT": "olmo-2-13b",
    "allenai/OLMo-2-1124-13B-DPO": "olmo-2-13b",
    # common short spellings of entries: the name without the context-length tag of the release it has always meant
    # (Phi-3-mini-128k and Phi-3-medium-128k are other configs, not in the catalog) or without its size
    "phi-3-mini": "phi-3-mini-4k",
    "phi-3-medium": "phi-3-medium-4k",
    "mistral-nemo": "mistral-nemo-12b",
    # the short name of nvidia/Llama-3.1-Nemotron-70B-Instruct-HF, llama-3.1-70b's fields (cited above)
    "llama-3.1-nemotron-70b": "llama-3.1-70b",
}

#: architectures the model spec cannot express, by HF repo-name prefix (any org): the HF ``model_type`` whose
#: refusal :data:`tapeout.models.hf.UNSUPPORTED_MODEL_TYPES` words
_UNSUPPORTED_REPOS: dict[str, str] = {
    "phi-3-small-": "phi3small",  # microsoft/Phi-3-small-8k-instruct, -128k-instruct
}

_SPEC_FILE_SUFFIXES = (".toml", ".yaml", ".yml")


@functools.cache
def _catalog() -> dict[str, ModelSpec]:
    specs = load_catalog(CATALOG_DIR, ModelSpec, "model")
    variants = load_catalog(VARIANTS_DIR, ModelSpec, "model variant",
                            prepare=lambda data, stem: _variant(data, stem, specs))
    clash = sorted(set(specs) & set(variants))
    if clash:
        raise RuntimeError(f"built-in model variants {clash} reuse catalog names")
    return dict(sorted((specs | variants).items()))


def _variant(data: dict[str, Any], stem: str, specs: dict[str, ModelSpec]) -> dict[str, Any]:
    """A variant file's fields over its ``base`` entry's; its source line leads, the base's follows."""
    base = specs.get(str(data.get("base")))
    if base is None or "source" not in data or "hf_id" not in data:
        raise RuntimeError(f"built-in model variant {stem}.toml needs an hf_id, a source and a base among the "
                           f"catalog entries, got base {data.get('base')!r}")
    fields = {k: v for k, v in data.items() if k != "base"}
    fields["source"] = f"{data['source']}; architecture as catalog entry {base.name} ({base.source})"
    return base.model_dump() | fields


@functools.cache
def _index() -> dict[str, str]:
    """lower-cased name, HF id, repo name or alias -> catalog name."""
    index: dict[str, str] = {}

    def add(key: str, target: str) -> None:
        for k in (key, key.rsplit("/", 1)[-1]):
            index.setdefault(k.lower(), target)

    for name, spec in _catalog().items():
        index[name.lower()] = name
    for name, spec in _catalog().items():
        if spec.hf_id:
            add(spec.hf_id, name)
    for alias, name in _ALIASES.items():
        add(alias, name)
    return index


#: suffixes of fine-tuned releases that keep the base model's architecture (same config sizes):
#: chat/instruct tunes and the HF "-hf" conversion tag
_TUNE_SUFFIX = re.compile(r"(-(hf|chat|instruct|it|base))+$")
#: Mistral/Mixtral point releases (v0.1, v0.2, v0.3): kept, since they differ (v0.2 drops the sliding window,
#: v0.3 grows the vocabulary to 32768)
_VERSION_SUFFIX = re.compile(r"-v\d+(\.\d+)?$")


def base_model_key(name: str) -> str:
    """Index key of a fine-tuned variant's base model: "meta-llama/Llama-2-70b-chat-hf" -> "llama-2-70b",
    "mistralai/Mistral-7B-Instruct-v0.3" -> "mistral-7b-v0.3".

    Fine-tunes (chat, instruct, it) share their base model's architecture, so they resolve to it; a point
    release keeps its version (the base of Mistral-7B-Instruct-v0.2 is Mistral-7B-v0.2, not v0.1).
    """
    key = name.strip().lower().rsplit("/", 1)[-1].replace("_", "-")
    version = _VERSION_SUFFIX.search(key)
    key = _VERSION_SUFFIX.sub("", key)
    key = _TUNE_SUFFIX.sub("", key)
    version = version or _VERSION_SUFFIX.search(key)
    key = _VERSION_SUFFIX.sub("", key)
    key = re.sub(r"^meta-(?=llama)", "", key)
    return re.sub(r"^llama(\d)", r"llama-\1", key) + (version.group(0) if version else "")


def model_names() -> list[str]:
    """Catalog model names, sorted."""
    return list(_catalog())


def list_models() -> list[ModelSpec]:
    """Every catalog model, sorted by name."""
    return list(_catalog().values())


def find_model(name: str) -> ModelSpec | None:
    """The catalog model ``name`` names (case-insensitive: its name, HF id or repo name, an alias, or a
    fine-tune of it, :func:`base_model_key`), else None. Files are not read (:func:`load_model` reads them)."""
    key = name.strip()
    found = _index().get(key.lower()) or _index().get(base_model_key(key))
    return None if found is None else _catalog()[found]


def _refuse_unsupported(name: str) -> None:
    """A one-line error for an HF id of an architecture the model spec cannot express (Phi-3-small), naming
    what it lacks, rather than "unknown model"."""
    from tapeout.models.hf import UNSUPPORTED_MODEL_TYPES

    repo = name.strip().lower().rsplit("/", 1)[-1]
    for prefix, model_type in _UNSUPPORTED_REPOS.items():
        if repo.startswith(prefix):
            raise TapeoutError(f"model {name.strip()!r} (HF model_type {model_type!r}) is not supported: "
                               f"{UNSUPPORTED_MODEL_TYPES[model_type]}", field="model")


def _load_file(path: Path) -> ModelSpec:
    from tapeout.models.hf import load_hf_config

    if path.is_dir() or path.suffix.lower() == ".json":
        return load_hf_config(path)
    if path.suffix.lower() in _SPEC_FILE_SUFFIXES:
        return build(ModelSpec, read_mapping(path), origin=f"model file {path.name}")
    raise TapeoutError(
        f"unsupported model file type {path.suffix!r}; allowed: .json (HF config), .toml, .yaml, .yml", field="model"
    )


def load_model(spec: str | Path | ModelSpec) -> ModelSpec:
    """A catalog name or HF id (case-insensitive), an HF config.json / model dir, or a ModelSpec file."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, Path):
        return _load_file(spec)
    if not isinstance(spec, str):
        raise TapeoutError(f"expected a model name, path or ModelSpec, got {type(spec).__name__}", field="model")
    key = spec.strip()
    if not key:
        raise TapeoutError("empty model name; give a catalog name (see tapeout models), a Hugging Face repo id or "
                           "the path of a config.json or model file", field="model")
    found = find_model(key)
    if found is not None:
        return found
    path = Path(key).expanduser()
    if path.exists() or path.suffix.lower() in (".json", *_SPEC_FILE_SUFFIXES):
        return _load_file(path)
    _refuse_unsupported(key)
    raise UnknownNameError("model", key, model_names(), field="model",
                           also="(a close name may be another architecture; a model outside the catalog is "
                                "read from the path of its config.json: the Hugging Face hub is not reached)")
