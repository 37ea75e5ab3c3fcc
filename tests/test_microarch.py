"""Micro-architecture tables: derived peaks agree with the datasheets and the catalog."""

import csv

import pytest

from tapeout.hardware.catalog import list_hardware, load_hardware
from tapeout.hardware.microarch import MicroArch

#: devices whose whitepapers give the numbers (the issue's list)
REQUIRED = ("a100-sxm-80gb", "a100-sxm-40gb", "a100-pcie-80gb", "a800-sxm-80gb", "h100-sxm", "h100-pcie",
            "h800-sxm", "h200", "gh200", "a40", "a6000", "rtx-3090", "rtx-4090", "l4", "l40s", "mi210",
            "mi250x-gcd", "mi300x")

#: datasheet dense peaks (TFLOP/s) as printed by the vendors (shared/reference-data/hardware/datasheets.csv)
DATASHEET = {
    "a100-sxm-80gb": {"fp16": 312, "bf16": 312, "tf32": 156, "int8": 624},
    "h100-sxm": {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp8": 1978.9, "int8": 1978.9},
    "mi210": {"fp16": 181, "bf16": 181},
    "mi300x": {"fp16": 1307.4, "bf16": 1307.4, "fp8": 2614.9},
}

MATRIX_KEYS = ("fp32_matrix", "tf32", "bf16", "fp16", "fp8", "int8", "int4")


def _datasheet_csv(path) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            try:
                out[(r["device"], r["field"])] = float(r["value"])
            except ValueError:
                continue
    return out


def test_required_devices_have_a_microarch():
    missing = [d for d in REQUIRED if load_hardware(d).microarch is None]
    assert not missing


@pytest.mark.parametrize("device", sorted(DATASHEET))
def test_derived_peaks_match_datasheets_within_2pct(device):
    ua = load_hardware(device).microarch
    for fmt, peak in DATASHEET[device].items():
        assert ua.peak_tflops(fmt) == pytest.approx(peak, rel=0.02), fmt


def test_derived_peaks_match_the_shared_datasheet_file(shared_file):
    ds = _datasheet_csv(shared_file("hardware/datasheets.csv"))
    assert ds
    for device in DATASHEET:
        ua = load_hardware(device).microarch
        for fmt in ("fp16", "bf16", "fp8"):
            v = ds.get((device, f"peak_{fmt}_tflops"))
            if v is not None and ua.peak_tflops(fmt) is not None:
                assert ua.peak_tflops(fmt) == pytest.approx(v, rel=0.02), (device, fmt)


def test_every_microarch_device_matches_its_catalog_peaks():
    """Catches wrong clocks or per-core rates: each derived matrix peak within 2% of the catalog's."""
    checked = 0
    for hw in list_hardware():
        ua = hw.microarch
        if ua is None:
            continue
        assert ua.peak_tflops("fp16") is not None, hw.name
        assert ua.peak_tflops("fp16") == pytest.approx(hw.peak_tflops["fp16"], rel=0.02), hw.name
        for key in MATRIX_KEYS:
            derived, cat = ua.peak_tflops(key), hw.peak_tflops.get(key)
            if derived is not None and cat is not None:
                assert derived == pytest.approx(cat, rel=0.02), (hw.name, key)
                checked += 1
        if "fp32" in hw.peak_tflops:
            assert ua.vector_tflops() == pytest.approx(hw.peak_tflops["fp32"], rel=0.02), hw.name
        # the microarch agrees with the datasheet fields of the same spec
        assert ua.cores == hw.sm_count, hw.name
        assert ua.l2_mb == pytest.approx(hw.l2_cache_mb), hw.name
    assert checked >= 60


def test_every_microarch_number_has_a_source():
    for hw in list_hardware():
        ua = hw.microarch
        if ua is None:
            continue
        src = ua.sources
        needed = ["cores", "clock_mhz", "registers_kb_per_core", "shared_memory_kb_per_core", "l2_mb",
                  "matrix.units_per_core", "matrix.instruction_shape", "vector.fp32_lanes_per_core"]
        needed += [f"matrix.macs_per_clock.{k}" for k in ua.matrix.macs_per_clock]
        if ua.vector_clock_mhz is not None:
            needed.append("vector_clock_mhz")
        if ua.l2_bandwidth_gbps is not None:
            needed.append("l2_bandwidth_gbps")
        for f in ("matrix_eta", "dram_eta", "stream_eta", "overlap_p", "l2_bytes_per_clock_per_core",
                  "collective_base_us", "collective_step_us", "collective_eta", "collective_ll_step_us",
                  "collective_ll_eta"):
            if f in ua.model_fields_set:
                needed.append(f)
        if not ua.tiled_by_default:
            needed.append("tiled_by_default")
        if "legacy_path_fraction" in ua.matrix.model_fields_set:
            needed.append("matrix.legacy_path_fraction")
        missing = [k for k in needed if not src.get(k)]
        assert not missing, (hw.name, missing)


def test_microarch_schema_rejects_nonsense():
    base = dict(cores=1, clock_mhz=1000, matrix={"units_per_core": 1, "macs_per_clock": {"fp16": 8}},
                vector={"fp32_lanes_per_core": 32}, registers_kb_per_core=64, shared_memory_kb_per_core=48, l2_mb=1)
    ua = MicroArch(**base)
    assert ua.peak_tflops("fp16") == pytest.approx(1 * 8 * 2 * 1e9 / 1e12)
    assert ua.peak_tflops("fp8") is None
    with pytest.raises(ValueError):
        MicroArch(**{**base, "matrix": {"units_per_core": 1, "macs_per_clock": {"fp16": 0}}})
    with pytest.raises(ValueError):
        MicroArch(**{**base, "matrix_eta": 1.5})


def test_blackwell_facts_from_the_published_device_descriptions():
    """B200 / GB200 (XLA's recorded device descriptions, the Blackwell tuning guide): 148 / 152 SMs, 228 KB shared
    memory and 64K registers per SM, 4096 dense BF16 FMA per clock per SM, SM clocks 1965 / 2062 MHz."""
    b200, gb200 = load_hardware("b200"), load_hardware("gb200")
    assert (b200.sm_count, gb200.sm_count) == (148, 152)
    for hw, vclock in ((b200, 1965), (gb200, 2062)):
        ua = hw.microarch
        assert ua.cores == hw.sm_count
        assert ua.shared_memory_kb_per_core == 228 and ua.registers_kb_per_core == 256
        assert ua.matrix.macs_per_clock["bf16"] == 4096 and ua.matrix.macs_per_clock["fp8"] == 8192
        assert ua.vector_clock_mhz == vclock == hw.boost_clock_mhz
        assert ua.clock_mhz < vclock  # the tensor peaks are quoted under the maximum SM clock, as Hopper's
    assert b200.microarch.clock_mhz == pytest.approx(1835.31)


def test_blackwell_defaults_to_the_roofline_with_its_reason():
    """Aggregate L2 bandwidth is unpublished: predict keeps the roofline by default on B200/GB200 and says why."""
    from tapeout.api import default_tier

    for name in ("b200", "gb200"):
        ua = load_hardware(name).microarch
        assert not ua.tiled_by_default and "L2 bandwidth" in ua.sources["tiled_by_default"]
        assert default_tier(load_hardware(name)) == "roofline"
    assert default_tier(load_hardware("h100-sxm")) == "tiled"


def test_gb200_sm_count_prices_deepep_sm_contention():
    from tapeout.system.overlap import normal_kernel_rate

    rate, how = normal_kernel_rate(load_hardware("gb200").sm_count)
    assert rate < 1.0 and "not priced" not in how
