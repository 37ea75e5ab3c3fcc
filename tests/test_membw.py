"""The typed device-memory copies (validate/published/membw_published.csv) and the DRAM fractions they carry to
devices without weight-streaming kernel rows (fitted/roofline.toml and fitted/tiled.toml, ``[<device>.copy]``)."""

from __future__ import annotations

import numpy as np
import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import roofline, tiled
from tapeout.hardware.catalog import load_hardware
from tapeout.validate.registry import datasets, load_cases
from tapeout.validate.sources.membw import DATASET, copy_bytes
from tapeout.validate.sources.mi300x_kernels import INFINITY_CACHE_BYTES


@pytest.fixture(scope="module")
def cases():
    return {c.device: c for c in load_cases(None, [DATASET])}


def test_rows_are_the_published_figures(cases):
    assert datasets()[DATASET].shipped and set(cases) == {"a100-sxm-80gb", "a100-sxm-40gb", "h100-sxm", "h200", "mi300x"}
    # BabelStream copy: 2^25 doubles read and written (2 x 268.4 MB); the tables give TB/s or MB/s (1e6 bytes)
    moved = 2 * 2 ** 25 * 8
    assert cases["h200"].measured_s == pytest.approx(moved / 4.01e12)
    assert cases["h100-sxm"].measured_s == pytest.approx(moved / 2.90e12)
    assert cases["a100-sxm-80gb"].measured_s == pytest.approx(moved / 1.61e12)
    assert cases["a100-sxm-40gb"].measured_s == pytest.approx(moved / 1394571.325e6)
    # MI300X's run is 2^28 doubles per array (2147.5 MB), 8x its 256 MB Infinity Cache
    assert cases["mi300x"].measured_s == pytest.approx(2 * 2 ** 28 * 8 / 4255995.148e6)
    for c in cases.values():
        assert c.op.bytes_read == c.op.bytes_written == c.get("bytes") / 2 and c.op.flops == 0
    # every array is at least 4x the device's last-level cache (BabelStream's rule): DRAM, not cache, is timed
    for dev, c in cases.items():
        assert c.op.bytes_read >= 4 * load_hardware(dev).l2_cache_mb * 1e6, dev
    assert cases["mi300x"].op.bytes_read >= 4 * INFINITY_CACHE_BYTES  # MI300X's memory-side cache


def test_unknown_kernels_and_formats_are_named_errors():
    assert copy_bytes("copy", 10, "fp64") == (80, 80)
    with pytest.raises(TapeoutError, match="kernel 'triad'; allowed: copy"):
        copy_bytes("triad", 10, "fp64")
    with pytest.raises(TapeoutError, match="dtype 'fp16'; allowed: fp64"):
        copy_bytes("copy", 10, "fp16")


def test_memory_eta_transfers_and_vector_memory_eta_does_not(cases):
    """The rule in fit/roofline.py (COPY_TRANSFER): on the devices with both, the weight-streaming memory_eta over
    the copy fraction lies within 6 % of its median (0.91-1.00), vidur's elementwise vector_memory_eta does not
    (0.68 on H100 SXM, 1.00 on A100 SXM: each 19 % from their median)."""
    cal = fitted.load("roofline").subjects
    frac = {}
    for dev in ("h100-sxm", "a100-sxm-80gb", "mi300x"):
        design = roofline.Design.build([cases[dev]])
        eff = load_hardware(dev).efficiency.model_dump()
        # the copy fraction: the vector_memory_eta at which the roofline prices the copy as measured
        pred = design.predict({**eff, "vector_memory_eta": 1.0})[0]
        frac[dev] = pred / cases[dev].measured_s
    def spread(ratios: dict[str, float]) -> float:
        mid = float(np.median(list(ratios.values())))
        return max(abs(r / mid - 1) for r in ratios.values())

    assert spread({d: load_hardware(d).efficiency.memory_eta / f for d, f in frac.items()}) < 0.06
    assert spread({d: cal[d]["compute"].values["vector_memory_eta"] / frac[d] for d in ("h100-sxm", "a100-sxm-80gb")}) \
        > 0.15
    assert roofline.COPY_TRANSFER == ("memory_eta",)


def test_devices_without_streaming_rows_take_the_copy_carried_fraction():
    rf, td = fitted.load("roofline").subjects, fitted.load("tiled").subjects
    for dev in ("h200", "a100-sxm-40gb"):
        fit = rf[dev]["copy"]
        assert set(fit.values) == {"memory_eta"} and fit.datasets == (DATASET,) and fit.rows == 1
        assert load_hardware(dev).efficiency.memory_eta == fit.values["memory_eta"]
        # the tiled tier: the device's own copy wins over the sibling's carried GEMM/stream values
        tfit = td[dev]["copy"]
        assert set(tfit.values) == {"dram_eta", "stream_eta"}
        assert "dram_eta" not in td[dev]["gemm"].values and "stream" not in td[dev]
        assert load_hardware(dev).microarch.dram_eta == tfit.values["dram_eta"]
    # H200's HBM3e copies 4.01 of 4.8 TB/s (0.835), H100's HBM3 2.90 of 3.35 (0.866) in the same harness: H200's
    # carried fraction sits below H100's own, not at it
    assert rf["h200"]["copy"].values["memory_eta"] > rf["default"]["compute"].values["memory_eta"]
    assert td["h200"]["copy"].values["dram_eta"] < td["h100-sxm"]["gemm"].values["dram_eta"]
    # a device's own weight-streaming fit is never overwritten (MI300X's decode GEMMs)
    assert "copy" not in rf["mi300x"] and set(td["mi300x"]["copy"].values) == {"stream_eta"}
    assert tiled.COPY_TRANSFER == ("dram_eta", "stream_eta")
