"""The typed prefill measurements (validate/published/prefill_published.csv): rows as published, their setup
as tapeout scenarios, and that fitting never reads them."""

from __future__ import annotations

import pytest

from tapeout.fit.frameworks import fit_datasets
from tapeout.validate.registry import datasets, load_cases, source_of


@pytest.fixture(scope="module")
def all_cases():
    return load_cases(None, ["e2e-prefill-published"])


@pytest.fixture(scope="module")
def cases(all_cases):
    """The MInference table's rows by prompt length."""
    return {dict(c.scenario)["input_len"]: c for c in all_cases if "commit 010b7080" in c.get("source")}


def test_rows_are_minferences_flashattention2_column(cases):
    # microsoft/MInference experiments/README.md, End-to-End Benchmark, column FlashAttention-2 (seconds):
    # 10K 0.97590, 50K 8.52933, 100K 24.88319, 200K 79.39184, 300K 169.62441, 500K 456.78353
    published = {10_000: 0.97590, 50_000: 8.52933, 100_000: 24.88319, 200_000: 79.39184, 300_000: 169.62441,
                 500_000: 456.78353}
    assert {n: c.measured_s for n, c in cases.items()} == pytest.approx(published, rel=1e-12)
    assert all(c.quantity == "ttft_s" and c.get("published") == pytest.approx(1 / published[n])
               for n, c in cases.items())


def test_issue_84_reruns_of_the_same_script(all_cases):
    # microsoft/MInference issue #84, comment of 2024-11-25: '--attn_type hf --context_window 50_000' -> 9.6 s,
    # '--attn_type minference_with_dense --context_window 300_000' -> 142 s
    reruns = {dict(c.scenario)["input_len"]: c.measured_s for c in all_cases if "issues/84" in c.get("source")}
    assert reruns == pytest.approx({50_000: 9.6, 300_000: 142.0}, rel=1e-12)
    assert len(all_cases) == 8


def test_scenarios_are_one_bf16_forward_over_the_whole_prompt(all_cases):
    for c in all_cases:
        sc = dict(c.scenario)
        # model(input_ids, use_cache=False): one pass, no token budget, batch 1, FlashAttention-2, bf16
        assert (sc["model"], sc["batch"], sc["tp"], sc["output_len"]) == ("llama-3-8b", 1, 1, 1)
        assert sc["max_prefill_tokens"] is None and sc["attention"] == "flash"
        assert sc["weights"] == sc["activations"] == sc["kv_cache"] == "bf16"
        assert c.device == "a100-sxm-80gb" and c.op_class == "bf16/ttft"
        assert "microsoft/MInference" in c.get("source") and "benchmark_e2e.py" in c.get("engine")


def test_the_source_is_shipped_end_to_end_and_check_only():
    ds = datasets()["e2e-prefill-published"]
    assert ds.shipped and ds.kind == "end-to-end" and not ds.calibration
    assert source_of("e2e-prefill-published") == "prefill"
    assert "e2e-prefill-published" not in fit_datasets()  # tapeout fit never reads it
