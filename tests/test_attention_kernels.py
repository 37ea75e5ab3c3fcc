"""The typed forward prefill-attention kernel timings (validate/published/attention_kernels.csv) and the attention
main-loop fraction fitted on them (fitted/tiled.toml, ``attention_eta``)."""

from __future__ import annotations

import numpy as np
import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import tiled
from tapeout.hardware.catalog import load_hardware
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.runner import _Devices
from tapeout.validate.sources.attention_kernels import DATASET, benchmark_flops
from tapeout.workload.standalone import attention_op


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, [DATASET])


def _one(cases, kernel, device, b, h, kv, s, d, causal):
    hits = [c for c in cases if (c.op_class, c.device, c.get("batch"), c.get("heads"), c.get("kv_heads"), c.get("seq"),
                                 c.get("d"), c.get("causal")) == (kernel, device, b, h, kv, s, d, causal)]
    assert len(hits) == 1
    return hits[0]


def test_rows_are_the_published_figures(cases):
    assert datasets()[DATASET].shipped and all(c.get("source") and c.get("line") for c in cases)
    # aiter's README: 47 non-causal and 47 causal MI300X forward rows; flash-attention#1791: FA2/FA3 x causal on
    # H100; tritonbench#171 (8) and flash-attention#1589 (6): FA2 on B200; flash-attention#2605: 17 FA4 B200 rows
    by = {}
    for c in cases:
        by[(c.op_class, c.device)] = by.get((c.op_class, c.device), 0) + 1
    assert by == {("aiter-asm", "mi300x"): 94, ("fa2", "h100-sxm"): 2, ("fa3", "h100-sxm"): 2, ("fa2", "b200"): 14,
                  ("fa4", "b200"): 17}
    # printed 585.29 TFLOPS at b8 hq32 hkv8 s8192 d128 non-causal: 4 b h s^2 d / rate
    row = _one(cases, "aiter-asm", "mi300x", 8, 32, 8, 8192, 128, False)
    assert row.measured_s == pytest.approx(4 * 8 * 32 * 8192 ** 2 * 128 / 585.29e12)
    assert "| 8     | 32       | 8         | 8192     | 8192      | 128  | 0      | 585.29" in row.get("line")
    # causal rows divide by the halved count (522.68 TFLOPS at b1 hq32 hkv8 s8192)
    row = _one(cases, "aiter-asm", "mi300x", 1, 32, 8, 8192, 128, True)
    assert row.measured_s == pytest.approx(2 * 32 * 8192 ** 2 * 128 / 522.68e12)
    # a time printed in ms is kept as printed (Fav3 fwd: 0.873ms)
    assert _one(cases, "fa3", "h100-sxm", 2, 16, 16, 8192, 128, True).measured_s == pytest.approx(0.873e-3)
    assert _one(cases, "fa2", "b200", 8, 16, 16, 16384, 128, False).measured_s == pytest.approx(
        4 * 8 * 16 * 16384 ** 2 * 128 / 330.587e12)


def test_fa2_rows_take_the_previous_generation_path_and_causal_is_the_ops_mask(cases):
    fa2 = _one(cases, "fa2", "h100-sxm", 2, 16, 16, 8192, 128, False).ops[0]
    fa3 = _one(cases, "fa3", "h100-sxm", 2, 16, 16, 8192, 128, True).ops[0]
    assert "fa2" in fa2.tags and "causal" not in fa2.tags and "causal" in fa3.tags and "fa2" not in fa3.tags
    # a non-causal op does every query-key pair, a causal one the lower triangle
    assert fa2.flops == pytest.approx(2 * fa3.flops * 8192 / 8193)


def test_attention_op_default_is_the_causal_prefill_of_before():
    op = attention_op(1, 32, 8, 128, sq=1000, prefix=24)
    assert op.tags == ("causal", "flash") and op.flops == pytest.approx(4 * 32 * 128 * (1000 * 24 + 1000 * 1001 / 2))
    assert attention_op(2, 8, 8, 64, sq=1, prefix=100).tags == ("decode",)


def test_a_bad_flop_convention_is_a_one_line_error():
    assert benchmark_flops(1, 1, 4, 2, True, "full") == 4 * 16 * 2
    with pytest.raises(TapeoutError, match="flops_convention"):
        benchmark_flops(1, 1, 4, 2, True, "quarter")


def test_the_fit_writes_attention_eta_with_provenance():
    store = fitted.load("tiled")
    mi = store.subjects["mi300x"]["attention"]
    assert set(mi.values) == {"attention_eta"} and mi.datasets == (DATASET,) and mi.rows == 94
    h100 = store.subjects["h100-sxm"]["attention"]
    assert set(h100.datasets) == {DATASET, "flashattention-h100"}
    # the default is the median over the devices with their own rows (two: their mean)
    default = store.subjects["default"]["attention"].values["attention_eta"]
    assert default == pytest.approx((mi.values["attention_eta"] + h100.values["attention_eta"]) / 2, abs=1e-3)
    assert load_hardware("mi300x").microarch.attention_eta == mi.values["attention_eta"]
    assert load_hardware("h100-pcie").microarch.attention_eta == h100.values["attention_eta"]
    assert load_hardware("a100-sxm-80gb").microarch.attention_eta == default


def test_the_fitted_attention_eta_minimises_mi300xs_error(cases):
    rows = [c for c in cases if c.device == "mi300x"]
    dev = _Devices("catalog")
    eta = load_hardware("mi300x").microarch.attention_eta
    at = {x: tiled.error(rows, dev, attention_eta=x) for x in (eta - 0.02, eta, min(eta + 0.02, 1.0), 1.0)}
    assert at[eta] <= min(at[eta - 0.02], at[min(eta + 0.02, 1.0)])
    assert at[eta] < at[1.0]  # the tile model alone prices aiter's kernel too fast


def test_refitting_mi300x_reproduces_the_stored_value(cases):
    rows = [c for c in cases if c.device == "mi300x" and c.op_class in tiled.ATTENTION_CLASSES]
    dev = _Devices("catalog")
    ua = load_hardware("mi300x").microarch
    held = {"overlap_p": ua.overlap_p, "matrix_eta": ua.matrix_eta, "dram_eta": ua.dram_eta}
    _, p = tiled.coarse_fine(rows, dev, "attention_eta", np.arange(0.40, 1.001, 0.05), (0.05, 0.01, 0.3, 1.0), held)
    assert p["attention_eta"] == pytest.approx(ua.attention_eta)
