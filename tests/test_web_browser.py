"""The page in a real browser: Playwright driving Debian's Chromium (``apt-get install chromium``; nothing is
downloaded at test time). The app is served by uvicorn on a free loopback port in a background thread.

Pick a model and a device and run: the numbers on the page equal ``/api/predict``'s JSON and the CLI's;
Compare; Exploration (a tiny stored run); Serving; the offline report with the network disabled.
Screenshots go to ``test-artifacts/`` (git-ignored); the first render time is printed, not asserted.
Without Chromium or Playwright these tests skip, and fail with ``CI=true``.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapeout.cli import app as cli_app
from tapeout.datadir import strict
from tapeout.report import fmt

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def _missing(msg: str) -> None:
    if strict():
        pytest.fail(f"{msg}; CI=true: the browser tests must run", pytrace=False)
    pytest.skip(msg, allow_module_level=True)


try:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from tapeout.web.app import create_app
except ImportError as exc:
    _missing(f"browser tests need the ui and test extras ({exc.name} missing)")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    _missing(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def server() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"))
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - the loopback server of this test
        return json.loads(r.read())


def cli_json(args: list[str]) -> dict:
    r = CliRunner().invoke(cli_app, args + ["--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def metrics(pg, where: str = "#summary") -> dict[str, tuple[float, str]]:
    """data-key -> (data-value, shown text) of the metric cards."""
    return {m["key"]: (float(m["value"]), m["text"]) for m in pg.eval_on_selector_all(
        f"{where} .metric", "els => els.map(e => ({key: e.dataset.key, value: e.dataset.value, "
        "text: e.querySelector('.value').textContent}))")}


def check_prediction_shown(pg, d: dict) -> None:
    shown = metrics(pg)
    for key in ("ttft_s", "tpot_s", "e2e_latency_s"):
        assert shown[key] == (d[key], fmt.seconds(d[key])), key
    assert shown["throughput_tok_s"][0] == d["throughput_tok_s"]
    assert shown["throughput_tok_s"][1] == f"{d['throughput_tok_s']:.1f} tok/s"
    assert shown["memory.total_bytes"] == (d["memory"]["total_bytes"], fmt.nbytes(d["memory"]["total_bytes"]))
    assert shown["memory.max_batch"][0] == d["memory"]["max_batch"]
    rows = pg.eval_on_selector_all("#ops-table tbody tr", "trs => trs.map(tr => Object.fromEntries("
                                   "[...tr.children].map(td => [td.dataset.key, td.dataset.v])))")
    assert len(rows) == len(d["ops"])
    for row, op in zip(rows, d["ops"]):
        assert (row["phase"], row["name"], row["bound"]) == (op["phase"], op["name"], op["bound"])
        assert float(row["total_s"]) == op["total_s"] and float(row["compute_s"]) == op["compute_s"]


def test_predict_page_matches_the_api_and_the_cli(server, page):
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60000)
    timing = page.evaluate("window.TAPEOUT_TIMING")
    fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")
    print(f"\nfirst render of the page, ms after navigation: first contentful paint {fcp:.0f}, inputs filled from the "
          f"catalogs {timing['inputsMs']:.0f}, default prediction shown {timing['sinceNavigationMs']:.0f} (a cold server)")
    page.select_option("#model", "llama-2-70b")
    page.select_option("#hardware", "h100-sxm")
    for sel, v in (("#tp", "4"), ("#batch", "8"), ("#input_len", "1024"), ("#output_len", "64"), ("#weights", "fp8")):
        page.fill(sel, v)
    page.click("#run")
    page.wait_for_selector("#results[data-runs='2']", state="attached", timeout=60000)
    body = {"model": "llama-2-70b", "hardware": "h100-sxm", "batch": 8, "input_len": 1024, "output_len": 64, "tp": 4,
            "pp": 1, "ep": 1, "weights": "fp8", "framework": "kernels", "attention": "flash"}
    d = post(server + "/api/predict", body)
    assert d == cli_json(["predict", "--model", "llama-2-70b", "--hardware", "h100-sxm", "--batch", "8", "--input-len",
                          "1024", "--output-len", "64", "--tp", "4", "--weights", "fp8"])
    assert page.text_content("#headline") == "llama-2-70b on 4 x h100-sxm"
    check_prediction_shown(page, d)
    # the table sorts and filters
    page.click("#ops-table th:has-text('total')")
    page.click("#ops-table th:has-text('total')")  # descending
    first = page.eval_on_selector("#ops-table tbody tr", "tr => tr.querySelector('[data-key=total_s]').dataset.v")
    assert float(first) == max(o["total_s"] for o in d["ops"])
    page.fill("#op-filter", "attention")
    page.select_option("#op-phase", "decode")
    visible = page.eval_on_selector_all("#ops-table tbody tr:not([hidden])", "trs => trs.length")
    assert visible == sum(1 for o in d["ops"] if o["phase"] == "decode" and "attention" in (o["name"] + o["kind"]))
    page.fill("#op-filter", "")
    page.select_option("#op-phase", "")
    # the charts: a roof per compute format used and the prefill and decode ops under them
    page.wait_for_selector("body[data-charts='1']", state="attached", timeout=60000)
    names = page.evaluate("document.getElementById('roofline').data.map(t => t.name)")
    roofs = {n.split(" roof ")[0] for n in names if " roof " in n}
    assert "prefill ops" in names and "decode ops" in names
    assert roofs == {o["ceiling"] for o in d["ops"] if o["ceiling"] and o["achieved_tflops"]} == {"fp16", "vector fp32"}
    page.screenshot(path=str(ARTIFACTS / "predict.png"), full_page=True)
    # an error is one line in the status, the last results stay
    page.fill("#tp", "3")
    page.click("#run")
    page.wait_for_selector("#status.error", timeout=30000)
    assert "does not divide" in page.text_content("#status")


def test_compare_mode(server, page):
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60000)
    page.select_option("#model", "llama-2-13b")
    page.select_option("#hardware", "a100-sxm-80gb")
    page.click("#add-compare")
    page.wait_for_selector("#compare-table[data-count='1']", state="attached", timeout=30000)
    page.select_option("#hardware", "h100-sxm")
    page.fill("#weights", "fp8")
    page.click("#add-compare")
    page.wait_for_selector("#compare-table[data-count='2']", state="attached", timeout=30000)
    page.click("#tabs button[data-view='compare']")
    assert page.is_visible("#compare-table table")
    cells = page.eval_on_selector_all("#compare-table tbody tr", "trs => trs.map(tr => [...tr.children].map("
                                      "td => [td.textContent, td.className, td.dataset.v]))")
    rows = {r[0][0]: r[1:] for r in cells}
    assert rows["hardware"][0][0] == "a100-sxm-80gb" and rows["hardware"][1][1] == "diff"
    assert rows["model"][1][1] == ""  # the same model: not highlighted
    a = post(server + "/api/predict", {"model": "llama-2-13b", "hardware": "a100-sxm-80gb"})
    h = post(server + "/api/predict", {"model": "llama-2-13b", "hardware": "h100-sxm", "weights": "fp8"})
    assert float(rows["TTFT"][0][2]) == a["ttft_s"] and float(rows["TTFT"][1][2]) == h["ttft_s"]
    assert rows["TTFT"][1][1] == ("better" if h["ttft_s"] < a["ttft_s"] else "worse")
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from tapeout.explore.run import run
    from tapeout.explore.space import load_space

    db = tmp_path_factory.mktemp("explore") / "small.db"
    run(load_space(ROOT / "examples" / "small-space.toml"), db, jobs=1)
    return db


def test_open_a_stored_exploration_run(server, page, tiny_run):
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60000)
    page.click("#tabs button[data-view='explore']")
    page.fill("#explore-db", str(tiny_run))
    page.click("#explore-open")
    page.wait_for_selector("#front-table tbody tr", timeout=30000)
    page.wait_for_selector("#pareto .scatterlayer .point", timeout=60000)
    run = json.loads(urllib.request.urlopen(  # noqa: S310 - loopback
        server + "/api/explore?db=" + urllib.parse.quote(str(tiny_run)), timeout=60).read())
    # click a Pareto point on the plot: its design and prediction show
    point = page.query_selector_all("#pareto .scatterlayer .trace:last-child .point")[0]
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y, steps=5)  # plotly picks the point under the pointer on hover, then the click is its
    page.wait_for_selector("#pareto .hoverlayer .hovertext", state="attached", timeout=10000)
    page.mouse.click(x, y)
    page.wait_for_selector("#design-title", timeout=30000)
    i = int(page.get_attribute("#design-title", "data-index"))
    r = run["rows"][i]
    assert r["pareto"]
    shown = dict(page.eval_on_selector_all("#design td[data-key]", "tds => tds.map(td => [td.dataset.key, td.dataset.v])"))
    assert int(shown["cores"]) == r["cores"] and float(shown["chat.ttft_s"]) == r["chat.ttft_s"]
    assert float(shown["device_cost_usd"]) == r["device_cost_usd"]
    page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)


#: what the serving form sends with the page's defaults (Predict's inputs, then the form's)
SERVING_FORM = {"model": "llama-2-7b", "hardware": "a100-sxm-80gb", "tp": 1, "pp": 1, "ep": 1, "framework": "kernels",
                "attention": "flash", "scheduler": "continuous", "max_batch": 256, "input_len": 2048, "output_len": 128}


def test_serving_view(server, page):
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60000)
    page.click("#tabs button[data-view='serving']")
    page.fill("#num_requests", "40")
    page.fill("#rate", "5")
    page.click("#simulate")
    page.wait_for_selector("#serving-summary", timeout=60000)
    s = post(server + "/api/simulate", {**SERVING_FORM, "num_requests": 40, "rate": 5})
    shown = metrics(page, "#serving-summary")
    assert shown["ttft_s.p50"][0] == s["ttft_s"]["p50"] and shown["tpot_s.p50"][0] == s["tpot_s"]["p50"]
    assert shown["kv_utilization.max"][0] == s["kv_utilization"]["max"]
    page.wait_for_selector("#cdf .scatterlayer", timeout=60000)
    page.screenshot(path=str(ARTIFACTS / "serving.png"), full_page=True)


def test_serving_form_offers_every_prefill_pass_and_kv_policy(server, page):
    """The serving form's prefill-pass and KV-policy selects list ServingInputs' choices, start at simulate's
    defaults, and what is picked reaches /api/simulate: TurboMind v0.1's separate context passes shown equal the
    API's numbers for them, and the engine line says so."""
    from tapeout.serving.inputs import KV_POLICIES, PREFILL_PASSES, ServingInputs

    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60000)
    page.click("#tabs button[data-view='serving']")
    for sel, allowed in (("#prefill_pass", PREFILL_PASSES), ("#kv_policy", KV_POLICIES)):
        assert page.eval_on_selector_all(sel + " option", "os => os.map(o => o.value)") == list(allowed)
        assert page.input_value(sel) == ServingInputs.model_fields[sel[1:]].default
    page.fill("#num_requests", "30")
    page.fill("#rate", "4")
    page.select_option("#prefill_pass", "separate")
    page.select_option("#kv_policy", "turbomind")
    page.click("#simulate")
    page.wait_for_selector("#serving-engine", timeout=60000)
    s = post(server + "/api/simulate", {**SERVING_FORM, "num_requests": 30, "rate": 4, "prefill_pass": "separate",
                                        "kv_policy": "turbomind"})
    fused = post(server + "/api/simulate", {"model": "llama-2-7b", "hardware": "a100-sxm-80gb", "num_requests": 30,
                                            "rate": 4, "input_len": 2048, "output_len": 128, "kv_policy": "turbomind"})
    shown = metrics(page, "#serving-summary")
    assert shown["ttft_s.p50"][0] == s["ttft_s"]["p50"] != fused["ttft_s"]["p50"]
    assert "separate prefill" in page.text_content("#serving-engine")
    assert "turbomind KV" in page.text_content("#serving-engine")


def test_the_report_opens_offline(browser, tmp_path):
    out = tmp_path / "report.html"
    args = ["predict", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--tp", "2", "--batch", "4"]
    r = CliRunner().invoke(cli_app, args + ["--html", str(out)])
    assert r.exit_code == 0, r.output
    ctx = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    requested: list[str] = []
    ctx.route("**/*", lambda route: (requested.append(route.request.url), route.abort()
                                     if not route.request.url.startswith("file:") else route.continue_()))
    pg = ctx.new_page()
    pg.goto(out.as_uri())
    pg.wait_for_selector("body[data-charts='1']", state="attached", timeout=60000)
    print(f"\nfirst render of the offline report: {pg.evaluate('window.TAPEOUT_TIMING')['sinceNavigationMs']:.0f} ms")
    assert [u for u in requested if not u.startswith("file:")] == []
    check_prediction_shown(pg, cli_json(args))
    assert pg.evaluate("document.getElementById('roofline').data.length") >= 3
    pg.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    ctx.close()
