"""The typed FP8 GEMM kernel throughputs (validate/published/fp8_gemm_kernels.csv) and the fp8 path's sustained
fraction fitted on the bf16 / fp8 best-shape pairs (fitted/tiled.toml, ``[<device>.fp8]``)."""

from __future__ import annotations

import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import tiled
from tapeout.hardware.catalog import load_hardware
from tapeout.perf import estimate
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.sources import fp8_gemm_kernels
from tapeout.validate.sources.fp8_gemm_kernels import DATASET, KERNELS
from tapeout.workload.standalone import gemm_op


@pytest.fixture(scope="module")
def cases():
    return load_cases(None, [DATASET])


def _one(cases, kernel, m, n, k):
    hits = [c for c in cases if c.get("kernel") == kernel and (c.get("M"), c.get("N"), c.get("K")) == (m, n, k)]
    assert len(hits) == 1
    return hits[0]


def test_rows_are_the_published_figures(cases):
    assert datasets()[DATASET].shipped
    by = {}
    for c in cases:
        by[(c.op_class, c.device)] = by.get((c.op_class, c.device), 0) + 1
    # DeepGEMM's README: 18 dense and 4 contiguous-grouped rows on H800; vllm#23280: 10 batch sizes x 3 columns
    assert by == {("deepgemm", "h800-sxm"): 18, ("deepgemm-grouped", "h800-sxm"): 4, ("torch-bf16", "h100-sxm"): 10,
                  ("vllm-block-triton", "h100-sxm"): 10, ("vllm-block-cutlass", "h100-sxm"): 10}
    # DeepGEMM's best dense row: 1358 TFLOPS at 4096 x 7168 x 16384, block-scaled fp8 operands
    best = _one(cases, "deepgemm", 4096, 7168, 16384)
    assert best.measured_s == pytest.approx(2 * 4096 * 7168 * 16384 / 1358e12)
    assert dict(best.ops[0].formats) == {"weights": "fp8_e4m3_b128", "act": "fp8_e4m3_g128"}
    # a grouped row counts every group's rows: 4 experts x 8192 rows at 1297 TFLOPS
    grouped = _one(cases, "deepgemm-grouped", 8192, 4096, 7168)
    assert grouped.measured_s == pytest.approx(2 * 4 * 8192 * 4096 * 7168 / 1297e12)
    assert grouped.ops[0].flops == pytest.approx(2 * 4 * 8192 * 4096 * 7168)
    # the same table's bf16 baseline: 715.78 TFLOP/s at 4096 rows, the block-scaled CUTLASS kernel 456.93
    assert _one(cases, "torch-bf16", 4096, 2112, 7168).get("tflops") == pytest.approx(715.781529)
    assert _one(cases, "vllm-block-cutlass", 4096, 2112, 7168).ops[0].compute_dtype.startswith("fp8")


def test_an_unknown_kernel_is_a_one_line_error_naming_the_allowed_ones(tmp_path, monkeypatch):
    text = (fp8_gemm_kernels.PUBLISHED_DIR / "fp8_gemm_kernels.csv").read_text(encoding="utf-8")
    (tmp_path / "fp8_gemm_kernels.csv").write_text(text.replace(",deepgemm,", ",cublas-fp8,", 1), encoding="utf-8")
    monkeypatch.setattr(fp8_gemm_kernels, "PUBLISHED_DIR", tmp_path)
    with pytest.raises(TapeoutError, match="kernel 'cublas-fp8'; allowed: " + ", ".join(KERNELS)):
        fp8_gemm_kernels.load_fp8_gemm_kernels(tmp_path)


def test_hoppers_fp8_path_keeps_less_of_its_doubled_peak_than_bf16():
    # mamf on H100 SXM: 1402.6 of 1979 fp8 TFLOP/s (0.71) against 794.5 of 989 bf16 (0.80); the fit puts the fp8
    # main loop below twice the bf16 one, so a compute-bound fp8 GEMM takes more than half the bf16 time
    h100 = load_hardware("h100-sxm")
    assert h100.microarch.matrix.fp8_path_fraction < 0.95
    op = dict(m=8192, n=8192, k=8192)
    bf16 = estimate(gemm_op(**op, dtype="bf16"), h100, "tiled").total_s
    fp8 = estimate(gemm_op(**op, dtype="fp8"), h100, "tiled").total_s
    assert 0.5 * bf16 * 1.05 < fp8 < 0.6 * bf16
    # the same die's devices carry it; A100 has no fp8 path (fp8 runs at the fp16 rate), so the field cannot matter
    for sib in ("h100-pcie", "h800-sxm", "h200"):
        assert load_hardware(sib).microarch.matrix.fp8_path_fraction == h100.microarch.matrix.fp8_path_fraction
    a100 = load_hardware("a100-sxm-80gb")
    assert estimate(gemm_op(**op, dtype="fp8"), a100, "tiled").total_s == pytest.approx(
        estimate(gemm_op(**op, dtype="fp16"), a100, "tiled").total_s, rel=0.05)


def test_the_fraction_is_fitted_on_pairs_and_blackwells_feed_bound_pair_constrains_nothing():
    store = fitted.load("tiled")
    own = sorted(d for d in store.subjects if d != fitted.DEFAULT and "fp8" in store.fits(d)
                 and "carried" not in store.fits(d)["fp8"].method)
    # H100 SXM and GH200 (mamf), MI300X (AMD's hipBLASLt max-achievable-FLOPS rows): two sources, two vendors
    assert own == ["gh200", "h100-sxm", "mi300x"]
    assert "fp8" not in store.fits("b200") and "fp8" not in store.fits("gb200")
    assert tiled.best_shape_pair(load_cases(None, ["mamf"]), "b200") is not None
    assert "gh200, h100-sxm, mi300x" in store.fits(fitted.DEFAULT)["fp8"].method
