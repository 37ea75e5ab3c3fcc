"""The serving keywords declared once (``serving/inputs.py``): every field of ``ServingInputs`` and
``CapacityInputs`` is a keyword of ``simulate`` / ``capacity``, an option of ``tapeout simulate`` / ``tapeout
capacity``, a field of the web request body, of explore's ``[serving]`` table and of the JSON ``inputs``; a bad
value of any of them is one line naming the field and what it allows, in Python, on the command line and over HTTP."""

from __future__ import annotations

import inspect
import json
import math

import pytest
import typer.main
from typer.testing import CliRunner

import tapeout
from tapeout.cli import app
from tapeout.errors import TapeoutError
from tapeout.serving.capacity import capacity
from tapeout.serving.cli import CAPACITY_FLAGS, SIMULATE_FLAGS, SIMULATE_HELP
from tapeout.serving.inputs import (SCENARIO_KEYS, CapacityInputs, CapacitySearch, ServingInputs,
                                    engine_fields)

M, H = "llama-3.1-8b", "h100-sxm"
FAST = dict(num_requests=4, input_len=64, output_len=4, tier="roofline")

#: one bad value per field, and a word its error must carry: a field added without a case here fails
#: test_every_field_has_a_bad_value_case
BAD = {
    "scheduler": ("fifo", "static, continuous, chunked"), "max_batch": (0, ">= 1"), "max_num_tokens": (-5, ">= 1"),
    "kv_tokens": (0, ">= 1"), "block_size": (0, ">= 1"), "kv_policy": ("lru", "paged, reserve, turbomind"),
    "prefill_pass": ("split", "fused, separate"),
    "replicas": (0, ">= 1"), "router": ("random", "round_robin, least_tokens"), "prefill_replicas": (-1, ">= 0"),
    "decode_replicas": (-1, ">= 0"), "num_requests": (0, ">= 1"), "rate": ("fast", "> 0 or inf"),
    "arrival": ("uniform", "poisson, gamma"), "burstiness": (0, "> 0"), "concurrency": (0, ">= 1"),
    "trace": ("/nonexistent.jsonl", "does not exist"), "workload": ("alpaca", "sharegpt"),
    "input_len": ("zipf:a=2", "lognormal"), "output_len": ("-3", "allowed"), "seed": (-1, ">= 0"),
    "slo_ttft": (0, "seconds > 0"), "slo_tpot": (-1.0, "seconds > 0"), "exact": ("maybe", "true or false"),
}
CAPACITY_BAD = {"percentile": (150, "(0, 100]"), "rate": (0, "> 0"), "gpus": (0, ">= 1"), "tps": ("1,x", "1,2,4"),
                "max_batches": ("0", "1,2,4"), "num_requests": (0, ">= 1"), "slo_ttft": (0, "seconds > 0"),
                "slo_tpot": ("soon", "seconds > 0")}


def _flag(name: str, flags: dict[str, str]) -> str:
    return flags.get(name, "--" + name.replace("_", "-"))


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_every_field_has_a_bad_value_case():
    assert set(BAD) == set(ServingInputs.model_fields)
    assert set(CAPACITY_BAD) == set(CapacitySearch.model_fields)


def test_simulate_keywords_are_the_fields_then_the_scenario_keywords():
    params = inspect.signature(tapeout.simulate).parameters
    kw = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "progress"]
    assert kw == list(ServingInputs.model_fields) + [k for k in SCENARIO_KEYS if k not in ServingInputs.model_fields]
    for k, f in ServingInputs.model_fields.items():
        assert params[k].default == f.default or (math.isinf(f.default) and math.isinf(params[k].default)), k
    # the public defaults (docs/serving.md): a change here is an API change
    assert (params["scheduler"].default, params["max_batch"].default, params["kv_policy"].default) == (
        "continuous", 256, "reserve")
    assert (params["input_len"].default, params["output_len"].default, params["block_size"].default) == (1024, 128, 16)


