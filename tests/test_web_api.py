"""The web API (``tapeout ui``) is a thin wrapper: its JSON equals the CLI's and the Python API's for the same
inputs, bad input is a 422 with the CLI's one line, uploads go through the same readers, and the HTML
reports are self-contained. FastAPI's TestClient, no socket."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tapeout
from tapeout.cli import app as cli_app
from tapeout.datadir import strict

try:
    from fastapi.testclient import TestClient

    from tapeout.web.app import create_app
except ImportError as exc:  # the ui extra is not installed
    if strict():
        raise
    pytest.skip(f"the web API needs the ui extra ({exc.name} missing)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def cli_json(args: list[str]) -> dict:
    r = runner.invoke(cli_app, args + ["--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_predict_equals_the_cli_json(client):
    body = {"model": "llama-2-70b", "hardware": "h100-sxm", "tp": 4, "batch": 8, "input_len": 1024,
            "output_len": 64, "weights": "fp8", "framework": "fastertransformer"}
    r = client.post("/api/predict", json=body)
    assert r.status_code == 200, r.text
    cli = cli_json(["predict", "--model", "llama-2-70b", "--hardware", "h100-sxm", "--tp", "4", "--batch", "8",
                    "--input-len", "1024", "--output-len", "64", "--weights", "fp8", "--framework", "fastertransformer"])
    assert r.json() == cli
    assert r.json()["inputs"]["weights"] == "fp8_e4m3" and r.json()["inputs"]["tp"] == 4


@pytest.mark.parametrize("body, args", [
    ({"batch": 0}, ["--batch", "0"]),
    ({"tp": 3}, ["--tp", "3"]),
    ({"weights": "fp7"}, ["--weights", "fp7"]),
    ({"hardware": "h100-sxn"}, ["--hardware", "h100-sxn"]),
    ({"tier": "exact"}, ["--tier", "exact"]),
    ({"input_len": 1024, "sparse_kernel": "tensor"}, ["--sparse-kernel", "tensor"]),
])
def test_bad_input_is_422_with_the_cli_line(client, body, args):
    base = {"model": "llama-2-7b", "hardware": "a100-sxm-80gb"}
    r = client.post("/api/predict", json={**base, **body})
    assert r.status_code == 422
    detail = r.json()["detail"]
    cli = runner.invoke(cli_app, ["predict", "--model", "llama-2-7b", "--hardware", "a100-sxm-80gb", *args])
    assert cli.exit_code == 2
    assert cli.stderr.strip() == f"error: {detail}"


@pytest.mark.parametrize("body, field", [
    ({"batch": True}, "batch"), ({"batch": "4"}, "batch"), ({"batch": 4.0}, "batch"),
    ({"colour": "red"}, "colour"), ({"efficiency": "high"}, "efficiency"),
])
def test_wrong_types_are_422_one_line_naming_the_field(client, body, field):
    r = client.post("/api/predict", json={"model": "llama-2-7b", "hardware": "a100-sxm-80gb", **body})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and detail.startswith(field), detail


def test_the_request_schema_is_the_api_signature():
    from tapeout.cost.cli import cost_report
    from tapeout.web.schema import request_model

    for fn, skipped in ((tapeout.predict, set()), (tapeout.simulate, {"progress"}), (cost_report, set())):
        params = [p for p in inspect.signature(fn).parameters if p not in skipped]
        fields = list(request_model(fn).model_fields)
        assert fields[:len(params)] == params
        assert set(fields[len(params):]) <= {"model_file", "hardware_file"}
        for name in params:  # the API's defaults, where JSON carries them
            default = inspect.signature(fn).parameters[name].default
            if isinstance(default, (int, str, bool)) or default is None:
                assert request_model(fn).model_fields[name].default == default, name


def test_uploads_go_through_the_importers(client):
    cfg, chip = ROOT / "examples" / "config.json", ROOT / "examples" / "my-chip.toml"
    body = {"model_file": {"name": "config.json", "content": cfg.read_text()},
            "hardware_file": {"name": "my-chip.toml", "content": chip.read_text()}, "batch": 2}
    r = client.post("/api/predict", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == cli_json(["predict", "--model", str(cfg), "--hardware", str(chip), "--batch", "2"])
    # a broken device file: the reader's one line, naming the file
    bad = {"model": "llama-2-7b", "hardware_file": {"name": "chip.toml", "content": "peak_tflops = ["}}
    r = client.post("/api/predict", json=bad)
    assert r.status_code == 422 and "cannot parse chip.toml" in r.json()["detail"]
    # a name and a file for the same spec, or neither
    r = client.post("/api/predict", json={**body, "model": "llama-2-7b"})
    assert r.status_code == 422 and r.json()["detail"].startswith("model: give a name or model_file")
    r = client.post("/api/predict", json={"hardware": "a100-sxm-80gb"})
    assert r.status_code == 422 and r.json()["detail"].startswith("model: missing")
    # a path in the file name is dropped: the upload stays in its temporary folder
    evil = {"model_file": {"name": "../../etc/config.json", "content": cfg.read_text()}, "hardware": "a100-sxm-80gb"}
    assert client.post("/api/predict", json=evil).status_code == 200


def test_catalogs_with_sources(client):
    from tapeout.hardware.catalog import hardware_names
    from tapeout.models.catalog import model_names

    models = client.get("/api/models").json()
    assert [m["name"] for m in models] == model_names() and all(m["source"] for m in models)
    hw = client.get("/api/hardware").json()
    assert [h["name"] for h in hw] == hardware_names()
    assert all(h["sources"].get("memory.bandwidth_gbps") for h in hw)
    h100 = client.get("/api/hardware/h100-sxm").json()
    assert h100 == cli_json(["show", "h100-sxm"]) and h100["sources"]
    assert client.get("/api/hardware/H100_SXM").json() == h100  # the CLI's spellings
    assert client.get("/api/models/meta-llama/Llama-2-7b-hf").json() == cli_json(["show", "llama-2-7b"])
    r = client.get("/api/hardware/h100-sxn")
    assert r.status_code == 404 and "did you mean h100-sxm" in r.json()["detail"]
    assert client.get("/api/hardware/examples%2Fmy-chip.toml").status_code == 404  # catalog only, no files
    r = client.get("/api/models/llama-2-7c")
    assert r.status_code == 404 and "did you mean llama-2-7b" in r.json()["detail"]
    assert client.get("/api/models/examples/config.json").status_code == 404  # catalog only, no files


def test_cost_equals_the_cli(client):
    r = client.post("/api/cost", json={"hardware": "a100-sxm-80gb", "model": "llama-2-70b", "batch": 4})
    assert r.status_code == 200, r.text
    assert r.json() == cli_json(["cost", "a100-sxm-80gb", "--model", "llama-2-70b", "--batch", "4"])
    r = client.post("/api/cost", json={"hardware": "a100-sxm-80gb", "assumptions": {"price": {"nope": 1}}})
    assert r.status_code == 422 and "\n" not in r.json()["detail"]


def test_simulate_equals_the_api_and_carries_the_plots_data(client):
    kw = {"model": "llama-2-7b", "hardware": "a100-sxm-80gb", "num_requests": 60, "rate": 8.0, "seed": 3,
          "input_len": 512, "output_len": 64}
    r = client.post("/api/simulate", json=kw)
    assert r.status_code == 200, r.text
    ref = json.loads(json.dumps(tapeout.simulate(**kw).to_dict()))
    assert r.json() == ref and "series" not in r.json()
    s = client.post("/api/simulate?series=true", json=kw).json()
    assert {k: v for k, v in s.items() if k != "series"} == ref
    for name in ("TTFT", "TPOT", "e2e latency"):
        cdf = s["series"]["latency_cdf"][name]
        assert cdf["fraction"][-1] == 1.0 and cdf["fraction"] == sorted(cdf["fraction"])
        assert cdf["ms"] == sorted(cdf["ms"])
    # the TTFT CDF's median sits at the reported p50 (within the thinned points' spacing)
    ttft = s["series"]["latency_cdf"]["TTFT"]
    i = next(k for k, f in enumerate(ttft["fraction"]) if f >= 0.5)
    assert ttft["ms"][max(i - 1, 0)] <= s["ttft_s"]["p50"] * 1e3 <= ttft["ms"][min(i + 1, len(ttft["ms"]) - 1)]
    (rep,) = s["series"]["over_time"]
    assert max(rep["kv_used"]) <= 1.0 and len(rep["t_s"]) == len(rep["running"])
    assert max(rep["kv_used"]) == pytest.approx(s["kv_utilization"]["max"], abs=0.05)
    r = client.post("/api/simulate", json={**kw, "num_requests": 10**6})
    assert r.status_code == 422 and r.json()["detail"].startswith("num_requests")


def test_capacity_equals_the_cli(client):
    body = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "slo_ttft": 0.5, "slo_tpot": 0.05, "gpus": 1,
            "tps": [1], "max_batches": [64], "input_len": 256, "output_len": 64, "num_requests": 40,
            "tier": "roofline"}
    r = client.post("/api/capacity", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == cli_json(["capacity", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--slo-ttft",
                                 "0.5", "--slo-tpot", "0.05", "--gpus", "1", "--tp", "1", "--max-batch", "64",
                                 "--input-len", "256", "--output-len", "64", "--num-requests", "40",
                                 "--tier", "roofline"])
    assert r.json()["mode"] == "highest_rate" and r.json()["best"]["meets_slo"]
    # no SLO is a one-line 422, as the CLI's error; the server's request cap holds per point
    bad = client.post("/api/capacity", json={"model": "llama-3.1-8b", "hardware": "h100-sxm"})
    assert bad.status_code == 422 and "slo" in bad.json()["detail"] and "\n" not in bad.json()["detail"]
    big = client.post("/api/capacity", json={**body, "num_requests": 10**6})
    assert big.status_code == 422 and big.json()["detail"].startswith("num_requests")


def test_explore_run(client, tmp_path):
    from tapeout.explore import report as rp
    from tapeout.explore.run import run
    from tapeout.explore.space import load_space

    db = tmp_path / "small.db"
    run(load_space(ROOT / "examples" / "small-space.toml"), db, jobs=1)
    r = client.get("/api/explore", params={"db": str(db)})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d == json.loads(json.dumps(rp.to_dict(rp.load_run(db))))
    assert d["points"] == 4 == len(d["rows"]) and d["parameters"] == ["cores", "l2_mb"]
    assert sum(row["pareto"] for row in d["rows"]) == d["pareto_size"] >= 1
    for bad in ("nope.db", "bad\x00name", str(tmp_path)):
        r = client.get("/api/explore", params={"db": bad})
        assert r.status_code == 422 and r.json()["detail"].startswith("report:")


def test_roofline_coordinates_pin_the_datasheet_and_no_op_beats_its_roofs(client):
    # A100 has no fp8 matrix path: fp8 GEMMs compute at its dense fp16 rate, 312 TFLOP/s (A100 datasheet);
    # norms and other vector arithmetic run under its FP32 peak, 19.5 TFLOP/s
    d = client.post("/api/predict", json={"model": "llama-2-7b", "hardware": "a100-sxm-80gb", "batch": 8,
                                          "weights": "fp8", "activations": "fp8"}).json()
    ops = {(o["phase"], o["name"]): o for o in d["ops"]}
    assert ops["prefill", "qkv_proj"]["ceiling"] == "fp16" and ops["prefill", "qkv_proj"]["ceiling_tflops"] == 312
    assert ops["prefill", "attn_norm"]["ceiling"] == "vector fp32" and ops["prefill", "attn_norm"]["ceiling_tflops"] == 19.5
    assert ops["prefill", "embedding"]["ceiling"] is None  # a gather: data movement
    # H100 has one: fp8 GEMMs run under its fp8 peak
    h = client.post("/api/predict", json={"model": "llama-2-7b", "hardware": "h100-sxm", "weights": "fp8",
                                          "activations": "fp8"}).json()
    qkv = next(o for o in h["ops"] if o["name"] == "qkv_proj")
    assert qkv["ceiling"] == "fp8" and qkv["ceiling_tflops"] == h["hardware_info"]["peak_tflops"]["fp8"]
    for pred in (d, h):
        bw = pred["hardware_info"]["memory_bandwidth_gbps"] / 1e3
        for o in pred["ops"]:
            if o["ceiling_tflops"] is None or not o["flops"]:
                continue
            assert o["achieved_tflops"] <= o["ceiling_tflops"] * (1 + 1e-9), o["name"]
            assert o["achieved_tflops"] <= o["intensity"] * bw * (1 + 1e-9), o["name"]


def test_page_and_assets_are_served_from_the_package(client):
    page = client.get("/").text
    assert '<script src="/static/app.js"' in page and "http://" not in page and "https://" not in page
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert not re.search(r"https?://", js.text)  # no CDN, no remote asset
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and "Plotly" in plotly.text[:5000]
    assert client.get("/static/secret.py").status_code == 404
    assert set(client.get("/openapi.json").json()["paths"]) >= {
        "/api/predict", "/api/simulate", "/api/capacity", "/api/cost", "/api/models", "/api/hardware",
        "/api/hardware/{name}"}


def _report_data(html: str) -> dict:
    m = re.search(r"<script>window\.TAPEOUT_REPORT = (.*?);</script>", html, flags=re.S)
    assert m, "the report carries its data"
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_predict_html_report_is_self_contained(tmp_path):
    out = tmp_path / "sub" / "report.html"
    args = ["predict", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--tp", "2", "--batch", "4"]
    r = runner.invoke(cli_app, args + ["--html", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    from tapeout.report.html import plotly_js

    ours = html.replace(plotly_js().replace("</", "<\\/"), "")  # plotly.js itself links to its docs in tooltips
    assert len(ours) < 1e6 and not re.search(r"""(src|href)=["']?https?:""", ours)  # nothing to fetch
    assert _report_data(html) == {"kind": "predict", "prediction": cli_json(args)}
    r = runner.invoke(cli_app, args + ["--html", str(tmp_path)])  # a folder: one line, status 2
    assert r.exit_code == 2 and r.stderr.startswith("error: html: cannot write")


def test_explore_html_report(tmp_path):
    from tapeout.explore import report as rp
    from tapeout.explore.run import run
    from tapeout.explore.space import load_space

    db = tmp_path / "small.db"
    run(load_space(ROOT / "examples" / "small-space.toml"), db, jobs=1)
    r = runner.invoke(cli_app, ["explore", "--report", str(db), "--html", str(tmp_path / "x.html")])
    assert r.exit_code == 0, r.output
    data = _report_data((tmp_path / "x.html").read_text())
    assert data == {"kind": "explore", "run": json.loads(json.dumps(rp.to_dict(rp.load_run(db))))}
    r = runner.invoke(cli_app, ["explore", str(ROOT / "examples" / "small-space.toml"), "--html", "x.html"])
    assert r.exit_code == 2 and "goes with --report" in r.stderr


def test_ui_binds_localhost_and_prints_its_url(monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(host=host, port=port, app=app))
    r = runner.invoke(cli_app, ["ui"])
    assert r.exit_code == 0, r.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    assert "http://127.0.0.1:8000/" in r.stdout
    r = runner.invoke(cli_app, ["ui", "--port", "0"])
    assert r.exit_code == 2 and "port" in r.stderr
