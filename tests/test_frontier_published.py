"""The typed frontier measurements (validate/published/frontier_published.csv): rows as published, their
setup as tapeout scenarios, and the per-GPU phase rates they are compared on."""

from __future__ import annotations

import pytest

import tapeout
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import load_cases


@pytest.fixture(scope="module")
def cases():
    return {c.op_class: c for c in load_cases(None, ["e2e-frontier-published"])}


def test_rows_are_the_published_figures_per_gpu(cases):
    # LMSYS, "Deploying DeepSeek with PD Disaggregation and Large-scale EP on 96 H100 GPUs": per node of 8
    assert set(cases) == {"decode/ep72", "prefill/ep32", "prefill/ep32/uniform"}
    assert cases["decode/ep72"].get("published") == pytest.approx(22_282 / 8)
    assert cases["prefill/ep32"].get("published") == pytest.approx(50_302 / 8)
    assert cases["prefill/ep32/uniform"].get("published") == pytest.approx(59_337 / 8)
    dec = dict(cases["decode/ep72"].scenario)
    # 9 nodes, EP72 with DP attention, 256 sequences per GPU, KV cache length 2,000
    assert (dec["tp"], dec["ep"], dec["batch"], dec["input_len"]) == (1, 72, 256, 2000)
    pre = dict(cases["prefill/ep32"].scenario)
    assert (pre["ep"], pre["batch"] * pre["input_len"]) == (32, 16_384)  # 16,384 tokens per device, 4K prompts
    assert all(c.device == "h100-sxm" and dict(c.scenario)["model"] == "deepseek-v3" for c in cases.values())


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