def test_capacity_keywords_are_its_fields_then_the_scenario_keywords_but_tp():
    params = inspect.signature(capacity).parameters
    kw = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert kw == list(CapacityInputs.model_fields) + [k for k in SCENARIO_KEYS if k != "tp"]
    # what the search sets itself (it has its own rate, num_requests per point and SLOs; max_batches)
    assert set(ServingInputs.model_fields) - set(CapacityInputs.model_fields) == {
        "replicas", "router", "prefill_replicas", "decode_replicas", "trace", "max_batch"}
    with pytest.raises(TypeError, match="'tp'"):  # capacity tries the tp degrees itself (tps)
        capacity(M, H, slo_ttft=1.0, tp=2)
    with pytest.raises(TypeError, match="'replicas'"):
        capacity(M, H, slo_ttft=1.0, replicas=2)


def test_every_field_is_a_command_line_option_with_its_help_and_default():
    cmds = typer.main.get_command(app).commands
    for cmd, model, flags in (("simulate", ServingInputs, SIMULATE_FLAGS), ("capacity", CapacityInputs, CAPACITY_FLAGS)):
        opts = {p.name: p for p in cmds[cmd].params}
        for name, f in model.model_fields.items():
            o = opts[name]
            assert o.opts[0] == _flag(name, flags), (cmd, name)
            assert o.help == SIMULATE_HELP.get(name, f.description), (cmd, name)
    assert {p.name: p for p in cmds["simulate"].params}["chrome_trace"].opts == ["--trace"]
    assert {p.name for p in cmds["capacity"].params} >= {"weights", "pp", "kv_fraction", "framework", "tier"}
    assert "tp" not in {p.name for p in cmds["capacity"].params} - {"tps"}


