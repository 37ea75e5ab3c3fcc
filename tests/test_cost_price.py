"""Cost model: wafer geometry, yield, traceable assumptions, overrides, the `cost` command."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from tapeout.cost import price as cp
from tapeout.cost.assumptions import Assumptions
from tapeout.cost.cli import app, cost_report
from tapeout.errors import TapeoutError
from tapeout.hardware.catalog import load_hardware

from test_cost_area import device


def test_dies_per_wafer_formula():
    a = Assumptions.load()
    d = 300 - 2 * 3.0
    for area in (100.0, 826.0):
        A = (math.sqrt(area) + 0.1) ** 2
        want = math.pi * (d / 2) ** 2 / A - math.pi * d / math.sqrt(2 * A)
        assert cp.dies_per_wafer(area, a) == pytest.approx(want)
    assert 55 < cp.dies_per_wafer(826, a) < 65


def test_yield_models():
    ad = 800 / 100 * 0.1  # 0.8 defects per die
    assert cp.yield_fraction(800, 0.1, "poisson") == pytest.approx(math.exp(-ad))
    assert cp.yield_fraction(800, 0.1, "murphy") == pytest.approx(((1 - math.exp(-ad)) / ad) ** 2)
    assert cp.yield_fraction(800, 0.1, "seeds") == pytest.approx(1 / (1 + ad))
    assert cp.yield_fraction(800, 0.1, "negative_binomial", 3.0) == pytest.approx((1 + ad / 3) ** -3)
    assert cp.yield_fraction(100, 0.1, "murphy") > cp.yield_fraction(800, 0.1, "murphy")
    with pytest.raises(TapeoutError, match="yield model"):
        cp.yield_fraction(800, 0.1, "magic")
    # a nearly defect-free process: every model's yield tends to 1 from below, never above it (Murphy's
    # (1 - e^-AD) / AD loses its digits for tiny AD when computed naively: 1.0000144 at 1e-13 per cm2)
    for model in cp.YIELD_MODELS:
        for d0 in (1e-16, 1e-13, 1e-10, 1e-7):
            y = cp.yield_fraction(826, d0, model)
            assert 0.999 < y <= 1.0, (model, d0, y)
    # spare cores raise the yield of a big die
    plain = cp.harvested_yield(826, 3.75, 128, 0, 0.09, "murphy", 3)
    harvested = cp.harvested_yield(826, 3.75, 128, 20, 0.09, "murphy", 3)
    assert harvested > plain


def test_a100_cost_is_traceable():
    a = Assumptions.load()
    r = cp.estimate(device("a100-sxm-80gb"), a)
    d = r.to_dict()
    np_ = a.node_price("N7")
    assert r.die_cost_usd == pytest.approx(np_["wafer_usd"] / (r.dies_per_wafer * r.yield_fraction))
    assert r.memory_cost_usd == pytest.approx(80 * a.memory("HBM2e")["usd_per_gb"])
    pk = a.price("packaging")
    packaged = (r.die_cost_usd + r.memory_cost_usd + r.packaging_cost_usd) / pk["package_yield"]
    assert r.device_cost_usd == pytest.approx(packaged + r.board_cost_usd)
    assert d["assumptions"]["yield"]["spare_cores"] == 20  # 128 SMs on GA100, 108 enabled
    # every assumption table used carries its source
    for k in ("node", "wafer", "yield", "memory", "packaging", "board", "margin", "power", "operations"):
        tbl = d["assumptions"][k]
        assert "source" in tbl or "price_source" in tbl or "source" in tbl.get("price", {}), k
    assert d["assumptions"]["memory"]["price_source"]
    for c in d["assumptions"]["area_coefficients"].values():
        assert c["source"]


def test_overrides_change_the_numbers_and_typos_fail(tmp_path):
    hw = device("a100-sxm-80gb")
    base = cp.estimate(hw)
    dear = cp.estimate(hw, {"memory": {"HBM2e": {"usd_per_gb": 14.0}}})
    assert dear.memory_cost_usd == pytest.approx(2 * base.memory_cost_usd)
    assert dear.assumptions["overridden"] == ["memory.HBM2e.usd_per_gb"]
    margin = cp.estimate(hw, {"price": {"margin": {"vendor_gross_margin": 0.75}}})
    assert margin.device_cost_usd == pytest.approx(4 * base.device_cost_usd)
    f = tmp_path / "a.toml"
    f.write_text('[price.nodes.N7]\nwafer_usd = 18692\n')
    assert cp.estimate(hw, str(f)).die_cost_usd == pytest.approx(2 * base.die_cost_usd)
    with pytest.raises(TapeoutError, match="unknown assumption 'price.wafer.diametre_mm'"):
        Assumptions.load({"price": {"wafer": {"diametre_mm": 200}}})
    with pytest.raises(TapeoutError, match="must be a number"):
        Assumptions.load({"price": {"wafer": {"diameter_mm": "big"}}})
    with pytest.raises(TapeoutError, match="unknown sections"):
        Assumptions.load({"prices": {}})


def test_power_model_is_calibrated_on_a100():
    a = Assumptions.load()
    hw = device("a100-sxm-80gb")
    t = cp.modelled_power_w(hw, 826.0, "N7", a)
    assert t["total"] == pytest.approx(400, rel=0.01)
    h = cp.modelled_power_w(device("h100-sxm"), 814.0, "N4", a)
    assert h["total"] == pytest.approx(700, rel=0.05)


def test_perf_per_dollar_and_dollars_per_mtok():
    r = cp.estimate(device("a100-sxm-80gb"))
    assert r.perf_per_dollar(1000.0) == pytest.approx(1000 / r.device_cost_usd)
    assert r.usd_per_mtok(1000.0) == pytest.approx(r.usd_per_hour / 3.6e6 * 1e6)
    assert r.usd_per_mtok(0.0) == math.inf


def test_datasheet_estimate_is_flagged_and_missing_data_errors(tmp_path):
    hw = load_hardware("a100-sxm-80gb").model_copy(update={"microarch": None})
    r = cp.estimate(hw)
    assert r.area_source == "datasheet" and r.area_mm2 == 826 and "datasheet" in r.estimate_note
    assert r.to_dict()["components_mm2"] == {}
    with pytest.raises(TapeoutError, match="neither"):
        cp.estimate(load_hardware("b200").model_copy(update={"microarch": None}))


def test_cost_command_json():
    res = CliRunner().invoke(app, ["cost", "a100-sxm-80gb", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    for k in ("area_mm2", "components_mm2", "die_cost_usd", "device_cost_usd", "assumptions"):
        assert k in d
    assert set(d["components_mm2"]) >= {"cores", "l2", "memory_phy", "memory_controller", "on_chip_network",
                                        "link_phy", "link_controller", "other"}
    res = CliRunner().invoke(app, ["cost", "a100-sxm-80gb"])
    assert res.exit_code == 0 and "device cost" in res.output


def test_cost_command_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(app, ["cost", "b200"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["cost", "a40"])  # Samsung 8N: no density data
    assert res.exit_code == 2 and "process node" in res.output
    f = tmp_path / "bad.toml"
    f.write_text("[price.wafer]\ndiametre_mm = 1\n")
    res = CliRunner().invoke(app, ["cost", "a100-sxm-80gb", "--assumptions", str(f)])
    assert res.exit_code == 2 and "diametre_mm" in res.output


def test_cost_with_a_workload():
    d = cost_report("a100-sxm-80gb", model="llama-2-7b", batch=8, input_len=512, output_len=64)
    perf = d["performance"]
    assert perf["fits"] and perf["throughput_tok_s_per_device"] > 0
    assert perf["usd_per_mtok"] == pytest.approx(d["usd_per_hour"] / (perf["throughput_tok_s_per_device"] * 3600) * 1e6)
