"""The typed frontier measurements (validate/published/frontier_published.csv): rows as published, their
setup as tapeout scenarios, and the per-GPU phase rates they are compared on."""

from __future__ import annotations

import pytest

import tapeout
from tapeout.errors import TapeoutError
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import load_cases
from tapeout.validate.sources.frontier import layer_rules, per_gpu


@pytest.fixture(scope="module")
def cases():
    return {c.op_class: c for c in load_cases(None, ["e2e-frontier-published"])}


def test_rows_are_the_published_figures_per_gpu(cases):
    # LMSYS, "Deploying DeepSeek with PD Disaggregation and Large-scale EP on 96 H100 GPUs": per node of 8
    assert set(cases) == {"decode/ep72", "prefill/ep32", "prefill/ep32/uniform", "decode/ep48/nvfp4"}
    assert cases["decode/ep72"].get("published") == pytest.approx(22_282 / 8)
    assert cases["prefill/ep32"].get("published") == pytest.approx(50_302 / 8)
    assert cases["prefill/ep32/uniform"].get("published") == pytest.approx(59_337 / 8)
    dec = dict(cases["decode/ep72"].scenario)
    # 9 nodes, EP72 with DP attention, 256 sequences per GPU, KV cache length 2,000
    assert (dec["tp"], dec["ep"], dec["batch"], dec["input_len"]) == (1, 72, 256, 2000)
    pre = dict(cases["prefill/ep32"].scenario)
    assert (pre["ep"], pre["batch"] * pre["input_len"]) == (32, 16_384)  # 16,384 tokens per device, 4K prompts
    assert all(c.device == "h100-sxm" for k, c in cases.items() if k != "decode/ep48/nvfp4")
    assert all(dict(c.scenario)["model"] == "deepseek-v3" for c in cases.values())


def test_gb200_row_is_part_two_low_precision_decode(cases):
    # LMSYS, "Deploying DeepSeek on GB200 NVL72 with PD and Large Scale EP (Part II)": 13,386 output tokens/s
    # per GPU at 2,000-token inputs with FP8 attention and NVFP4 MoE + output projection; decode on 48 ranks;
    # batch 1408 for 2k ISL (the KV cache roughly full)
    c = cases["decode/ep48/nvfp4"]
    assert c.device == "gb200" and c.get("published") == 13_386 and c.get("nodes") * 4 == 48
    sc = dict(c.scenario)
    assert (sc["tp"], sc["ep"], sc["batch"], sc["input_len"], sc["kv_cache"]) == (1, 48, 1408, 2000, "fp8")
    assert {dict(r)["match"]: (dict(r)["weights"], dict(r)["activations"]) for r in sc["layers"]} == {
        "experts": ("nvfp4", "nvfp4"), "out_proj": ("nvfp4", "nvfp4")}
    assert "2025-09-25-gb200-part-2" in c.get("source")


def test_layer_rules_reach_the_prediction(cases):
    """The per-layer formats are priced: the NVFP4 experts and o_proj make the step faster and the weights
    smaller than the same scenario as shipped (fp8 blocks)."""
    c = cases["decode/ep48/nvfp4"]
    hw = tapeout.load_hardware("gb200")
    shipped = tuple((k, v) for k, v in c.scenario if k != "layers")
    fp4, fp8 = e2e_predict(hw, c.scenario, "roofline"), e2e_predict(hw, shipped, "roofline")
    assert fp4.tpot_s < fp8.tpot_s and fp4.memory_total_gb < fp8.memory_total_gb and fp4.fits


def test_row_units_and_layers_are_checked():
    assert per_gpu({"unit": "output tokens/s per node", "value": "800", "gpus_per_node": "8"}) == 100
    assert per_gpu({"unit": "output tokens/s per GPU", "value": "800", "gpus_per_node": "4"}) == 800
    with pytest.raises(TapeoutError, match="unit"):
        per_gpu({"unit": "tokens/s per rack", "value": "1", "gpus_per_node": "4"})
    assert layer_rules("") == ()
    assert layer_rules(" experts: nvfp4 ") == ((("activations", "nvfp4"), ("match", "experts"), ("weights", "nvfp4")),)
    with pytest.raises(TapeoutError, match="layers"):
        layer_rules("experts nvfp4")


def test_phase_rates_are_per_gpu(cases):
    dec = cases["decode/ep72"]
    sc = dict(dec.scenario)
    p = tapeout.predict(sc.pop("model"), "h100-sxm", tier="roofline", **sc)
    point = e2e_predict(tapeout.load_hardware("h100-sxm"), dec.scenario, "roofline")
    # every data-parallel device emits its 256 sequences' tokens per decode step
    assert 1 / point.seconds(dec.quantity, dict(dec.scenario), 72) == pytest.approx(256 / p.tpot_s)
    # ... and 72 groups of them: the whole deployment's rate is 72x one GPU's
    assert p.throughput_tok_s == pytest.approx(72 * 256 * 2 / (p.ttft_s + p.tpot_s))
    pre = cases["prefill/ep32"]
    q = e2e_predict(tapeout.load_hardware("h100-sxm"), pre.scenario, "roofline")
    assert 1 / q.seconds(pre.quantity, dict(pre.scenario), 32) == pytest.approx(16_384 / q.ttft_s)
