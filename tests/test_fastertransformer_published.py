"""FasterTransformer's published GPT-175B latencies (validate/published/fastertransformer_published.csv): the rows as
printed in its docs/gpt_guide.md, their scenarios, the quantity they are compared with, and that they check the
fastertransformer host gap fitted on Flash-LLM's dense FasterTransformer rows."""

from __future__ import annotations

import pytest

from tapeout import predict
from tapeout.fit.cv import parameters
from tapeout.fit.frameworks import CHECK_SETS, _rows, fit_datasets, fit_groups
from tapeout.hardware.catalog import load_hardware
from tapeout.models.catalog import load_model
from tapeout.validate.cases import PUBLISHED_DIR, read_dicts
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import datasets, load_cases, source_of

DATASET = "e2e-fastertransformer-published"


@pytest.fixture(scope="module")
def rows():
    return read_dicts(PUBLISHED_DIR / "fastertransformer_published.csv")


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, [DATASET])


def _ms(rows, batch, input_len):
    (r,) = [r for r in rows if (r["batch"], r["input_len"]) == (str(batch), str(input_len))]
    return float(r["value"])


def test_rows_are_the_printed_gpt175b_table(rows):
    # NVIDIA/FasterTransformer docs/gpt_guide.md, "Performance of GPT-175B", FT Latency (ms): 8 rows of 128 + 8
    # tokens (batch 1-32), 5 of 512 + 32 (batch 1-16)
    assert len(rows) == 13 and all("07fdd2fc6aa46f961f304d5f3791efad016e38a3" in r["source"] for r in rows)
    assert [int(r["batch"]) for r in rows if r["input_len"] == "128"] == [1, 2, 4, 8, 12, 16, 20, 32]
    assert {r["output_len"] for r in rows if r["input_len"] == "128"} == {"8"}
    assert [int(r["batch"]) for r in rows if r["input_len"] == "512"] == [1, 2, 4, 8, 16]
    assert {r["output_len"] for r in rows if r["input_len"] == "512"} == {"32"}
    assert _ms(rows, 1, 128) == 488.86 and _ms(rows, 32, 128) == 1547.44
    assert _ms(rows, 1, 512) == 1719.96 and _ms(rows, 16, 512) == 3706.23
    assert {(r["device"], r["tp"], r["precision"], r["unit"], r["metric"]) for r in rows} == {
        ("a100-sxm-80gb", "8", "fp16", "ms", "e2e_latency")}
    assert all("NVSwitch" in r["hardware"] and "A100-80GB" in r["hardware"] for r in rows)


def test_cases_map_to_catalog_and_compare_the_whole_call(rows, cases):
    assert datasets()[DATASET].shipped and source_of(DATASET) == "fastertransformer"
    assert len(cases) == len(rows) == 13
    m = load_model("gpt-3-175b")  # the guide's GPT-175B: 96 layers, 96 heads of 128
    assert (m.num_layers, m.num_heads, m.head_dim) == (96, 96, 128)
    for c in cases:
        sc = dict(c.scenario)
        load_hardware(c.device)
        assert c.device == "a100-sxm-80gb" and c.quantity == "e2e_s" and c.op_class == "fp16/tp8"
        assert sc["model"] == "gpt-3-175b" and sc["tp"] == 8 and sc["framework"] == "fastertransformer"
        assert sc["weights"] == sc["activations"] == sc["kv_cache"] == "fp16" and sc["max_prefill_tokens"] is None
    (c,) = [c for c in cases if dict(c.scenario)["batch"] == 8 and dict(c.scenario)["input_len"] == 512]
    assert c.measured_s == pytest.approx(2629.97e-3, rel=1e-12) and c.get("published") == pytest.approx(1 / 2.62997)
    # compared with one generate call's latency: prefill + (output_len - 1) decode steps
    sc = dict(c.scenario)
    pt = e2e_predict(load_hardware(c.device), c.scenario, "roofline")
    p = predict("gpt-3-175b", "a100-sxm-80gb", batch=8, input_len=512, output_len=32, tp=8, weights="fp16",
                activations="fp16", kv_cache="fp16", max_prefill_tokens=None, framework="fastertransformer",
                tier="roofline")
    assert pt.seconds(c.quantity, sc, 8) == pytest.approx(p.e2e_latency_s, rel=1e-12)
    assert p.e2e_latency_s == pytest.approx(p.ttft_s + 31 * p.tpot_s, rel=1e-9)


def test_the_table_checks_the_fastertransformer_host_gap_and_refits_it_when_flashllm_is_held_out(shared_data):
    # the field is fitted on Flash-LLM's dense FasterTransformer rows alone; the table (FasterTransformer on Triton,
    # which also pays a cost per call) is its independent check
    (group,) = [g for g in fit_groups() if g[0].framework == "fastertransformer"]
    assert [s.dataset for s in group] == ["e2e-flashllm"] and {s.param for s in group} == {"host_overhead_us"}
    (check,) = [s for s in CHECK_SETS if s.dataset == DATASET]
    assert (check.framework, check.param) == ("fastertransformer", "host_overhead_us")
    assert DATASET in fit_datasets()
    loaded = load_cases(shared_data, ["e2e-flashllm", DATASET])
    flash, ft = _rows(loaded, group[0]), _rows(loaded, check)
    assert len(flash) == 10 and {c.op_class for c in flash} == {"fastertransformer"}
    assert len(ft) == 13 and {c.dataset for c in ft} == {DATASET}
    # a cross-validation fold that holds Flash-LLM out refits the field on the table ("fallback")
    (param,) = [p for p in parameters() if p.name == "fastertransformer.host_overhead_us"]
    assert [s.dataset for s in param.fallback_sets] == [DATASET]
