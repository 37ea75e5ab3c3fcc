"""Design spaces: parsing, enumeration, one-line errors naming the field, design construction."""

from __future__ import annotations

import pytest

from tapeout.cost.assumptions import Assumptions
from tapeout.cost import area as am
from tapeout.errors import TapeoutError
from tapeout.explore import design as dz
from tapeout.explore.space import load_space, point_key
from tapeout.hardware.catalog import load_hardware

GPT3 = {"model": "gpt-3-175b", "num_layers": 12, "batch": 8, "input_len": 512, "output_len": 64}


def space(**kw):
    d = {"base": "a100-sxm-80gb", "workloads": [GPT3]}
    d.update(kw)
    return d


def test_parameters_lists_ranges_and_scalars():
    s = load_space(space(parameters={
        "cores": [64, 96, 128, 64], "l2_mb": {"min": 16, "max": 64, "step": 16},
        "shared_memory_kb_per_core": {"min": 64, "max": 1024, "num": 5, "scale": "log"}, "clock_mhz": 1410,
        "memory": [{"kind": "HBM2e", "interfaces": 5}, {"kind": "CXL-DDR5", "bandwidth_gbps": 1024, "capacity_gb": 512}],
        "fp64": [True, False], "spare_cores": [0, 8]}))
    p = s.parameters
    assert p["cores"] == [64, 96, 128]  # duplicates dropped
    assert p["l2_mb"] == [16.0, 32.0, 48.0, 64.0]
    assert p["shared_memory_kb_per_core"] == [64.0, 128.0, 256.0, 512.0, 1024.0]
    assert p["clock_mhz"] == [1410.0]
    assert s.grid_size() == 3 * 4 * 5 * 1 * 2 * 2 * 2
    grid = list(s.grid())
    assert len(grid) == s.grid_size()
    assert [s.point(i) for i in (0, 7, len(grid) - 1)] == [grid[0], grid[7], grid[-1]]
    assert len({point_key(g) for g in grid}) == len(grid)
    assert point_key({"b": 1, "a": 2}) == point_key({"a": 2, "b": 1})


def test_objectives_and_workload_names():
    s = load_space(space(workloads=[{**GPT3, "name": "a"}, {**GPT3, "name": "b", "batch": "max"}],
                         objectives=["throughput@a", "usd_per_mtok", {"metric": "ttft", "workload": "b"}]))
    labels = [o.label for o in s.objectives.items]
    assert labels == ["throughput@a", "usd_per_mtok", "ttft@b"]
    assert [o.direction for o in s.objectives.items] == ["max", "min", "min"]
    assert s.workloads[1].batch == "max"


@pytest.mark.parametrize("bad, field", [
    (space(parameters={"corez": [1]}), "parameters"),
    (space(parameters={"cores": [0]}), "cores"),
    (space(parameters={"cores": [1.5]}), "integer"),
    (space(parameters={"l2_mb": {"min": 8, "max": 4, "step": 1}}), "l2_mb"),
    (space(parameters={"l2_mb": {"min": 8, "max": 64}}), "step or num"),
    (space(parameters={"memory": [{"kind": "HBM2e", "stacks": 5}]}), "memory"),
    (space(parameters={"memory": [{"kind": "HBM9"}]}), "parameters.memory.kind"),
    (space(parameters={"memory": [{"kind": "HBM2e"}], "memory_kind": ["DDR5"]}), "not both"),
    (space(parameters={"process_node": ["N2"]}), "parameters.process_node"),
    (space(workloads=[]), "workloads"),
    (space(workloads=[{**GPT3, "model": "gpt-9"}]), "workloads.0.model"),
    (space(workloads=[{**GPT3, "batch": "lots"}]), "batch"),
    (space(workloads=[{**GPT3, "weights": "fp7"}]), "workloads.0.weights"),
    (space(workloads=[{**GPT3, "inputlen": 5}]), "inputlen"),
    (space(objectives=["speed"]), "metric"),
    (space(objectives=["throughput@nope"]), "objectives"),
    (space(base="a100-typo"), "base"),
    (space(base="b200"), "base"),  # two dies in one package
    (space(tier="magic"), "tier"),
    (space(constraints={"max_area_mm2": -1}), "max_area_mm2"),
    (space(search={"method": "annealing"}), "search.method"),
    (space(assumptions={"price": {"wafer": {"diametre_mm": 1}}}), "assumptions"),
])
def test_invalid_spaces_fail_in_one_line_naming_the_field(bad, field):
    with pytest.raises(TapeoutError) as exc:
        load_space(bad)
    msg = str(exc.value)
    assert "\n" not in msg
    assert field in msg


