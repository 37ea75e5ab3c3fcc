"""GPTQ / AWQ ``quantization_config`` in a HF config.json: the weights default to the integer format with
group scales the checkpoint ships. The configs are hand-written in the producers' conventions:
GPTQ (AutoGPTQ / GPTQModel quantize_config.json, e.g. TheBloke/Llama-2-13B-chat-GPTQ: bits 4, group_size 128,
desc_act, sym true; LnL-AI/Yi-1.5-9B-4bit-gptq: sym false; group_size -1 = per channel) and AWQ
(transformers' AwqConfig as TheBloke's AWQ repos write it: quant_method awq, bits 4, group_size 128,
zero_point true, version gemm)."""

from __future__ import annotations

import pytest

import tapeout
from tapeout.errors import TapeoutError
from tapeout.models import from_hf_config

#: a Llama-2-7B-shaped config.json
LLAMA = dict(model_type="llama", hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
             num_hidden_layers=32, num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096,
             torch_dtype="float16")
GPTQ = dict(quant_method="gptq", bits=4, group_size=128, desc_act=False, sym=True, damp_percent=0.01,
            true_sequential=True)
AWQ = dict(quant_method="awq", bits=4, group_size=128, zero_point=True, version="gemm")


def _model(q: dict):
    return from_hf_config({**LLAMA, "quantization_config": q}, name="llama-quant")


@pytest.mark.parametrize("q, fmt", [
    (GPTQ, "int4_g128"),  # symmetric: scales only
    ({**GPTQ, "sym": False}, "int4_g128z"),
    ({**GPTQ, "group_size": -1}, "int4"),  # per output channel
    ({**GPTQ, "bits": 8, "group_size": 32}, "int8_g32"),
    ({**GPTQ, "bits": 3, "desc_act": True}, "int3_g128"),
    (AWQ, "int4_g128z"),
    ({**AWQ, "group_size": 64}, "int4_g64z"),
    ({**AWQ, "zero_point": False}, "int4_g128"),
])
def test_gptq_and_awq_configs_give_the_shipped_weight_format(q, fmt):
    ck = _model(q).checkpoint
    assert ck.weights == fmt and ck.match == "*" and ck.activations is None
    assert q["quant_method"] in ck.source


def test_a_prediction_uses_the_shipped_int4_weights():
    m = _model(AWQ)
    p = tapeout.predict(m, "a100-sxm-80gb", batch=1, input_len=128, output_len=8, tier="roofline")
    assert p.to_dict()["inputs"]["checkpoint_format"]["weights"] == "int4_g128z"
    assert p.scenario.weights.name == "int4_g128z"
    fp16 = tapeout.predict(m, "a100-sxm-80gb", weights="fp16", batch=1, input_len=128, output_len=8, tier="roofline")
    # 6.5B linear weights: 4 bits + an fp16 scale and an fp16 zero per 128 = 4.25 bits, against 16
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    assert fp16.memory.weights_bytes - p.memory.weights_bytes == pytest.approx(linear * (2 - 4.25 / 8), rel=1e-6)
    assert p.tpot_s < 0.6 * fp16.tpot_s  # batch-1 decode streams the (4x smaller) weights


@pytest.mark.parametrize("q, field", [
    ({**AWQ, "bits": 3}, "bits"),  # AWQ ships 4-bit only
    ({**GPTQ, "bits": 5}, "bits"),
    ({**GPTQ, "bits": True}, "bits"),
    ({**GPTQ, "bits": None}, "bits"),
    ({**GPTQ, "group_size": 0}, "group_size"),
    ({**GPTQ, "group_size": "128"}, "group_size"),
    ({**GPTQ, "sym": "true"}, "sym"),
    ({**AWQ, "zero_point": 1}, "zero_point"),
    ({**GPTQ, "lm_head": True}, "lm_head"),
])
def test_unsupported_settings_are_one_line_errors(q, field):
    with pytest.raises(TapeoutError, match=rf"quantization_config\.{field}") as e:
        _model(q)
    assert "\n" not in str(e.value) and "allowed" in str(e.value)
