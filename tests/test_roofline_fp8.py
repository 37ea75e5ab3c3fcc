"""The roofline tier's fp8 path (``EfficiencySpec.fp8_path_fraction``): validated, fitted per device on the bf16 /
fp8 best-shape pairs (fitted/roofline.toml ``[<device>.fp8]``), and applied to matrix ops at the fp8 peak."""

from __future__ import annotations

import statistics

import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import roofline as fit_roofline
from tapeout.hardware.catalog import load_hardware
from tapeout.perf import estimate
from tapeout.validate.registry import load_cases
from tapeout.validate.runner import _Devices, predict_case
from tapeout.workload.standalone import attention_op, gemm_op

DEVICE_YAML = ("name: my-fp8-chip\nvendor: Imagined\npeak_tflops: {{bf16: 1000, fp8: 2000}}\n"
               "memory: {{kind: HBM3, capacity_gb: 96, bandwidth_gbps: 4000}}\nefficiency: {{fp8_path_fraction: {value}}}\n")


@pytest.mark.parametrize("value", ["0", "1.2"])
def test_an_out_of_range_fraction_is_a_one_line_error(tmp_path, value):
    p = tmp_path / "chip.yaml"
    p.write_text(DEVICE_YAML.format(value=value))
    with pytest.raises(TapeoutError) as info:
        load_hardware(p)
    msg = str(info.value)
    assert "\n" not in msg and "efficiency.fp8_path_fraction" in msg, msg


@pytest.fixture(scope="module")
def pair_cases():
    return load_cases(None, list(fit_roofline.PAIRED_SETS))


def test_h100s_fraction_is_what_its_mamf_pair_implies(pair_cases):
    # mamf on H100 SXM: bf16 794.5 of 989 TFLOP/s, fp8 1402.6 of 1979; at matmul_eta alone the roofline misses the
    # fp8 row by 1.036 and the bf16 row by 1.155: the fraction that makes both misses equal is 0.89
    h100 = load_hardware("h100-sxm")
    f = h100.efficiency.fp8_path_fraction
    assert f == 0.89
    bf16, fp8 = fit_roofline.best_shape_pair(pair_cases, "h100-sxm")
    devices = _Devices("catalog")
    r_bf16 = predict_case(bf16, devices, "roofline").predicted_s / bf16.measured_s
    r_fp8 = predict_case(fp8, devices, "roofline").predicted_s / fp8.measured_s
    assert r_fp8 == pytest.approx(r_bf16, abs=0.01)
    # the refit from the stored efficiency gives the stored value, and a grid step either side misses by more
    held = h100.efficiency.model_dump(exclude={"source"})
    assert fit_roofline.fp8_fit("h100-sxm", pair_cases, held)[0] == f
    for other in (f - 0.01, f + 0.01):
        devs = _Devices({"h100-sxm": h100.efficiency.model_copy(update={"fp8_path_fraction": other})})
        assert abs(predict_case(fp8, devs, "roofline").predicted_s / fp8.measured_s - r_bf16) > abs(r_fp8 - r_bf16)


def test_the_default_is_the_median_of_the_pairs_and_siblings_carry_the_die(pair_cases):
    store = fitted.load("roofline")
    own = {d: store.values(d)["fp8_path_fraction"] for d in store.subjects
           if d != fitted.DEFAULT and "fp8" in store.fits(d) and "carried" not in store.fits(d)["fp8"].method}
    assert sorted(own) == ["b200", "gaudi2", "gaudi3", "gb200", "gh200", "h100-sxm", "mi300x"]
    assert all(fit_roofline.best_shape_pair(pair_cases, d) is not None for d in own)
    default = store.values(fitted.DEFAULT)["fp8_path_fraction"]
    assert default == statistics.median(own.values())
    for sib in ("h100-pcie", "h800-sxm", "h200"):
        assert load_hardware(sib).efficiency.fp8_path_fraction == own["h100-sxm"]
    # a device without a pair keeps the default
    assert fit_roofline.best_shape_pair(pair_cases, "l40s") is None
    assert load_hardware("l40s").efficiency.fp8_path_fraction == default


def test_an_fp8_matrix_op_is_priced_slower_by_the_fraction():
    h100 = load_hardware("h100-sxm")
    f = h100.efficiency.fp8_path_fraction
    full = h100.with_efficiency(fp8_path_fraction=1.0)
    gemm = gemm_op(8192, 8192, 8192, dtype="fp8")
    attn = attention_op(1, 32, 8, 128, sq=8192, dtype="fp8")
    for op in (gemm, attn):
        slow, fast = estimate(op, h100, "roofline"), estimate(op, full, "roofline")
        assert slow.compute_s == pytest.approx(fast.compute_s / f, rel=0.02)
        assert slow.terms["fp8_path_fraction"] == f
    # a compute-bound GEMM: the whole time moves by the fraction (the scale epilogue is a few us of 700)
    assert estimate(gemm, h100, "roofline").time_s > 1.1 * estimate(gemm, full, "roofline").time_s
    # bf16 GEMMs and fp8 on a device without an fp8 peak (A100: the fp16 rate) do not read it
    bf16 = gemm_op(8192, 8192, 8192, dtype="bf16")
    assert estimate(bf16, h100, "roofline").time_s == estimate(bf16, full, "roofline").time_s
    a100 = load_hardware("a100-sxm-80gb")
    assert estimate(gemm, a100.with_efficiency(fp8_path_fraction=0.5), "roofline").time_s == \
        estimate(gemm, a100, "roofline").time_s
