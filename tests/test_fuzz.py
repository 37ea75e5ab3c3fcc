"""Fuzzing the command line and the spec files (hypothesis): whatever the input, tapeout answers (exit 0,
every number finite) or refuses in one line (exit 2) — never a traceback, never an internal error.

Bounded: a few dozen examples per test (``TAPEOUT_FUZZ_EXAMPLES`` raises it), small models and short
lengths where a prediction runs, so the file takes seconds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapeout.cli import app
from tapeout.clicommand import run_app
from tapeout.hardware.catalog import load_hardware

ROOT = Path(__file__).resolve().parents[1]
#: examples per test (TAPEOUT_FUZZ_EXAMPLES=500 for a longer hunt; the suite keeps it short). The suite's run
#: is derandomized (the same examples every run, as tests/test_web_fuzz.py's) so that a failure reproduces and
#: no suite run meets an example the last one did not; a hunt (TAPEOUT_FUZZ_EXAMPLES set) draws at random
HUNT = "TAPEOUT_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=int(os.environ.get("TAPEOUT_FUZZ_EXAMPLES", "35")), deadline=None, derandomize=not HUNT,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: values a user types for a number: mostly fine (so that predictions run), some hostile
NUMBERS = st.sampled_from(["1", "2", "4", "8", "1", "2", "16", "128", "512", "1", "2", "4"] + [
    "3", "7", "4096", "10000000", "99999999999999999999", "-1", "0", "", "abc", "nan", "inf", "-inf", "1e3", "2.5",
    "0x10", " 4"])
FLAGS = {
    "--batch": NUMBERS, "--input-len": NUMBERS, "--output-len": NUMBERS, "--tp": NUMBERS, "--pp": NUMBERS,
    "--pp-microbatches": NUMBERS, "--ep": NUMBERS,
    "--weights": st.sampled_from(["fp16", "bf16", "int4", "int4_g128", "fp8", "fp6", "nf4", "fp7", "", "int9",
                                  "fp4_e2m1_g32_e8m0", "int4_g0"]),
    "--activations": st.sampled_from(["fp16", "fp8", "int8", "", "x"]),
    "--kv-cache": st.sampled_from(["fp16", "fp8", "int4", "nope"]),
    "--sparsity": st.sampled_from(["0.5", "2:4", "1x4:0.5", "80%", "1.5", "-1", "abc", "nan", "0", "3:4"]),
    "--sparse-kernel": st.sampled_from(["auto", "tensor", "cuda", "dense", "magic"]),
    "--attention": st.sampled_from(["flash", "naive", "mmha", "slow"]),
    "--framework": st.sampled_from(["kernels", "deepspeed", "llamacpp", "gptfast", "vllm"]),
    "--tier": st.sampled_from(["roofline", "tiled", "magic"]),
    "--fuse-residual-norm": st.sampled_from(["true", "false", "maybe", "1"]),
    "--compare-to": st.sampled_from(["fp16", "int4", "zz"]),
    "--kv-fraction": st.sampled_from(["0.9", "0.5", "0.01", "1", "0", "1.5", "nan", "inf", "-1", "abc"]),
}
MODELS = st.sampled_from(["llama-2-7b", "mixtral-8x7b", "opt-6.7b", "gpt-j-6b", str(ROOT / "examples" / "config.json")]
                         * 3 + ["", "nope", "../x.json", str(ROOT / "README.md")])
DEVICES = st.sampled_from(["h100-sxm", "a100-sxm-80gb", "tpu-v5e", "gaudi3", "l40s", str(ROOT / "examples" / "my-chip.toml")]
                          * 3 + ["", "nope", str(ROOT / "README.md")])


def _finite(x: object, path: str = "") -> None:
    if isinstance(x, float):
        assert math.isfinite(x), f"non-finite number at {path}"
    elif isinstance(x, dict):
        for k, v in x.items():
            _finite(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _finite(v, f"{path}[{i}]")


def _no_nan_json(text: str) -> object:
    def bad(token: str) -> None:
        raise AssertionError(f"JSON holds {token}")

    return json.loads(text, parse_constant=bad)


def _check(capsys, args: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = run_app(app, args)
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out and "internal error" not in out.err, (args, out.err)
    assert rc in (0, 2), (args, rc, out.err)
    if rc == 2:
        lines = [ln for ln in out.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, out.err)
    return rc, out.out


@FUZZ
@given(model=MODELS, device=DEVICES, flags=st.dictionaries(st.sampled_from(sorted(FLAGS)), st.just(None), max_size=5),
       data=st.data(), fmt=st.sampled_from(["json", "json", "table", "csv"]))
def test_predict_cli_fuzz(capsys, model, device, flags, data, fmt):
    args = ["predict", "--model", model, "--hardware", device]
    for flag in flags:
        args += [flag, data.draw(FLAGS[flag], label=flag)]
    # keep the runs short where they succeed: a small default length unless the fuzz set one
    if "--input-len" not in flags:
        args += ["--input-len", "256"]
    if "--output-len" not in flags:
        args += ["--output-len", "8"]
    rc, out = _check(capsys, args + ["--format", fmt])
    if rc == 0 and fmt == "json":
        _finite(_no_nan_json(out))
    elif rc == 0:
        low = out.lower()
        assert " nan" not in low and " inf " not in low


#: hostile replacements for a number in a spec file
BAD_VALUES = st.sampled_from([math.inf, -math.inf, math.nan, -1, 0, 1e30, 1e-30, 2**70, "abc", True, None, [], {}])


def _device_paths(d: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and k != "sources":
            out += _device_paths(v, (*prefix, k))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((*prefix, k))
    return out


DEVICE = load_hardware("h100-sxm").model_dump(mode="json")
DEVICE.pop("efficiency")
DEVICE.pop("microarch")
DEVICE_PATHS = _device_paths(DEVICE)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(DEVICE_PATHS), BAD_VALUES), min_size=1, max_size=3))
def test_device_file_fuzz(tmp_path_factory, capsys, edits):
    d = json.loads(json.dumps(DEVICE))
    for path, value in edits:
        target = d
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    f = tmp_path_factory.mktemp("dev") / "chip.json"
    f.write_text(json.dumps(d))
    for cmd in (["predict", "--model", "llama-2-7b", "--hardware", str(f), "--tier", "roofline", "--input-len", "256",
                 "--output-len", "8", "--format", "json"], ["cost", str(f), "--format", "json"]):
        rc, out = _check(capsys, cmd)
        if rc == 0:
            _finite(_no_nan_json(out))


CONFIG = json.loads((ROOT / "examples" / "config.json").read_text())
CONFIG_KEYS = sorted(k for k, v in CONFIG.items() if isinstance(v, (int, float)) and not isinstance(v, bool)) + [
    "num_local_experts", "num_experts_per_tok", "head_dim", "sliding_window"]


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), BAD_VALUES | st.integers(-2, 70)), min_size=1,
                      max_size=3),
       model_type=st.sampled_from(["llama", "mixtral", "mistral", "qwen2", "nope"]))
def test_model_config_fuzz(tmp_path_factory, capsys, edits, model_type):
    cfg = {**CONFIG, "model_type": model_type, **dict(edits)}
    f = tmp_path_factory.mktemp("cfg") / "config.json"
    f.write_text(json.dumps(cfg))
    rc, out = _check(capsys, ["predict", "--model", str(f), "--hardware", "h100-sxm", "--tier", "roofline",
                              "--input-len", "64", "--output-len", "4", "--tp", "8", "--format", "json"])
    if rc == 0:
        _finite(_no_nan_json(out))


ASSUMPTION_KEYS = [("price", "wafer", "diameter_mm"), ("price", "wafer", "edge_exclusion_mm"),
                   ("price", "wafer", "scribe_mm"), ("price", "nodes", "N7", "d0_per_cm2"),
                   ("price", "nodes", "N7", "wafer_usd"), ("price", "yield", "model"),
                   ("price", "packaging", "package_yield"), ("price", "margin", "vendor_gross_margin"),
                   ("price", "operations", "lifetime_years"), ("price", "operations", "utilization"),
                   ("memory", "HBM2e", "usd_per_gb"), ("area", "nodes", "N7", "logic_gain")]


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(ASSUMPTION_KEYS), BAD_VALUES | st.floats(-10, 1e4)), min_size=1,
                      max_size=3))
def test_cost_assumptions_fuzz(tmp_path_factory, capsys, edits):
    over: dict = {}
    for path, value in edits:
        target = over
        for k in path[:-1]:
            target = target.setdefault(k, {})
        target[path[-1]] = value
    f = tmp_path_factory.mktemp("a") / "a.json"
    f.write_text(json.dumps(over))
    rc, out = _check(capsys, ["cost", "a100-sxm-80gb", "--assumptions", str(f), "--model", "llama-2-7b",
                              "--format", "json"])
    if rc == 0:
        d = _no_nan_json(out)
        _finite(d)
        assert d["die_cost_usd"] >= 0 and d["dies_per_wafer"] >= 1 and 0 < d["yield"] <= 1


@pytest.mark.parametrize("args", [["explore"], ["explore", "--report", "x", "y"], ["cost"], ["show"],
                                  ["quantize-error"], ["nope"], ["--nope"], ["predict", "--model"]])
def test_incomplete_command_lines_are_one_line_errors(capsys, args):
    rc, _ = _check(capsys, args)
    assert rc == 2


SHARED_CONFIGS = ROOT.parent / "shared/reference-data/hf-configs"
#: frontier configs and the keys their mappers read beyond the llama ones (MLA, windows, chunks, experts)
FRONTIER = {
    "deepseek-ai--DeepSeek-V2-Lite.json": ["kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim",
                                           "v_head_dim", "first_k_dense_replace", "n_shared_experts",
                                           "moe_layer_freq", "n_routed_experts", "num_nextn_predict_layers"],
    "openai--gpt-oss-20b.json": ["sliding_window", "layer_types", "num_local_experts", "experts_per_token",
                                 "quantization_config", "head_dim"],
    "google--gemma-2-9b.json": ["sliding_window", "attn_logit_softcapping", "final_logit_softcapping", "head_dim"],
    "microsoft--Phi-3-mini-4k-instruct.json": ["sliding_window", "max_position_embeddings"],
}


@pytest.mark.skipif(not SHARED_CONFIGS.is_dir(), reason="shared hf-configs reference data not present")
@FUZZ
@given(file=st.sampled_from(sorted(FRONTIER)), data=st.data())
def test_frontier_config_fuzz(tmp_path_factory, capsys, file, data):
    cfg = json.loads((SHARED_CONFIGS / file).read_text())
    keys = FRONTIER[file] + ["num_hidden_layers", "num_attention_heads", "hidden_size"]
    edits = data.draw(st.lists(st.tuples(st.sampled_from(keys), BAD_VALUES | st.integers(-2, 70)), min_size=1,
                               max_size=3))
    cfg.update(dict(edits))
    f = tmp_path_factory.mktemp("cfg") / "config.json"
    f.write_text(json.dumps(cfg))
    rc, out = _check(capsys, ["predict", "--model", str(f), "--hardware", "h100-sxm", "--tier", "roofline",
                              "--input-len", "64", "--output-len", "4", "--format", "json"])
    if rc == 0:
        _finite(_no_nan_json(out))



def _config_with(tmp_path: Path, path: Path, **edits: object) -> str:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({**json.loads(path.read_text()), **edits}))
    return str(f)


def _predict_small(model: str) -> list[str]:
    return ["predict", "--model", model, "--hardware", "h100-sxm", "--tier", "roofline", "--input-len", "64",
            "--output-len", "4", "--format", "json"]


#: configs whose mappers expand per-layer lists (Gemma 2's sliding layers, DeepSeek's dense layers, Mixtral's
#: dense layers): a fuzz example of 2^70 layers ran them for minutes before ModelSpec's bound was reached
HUGE_LAYERS = {"gemma-2": (SHARED_CONFIGS / "google--gemma-2-9b.json", {}),
               "deepseek-v2": (SHARED_CONFIGS / "deepseek-ai--DeepSeek-V2-Lite.json", {}),
               "mixtral": (ROOT / "examples" / "config.json", {"model_type": "mixtral", "num_local_experts": 8,
                                                               "num_experts_per_tok": 2})}


@pytest.mark.skipif(not SHARED_CONFIGS.is_dir(), reason="shared hf-configs reference data not present")
@pytest.mark.parametrize("layers", [2**70, 100_001])
@pytest.mark.parametrize("config", sorted(HUGE_LAYERS))
def test_too_many_layers_is_refused_by_the_mapper(tmp_path, capsys, config, layers):
    # the mapper refuses the HF key itself, before any per-layer expansion (not ModelSpec's num_layers after
    # it): 2^70 is the fuzz example that hung; 100_001 checks where the refusal comes from without a hang
    path, extra = HUGE_LAYERS[config]
    capsys.readouterr()
    rc = run_app(app, _predict_small(_config_with(tmp_path, path, **extra, num_hidden_layers=layers)))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err, err
    assert err.endswith(f"'num_hidden_layers' must be an integer in 1..100000, got {layers}"), err


@pytest.mark.skipif(not SHARED_CONFIGS.is_dir(), reason="shared hf-configs reference data not present")
def test_most_layers_allowed_still_predict(tmp_path, capsys):
    # the bound itself is a valid model: Gemma 2 at 100_000 layers predicts, half its layers sliding (its
    # attention spans are counted over a set of the sliding layers, not a scan of their list per layer)
    model = _config_with(tmp_path, SHARED_CONFIGS / "google--gemma-2-9b.json", num_hidden_layers=100_000)
    rc, out = _check(capsys, _predict_small(model))
    assert rc == 0
    d = _no_nan_json(out)
    _finite(d)
    assert d["model_info"]["attention_layers"] == {"full": 50_000, "sliding4096": 50_000}
