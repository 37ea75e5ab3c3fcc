"""The typed decode-attention kernel timings (validate/published/decode_attention_kernels.csv) and the per-device
fixed work of a decode tile fitted on them (fitted/tiled.toml, ``decode_tile_latencies``)."""

from __future__ import annotations

import numpy as np
import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import tiled
from tapeout.hardware.catalog import load_hardware
from tapeout.validate import cases as cases_mod
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.runner import _Devices
from tapeout.validate.sources import decode_attention_kernels as src
from tapeout.validate.sources.decode_attention_kernels import DATASET


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, [DATASET])


def test_rows_are_the_published_figures(cases):
    assert datasets()[DATASET].shipped and all(c.get("source") and c.get("line") for c in cases)
    # onnxruntime#21414, 'FA2 - paged batch decode' / 'H100 SMX' / 'llama3 70B (GQA8) page_size=256': 4 fitted rows;
    # the MHA tables that follow it (1 and 64 sequences x 32..512 keys): 10 checks
    assert sorted((c.op_class, c.device, c.get("heads"), c.get("kv_heads"), c.get("batch"), c.get("context"))
                  for c in cases) == sorted(
        [("fa2-paged", "h100-sxm", 64, 8, 64, s) for s in (32, 64, 128, 256)]
        + [("fa2-paged-check", "h100-sxm", 32, 32, b, s) for b in (1, 64) for s in (32, 64, 128, 256, 512)])
    row = next(c for c in cases if c.get("context") == 256 and c.get("kv_heads") == 8)
    assert row.measured_s == pytest.approx(43.563e-6)  # GPU Time, as printed
    assert "|       64 |     256 |        64 |            8 |       128 |       256 |  65.000 MiB" in row.get("line")
    assert row.harness == cases_mod.KERNEL  # device-side timer: no host term
    op = row.ops[0]
    assert "decode" in op.tags and op.dims()["sq"] == 1 and op.dims()["skv"] == 256
    # the printed Read column is the K/V cache plus the query: 65.000 MiB at 16-bit K/V (MHA, 64 x 512: 512.500 MiB)
    assert op.bytes_read == pytest.approx(65 * 2 ** 20)
    mha = next(c for c in cases if (c.get("batch"), c.get("context"), c.get("heads")) == (64, 512, 32))
    assert mha.ops[0].bytes_read == pytest.approx(512.5 * 2 ** 20) and mha.measured_s == pytest.approx(194.181e-6)


def test_only_rows_marked_fitted_enter_the_fit(cases):
    fit_rows = [c for c in cases if c.op_class in tiled.DECODE_SETS[DATASET]]
    assert len(fit_rows) == 4 and all(c.get("kv_heads") == 8 for c in fit_rows)
    assert src.op_class("fa2-paged", "false") == "fa2-paged-check"
    with pytest.raises(TapeoutError, match="fitted 'yes'; allowed: true, false"):
        src.op_class("fa2-paged", "yes")


def test_an_unknown_kernel_is_a_one_line_error(tmp_path, monkeypatch):
    text = (cases_mod.PUBLISHED_DIR / "decode_attention_kernels.csv").read_text()
    header, first = text.splitlines()[:2]
    (tmp_path / "decode_attention_kernels.csv").write_text(header + "\n" + first.replace(",fa2-paged,", ",xqa,") + "\n")
    monkeypatch.setattr(src, "PUBLISHED_DIR", tmp_path)
    with pytest.raises(TapeoutError, match="kernel 'xqa'; allowed: fa2-paged"):
        src.load_decode_attention_kernels(tmp_path)


def test_each_device_with_rows_has_its_own_decode_fit_and_the_default_is_their_median():
    store = fitted.load("tiled")
    own = {d: s["decode"] for d, s in store.subjects.items() if "decode" in s and not s["decode"].method.startswith(
        "carried")}
    assert set(own) == {"default", "a100-pcie-80gb", "h100-sxm"}
    assert own["h100-sxm"].datasets == (DATASET,) and own["h100-sxm"].rows == 4
    assert own["a100-pcie-80gb"].datasets == ("vidur-attention",)
    a100, h100 = (own[d].values["decode_tile_latencies"] for d in ("a100-pcie-80gb", "h100-sxm"))
    assert own["default"].values["decode_tile_latencies"] == pytest.approx(np.median([a100, h100]), abs=1e-3)
    # the same die and kernel: the parts of H100's and A100's dies take their value (a count of dependent-load
    # latencies: clocks and power class do not change it); a device without rows takes the default
    for sib in ("h200", "h800-sxm", "gh200", "h100-pcie"):
        assert load_hardware(sib).microarch.decode_tile_latencies == h100
    for sib in ("a100-sxm-80gb", "a100-sxm-40gb", "a800-sxm-80gb"):
        assert load_hardware(sib).microarch.decode_tile_latencies == a100
    default = own["default"].values["decode_tile_latencies"]
    assert {load_hardware(d).microarch.decode_tile_latencies for d in ("mi300x", "l40s", "a40")} == {default}


def test_the_fitted_value_minimises_h100s_error_and_stays_in_range(cases):
    cases = [c for c in cases if c.op_class == "fa2-paged"]
    dev = _Devices("catalog")
    x = load_hardware("h100-sxm").microarch.decode_tile_latencies
    at = {v: tiled.error(cases, dev, decode_tile_latencies=v) for v in (x - 0.25, x, x + 0.25, 0.0)}
    assert at[x] <= min(at[x - 0.25], at[x + 0.25])
    assert at[0.0] > at[x]  # without a fixed work per tile the model prices these short contexts far too fast
    # every row is within 30 % at the fitted value (the short-context rows of a 64-sequence batch)
    pred = tiled.predict(cases, dev, decode_tile_latencies=x)
    meas = np.array([c.measured_s for c in cases])
    assert np.all(np.abs(pred / meas - 1.0) < 0.3)
