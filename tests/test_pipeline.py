"""Pipeline parallelism: stages of contiguous layers, point-to-point sends, micro-batches, memory per stage."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.errors import TapeoutError
from tapeout.models.catalog import load_model
from tapeout.workload.build import build_graph
from tapeout.workload.ops import OpKind
from tapeout.workload.scenario import Scenario

M70, M7, A100 = "llama-2-70b", "llama-2-7b", "a100-sxm-80gb"


@given(layers=st.integers(1, 128), pp=st.integers(1, 16))
@settings(max_examples=200, deadline=None)
def test_stages_cover_every_layer_once_in_order(layers, pp):
    if pp > layers:
        return
    stages = Scenario(pp=pp).stage_layers(layers)
    flat = [i for r in stages for i in r]
    assert flat == list(range(layers)) and len(stages) == pp
    sizes = [len(r) for r in stages]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_stage_graphs_split_the_model():
    m = load_model(M70)
    sc = Scenario(pp=3, batch=2, input_len=16, output_len=4)
    graphs = [build_graph(m, sc, "decode", 17, stage=s) for s in range(3)]
    names = [{o.name for o in g.ops} for g in graphs]
    assert "embedding" in names[0] and "embedding" not in names[1] | names[2]
    assert "lm_head" in names[2] and "lm_head" not in names[0] | names[1]
    sends = [[o for o in g.ops if o.kind is OpKind.SEND] for g in graphs]
    assert [len(s) for s in sends] == [1, 1, 0]
    assert sends[0][0].message_bytes == 2 * m.hidden_size * 2  # the tokens' hidden states, fp16
    qkv = [next(o for o in g.ops if o.name == "qkv_proj") for g in graphs]
    assert [o.count for o in qkv] == [27, 27, 26]  # 80 layers
    whole = build_graph(m, Scenario(batch=2, input_len=16, output_len=4), "decode", 17)
    assert sum(o.count for o in qkv) == next(o for o in whole.ops if o.name == "qkv_proj").count


def test_one_batch_in_flight_costs_the_sum_of_the_stages():
    base = tapeout.predict(M7, A100, batch=4, input_len=128, output_len=16)
    pp = tapeout.predict(M7, A100, batch=4, input_len=128, output_len=16, pp=4)
    sends = sum(c.total_s for o, c in zip(pp.result.decode_representative.ops, pp.result.decode_representative.costs)
                if o.kind is OpKind.SEND)
    assert sends > 0
    # the same layers run one stage after the other: TPOT = one device's TPOT + the three sends (~ a few us)
    assert pp.tpot_s == pytest.approx(base.tpot_s + sends, rel=0.01)
    assert pp.throughput_tok_s < base.throughput_tok_s
    assert {o.name.split("/")[0] for o in pp.result.prefill.ops} == {"s0", "s1", "s2", "s3"}
    assert pp.to_dict()["inputs"]["pp"] == 4 and pp.to_dict()["inputs"]["pp_microbatches"] == 1


def test_a_full_pipeline_multiplies_throughput_by_about_the_stages():
    one = tapeout.predict(M70, A100, batch=8, input_len=256, output_len=64, pp=4)
    full = tapeout.predict(M70, A100, batch=8, input_len=256, output_len=64, pp=4, pp_microbatches=4)
    ratio = full.throughput_tok_s / one.throughput_tok_s
    assert 3.0 < ratio <= 4.0  # the stages are nearly balanced; embedding and lm_head unbalance them a little
    assert full.tpot_s >= one.tpot_s  # a request advances once per cycle of all batches in flight
    # the KV cache of a stage holds every batch in flight
    assert full.memory.kv_cache_bytes == pytest.approx(4 * one.memory.kv_cache_bytes)


def test_memory_is_the_fullest_stage_and_pipelining_makes_70b_fit():
    one = tapeout.predict(M70, A100, batch=1, input_len=512, output_len=16)
    assert not one.memory.fits
    pp2 = tapeout.predict(M70, A100, batch=1, input_len=512, output_len=16, pp=2)
    assert pp2.memory.fits
    assert pp2.memory.weights_bytes == pytest.approx(one.memory.weights_bytes / 2, rel=0.02)
    assert pp2.memory.kv_cache_bytes == pytest.approx(one.memory.kv_cache_bytes / 2)


def test_pipeline_errors_name_the_field():
    with pytest.raises(TapeoutError, match="pp"):
        tapeout.predict(M7, A100, pp=64)  # 32 layers
    with pytest.raises(TapeoutError, match="pp_microbatches"):
        tapeout.predict(M7, A100, pp_microbatches=2)


def test_cli_pipeline_options(tmp_path):
    import json

    from typer.testing import CliRunner

    from tapeout.cli import app

    r = CliRunner().invoke(app, ["predict", "--model", M7, "--hardware", A100, "--pp", "2",
                                 "--pp-microbatches", "2", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["inputs"]["pp"] == 2 and d["inputs"]["pp_microbatches"] == 2


def test_stages_are_balanced_by_weights():
    """Llama-3-70B's embedding table (and lm_head) weigh about 1.2 layers: the first and last of six stages
    take fewer layers than the middle ones, and no stage holds much more than its share."""
    from tapeout.workload.build import stage_ranges

    m = load_model("llama-3-70b")
    sizes = [len(r) for r in stage_ranges(m, Scenario(pp=6))]
    assert sum(sizes) == 80 and sizes[0] < sizes[2] and sizes[-1] < sizes[2]
    from tapeout.system.memory import weight_bytes

    w = [weight_bytes(m, Scenario(pp=6), s) for s in range(6)]
    assert max(w) / min(w) < 1.1
    p = tapeout.predict(m, "a100-sxm-80gb", pp=6, batch=1, input_len=16, output_len=2)
    assert p.memory.weights_bytes == pytest.approx(max(w), rel=0.01)


def test_json_reports_each_stage_time():
    p = tapeout.predict(M70, A100, batch=2, input_len=64, output_len=4, pp=3)
    d = p.to_dict()["phases"]
    assert len(d["prefill"]["stage_times_s"]) == 3
    assert sum(d["prefill"]["stage_times_s"]) == pytest.approx(d["prefill"]["time_s"])
    assert len(d["decode"]["stage_times_s"]) == 3
