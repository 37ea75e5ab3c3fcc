"""llama.cpp prompt processing (llama-bench ``pp N``): the long-prompt slowdown the measurements show.

llama-bench's defaults run without FlashAttention (``-fa 0``): a prompt's attention materializes its score
matrix, so the rate falls with the prompt length (measured pp8192 / pp512: 0.55-0.63 on the F16 rows).
A fused-attention model predicts an almost flat rate (0.92-0.97 before the validation source said so).
The prompt runs as 512-token ubatches (``max_prefill_tokens``), each against the keys cached so far, and
ggml keeps activations and score matrices in fp32 with fp16 matmuls (the ``llamacpp`` profile's
``fp32_activations`` and ``matmul_accumulate``): before those, data-centre cards were predicted 1.3-2.2x
too fast, GeForce cards 1.1-1.3x too slow.
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


def test_quantized_prompt_rate_follows_the_measured_q4_to_f16_ratio(shared_data):
    """llama.cpp multiplies Q4_K_M weights above 32 rows by dequantizing each matrix to an fp16 copy and then
    calling cuBLAS: a 512-token prompt (one ubatch) runs at 0.75-0.91 of the F16 rate on the cards that have
    both rows. The fastest-kernel rule (a fused dequantize-in-registers kernel, or a dequantization pass priced
    as overlapping the GEMM) made Q4 0.91-0.95 of F16. Longer prompts dequantize again for every 512-token
    ubatch: the ratio holds at every prompt length (before the ubatches were priced, a 1024-token prompt was
    predicted at 0.85 of F16 where llama-bench measures ~0.77)."""
    cases, _ = llamacpp_selection(shared_data)
    rates = {}
    for c in cases:
        sc = dict(c.scenario)
        if c.op_class.startswith("pp/") and sc["model"] == "llama-3-8b":
            point = e2e_predict(load_hardware(c.device), c.scenario, "tiled")
            rates[(c.device, sc["input_len"], c.op_class)] = (1 / c.measured_s, 1 / point.seconds(c.quantity, sc, 1))
    # L40S's F16 rows are left out: its pp4096 (2,888 tokens/s) is slower than its pp8192 (3,312), unlike every
    # other card's, and its pp512 is graded out
    pairs = sorted({(d, n) for d, n, oc in rates
                    if d != "l40s" and (d, n, "pp/f16") in rates and (d, n, "pp/q4_k_m") in rates})
    assert len({d for d, _ in pairs}) >= 5  # A100 PCIe, A40, A6000, H100 PCIe, RTX 3090, RTX 4090
    assert {n for _, n in pairs} == {512, 1024, 4096, 8192}
    for d, n in pairs:
        (mq, pq), (mf, pf) = rates[(d, n, "pp/q4_k_m")], rates[(d, n, "pp/f16")]
        assert mq / mf < 0.95, (d, n)  # the measured fact: Q4 prompts are slower than F16 ones
        assert pq / pf == pytest.approx(mq / mf, rel=0.15), (d, n)


def test_prompt_rates_across_cards(shared_data):
    """Every single-GPU prompt row, measured against predicted: data-centre, workstation and GeForce cards
    alike within a factor the physics leaves (median |ln(pred/meas)| 0.12 over 82 rows; before ubatches, fp32
    activations and fp16 accumulation: 0.43, with data-centre cards 1.3-2.2x too fast)."""
    import math
    import statistics

    cases, _ = llamacpp_selection(shared_data)
    logs = {}
    for c in cases:
        if c.op_class.startswith("pp/"):
            sc = dict(c.scenario)
            point = e2e_predict(load_hardware(c.device), c.scenario, "tiled")
            logs[(c.device, sc["model"], c.op_class, sc["input_len"])] = math.log(
                point.seconds(c.quantity, sc, 1) / c.measured_s)
    assert len(logs) >= 80
    assert statistics.median(abs(v) for v in logs.values()) < 0.2
    assert abs(statistics.mean(logs.values())) < 0.15  # no card family carries the fit
    geforce = [v for k, v in logs.items() if k[0].startswith("rtx-")]
    datacentre = [v for k, v in logs.items() if k[0].startswith(("a100", "h100"))]
    assert geforce and datacentre
    assert all(abs(v) < math.log(1.35) for v in geforce)  # fp16 accumulation: 2x the fp32-accumulate rate
    assert all(abs(v) < math.log(1.5) for v in datacentre)
