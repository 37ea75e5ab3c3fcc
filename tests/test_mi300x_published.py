"""The typed MI300X measurements (validate/published/mi300x_published.csv): rows as published, their setup as
tapeout scenarios, the rates they are compared on, and that nothing is fitted on them."""

from __future__ import annotations

import pytest

import tapeout
from tapeout.errors import TapeoutError
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.sources.mi300x import published_rate


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, ["e2e-mi300x-published"])


def _one(cases, model, metric, input_len, engine=None, device="mi300x"):
    hits = [c for c in cases if dict(c.scenario)["model"] == model and c.op_class.endswith("/" + metric)
            and dict(c.scenario)["input_len"] == input_len and (engine is None or c.op_class.startswith(engine))
            and c.device == device]
    assert len(hits) == 1, [c.op_class for c in hits]
    return hits[0]


def test_rows_are_the_published_figures(cases):
    assert len(cases) == 18 and all(dict(c.scenario)["tp"] == 8 for c in cases)
    assert sum(c.device == "mi300x" for c in cases) == 12
    # SGLang cookbook, DeepSeek-V3.1 on 8x MI300X, concurrency 1: median TPOT 23.90 / 24.51 / 25.05 ms
    chat = [c for c in cases if c.op_class == "sglang/tpot" and dict(c.scenario)["model"] == "deepseek-v3"]
    assert sorted(round(1000 / c.get("published"), 2) for c in chat) == [23.90, 24.51, 25.05]
    sc = dict(_one(cases, "deepseek-v3", "tpot", 4194).scenario)
    # 41,941 prompt and 4,220 generated tokens over 10 requests, one at a time
    assert (sc["batch"], sc["input_len"], sc["output_len"], sc["kv_cache"]) == (1, 4194, 422, "bf16")
    assert "weights" not in sc  # fp8 blocks, as the checkpoint ships
    assert 1 / _one(cases, "deepseek-v3", "ttft", 610).get("published") == pytest.approx(0.15667)
    assert 1000 / _one(cases, "kimi-k2", "tpot", 610).get("published") == pytest.approx(40.45)
    assert 1 / _one(cases, "kimi-k2", "ttft", 610).get("published") == pytest.approx(0.15967)
    # dstack, Llama 3.1 405B BF16 with vLLM: one request of 128,000 prompt tokens, mean TPOT 98.17 ms
    big = _one(cases, "llama-3.1-405b", "tpot", 128_000)
    assert 1000 / big.get("published") == pytest.approx(98.17) and dict(big.scenario)["weights"] == "bf16"
    assert dict(big.scenario)["output_len"] == 150


def test_nvidia_controls_pair_with_mi300x_rows(cases):
    # every control repeats an MI300X row's engine, metric, batch and lengths on another device
    controls = [c for c in cases if c.device != "mi300x"]
    assert sorted({c.device for c in controls}) == ["b200", "h200"] and len(controls) == 6
    def setup(c):
        return c.op_class, dict(c.scenario)["batch"], dict(c.scenario)["input_len"]

    assert {setup(c) for c in controls} <= {setup(c) for c in cases if c.device == "mi300x"}
    # SGLang cookbook, DeepSeek-R1-0528 on 8x B200 (SGLang 0.5.6.post1, --tp 8), concurrency 1: median TPOT
    # 9.15 / 9.20 / 9.27 ms over 6,101 prompt and 4,210 generated tokens (Chat), mean TTFT 125.76 ms (Reasoning)
    b200 = [c for c in controls if c.op_class == "sglang/tpot"]
    assert sorted(round(1000 / c.get("published"), 2) for c in b200) == [9.15, 9.20, 9.27]
    sc = dict(_one(cases, "deepseek-r1", "tpot", 4194, device="b200").scenario)
    assert (sc["batch"], sc["output_len"], sc["kv_cache"]) == (1, 421, "bf16") and "weights" not in sc
    assert 1 / _one(cases, "deepseek-r1", "ttft", 610, device="b200").get("published") == pytest.approx(0.12576)
    # dstack DeepSeek-R1 on 8x H200: 32 prompts of 3,200 + 800 tokens in 48.66 s (vLLM) and 75.98 s (SGLang)
    vllm = _one(cases, "deepseek-r1", "offline_tok_s", 3200, engine="vllm", device="h200")
    sgl = _one(cases, "deepseek-r1", "offline_tok_s", 3200, engine="sglang", device="h200")
    assert vllm.get("published") == pytest.approx(32 * 800 / 48.66099514 / 8)
    assert sgl.get("published") == pytest.approx(32 * 800 / 75.97939109 / 8)


def test_offline_rows_are_output_tokens_per_gpu(cases):
    # dstack DeepSeek-R1: 32 prompts of 3,200 + 800 tokens in 56.60 s (vLLM) and 70.53 s (SGLang) on 8 GPUs
    vllm = _one(cases, "deepseek-r1", "offline_tok_s", 3200, engine="vllm")
    sgl = _one(cases, "deepseek-r1", "offline_tok_s", 3200, engine="sglang")
    assert vllm.get("published") == pytest.approx(32 * 800 / 56.60333672 / 8)
    assert sgl.get("published") == pytest.approx(32 * 800 / 70.52596503 / 8)
    assert vllm.quantity == "gpu_s_per_token" and dict(vllm.scenario)["batch"] == 32
    point = e2e_predict(tapeout.load_hardware("mi300x"), vllm.scenario, "roofline")
    assert 1 / point.seconds(vllm.quantity, dict(vllm.scenario), 8) == pytest.approx(point.throughput_tok_s / 8)


def test_metrics_are_checked():
    row = {"metric": "offline_tok_s", "value": "1000", "input_len": "3", "output_len": "1", "tp": "2"}
    assert published_rate(row) == pytest.approx(125.0)
    assert published_rate({"metric": "tpot", "value": "20"}) == pytest.approx(50.0)
    with pytest.raises(TapeoutError, match="metric"):
        published_rate({"metric": "itl", "value": "20"})


def test_every_row_fits_and_is_a_check_only(cases):
    assert all(e2e_predict(tapeout.load_hardware(c.device), c.scenario, "roofline").fits for c in cases)
    ds = datasets()["e2e-mi300x-published"]
    assert ds.shipped and not ds.calibration and ds.source == "mi300x"
    from tapeout.fit.cv import parameters

    assert all("mi300x" not in p.sources for p in parameters())
