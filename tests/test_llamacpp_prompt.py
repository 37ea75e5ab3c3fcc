"""llama.cpp prompt processing (llama-bench ``pp N``): the long-prompt slowdown the measurements show.

llama-bench's defaults run without FlashAttention (``-fa 0``): a prompt's attention materializes its score
matrix, so the rate falls with the prompt length (measured pp8192 / pp512: 0.55-0.63 on the F16 rows).
A fused-attention model predicts an almost flat rate (0.92-0.97 before the validation source said so).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tapeout.hardware.catalog import load_hardware
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.sources.llamacpp import LLAMA_BENCH_PROMPT_ATTENTION, llamacpp_selection


@pytest.fixture(scope="module")
def f16_prompt_rates(shared_data: Path):
    """{(device, model, N): (measured s/token, predicted s/token)} of the single-GPU F16 prompt rows."""
    cases, _ = llamacpp_selection(shared_data)
    out = {}
    for c in cases:
        if c.op_class != "pp/f16":
            continue
        sc = dict(c.scenario)
        point = e2e_predict(load_hardware(c.device), c.scenario, "tiled")
        out[(c.device, sc["model"], sc["input_len"])] = (c.measured_s, point.seconds(c.quantity, sc, 1))
    return out


def test_prompt_rows_run_llama_bench_attention(shared_data):
    cases, _ = llamacpp_selection(shared_data)
    prompt = [dict(c.scenario) for c in cases if c.op_class.startswith("pp/")]
    generation = [dict(c.scenario) for c in cases if c.op_class.startswith("tg/")]
    assert prompt and generation
    assert {s["attention"] for s in prompt} == {LLAMA_BENCH_PROMPT_ATTENTION} == {"naive"}
    assert all("attention" not in s for s in generation)  # decode keeps the default (fused) attention


def test_long_prompt_slowdown_follows_the_measurements(f16_prompt_rates):
    pairs = [(k[:2], f16_prompt_rates[k], f16_prompt_rates[(*k[:2], 512)])
             for k in f16_prompt_rates if k[2] == 8192 and (*k[:2], 512) in f16_prompt_rates]
    assert len(pairs) >= 4  # A100 PCIe, A40, A6000, H100 PCIe, RTX 3090/4090 (L40S's 512 row is graded out)
    for key, (meas_long, pred_long), (meas_short, pred_short) in pairs:
        measured = meas_short / meas_long  # rate at 8192 over rate at 512
        predicted = pred_short / pred_long
        assert measured < 0.7, key  # the fact the model must follow
        assert predicted == pytest.approx(measured, rel=0.2), key
