"""The CLI: JSON parity with the API, formats, and one-line errors with exit code 2."""

import csv
import io
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import tapeout
from tapeout.cli import app

runner = CliRunner()
ARGS = ["predict", "--model", "llama-2-70b", "--hardware", "h100-sxm", "--tp", "4", "--batch", "2",
        "--input-len", "2048", "--output-len", "64"]


def test_json_equals_api_to_dict():
    r = runner.invoke(app, ARGS + ["--format", "json"])
    assert r.exit_code == 0, r.output
    api = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, batch=2, input_len=2048, output_len=64).to_dict()
    assert json.loads(r.stdout) == json.loads(json.dumps(api))


def test_table_and_csv():
    r = runner.invoke(app, ARGS)
    assert r.exit_code == 0, r.output
    # the summary alone by default; the per-op tables with --ops
    assert "TTFT" in r.stdout and "qkv_proj" not in r.stdout and "--ops" in r.stdout
    r = runner.invoke(app, ARGS + ["--ops"])
    assert r.exit_code == 0, r.output
    assert "TTFT" in r.stdout and "qkv_proj" in r.stdout
    assert r.stdout.index("TTFT") < r.stdout.index("qkv_proj")
    r = runner.invoke(app, ARGS + ["--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row["phase"] for row in rows} == {"prefill", "decode"}
    assert any(row["name"] == "tp_allreduce" for row in rows)
    # the columns are the JSON's per-op rows' keys (one definition), terms (a mapping) excepted
    ops = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, batch=2, input_len=2048, output_len=64).to_dict()["ops"]
    assert list(rows[0]) == [k for k in ops[0] if k != "terms"] and len(rows) == len(ops)
    assert [(r["name"], float(r["time_s"]), r["ceiling"]) for r in rows] == [
        (o["name"], o["time_s"], o["ceiling"] or "") for o in ops]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--batch", "0"], "batch"),
        (["--weights", "fp7"], "weights"),
        (["--tp", "3"], "tp"),
    ],
)
def test_bad_input_exit_2_one_line(extra, needle):
    r = runner.invoke(app, ARGS + extra)
    assert r.exit_code == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


def test_unknown_model_names_closest(tmp_path):
    r = runner.invoke(app, ["predict", "--model", "lama-2-70b", "--hardware", "h100-sxm"])
    assert r.exit_code == 2 and "llama-2-70b" in r.stderr


def test_malformed_hardware_file(tmp_path):
    f = tmp_path / "chip.toml"
    f.write_text('name = "x"\nvendor = "me"\n[memory]\nkind = "HBM3"\ncapacity_gb = -1\nbandwidth_gbps = 1000\n'
                 '[peak_tflops]\nfp16 = 100\n')
    r = runner.invoke(app, ["predict", "--model", "llama-2-7b", "--hardware", str(f)])
    assert r.exit_code == 2 and "capacity_gb" in r.stderr


def test_user_hardware_file_is_used(tmp_path):
    f = tmp_path / "chip.yaml"
    f.write_text("name: my-chip\nvendor: me\nmemory: {kind: HBM3, capacity_gb: 96, bandwidth_gbps: 4000}\n"
                 "peak_tflops: {fp16: 1000, fp32: 60}\n")
    r = runner.invoke(app, ["predict", "--model", "llama-2-7b", "--hardware", str(f), "-f", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["inputs"]["hardware"] == "my-chip"


def test_catalog_listings_and_show():
    for cmd in (["models"], ["hardware"], ["show", "llama-3.1-405b"], ["show", "h100-sxm"]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["show", "h100-sxm", "-f", "json"])
    assert json.loads(r.stdout)["sources"]
    r = runner.invoke(app, ["show", "no-such-thing"])
    assert r.exit_code == 2


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "tapeout.cli", "predict", "--model", "llama-2-7b", "--hardware",
                        "a100-sxm-80gb", "--batch", "-1"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error:")


def test_import_is_light():
    code = "import sys, tapeout; print(any(m in sys.modules for m in ('pydantic', 'numpy', 'rich', 'typer')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False"