def test_every_field_is_in_the_json_inputs_by_its_json_name():
    res = tapeout.simulate(M, H, **FAST, slo_ttft=2.0, rate=50)
    d = res.to_dict()["inputs"]
    names = [f.serialization_alias or k for k, f in ServingInputs.model_fields.items()]
    assert list(d)[-len(names):] == names  # after the scenario keywords, in the declared order
    assert (d["slo_ttft_s"], d["rate"], d["max_num_tokens"], d["num_requests"]) == (2.0, 50.0, 8192, 4)
    assert d["rate"] == 50.0 and tapeout.simulate(M, H, **FAST).to_dict()["inputs"]["rate"] == "inf"
    # the command line prints the same
    out = CliRunner().invoke(app, ["simulate", "--model", M, "--hardware", H, "--num-requests", "4", "--input-len",
                                   "64", "--output-len", "4", "--tier", "roofline", "--slo-ttft", "2", "--rate", "50",
                                   "-f", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == json.loads(json.dumps(res.to_dict()))


def test_capacity_reports_the_search_and_the_keywords_given():
    c = CapacityInputs.model_validate({"slo_tpot": 0.1, "kv_policy": "paged", "tps": "1,2"})
    from tapeout.serving.capacity import reported

    d = reported(c, tps=[1, 2])
    assert list(d)[:8] == ["slo_ttft_s", "slo_tpot_s", "percentile", "rate", "gpus", "tps", "max_batches",
                           "num_requests"]
    assert (d["kv_policy"], d["tps"], d["max_batches"], d["scheduler"], d["seed"]) == ("paged", [1, 2],
                                                                                       [64, 128, 256], "continuous", 0)
    assert "block_size" not in d and (d["input_len"], d["output_len"]) == (1024, 128)


def _console(capsys, argv: list[str]) -> str:  # noqa: ANN001
    """The one line ``tapeout ARGV`` prints on the console (``run_app``: exit status 2)."""
    from tapeout.clicommand import run_app

    assert run_app(app, argv) == 2
    cap = capsys.readouterr()
    assert not cap.out.strip()
    return _one_line(cap.err)


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_value_is_one_line_naming_the_field_and_what_it_allows(name, capsys):
    value, word = BAD[name]
    with pytest.raises(TapeoutError) as e:
        tapeout.simulate(M, H, **{**FAST, name: value})
    msg = str(e.value)
    assert "\n" not in msg and f"{name}: " in msg and word in msg, msg
    flag = _flag(name, SIMULATE_FLAGS)
    line = _console(capsys, ["simulate", "--model", M, "--hardware", H, "--num-requests", "4", f"{flag}={value}"])
    assert name in line or flag in line, line


@pytest.mark.parametrize("name", list(CAPACITY_BAD))
def test_a_bad_capacity_value_is_one_line(name, capsys):
    value, word = CAPACITY_BAD[name]
    kw = {"slo_ttft": 1.0, name: value}
    with pytest.raises(TapeoutError) as e:
        capacity(M, H, **kw)
    msg = str(e.value)
    assert "\n" not in msg and f"{name}: " in msg and word in msg, msg
    flag = _flag(name, CAPACITY_FLAGS)
    line = _console(capsys, ["capacity", "--model", M, "--hardware", H, "--slo-ttft", "1", f"{flag}={value}"])
    assert name in line or flag in line, line


def test_together_rules_name_the_field():
    for kw, field in ((dict(prefill_replicas=1), "decode_replicas"), (dict(decode_replicas=2), "prefill_replicas"),
                      (dict(scheduler="static", prefill_replicas=1, decode_replicas=1), "scheduler"),
                      (dict(trace="sample", workload="sharegpt"), "workload"), (dict(trace="sample", rate=3.0), "rate")):
        with pytest.raises(TapeoutError, match=f"{field}: ") as e:
            tapeout.simulate(M, H, **{**FAST, **kw})
        assert "allowed" in str(e.value) or "leave" in str(e.value)
    with pytest.raises(TapeoutError, match="give at least one SLO; allowed: slo_ttft, slo_tpot"):
        capacity(M, H)


def test_the_engine_names_are_the_engines():
    import typing

    from tapeout.serving import engine, inputs, workload

    assert inputs.SCHEDULERS == engine.SCHEDULERS and inputs.KV_POLICIES == engine.KV_POLICIES
    assert inputs.PREFILL_PASSES == engine.PREFILL_PASSES
    assert typing.get_args(inputs.Arrival) == workload.ARRIVALS


def test_the_explore_serving_table_takes_the_fields_the_check_leaves():
    from tapeout.explore.serving import CHECK_KEYS, simulate_kwargs
    from tapeout.explore.space import Serving, load_space

    assert set(engine_fields()) <= set(Serving.model_fields)
    assert set(ServingInputs.model_fields) - set(Serving.model_fields) == {"router", "prefill_replicas",
                                                                           "decode_replicas", "trace"}
    for k in engine_fields():  # the same field: its help and checks
        assert Serving.model_fields[k].description == ServingInputs.model_fields[k].description, k
    sp = load_space({"base": H, "tier": "roofline", "parameters": {"memory_bandwidth_gbps": [3000]},
                     "workloads": [{"name": "w", "model": M, "input_len": 256}],
                     "serving": {"slo_tpot": 0.05, "kv_policy": "paged", "block_size": 32},
                     "objectives": ["usd_per_mtok_at_slo"]})
    kw = simulate_kwargs(sp, sp.workloads[0], None, None)  # type: ignore[arg-type]
    assert set(engine_fields()) <= set(kw) and not set(CHECK_KEYS) & set(kw)
    assert (kw["kv_policy"], kw["block_size"], kw["input_len"], kw["output_len"]) == ("paged", 32, 256, 128)
    with pytest.raises(TapeoutError, match="serving.kv_policy: unknown 'lru'; allowed: paged, reserve, turbomind"):
        load_space({"base": H, "workloads": [{"model": M}], "serving": {"slo_tpot": 0.05, "kv_policy": "lru"},
                    "objectives": ["usd_per_mtok_at_slo"]})
    with pytest.raises(TapeoutError, match="serving"):  # the capacity check's own: not a table field
        load_space({"base": H, "workloads": [{"model": M}], "serving": {"slo_tpot": 0.05, "router": "round_robin"},
                    "objectives": ["usd_per_mtok_at_slo"]})


def test_web_bodies_carry_every_field_and_their_errors():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tapeout.web.app import create_app
    from tapeout.web.schema import request_model

    body = request_model(tapeout.simulate).model_fields
    assert set(ServingInputs.model_fields) <= set(body)
    client = TestClient(create_app())
    base = {"model": M, "hardware": H, "num_requests": 4, "input_len": 64, "output_len": 4, "tier": "roofline"}
    r = client.post("/api/simulate", json={**base, "rate": "inf"})
    assert r.status_code == 200 and r.json()["inputs"]["rate"] == "inf", r.text
    for name in ("scheduler", "max_batch", "kv_policy", "seed", "input_len", "slo_ttft", "workload"):
        r = client.post("/api/simulate", json={**base, name: BAD[name][0]})
        assert r.status_code == 422, (name, r.text)
        detail = r.json()["detail"]
        assert "\n" not in detail and name in detail, detail
