"""Issue 10 (hardening), item by item: each hostile input gets an honest answer or exit status 2 with
one line naming the field; every answer says what actually ran."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

import tapeout
from tapeout.cli import app
from tapeout.clicommand import run_app
from tapeout.errors import TapeoutError
from tapeout.hardware.catalog import load_hardware
from tapeout.models.catalog import load_model

ROOT = Path(__file__).resolve().parents[1]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the console script in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = run_app(app, [str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(rc: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and "internal error" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def device_dict(name: str = "h100-sxm") -> dict:
    """A catalog device as a user file would hold it (no efficiency / micro-architecture tables)."""
    d = load_hardware(name).model_dump(mode="json")
    for k in ("efficiency", "microarch"):
        d.pop(k)
    return d


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))  # allow_nan: Infinity / NaN tokens, as a hostile file has them
    return path


# ---- 1. non-finite spec values ------------------------------------------------------------------------
@pytest.mark.parametrize("where", [("memory", "bandwidth_gbps"), ("peak_tflops", "fp16"), ("tdp_w",)])
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_device_values_are_rejected_naming_the_field(tmp_path, capsys, where, bad):
    d = device_dict()
    target = d
    for k in where[:-1]:
        target = target[k]
    target[where[-1]] = bad
    f = write_json(tmp_path / "chip.json", d)
    rc, out, err = cli(capsys, "predict", "--model", "llama-2-7b", "--hardware", f, "--format", "json")
    one_line_error(rc, err, where[-1])
    assert out == ""


def test_non_finite_model_and_scenario_values_are_rejected(tmp_path):
    spec = load_model("llama-2-7b").model_dump(mode="json")
    # YAML spells infinity .inf (JSON is YAML, so the dump with that one token is a YAML model file)
    (tmp_path / "m.yaml").write_text(json.dumps({**spec, "published_params": math.inf}).replace("Infinity", ".inf"))
    with pytest.raises(TapeoutError, match="published_params"):
        load_model(tmp_path / "m.yaml")
    with pytest.raises(TapeoutError, match="keep"):
        tapeout.predict("llama-2-7b", "h100-sxm", scenario={"layers": [{"match": "mlp", "keep": math.nan}]})


# ---- 2. MoE top-k beyond the experts --------------------------------------------------------------------
def _mixtral_config(top_k: int) -> dict:
    m = load_model("mixtral-8x7b")
    return {"model_type": "mixtral", "hidden_size": m.hidden_size, "intermediate_size": m.intermediate_size,
            "num_attention_heads": m.num_heads, "num_hidden_layers": m.num_layers,
            "num_key_value_heads": m.num_kv_heads, "vocab_size": m.vocab_size,
            "max_position_embeddings": m.max_position_embeddings, "num_local_experts": m.moe.num_experts,
            "num_experts_per_tok": top_k}


def test_moe_top_k_beyond_the_experts_is_a_one_line_config_error(tmp_path, capsys):
    experts = load_model("mixtral-8x7b").moe.num_experts
    f = write_json(tmp_path / "config.json", _mixtral_config(experts + 1))
    rc, _, err = cli(capsys, "predict", "--model", f, "--hardware", "h100-sxm")
    one_line_error(rc, err, "num_experts_per_tok", "num_local_experts")
    ok = write_json(tmp_path / "ok.json", _mixtral_config(experts))
    assert load_model(ok).moe.top_k == experts


# ---- 3. explore --report on a file that is not a run database -------------------------------------------
def test_explore_report_on_a_non_database_is_a_one_line_error(tmp_path, capsys):
    f = tmp_path / "x.toml"
    f.write_text("x = 1\n")
    rc, _, err = cli(capsys, "explore", "--report", f)
    one_line_error(rc, err, "report", "not an exploration run database")


# ---- 4. validate --plots / --data naming files -----------------------------------------------------------
def test_validate_plots_and_data_that_are_files_are_one_line_errors(capsys):
    rc, _, err = cli(capsys, "validate", "--plots", ROOT / "README.md")
    one_line_error(rc, err, "plots", "is a file")
    rc, _, err = cli(capsys, "validate", "--data", ROOT / "README.md")
    one_line_error(rc, err, "data", "is a file")


# ---- 5. cost assumptions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("toml, needle", [
    ("[price.nodes.N7]\nd0_per_cm2 = 1e9\n", "d0_per_cm2"),
    ("[price.nodes.N7]\nwafer_usd = -9346\n", "wafer_usd"),
    ("[price.wafer]\ndiameter_mm = -300\n", "diameter_mm"),
    ("[price.wafer]\nedge_exclusion_mm = 99\nscribe_mm = -1\n", "scribe_mm"),
    ("[price.operations]\nutilization = 0\n", "utilization"),
    ("[price.nodes.N2]\nwafer_usd = -1\nd0_per_cm2 = 0.1\n", "wafer_usd"),  # a new node is checked too
])
def test_absurd_cost_assumptions_are_one_line_errors(tmp_path, capsys, toml, needle):
    f = tmp_path / "a.toml"
    f.write_text(toml)
    rc, out, err = cli(capsys, "cost", "a100-sxm-80gb", "--assumptions", f)
    one_line_error(rc, err, needle)


def test_a_defect_density_that_leaves_no_good_die_is_an_error_not_a_division_by_zero():
    from tapeout.cost.price import estimate

    hw = load_hardware("a100-sxm-80gb")
    with pytest.raises(TapeoutError, match="no good"):
        estimate(hw, {"price": {"nodes": {"N7": {"d0_per_cm2": 100}}}})
    with pytest.raises(TapeoutError, match="edge exclusion"):
        estimate(hw, {"price": {"wafer": {"edge_exclusion_mm": 100, "diameter_mm": 150}}})
    base = estimate(hw)
    dearer = estimate(hw, {"price": {"nodes": {"N7": {"d0_per_cm2": 0.5}}}})
    assert 0 < dearer.yield_fraction < base.yield_fraction and dearer.die_cost_usd > base.die_cost_usd


# ---- 6. the tier that ran ------------------------------------------------------------------------------------
def test_tiled_on_a_device_without_microarch_reports_the_roofline_it_ran():
    hw = load_hardware("tpu-v5e")
    assert hw.microarch is None
    p = tapeout.predict("llama-2-7b", hw, tier="tiled", input_len=512, output_len=16)
    r = tapeout.predict("llama-2-7b", hw, tier="roofline", input_len=512, output_len=16)
    d = p.to_dict()
    assert d["inputs"]["tier"] == "roofline" and any("tiled" in w and "roofline" in w for w in d["warnings"])
    assert p.ttft_s == r.ttft_s and p.tpot_s == r.tpot_s
    assert tapeout.predict("llama-2-7b", "h100-sxm", tier="tiled", input_len=512, output_len=16).tier == "tiled"


# ---- 7. cost of a model that does not fit on one device -------------------------------------------------------
def test_cost_prices_the_smallest_group_that_holds_the_model():
    from tapeout.cost.cli import _groups, cost_report

    hw = load_hardware("a100-sxm-80gb")
    d = cost_report("a100-sxm-80gb", model="llama-3.1-405b")["performance"]
    assert d["fits"] and d["devices"] == d["tp"] * d["pp"] > 1 and d["usd_per_mtok"] > 0
    assert "smallest group" in d["note"]
    # every group with fewer devices fails to hold it (or cannot shard it)
    for tp, pp in _groups(hw):
        if tp * pp < d["devices"]:
            try:
                p = tapeout.predict("llama-3.1-405b", hw, tp=tp, pp=pp, pp_microbatches=pp, tier="roofline")
            except TapeoutError:
                continue
            assert not p.memory.fits, (tp, pp)
    # a tp that does not fit: said so, and no $/Mtok for a deployment that cannot run
    e = cost_report("a100-sxm-80gb", model="llama-3.1-405b", tp=8)["performance"]
    assert not e["fits"] and e["usd_per_mtok"] is None and "does not fit" in e["note"]
    small = cost_report("a100-sxm-80gb", model="llama-2-7b")["performance"]
    assert small["devices"] == 1 and small["note"] is None and small["fits"]


# ---- 8. lengths beyond max_position_embeddings ----------------------------------------------------------------
def test_a_context_beyond_the_trained_positions_warns(capsys):
    m = load_model("llama-2-7b")
    p = tapeout.predict(m, "h100-sxm", input_len=2 * m.max_position_embeddings, output_len=8)
    assert len(p.warnings) == 1 and "max_position_embeddings" in p.warnings[0]
    assert p.to_dict()["warnings"] == list(p.warnings)
    edge = tapeout.predict(m, "h100-sxm", input_len=m.max_position_embeddings - 7, output_len=8)
    assert edge.warnings == ()  # final context = max_position_embeddings: still within
    rc, out, err = cli(capsys, "predict", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--input-len",
                       2 * m.max_position_embeddings, "--format", "json")
    assert rc == 0 and json.loads(out)["warnings"] and err.startswith("warning:")
    rc, out, _ = cli(capsys, "predict", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--input-len",
                     2 * m.max_position_embeddings)
    assert rc == 0 and "warning:" in out and out.index("warning:") < out.index("TTFT")


# ---- 9. device values off by 10^3..10^9 --------------------------------------------------------------------------
@pytest.mark.parametrize("path, scale, needle", [
    (("memory", "capacity_gb"), 1e9, "GB"),             # bytes where GB is expected
    (("memory", "bandwidth_gbps"), 1e9, "GB/s"),        # B/s
    (("boost_clock_mhz",), 1e6, "MHz"),                 # Hz
    (("peak_tflops", "fp16"), 1e12, "TFLOP/s"),         # FLOP/s
    (("interconnect", "bandwidth_gbps_per_direction"), 1e9, "GB/s"),
])
def test_device_values_in_the_wrong_unit_are_rejected_naming_the_unit(tmp_path, capsys, path, scale, needle):
    d = device_dict()
    target = d
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = target[path[-1]] * scale
    rc, _, err = cli(capsys, "show", write_json(tmp_path / "chip.json", d))
    one_line_error(rc, err, path[-1], needle, "plausible range")
    target[path[-1]] = target[path[-1]] / scale  # the datasheet value itself passes
    assert load_hardware(write_json(tmp_path / "ok.json", d)).name == "h100-sxm"


# ---- 10. upper bounds on batch and lengths -------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--batch", "--input-len", "--output-len", "--tp"])
def test_counts_have_upper_bounds_naming_the_field(capsys, flag):
    rc, _, err = cli(capsys, "predict", "--model", "llama-2-7b", "--hardware", "h100-sxm", flag,
                     "99999999999999999999")
    one_line_error(rc, err, flag.lstrip("-").replace("-", "_"), "limit")


# ---- 11. explore trials and a space no point of which can run ------------------------------------------------------
SPACE = {"name": "t", "base": "a100-sxm-80gb", "tier": "roofline", "parameters": {"cores": [96, 108]},
         "workloads": [{"model": "gpt-3-175b", "batch": 8, "input_len": 256, "output_len": 64, "tp": 8}],
         "objectives": ["throughput", "cost"]}


@pytest.mark.parametrize("trials", ["-5", "0"])
def test_explore_trials_must_be_positive(tmp_path, capsys, monkeypatch, trials):
    monkeypatch.chdir(tmp_path)
    f = write_json(tmp_path / "s.json", SPACE)
    rc, _, err = cli(capsys, "explore", f, "--trials", trials, "-j", "1", "--no-progress")
    one_line_error(rc, err, "trials")
    assert not (tmp_path / "s.db").exists()


def test_space_numbers_are_not_bools_or_non_finite():
    from tapeout.explore.space import load_space

    with pytest.raises(TapeoutError, match="tp"):
        load_space({**SPACE, "workloads": [{**SPACE["workloads"][0], "tp": True}]})
    with pytest.raises(TapeoutError, match="max_area_mm2"):
        load_space({**SPACE, "constraints": {"max_area_mm2": math.inf}})


def test_a_workload_every_design_would_fail_is_reported_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    heads = load_model("gpt-3-175b").num_heads
    bad_tp = next(t for t in range(2, heads) if heads % t)
    f = write_json(tmp_path / "s.json", {**SPACE, "workloads": [{**SPACE["workloads"][0], "tp": bad_tp}]})
    rc, _, err = cli(capsys, "explore", f, "-j", "1", "--no-progress")
    one_line_error(rc, err, "workloads.0", f"tp={bad_tp}")
    assert not (tmp_path / "s.db").exists()


def test_a_run_with_no_feasible_design_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wl = {**SPACE["workloads"][0], "batch": 4096, "output_len": 4096}  # a KV cache no design holds
    f = write_json(tmp_path / "s.json", {**SPACE, "workloads": [wl]})
    rc, out, err = cli(capsys, "explore", f, "-j", "1", "--no-progress")
    assert rc == 0 and "no design is feasible" in err and "does not fit in memory" in err
    rc, out, _ = cli(capsys, "explore", "--report", tmp_path / "s.db", "--format", "json")
    rep = json.loads(out)
    assert rc == 0 and rep["feasible"] == 0 and rep["violations"][0]["designs"] == rep["points"] == 2


# ---- 12. quantize-error that selects nothing; malformed safetensors ------------------------------------------------
def _safetensors(path: Path, header: dict, payload: bytes = b"") -> Path:
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + payload)
    return path


def test_quantize_error_that_selects_nothing_is_an_error(tmp_path, capsys):
    from tapeout.numerics.tensorfile import write

    f = tmp_path / "m.safetensors"
    write(f, {"w.weight": np.ones((4, 8), np.float32), "n.weight": np.ones(8, np.float32)})
    rc, out, err = cli(capsys, "quantize-error", f, "--weights", "int4", "--match", "no_such_tensor")
    one_line_error(rc, err, "match", "selects none")
    rc, _, err = cli(capsys, "quantize-error", f, "--weights", "int4", "--match", "")
    one_line_error(rc, err, "match", "empty")
    rc, _, err = cli(capsys, "quantize-error", f, "--weights", "int4", "--match", "^n\\.")
    one_line_error(rc, err, "1-D")
    rc, out, _ = cli(capsys, "quantize-error", f, "--weights", "int4", "--match", "^w\\.", "--format", "json")
    assert rc == 0 and json.loads(out)["total"]["tensors"] == 1


def test_negative_shapes_in_a_safetensors_header_are_rejected(tmp_path):
    from tapeout.numerics.tensorfile import read_header

    # (-1) x (-4) float32 elements would match 16 bytes of data: the product hides the sign
    f = _safetensors(tmp_path / "neg.safetensors", {"w": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}},
                     bytes(16))
    with pytest.raises(TapeoutError, match="negative"):
        read_header(f)
    g = _safetensors(tmp_path / "frac.safetensors", {"w": {"dtype": "F32", "shape": [2.5, 2], "data_offsets": [0, 20]}},
                     bytes(20))
    with pytest.raises(TapeoutError, match="malformed"):
        read_header(g)


# ---- 13. fp16 vs bf16: shown apart, the faster one by default ------------------------------------------------------
def test_the_default_16bit_format_follows_the_datasheet_peaks():
    from tapeout.api import default_16bit

    for hw in (load_hardware(n) for n in ("gaudi3", "h100-sxm", "tpu-v5e")):
        p16, pb16 = hw.peak_tflops.get("fp16"), hw.peak_tflops.get("bf16")
        want = "bf16" if p16 is None or (pb16 is not None and pb16 > p16) else "fp16"
        assert default_16bit(hw) == want
        p = tapeout.predict("llama-2-7b", hw, input_len=512, output_len=16, tier="roofline")
        assert p.scenario.weights.name == p.scenario.activations.name == p.to_dict()["inputs"]["default_16bit"] == want
        assert any(want in n for n in p.notes) == (p16 != pb16)
    # the rule reads the peaks, not a list of devices: an H100 whose bf16 is made faster switches
    h = load_hardware("h100-sxm")
    faster = h.model_copy(update={"peak_tflops": {**h.peak_tflops, "bf16": 2 * h.peak_tflops["fp16"]}})
    assert default_16bit(faster) == "bf16" and default_16bit(h) == "fp16"
    # explicit formats win
    g = tapeout.predict("llama-2-7b", "gaudi3", weights="fp16", activations="fp16", input_len=512, output_len=16)
    assert g.scenario.weights.name == "fp16" and not g.notes


def test_gaudi3_bf16_default_is_faster_than_its_fp16(capsys):
    b = tapeout.predict("llama-2-7b", "gaudi3", input_len=512, output_len=16)
    f = tapeout.predict("llama-2-7b", "gaudi3", weights="fp16", activations="fp16", input_len=512, output_len=16)
    assert b.ttft_s < f.ttft_s
    rc, out, _ = cli(capsys, "hardware", "--format", "json")
    row = next(r for r in json.loads(out) if r["name"] == "gaudi3")
    hw = load_hardware("gaudi3")
    assert row["default_16bit"] == "bf16" and row["peak_tflops"] == hw.peak_tflops
    rc, out, _ = cli(capsys, "hardware")
    line = next(ln for ln in out.splitlines() if "gaudi3" in ln)
    assert f"{hw.peak_tflops['fp16']:g}" in line and f"{hw.peak_tflops['bf16']:g}" in line
    assert "fp16 TF" in out and "bf16 TF" in out


# ---- 16-18. the table: summary first, per-op tables opt-in and fitted, stored vs computed, pipeline cycle ----------
def test_per_op_tables_fit_a_narrow_console():
    from rich.console import Console

    from tapeout.report.render import print_table

    d = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, input_len=512, output_len=16).to_dict()
    buf = io.StringIO()
    print_table(d, Console(file=buf, width=100), ops=True)
    text = buf.getvalue()
    assert max(len(ln) for ln in text.splitlines()) <= 100
    for r in d["ops"]:
        assert r["name"] in text  # whole names, not "embed…"
    assert text.index("TTFT") < text.index("Prefill")


def test_stored_and_computed_formats_are_told_apart():
    from tapeout.report.render import _format

    a100 = tapeout.predict("llama-2-7b", "a100-sxm-80gb", weights="fp8", activations="fp8", input_len=512,
                           output_len=16)
    h100 = tapeout.predict("llama-2-7b", "h100-sxm", weights="fp8", activations="fp8", input_len=512, output_len=16)
    ra = {r["name"]: r for r in a100.ops() if r["phase"] == "prefill"}
    rh = {r["name"]: r for r in h100.ops() if r["phase"] == "prefill"}
    assert "fp8" not in load_hardware("a100-sxm-80gb").peak_tflops
    assert ra["qkv_proj"]["computes_in"] == "fp16" and rh["qkv_proj"]["computes_in"] == "fp8"
    assert any("no fp8 matrix peak" in n for n in a100.notes) and not any("matrix peak" in n for n in h100.notes)
    sparse = tapeout.predict("llama-2-7b", "h100-sxm", weights="fp8", activations="fp8", sparsity="2:4",
                             input_len=512, output_len=16)
    assert not any("matrix peak" in n for n in sparse.notes)  # the 2:4 path of the fp8 peak is fp8
    assert _format(ra["qkv_proj"]).endswith("→ fp16") and "w fp8_e4m3" in _format(ra["qkv_proj"])
    # a norm reads and writes the 16-bit residual stream and computes in fp32; an all-reduce only moves data
    norm = ra["attn_norm"]
    assert norm["formats"]["act"] == "fp16" and norm["computes_in"] == "fp32"
    assert _format(norm) == "a fp16 → fp32"
    tp2 = tapeout.predict("llama-2-7b", "a100-sxm-80gb", tp=2, input_len=512, output_len=16)
    ar = next(r for r in tp2.ops() if r["kind"] == "allreduce")
    assert ar["computes_in"] is None and _format(ar) == "a fp16 → -"


def test_pipeline_tpot_is_the_mean_cycle_and_the_table_explains_it():
    from rich.console import Console

    from tapeout.report.render import print_table

    p = tapeout.predict("llama-2-70b", "l40s", pp=4, pp_microbatches=4, input_len=512, output_len=64)
    dec = p.to_dict()["phases"]["decode"]
    s0, s1 = p.result.decode_steps[0], p.result.decode_steps[-1]
    assert dec["first_cycle_s"] == max(s0.time_s, 4 * max(s0.stage_times))
    assert dec["last_cycle_s"] == max(s1.time_s, 4 * max(s1.stage_times))
    lo, hi = sorted((dec["first_cycle_s"], dec["last_cycle_s"]))
    assert lo * (1 - 1e-9) <= p.tpot_s <= hi * (1 + 1e-9)  # the mean lies between the ends
    buf = io.StringIO()
    print_table(p.to_dict(), Console(file=buf, width=200))
    assert "mean decode cycle" in buf.getvalue() and "slowest stage" in buf.getvalue()


# ---- 19. validate: predict's tier by default, progress shown -------------------------------------------------------
def test_validate_default_tier_is_predicts_and_progress_is_reported():
    from tapeout.validate.cases import Case
    from tapeout.validate.runner import DEFAULT_TIER, evaluate
    from tapeout.workload.standalone import gemm_op

    cases = [Case(dataset="d", op_class="gemm", device=dev, ops=(gemm_op(64, 4096, 4096),), measured_s=1e-4)
             for dev in ("a100-sxm-80gb", "tpu-v5e")] * 60

    class Rec:
        def __init__(self):
            self.calls = []

        def start(self, total, done):
            self.calls.append(("start", total, done))

        def advance(self, n=1):
            self.calls.append(("advance", n))

        def stop(self):
            self.calls.append(("stop",))

    rec = Rec()
    ev = evaluate(None, DEFAULT_TIER, cases=cases, progress=rec)
    assert rec.calls[0] == ("start", len(cases), 0) and rec.calls[-1] == ("stop",)
    assert sum(c[1] for c in rec.calls if c[0] == "advance") == len(cases)
    tiled = evaluate(None, "tiled", cases=cases[:1]).results[0].predicted_s
    roof = evaluate(None, "roofline", cases=cases[1:2]).results[0].predicted_s
    assert ev.results[0].predicted_s == tiled and ev.results[1].predicted_s == roof


# ---- 21. smaller items ----------------------------------------------------------------------------------------------
ARGS = ("predict", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--input-len", "256", "--output-len", "8")


@pytest.mark.parametrize("value, want", [("false", False), ("true", True), ("no", False), ("yes", True)])
def test_boolean_flags_take_a_value(capsys, value, want):
    for args in ((*ARGS, "--fuse-residual-norm", value), (*ARGS, f"--fuse-residual-norm={value}")):
        rc, out, err = cli(capsys, *args, "--format", "json")
        assert rc == 0, err
        assert json.loads(out)["inputs"]["fuse_residual_norm"] is want
    rc, out, _ = cli(capsys, *ARGS, "--fuse-residual-norm", "--format", "json")
    assert rc == 0 and json.loads(out)["inputs"]["fuse_residual_norm"] is True
    rc, _, err = cli(capsys, *ARGS, "--fuse-residual-norm=maybe")
    one_line_error(rc, err, "--fuse-residual-norm", "true or false")


def test_version_and_usage_errors_are_one_line(capsys):
    rc, out, _ = cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"tapeout {tapeout.__version__}"
    rc, _, err = cli(capsys, *ARGS, "--batch", "abc")
    one_line_error(rc, err, "--batch")
    rc, _, err = cli(capsys, "predict", "--hardware", "h100-sxm")
    one_line_error(rc, err, "--model")


def test_empty_model_and_device_names_are_errors(capsys):
    rc, _, err = cli(capsys, "predict", "--model", "", "--hardware", "h100-sxm")
    one_line_error(rc, err, "model", "empty")
    rc, _, err = cli(capsys, "predict", "--model", "llama-2-7b", "--hardware", " ")
    one_line_error(rc, err, "hardware", "empty")


def test_compare_to_is_kept_in_csv(capsys):
    rc, out, _ = cli(capsys, *ARGS, "--weights", "int4", "--compare-to", "fp16", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    p = tapeout.predict("llama-2-7b", "h100-sxm", input_len=256, output_len=8, weights="int4", compare_to="fp16")
    assert rc == 0 and [r["run"] for r in rows] == ["technique"] * len(p.ops()) + ["baseline"] * len(p.baseline.ops())
    assert {r["formats"] for r in rows if r["run"] == "baseline" and r["name"] == "qkv_proj"} == {"weights=fp16 act=fp16"}


def test_scenario_layers_beyond_the_model_and_sparse_kernel_without_sparsity_are_errors(tmp_path, capsys):
    n = load_model("llama-2-7b").num_layers
    f = tmp_path / "s.toml"
    f.write_text(f'[[layers]]\nmatch = "mlp"\nlayers = "{n - 2}-{n + 60}"\nweights = "int4"\n')
    rc, _, err = cli(capsys, *ARGS, "--scenario", f)
    one_line_error(rc, err, "layers", f"has {n} layers")
    f.write_text(f'[[layers]]\nmatch = "mlp"\nlayers = "{n - 2}-{n - 1}"\nweights = "int4"\n')
    assert cli(capsys, *ARGS, "--scenario", f)[0] == 0
    rc, _, err = cli(capsys, *ARGS, "--sparse-kernel", "tensor")
    one_line_error(rc, err, "sparse_kernel", "sparsity")
    assert cli(capsys, *ARGS, "--sparse-kernel", "tensor", "--sparsity", "0.5")[0] == 0


def test_the_allowed_dtype_list_names_every_accepted_family():
    from tapeout import dtypes

    with pytest.raises(TapeoutError) as e:
        dtypes.parse("fp9")
    msg = str(e.value)
    for bits in range(2, 9):
        assert dtypes.parse(f"int{bits}").bits == bits and f"int{bits}" in msg
    for bad in ("int1", "int9", "fp2_e1m0", "fp9_e5m3"):
        with pytest.raises(TapeoutError):
            dtypes.parse(bad)
    assert dtypes.parse("fp3_e1m1").bits == 3 and "fp3_e1m1" in msg and "3 <= N <= 8" in msg


def test_help_names_json_device_files_and_vendor_is_optional(tmp_path, capsys):
    rc, out, _ = cli(capsys, "predict", "--help")
    assert rc == 0 and "TOML/YAML/JSON" in " ".join(out.split()).replace("│ ", "").replace(" │", "")
    d = device_dict()
    d.pop("vendor")
    hw = load_hardware(write_json(tmp_path / "chip.json", d))
    assert hw.vendor == "" and hw.peak_tflops == load_hardware("h100-sxm").peak_tflops


def test_show_reads_device_files_and_model_files(capsys):
    rc, out, _ = cli(capsys, "show", ROOT / "examples" / "my-chip.toml", "--format", "json")
    assert rc == 0 and "peak_tflops" in json.loads(out)
    rc, out, _ = cli(capsys, "show", ROOT / "examples" / "config.json", "--format", "json")
    assert rc == 0 and json.loads(out)["num_layers"] == load_model("codellama-34b").num_layers


def test_example_config_matches_its_catalog_model():
    ex, cat = load_model(ROOT / "examples" / "config.json"), load_model("codellama-34b")
    assert ex.total_params() == cat.total_params() and ex.kv_bytes_per_token() == cat.kv_bytes_per_token()


@pytest.mark.parametrize("kw", [{"batch": "4"}, {"batch": True}, {"input_len": 2.0}, {"tp": "2"},
                                {"fuse_residual_norm": 1}, {"output_len": None}])
def test_the_python_api_does_not_coerce_types(kw):
    with pytest.raises(TapeoutError, match=next(iter(kw))):
        tapeout.predict("llama-2-7b", "h100-sxm", **kw)


def test_the_python_api_accepts_numpy_integers():
    p = tapeout.predict("llama-2-7b", "h100-sxm", batch=np.int64(2), input_len=np.int32(256), output_len=8)
    assert p.scenario.batch == 2 and type(p.scenario.batch) is int
