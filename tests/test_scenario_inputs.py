"""The scenario defined once: ``PredictInputs`` is the source of ``predict``'s keywords, the CLI options, the
JSON ``inputs`` and ``simulate``'s scenario keywords; its validation is memoised without conflating inputs."""

from __future__ import annotations

import inspect
import json

import pytest

import tapeout
from tapeout.errors import TapeoutError
from tapeout.workload.scenario import PredictInputs, Scenario, ScenarioInputs

M, H = "llama-2-7b", "a100-sxm-80gb"
FAST = dict(input_len=64, output_len=4, tier="roofline")


def test_predict_keywords_are_the_inputs_fields_with_the_documented_defaults():
    params = inspect.signature(tapeout.predict).parameters
    assert list(params)[:2] == ["model", "hardware"]
    kw = {k: p.default for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert list(kw) == list(PredictInputs.model_fields)
    # the public defaults (README, docstring): a change here is an API change
    assert kw["batch"] == 1 and kw["input_len"] == 2048 and kw["output_len"] == 128
    assert kw["tp"] == kw["ep"] == kw["pp"] == kw["pp_microbatches"] == 1
    assert kw["weights"] is kw["activations"] is kw["kv_cache"] is kw["sparsity"] is kw["sparse_kernel"] is None
    assert (kw["attention"], kw["mla_attention"], kw["fuse_residual_norm"]) == ("flash", "auto", False)
    assert (kw["kv_fraction"], kw["framework"], kw["tier"], kw["compare_to"]) == (0.9, "kernels", None, None)


def test_cli_options_are_generated_from_the_fields():
    import typer.main

    from tapeout.cli import app

    cmd = typer.main.get_command(app).commands["predict"]
    opts = {p.name: p for p in cmd.params}
    for name, f in PredictInputs.model_fields.items():
        if name in ("efficiency", "kernel_constants"):  # mappings: Python only
            assert name not in opts
            continue
        o = opts[name]
        assert o.opts[0] == "--" + name.replace("_", "-")
        assert o.help == f.description and o.default == f.default
    assert opts["fuse_residual_norm"].secondary_opts == ["--no-fuse-residual-norm"]
    sim = {p.name: p for p in typer.main.get_command(app).commands["simulate"].params}
    assert {"tp", "ep", "pp", "weights", "mla_attention", "scenario", "framework", "tier"} <= set(sim)
    assert not {"batch", "max_prefill_tokens", "sparsity", "compare_to"} & set(sim) and "pp_microbatches" in sim
    assert sim["tp"].help == "tensor-parallel degree of each replica"


def test_json_inputs_are_the_resolved_scenario_fields_in_their_published_order():
    d = tapeout.predict(M, H, batch=2, weights="int8", framework="deepspeed", **FAST).to_dict()["inputs"]
    assert list(d) == ["model", "hardware", "batch", "input_len", "output_len", "tp", "ep", "dp_attention", "pp",
                       "pp_microbatches", "two_batch_overlap", "redundant_experts", "weights", "activations",
                       "kv_cache", "attention", "mla_attention", "fp8_attention",
                       "fuse_residual_norm", "kv_fraction", "max_prefill_tokens", "sparsity", "sparse_kernel", "layers", "tier",
                       "framework", "default_16bit", "checkpoint_format"]
    assert (d["batch"], d["weights"], d["framework"], d["tier"], d["sparse_kernel"]) == (2, "int8", "deepspeed",
                                                                                        "roofline", "auto")
    # every resolved field is reported (kernel_constants only when given)
    assert set(Scenario.model_fields) - {"kernel_constants"} <= set(d)
    json.dumps(d, allow_nan=False)


def test_unknown_keywords_are_a_type_error_naming_them():
    with pytest.raises(TypeError, match="'batchsize'"):
        tapeout.predict(M, H, batchsize=4)
    with pytest.raises(TypeError, match="'batch'"):
        tapeout.simulate(M, H, batch=4, num_requests=2)


def test_the_memo_does_not_conflate_equal_keys_of_another_type():
    assert tapeout.predict(M, H, batch=1, **FAST).scenario.batch == 1
    with pytest.raises(TapeoutError, match="batch"):
        tapeout.predict(M, H, batch=True, **FAST)
    with pytest.raises(TapeoutError, match="kv_fraction"):
        tapeout.predict(M, H, kv_fraction=True, **FAST)
    assert tapeout.predict(M, H, kv_fraction=1, **FAST).scenario.kv_fraction == 1.0


def test_a_scenario_file_is_read_again_on_every_call(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('weights = "int8"\n')
    assert tapeout.predict(M, H, scenario=f, **FAST).scenario.weights.name == "int8"
    f.write_text('weights = "int4"\n')
    assert tapeout.predict(M, H, scenario=f, **FAST).scenario.weights.name == "int4"


def test_errors_name_the_field_and_what_it_allows():
    with pytest.raises(TapeoutError, match="attention: Input should be 'flash', 'naive' or 'mmha'"):
        tapeout.predict(M, H, attention="paged", **FAST)
    with pytest.raises(TapeoutError, match="framework: unknown framework 'vllm2'; allowed: kernels"):
        tapeout.predict(M, H, framework="vllm2", **FAST)


def test_the_inputs_model_is_a_json_schema_request_body():
    schema = PredictInputs.model_json_schema()
    props = schema["properties"]
    assert set(props) == set(PredictInputs.model_fields)
    assert props["attention"]["enum"] == ["flash", "naive", "mmha"] and props["attention"]["default"] == "flash"
    assert props["batch"]["exclusiveMinimum"] == 0
    body = PredictInputs.model_validate_json('{"batch": 8, "weights": "fp8", "tp": 2}')
    assert tapeout.predict("llama-2-13b", H, **body.model_dump(exclude_unset=True), **FAST).scenario.tp == 2
    assert issubclass(Scenario, ScenarioInputs) and "framework" in ScenarioInputs.model_fields


def test_simulate_inputs_name_every_scenario_keyword_as_predict_resolves_it(tmp_path):
    """``SimResult.to_dict()["inputs"]`` reports each scenario keyword ``simulate`` takes (generated from
    ``PredictInputs``), resolved as ``predict`` reports it: a keyword added to the declaration appears there."""
    from tapeout.serving.sim import SCENARIO_EXCLUDE, SCENARIO_KEYS

    params = inspect.signature(tapeout.simulate).parameters
    assert set(SCENARIO_KEYS) <= set(params)  # input_len, output_len: simulate's own (traffic)
    assert set(SCENARIO_KEYS) == set(PredictInputs.model_fields) - set(SCENARIO_EXCLUDE)
    f = tmp_path / "s.toml"
    f.write_text('weights = "int8"\n[[layers]]\nmatch = "mlp"\nweights = "int4"\n')
    kw = dict(scenario=f, tp=2, mla_attention="naive", fuse_residual_norm=True, kv_fraction=0.8,
              framework="deepspeed", efficiency={"matmul_eta": 0.7}, tier="roofline")
    d = tapeout.simulate(M, H, num_requests=3, input_len=64, output_len=4, **kw).to_dict()["inputs"]
    assert set(SCENARIO_KEYS) <= set(d)
    p = tapeout.predict(M, H, input_len=64, output_len=4, **kw).to_dict()["inputs"]
    shared = (set(SCENARIO_KEYS) | {"layers"}) & set(p)
    assert {"weights", "kv_cache", "layers", "tier", "framework", "fuse_residual_norm"} <= shared
    assert {k: d[k] for k in shared} == {k: p[k] for k in shared}
    assert (d["weights"], d["activations"], d["layers"]) == ("int8", "fp16", [{"match": "mlp", "layers": None,
                                                                                 "weights": "int4"}])
    assert d["scenario"] == str(f) and d["efficiency"] == {"matmul_eta": 0.7} and d["mla_attention"] == "naive"
    json.dumps(d, allow_nan=False)


def test_capacity_inputs_report_the_scenario_keywords_given(tmp_path):
    from tapeout.serving.capacity import capacity

    f = tmp_path / "s.toml"
    f.write_text('weights = "fp8"\n')
    d = capacity("llama-3.1-8b", "h100-sxm", slo_tpot=1.0, gpus=1, tps=(1,), max_batches=(8,), num_requests=4,
                 input_len=32, output_len=2, scenario=f, kv_fraction=0.8, tier="roofline")["inputs"]
    assert (d["input_len"], d["output_len"]) == (32, 2)  # traffic, as given
    assert (d["scenario"], d["kv_fraction"], d["tier"]) == (str(f), 0.8, "roofline")
    assert "weights" not in d and "framework" not in d  # only what was given
    with pytest.raises(TapeoutError, match="pp"):  # validated once, not a skipped configuration per tp
        capacity("llama-3.1-8b", "h100-sxm", slo_tpot=1.0, gpus=1, tps=(1,), pp="2")
