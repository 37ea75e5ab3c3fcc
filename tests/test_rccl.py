"""The typed RCCL all-reduce timings on 8x MI300X (validate/published/rccl_mi300x.csv) and the collective values
fitted on them (fitted/tiled.toml and fitted/roofline.toml, ``[mi300x.collective*]``)."""

from __future__ import annotations

import numpy as np
import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import roofline, tiled
from tapeout.hardware.catalog import load_hardware
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.runner import _Devices
from tapeout.validate.sources import rccl
from tapeout.validate.sources.rccl import DATASET, FIT_CLASS, op_class


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, [DATASET])


def _one(cases, nbytes, mode="eager", placement="out-of-place"):
    hits = [c for c in cases if (c.get("bytes"), c.get("mode"), c.get("placement")) == (nbytes, mode, placement)]
    assert len(hits) == 1
    return hits[0]


def test_rows_are_the_published_figures(cases):
    assert datasets()[DATASET].shipped and all(c.device == "mi300x" and c.get("group") == 8 for c in cases)
    # 32 sizes (8 B to 16 GiB, x2) x eager/graph x out-of-place/in-place
    assert len(cases) == 128
    assert _one(cases, 2 ** 20).measured_s == pytest.approx(27.42e-6)
    assert _one(cases, 16 * 2 ** 30).measured_s == pytest.approx(94254e-6)
    assert _one(cases, 32, mode="graph").measured_s == pytest.approx(6.32e-6)
    assert _one(cases, 4 * 2 ** 20, placement="in-place").measured_s == pytest.approx(129.0e-6)


def test_times_agree_with_the_printed_bandwidths(cases):
    # rccl-tests prints algbw = size / time and busbw = algbw x 2(n-1)/n: a typo in any typed time shows here
    for c in cases:
        size, busbw = c.get("bytes"), c.get("busbw_gbps")
        if busbw >= 1.0:  # smaller ones are rounded to 2 decimals
            assert size / c.measured_s / 1e9 * 2 * 7 / 8 == pytest.approx(busbw, rel=0.01), c.info


def test_classes_separate_the_fitted_rows_from_the_checks(cases):
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.op_class] = counts.get(c.op_class, 0) + 1
    assert counts == {FIT_CLASS: 25, "allreduce-graph": 25, "allreduce-inplace": 50, "allreduce-sub1k": 28}
    assert op_class("eager", "out-of-place", 1024) == FIT_CLASS
    assert op_class("eager", "out-of-place", 512) == "allreduce-sub1k"
    assert op_class("graph", "in-place", 2 ** 20) == "allreduce-inplace"


def test_an_unknown_mode_names_the_field(tmp_path, monkeypatch):
    text = (rccl.PUBLISHED_DIR / "rccl_mi300x.csv").read_text().replace(",eager,", ",eagre,", 1)
    (tmp_path / "rccl_mi300x.csv").write_text(text)
    monkeypatch.setattr(rccl, "PUBLISHED_DIR", tmp_path)
    with pytest.raises(TapeoutError, match="mode 'eagre'; allowed: eager, graph"):
        rccl.load_rccl_mi300x(tmp_path)


def test_the_fits_write_mi300xs_collective_values_with_provenance():
    subject = fitted.load("tiled").subjects["mi300x"]
    for name, keys in (("collective", {"collective_base_us", "collective_step_us", "collective_eta"}),
                       ("collective_ll", {"collective_ll_step_us", "collective_ll_eta"})):
        fit = subject[name]
        assert set(fit.values) == keys and fit.datasets == (DATASET,) and fit.command == "tapeout fit --only tiled"
    assert subject["collective"].rows + subject["collective_ll"].rows == 25
    ua = load_hardware("mi300x").microarch
    assert ua.collective_eta == subject["collective"].values["collective_eta"]
    fit = fitted.load("roofline").subjects["mi300x"]["collective"]
    assert set(fit.values) == {"collective_latency_us", "interconnect_eta"} and fit.rows == 25
    assert load_hardware("mi300x").efficiency.interconnect_eta == fit.values["interconnect_eta"]


def test_the_tiled_fit_prices_rccl_from_1_kib_to_16_gib(cases):
    dev = _Devices("catalog")
    rows = [c for c in cases if c.op_class == FIT_CLASS]
    meas = np.array([c.measured_s for c in rows])
    pred = tiled.predict(rows, dev)
    assert np.mean(np.abs(pred / meas - 1)) < 0.12
    # the largest messages run at the fabric's fitted fraction of 7 x 64 GB/s: within 3 % of the measured time
    assert pred[-1] / meas[-1] == pytest.approx(1.0, abs=0.03)
    # a 1 KiB all-reduce takes 13 us; the cross-device ring MI300X had before (14 steps x 6.46 us) priced 93 us
    assert pred[0] / meas[0] == pytest.approx(1.0, abs=0.3)


def test_the_roofline_collective_fit_minimises_its_loss(cases):
    design = roofline.Design.build([c for c in cases if c.op_class == FIT_CLASS])
    eff = load_hardware("mi300x").efficiency.model_dump()
    for key, step in (("collective_latency_us", 0.1), ("interconnect_eta", 0.02)):
        loss = {d: design.loss({**eff, key: eff[key] + d}) for d in (-step, 0.0, step)}
        assert loss[0.0] <= min(loss.values())
