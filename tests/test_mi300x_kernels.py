"""The typed MI300X decode-GEMM timings (validate/published/mi300x_kernels.csv) and the DRAM fractions fitted
on them (fitted/tiled.toml and fitted/roofline.toml, ``[mi300x.memory]``)."""

from __future__ import annotations

import numpy as np
import pytest

from tapeout import fitted
from tapeout.fit import roofline, tiled
from tapeout.hardware.catalog import load_hardware
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.runner import _Devices
from tapeout.validate.sources.mi300x_kernels import DATASET, FIT_CLASSES, INFINITY_CACHE_BYTES, op_class


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, [DATASET])


def _one(cases, kernel, n, k, tokens=1):
    hits = [c for c in cases if c.get("kernel") == kernel and (c.get("M"), c.get("N"), c.get("K")) == (tokens, n, k)]
    assert len(hits) == 1
    return hits[0]


def test_rows_are_the_published_figures(cases):
    assert datasets()[DATASET].shipped and all(c.device == "mi300x" for c in cases)
    # rocm-libraries#12329: 14 M=1 shapes, a wvSpltK and a hipBLASLt column each; vllm#29937: 5 Base_300 rows;
    # AMD's max-achievable-FLOPS table: bf16, fp16 and fp8
    assert len(cases) == 36
    assert _one(cases, "wvspltk-rocblas", 13312, 17792).measured_s == pytest.approx(101.95e-6)
    assert _one(cases, "hipblaslt", 76032, 13312).measured_s == pytest.approx(497.12e-6)
    assert _one(cases, "wvsplitk-vllm", 13312, 16384, tokens=2).measured_s == pytest.approx(0.114811852e-3)
    # vLLM's N=4 row (0.566 ms: the tile heuristic that PR fixes) is kept but never fitted on
    n4 = _one(cases, "wvsplitk-vllm", 13312, 16384, tokens=4)
    assert n4.op_class == "wvsplitk-vllm-excluded" and n4.measured_s == pytest.approx(0.566154907e-3)


def test_weights_that_fit_the_infinity_cache_are_checks(cases):
    # 9984 x 13312 fp16 = 265.8 MB fits 256 MiB, 19008 x 13312 = 506 MB does not
    assert _one(cases, "wvspltk-rocblas", 9984, 13312).op_class == "wvspltk-rocblas-llc"
    assert _one(cases, "wvspltk-rocblas", 19008, 13312).op_class == "wvspltk-rocblas"
    assert op_class("hipblaslt", INFINITY_CACHE_BYTES + 1, "") == "hipblaslt"
    by_class: dict[str, int] = {}
    for c in cases:
        by_class[c.op_class] = by_class.get(c.op_class, 0) + 1
    assert by_class == {"wvspltk-rocblas": 8, "wvspltk-rocblas-llc": 6, "hipblaslt": 8, "hipblaslt-llc": 6,
                        "wvsplitk-vllm": 3, "wvsplitk-vllm-llc": 1, "wvsplitk-vllm-excluded": 1, "hipblaslt-maf": 3}


def test_max_achievable_flops_rows_are_the_time_of_amds_best_shapes(cases):
    # ROCm blog "Measuring Max-Achievable FLOPs - Part 2", Table 1 and Appendix B: 708 TFLOP/s bf16 and 654 fp16 at
    # 4096 x 4864 x 32896, 1273 fp8 at 4096 x 3648 x 32896; one class whatever the weight size (fp8's 120 MB fit
    # the Infinity Cache, but a best-shape GEMM is compute-bound)
    maf = {c.ops[0].compute_dtype: c for c in cases if c.get("kernel") == "hipblaslt-maf"}
    assert set(maf) == {"bf16", "fp16", "fp8_e4m3"} and {c.op_class for c in maf.values()} == {"hipblaslt-maf"}
    assert maf["bf16"].measured_s == pytest.approx(2 * 4096 * 4864 * 32896 / 708e12)
    assert maf["fp16"].measured_s == pytest.approx(2 * 4096 * 4864 * 32896 / 654e12)
    assert maf["fp8_e4m3"].measured_s == pytest.approx(2 * 4096 * 3648 * 32896 / 1273e12)
    assert "hipblaslt-maf" not in FIT_CLASSES


def test_the_fits_write_mi300xs_dram_fraction_with_provenance():
    for tier, key in (("tiled", "dram_eta"), ("roofline", "memory_eta")):
        fit = fitted.load(tier).subjects["mi300x"]["memory"]
        assert set(fit.values) == {key} and fit.datasets == (DATASET,) and fit.rows == 11
        assert fit.command == f"tapeout fit --only {tier}" and fit.residual is not None
    hw = load_hardware("mi300x")
    assert hw.microarch.dram_eta == fitted.load("tiled").subjects["mi300x"]["memory"].values["dram_eta"]
    assert hw.efficiency.memory_eta == fitted.load("roofline").subjects["mi300x"]["memory"].values["memory_eta"]


def test_the_fitted_tiled_dram_eta_lowers_the_error_of_the_fitted_rows(cases):
    rows = [c for c in cases if c.op_class in FIT_CLASSES]
    dev = _Devices("catalog")
    stored = load_hardware("mi300x").microarch
    held = {"matrix_eta": stored.matrix_eta, "stream_eta": stored.stream_eta}

    def err(eta: float) -> float:
        return tiled.objective(rows, tiled.predict(rows, dev, dram_eta=eta, **held))

    default = fitted.load("tiled").subjects["default"]["kernels"].values["dram_eta"]
    assert err(stored.dram_eta) < err(default)
    assert err(stored.dram_eta) <= min(err(stored.dram_eta - 0.02), err(stored.dram_eta + 0.02))
    # the check class (hipBLASLt, what torch's linear runs) moves the same way
    check = [c for c in cases if c.op_class == "hipblaslt"]
    assert tiled.objective(check, tiled.predict(check, dev, dram_eta=stored.dram_eta, **held)) < \
        tiled.objective(check, tiled.predict(check, dev, dram_eta=default, **held))


def test_the_fitted_roofline_memory_eta_minimises_its_loss(cases):
    rows = [c for c in cases if c.op_class in FIT_CLASSES]
    design = roofline.Design.build(rows)
    eff = load_hardware("mi300x").efficiency.model_dump()
    loss = {d: design.loss({**eff, "memory_eta": eff["memory_eta"] + d}) for d in (-0.02, 0.0, 0.02)}
    assert loss[0.0] <= min(loss.values())
    default = fitted.load("roofline").subjects["default"]["compute"].values["memory_eta"]
    assert loss[0.0] < design.loss({**eff, "memory_eta": default})
    # every fitted row streams its weights: the compute term is a small share of the time
    assert np.all(design.compute1 < 0.2 * design.memory1)