def test_space_files(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('base = "a100-sxm-80gb"\n[parameters]\ncores = [64, 128]\n'
                 '[[workloads]]\nmodel = "gpt-3-175b"\nnum_layers = 12\n')
    assert load_space(f).grid_size() == 2
    y = tmp_path / "s.yaml"
    y.write_text("base: a100-sxm-80gb\nparameters:\n  cores: [64]\nworkloads:\n  - model: gpt-3-175b\n")
    assert load_space(y).parameters["cores"] == [64]
    bad = tmp_path / "bad.toml"
    bad.write_text("base = [\n")
    with pytest.raises(TapeoutError, match="cannot parse"):
        load_space(bad)


def test_design_peaks_follow_the_microarchitecture():
    a = Assumptions.load()
    base = load_hardware("a100-sxm-80gb")
    die = am.die_for(base, a)
    d = dz.build(base, die, {"cores": 64, "matrix_units_per_core": 4, "matrix_unit_dim": 32, "clock_mhz": 1000.0,
                             "shared_memory_kb_per_core": 768.0, "l2_mb": 24.0}, a)
    ua, hw = d.hardware.microarch, d.hardware
    assert ua.matrix.macs_per_clock["fp16"] == 4 * 32 * 32
    assert ua.matrix.macs_per_clock["int8"] == 2 * 4096  # base ratio int8 / fp16 = 2
    for k in ("fp16", "bf16", "tf32", "int8"):
        assert hw.peak_tflops[k] == pytest.approx(ua.peak_tflops(k))
    assert hw.peak_tflops["fp32"] == pytest.approx(ua.vector_tflops())
    assert hw.peak_tflops["fp16"] == pytest.approx(64 * 4096 * 2 * 1.0e9 / 1e12)
    assert ua.l1_kb_per_core == 768 + (192 - 164)  # the L1-only part is kept
    assert d.die.cores == 64 and d.die.l2_mb == 24 and d.die.fp64_lanes_per_core == 32
    assert d.die.memory_phys == 5 and d.hardware.memory.interfaces == 5


def test_design_memory_choices():
    a = Assumptions.load()
    base = load_hardware("a100-sxm-80gb")
    mem, bad = dz.memory_choice({"memory": {"kind": "CXL-DDR5", "bandwidth_gbps": 1024.0, "capacity_gb": 512.0}}, base, a)
    assert mem == {"kind": "CXL-DDR5", "interfaces": 256, "bandwidth_gbps": 1024.0, "capacity_gb": 512.0} and not bad
    mem, bad = dz.memory_choice({"memory": {"kind": "HBM3", "interfaces": 6}}, base, a)
    assert mem["bandwidth_gbps"] == pytest.approx(6 * 819.2) and mem["capacity_gb"] == 6 * 24 and not bad
    mem, bad = dz.memory_choice({"memory": {"kind": "HBM2e", "interfaces": 2, "capacity_gb": 80.0}}, base, a)
    assert bad and "capacity" in bad[0]
    mem, bad = dz.memory_choice({}, base, a)
    assert mem["kind"] == "HBM2e" and mem["interfaces"] == 5 and mem["bandwidth_gbps"] == 2039
