"""The built-in hardware catalog, its loader, and the datasheet facts it must carry."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib

import pytest

from tapeout.errors import TapeoutError, UnknownNameError
from tapeout.hardware import HardwareSpec, hardware_names, list_hardware, load_hardware
from tapeout.hardware.catalog import CATALOG_DIR
from tapeout.hardware.spec import PEAK_KEYS

EXPECTED = {
    "a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-80gb", "a800-sxm-80gb", "a40", "a6000",
    "h100-sxm", "h100-pcie", "h800-sxm", "h200", "gh200", "gh200-144gb", "b200", "gb200", "l4", "l40s", "rtx-3090",
    "rtx-4090", "mi210", "mi250x", "mi250x-gcd", "mi300x", "gaudi2", "gaudi3", "tpu-v5e",
}  # fmt: skip
#: devices typed straight from their vendor's datasheet, not in the shared datasheet table (gh200-144gb: the table's
#: gh200 *_hbm3e_sku rows and MLPerf's system JSON)
TYPED_HERE = {"gb200", "gh200-144gb"}



def raw(name: str) -> dict:
    return tomllib.loads((CATALOG_DIR / f"{name}.toml").read_text(encoding="utf-8"))


# ---- catalog contents ---------------------------------------------------------------------------
def test_all_names_load():
    assert set(hardware_names()) == EXPECTED
    assert hardware_names() == sorted(EXPECTED)
    assert [h.name for h in list_hardware()] == sorted(EXPECTED)
    for name in EXPECTED:
        spec = load_hardware(name)
        assert isinstance(spec, HardwareSpec)
        assert spec.name == name
        assert spec.display_name and spec.vendor
        assert spec.memory.capacity_gb > 0 and spec.memory.bandwidth_gbps > 0


def test_catalog_files_match_names_and_have_no_efficiency():
    files = {p.stem for p in CATALOG_DIR.glob("*.toml")}
    assert files == EXPECTED
    for name in EXPECTED:
        assert "efficiency" not in raw(name), f"{name}: efficiency is calibrated separately"


def test_loads_are_cached():
    assert load_hardware("h100-sxm") is load_hardware("H100")


def test_spec_object_passes_through():
    spec = load_hardware("a40")
    assert load_hardware(spec) is spec


def test_aliases_resolve_and_do_not_collide():
    seen: dict[str, str] = {}
    for spec in list_hardware():
        for alias in spec.aliases:
            assert alias == alias.strip().lower() and "_" not in alias and " " not in alias, alias
            assert alias not in EXPECTED, f"alias {alias} shadows a device name"
            assert alias not in seen, f"alias {alias} used by {seen[alias]} and {spec.name}"
            seen[alias] = spec.name
            assert load_hardware(alias).name == spec.name
    assert len(seen) >= 2 * len(EXPECTED)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("a100", "a100-sxm-80gb"),
        ("a100-80gb", "a100-sxm-80gb"),
        ("a100-sxm4-80gb", "a100-sxm-80gb"),
        ("nvidia-a100-sxm4-80gb", "a100-sxm-80gb"),
        ("h100", "h100-sxm"),
        ("h100-sxm5", "h100-sxm"),
        ("h100-80gb", "h100-sxm"),
        ("mi250x-die", "mi250x-gcd"),
        ("rtx-a6000", "a6000"),
        ("4090", "rtx-4090"),
    ],
)
def test_documented_aliases(alias, name):
    assert load_hardware(alias).name == name


@pytest.mark.parametrize("spelling", ["H100-SXM", " h100_sxm ", "H100_SXM5", "NVIDIA H100 80GB HBM3", "\tMI250X_GCD\n"])
def test_case_whitespace_and_underscores(spelling):
    assert load_hardware(spelling).name in {"h100-sxm", "mi250x-gcd"}


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownNameError) as info:
        load_hardware("h100-sxn")
    msg = str(info.value)
    assert "h100-sxm" in msg and "\n" not in msg
    assert info.value.field == "hardware"
    assert isinstance(info.value, TapeoutError)


def test_unknown_name_without_match_lists_names():
    with pytest.raises(UnknownNameError, match="known: .*a100-sxm-40gb"):
        load_hardware("zzzzzz")


def test_no_yaml_at_import():
    code = "import sys, tapeout.hardware; sys.exit('yaml' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---- user files ---------------------------------------------------------------------------------
USER_TOML = """
name = "my-chip"
vendor = "Imagined"
aliases = ["mine"]
sm_count = 100
tdp_w = 500
[peak_tflops]
bf16 = 1000
fp8 = 2000
[memory]
kind = "HBM3"
capacity_gb = 96
bandwidth_gbps = 4000
[interconnect]
kind = "custom"
bandwidth_gbps_per_direction = 400
topology = "switch"
max_devices = 16
[efficiency]
matmul_eta = 0.8
"""

USER_YAML = """
name: my-yaml-chip
vendor: Imagined
peak_tflops: {fp16: 500}
memory: {kind: GDDR7, capacity_gb: 32, bandwidth_gbps: 1800}
"""


def test_user_toml_file(tmp_path):
    p = tmp_path / "chip.toml"
    p.write_text(USER_TOML)
    for arg in (p, str(p)):
        spec = load_hardware(arg)
        assert spec.name == "my-chip"
        assert spec.peak_tflops == {"bf16": 1000, "fp8": 2000}
        assert spec.interconnect.max_devices == 16
        assert spec.efficiency.matmul_eta == 0.8
    assert "my-chip" not in hardware_names()


def test_user_yaml_and_json_files(tmp_path):
    y = tmp_path / "chip.yaml"
    y.write_text(USER_YAML)
    spec = load_hardware(str(y))
    assert spec.name == "my-yaml-chip" and spec.memory.bandwidth_gbps == 1800 and spec.interconnect is None
    j = tmp_path / "chip.json"
    j.write_text(json.dumps(spec.model_dump(mode="json")))
    assert load_hardware(j) == spec


def _one_line_error(path, field: str) -> str:
    with pytest.raises(TapeoutError) as info:
        load_hardware(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert field in msg, msg
    return msg


def test_bad_field_value(tmp_path):
    p = tmp_path / "my.toml"
    p.write_text(USER_TOML.replace("bandwidth_gbps = 4000", "bandwidth_gbps = 0"))
    msg = _one_line_error(str(p), "memory.bandwidth_gbps")
    assert msg == "invalid hardware file my.toml: memory.bandwidth_gbps: Input should be greater than 0"


def test_bad_peak_key_and_topology(tmp_path):
    p = tmp_path / "peak.yaml"
    p.write_text(USER_YAML.replace("fp16: 500", "fp16: 500, fp12: 3"))
    _one_line_error(p, "peak_tflops")
    q = tmp_path / "topo.toml"
    q.write_text(USER_TOML.replace('topology = "switch"', 'topology = "hypercube"'))
    _one_line_error(q, "interconnect.topology")


def test_unknown_key(tmp_path):
    p = tmp_path / "extra.toml"
    p.write_text(USER_TOML.replace('vendor = "Imagined"', 'vendor = "Imagined"\nclock_ghz = 2'))
    msg = _one_line_error(p, "clock_ghz")
    assert "extra" in msg.lower() or "not permitted" in msg


def test_missing_required_field(tmp_path):
    p = tmp_path / "nomem.yaml"
    p.write_text("name: x\nvendor: y\npeak_tflops: {bf16: 1}\n")
    _one_line_error(p, "memory")


def test_not_a_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    _one_line_error(p, "mapping")


@pytest.mark.parametrize(("fname", "text"), [("bad.toml", "name = [unclosed"), ("bad.yaml", "a: [b"), ("bad.json", "{")])
def test_bad_syntax(tmp_path, fname, text):
    p = tmp_path / fname
    p.write_text(text)
    msg = _one_line_error(p, "path")
    assert fname in msg


def test_missing_file():
    _one_line_error("no/such/device.toml", "path")


# ---- sources ------------------------------------------------------------------------------------
SCALAR_FIELDS = ("process_node", "die_area_mm2", "sm_count", "boost_clock_mhz", "l2_cache_mb", "tdp_w", "price_usd", "pcie_gbps_per_direction")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_filled_field_has_a_source(name):
    spec = load_hardware(name)
    src = spec.sources
    need = [f"peak_tflops.{k}" for k in spec.peak_tflops]
    need += [f"sparse_peak_tflops.{k}" for k in spec.sparse_peak_tflops]
    need += ["memory.kind", "memory.capacity_gb", "memory.bandwidth_gbps"]
    need += [f for f in SCALAR_FIELDS if getattr(spec, f) is not None]
    if spec.interconnect is not None:
        need.append("interconnect")
    if spec.scale_out is not None:
        need.append("scale_out")
    if spec.interconnect is not None and spec.interconnect.fabric != "load_store":
        need.append("interconnect.fabric")
    if spec.graph_compiled:
        need.append("graph_compiled")
    missing = [k for k in need if not src.get(k, "").strip()]
    assert not missing, f"{name}: no source for {missing}"
    allowed = set(need) | {"form_factor"}
    assert set(src) <= allowed, f"{name}: sources for unset fields {sorted(set(src) - allowed)}"
    for k, v in src.items():
        assert len(v) <= 220, f"{name} sources[{k}] too long"


def test_structure_rules():
    for spec in list_hardware():
        ic = spec.interconnect
        assert ic is not None, spec.name
        if ic.topology == "pcie":
            assert ic.kind == "pcie" and ic.bandwidth_gbps_per_direction == spec.pcie_gbps_per_direction
        if ic.topology == "pairwise":
            assert ic.max_devices == 2
        # dense peaks are below the sparse headline for every format that has both
        for k, sparse in spec.sparse_peak_tflops.items():
            assert k in PEAK_KEYS
            if k in spec.peak_tflops:
                assert spec.peak_tflops[k] < sparse, (spec.name, k)
    assert load_hardware("h100-sxm").memory.bandwidth_gbps == 3352
    assert load_hardware("a800-sxm-80gb").interconnect.bandwidth_gbps_per_direction == 200
    assert load_hardware("h800-sxm").interconnect.bandwidth_gbps_per_direction == 200
    assert load_hardware("h100-sxm").boost_clock_mhz == 1980 and "1830" in load_hardware("h100-sxm").notes
    gcd = load_hardware("mi250x-gcd")
    assert (gcd.sm_count, gcd.memory.capacity_gb, gcd.memory.bandwidth_gbps, gcd.peak_tflops["fp16"]) == (110, 64, 1638.4, 191.5)
    assert gcd.interconnect.bandwidth_gbps_per_direction == 200
    assert load_hardware("rtx-4090").peak_tflops["fp16"] == 165.2  # FP32-accumulate rate
    assert load_hardware("rtx-3090").peak_tflops["fp16"] == 71
    assert "uncertain" in load_hardware("l40s").sources["peak_tflops.fp16"]
    assert "int4" not in load_hardware("h100-sxm").peak_tflops and "fp8" not in load_hardware("a100-sxm-80gb").peak_tflops
    assert load_hardware("tpu-v5e").interconnect.topology == "torus"


def test_gb200_is_the_nvl72_datasheets_gpu():
    """NVIDIA Blackwell datasheet, GB200 NVL72 column (per GPU, sparse headlines): FP4 20 PF, FP8 10, BF16 5,
    TF32 2.5, FP32 80 TF; 186 GB HBM3e at 8 TB/s; NVLink 5 at 1.8 TB/s; up to 1,200 W. Rack totals: 72 GPUs,
    1,440 PF FP4, 720 PF FP8, 576 TB/s HBM, 130 TB/s NVLink."""
    g = load_hardware("gb200")
    assert g.sparse_peak_tflops == {"fp4": 20_000, "fp8": 10_000, "int8": 10_000, "bf16": 5_000, "fp16": 5_000,
                                    "tf32": 2_500}
    assert {k: g.peak_tflops[k] for k in ("fp4", "fp8", "bf16", "tf32", "fp32")} == {
        "fp4": 10_000, "fp8": 5_000, "bf16": 2_500, "tf32": 1_250, "fp32": 80}
    assert (g.memory.kind, g.memory.capacity_gb, g.memory.bandwidth_gbps, g.tdp_w) == ("HBM3e", 186, 8000, 1200)
    ic = g.interconnect
    assert (ic.topology, ic.max_devices, ic.bandwidth_gbps_per_direction) == ("switch", 72, 900)
    assert 72 * g.sparse_peak_tflops["fp4"] == 1_440_000 and 72 * g.sparse_peak_tflops["fp8"] == 720_000
    assert 72 * g.memory.bandwidth_gbps == 576_000 and round(72 * 2 * ic.bandwidth_gbps_per_direction, -4) == 130_000
    # the same Blackwell GPU as B200 at a higher power: every peak above B200's
    b = load_hardware("b200")
    assert all(g.peak_tflops[k] > v for k, v in b.peak_tflops.items())


def test_gb200_agrees_with_the_nvl72_page_and_the_dgx_user_guide():
    """NVIDIA's GB200 NVL72 page, rack | superchip (1 Grace, 2 GPUs) columns, sparse: NVFP4 1,440 | 40 PF (dense
    720 | 20), FP8 720 | 20 PF, FP16/BF16 360 | 10, TF32 180 | 5; FP32 5,760 | 160 TF; 13.4 TB | 372 GB HBM3e at
    576 | 16 TB/s; NVLink 130 | 3.6 TB/s. DGX GB200 user guide: a compute tray holds 4 GPUs and 4 ConnectX-7 400G
    NICs. Blackwell tuning guide: "The NVIDIA GB200 GPU increases the L2 cache capacity to 126 MB"."""
    g = load_hardware("gb200")
    sp, dense = g.sparse_peak_tflops, g.peak_tflops
    assert (2 * sp["fp4"], 2 * dense["fp4"], 72 * dense["fp4"]) == (40_000, 20_000, 720_000)
    assert {k: 2 * sp[k] for k in ("fp8", "bf16", "tf32")} == {"fp8": 20_000, "bf16": 10_000, "tf32": 5_000}
    assert (72 * dense["fp32"], 2 * dense["fp32"]) == (5_760, 160)  # not the 90 TF some pages quote
    assert 2 * g.memory.capacity_gb == 372 and round(72 * g.memory.capacity_gb / 1000, 1) == 13.4
    assert 2 * g.memory.bandwidth_gbps == 16_000
    assert 2 * 2 * g.interconnect.bandwidth_gbps_per_direction == 3_600
    assert g.scale_out.bandwidth_gbps_per_direction * 8 == 400  # one 400 Gb/s NIC per GPU, GB/s per direction
    assert g.l2_cache_mb == 126 and g.sm_count == 152  # SMs and clocks: XLA's recorded GB200 device description
    assert not g.microarch.tiled_by_default  # roofline by default: aggregate L2 bandwidth unpublished
    assert "NV-DGXGB200-UG" in g.sources["scale_out"] and "NV-GB200-PAGE" in g.sources["peak_tflops.fp32"]


# ---- facts from the shared datasheet table ------------------------------------------------------
# csv fields that the schema has no slot for (FP16-accumulate GeForce rates, Gaudi TPC vector BF16)
NO_SLOT = {"peak_fp16_fp16acc_tflops", "peak_fp8_fp16acc_tflops", "peak_bf16_vector_tflops"}


def _csv_rows(shared_file) -> list[dict]:
    with shared_file("hardware/datasheets.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _catalog_path(field: str) -> str | None:
    """Where a csv field lives in the catalog (as a sources-style key), or None if not checked."""
    if field in NO_SLOT:
        return None
    for prefix, table in (("peak_", "peak_tflops"), ("sparse_", "sparse_peak_tflops")):
        if field.startswith(prefix):
            key = field.removeprefix(prefix).removesuffix("_tflops").removesuffix("_tops")
            assert key in PEAK_KEYS, f"unmapped csv field {field}"
            return f"{table}.{key}"
    return {
        "memory_capacity_gb": "memory.capacity_gb",
        "memory_bandwidth_gbps": "memory.bandwidth_gbps",
        "sm_count": "sm_count",
        "tdp_w": "tdp_w",
    }.get(field)


def _catalog_value(spec: HardwareSpec, path: str) -> float | None:
    if path.startswith("peak_tflops."):
        return spec.peak_tflops.get(path.split(".", 1)[1])
    if path.startswith("sparse_peak_tflops."):
        return spec.sparse_peak_tflops.get(path.split(".", 1)[1])
    if path.startswith("memory."):
        return getattr(spec.memory, path.split(".", 1)[1])
    return getattr(spec, path)


def test_datasheet_facts(shared_file):
    rows = _csv_rows(shared_file)
    assert {r["device"] for r in rows} == EXPECTED - TYPED_HERE
    checked, problems = 0, []
    values: dict[tuple[str, str], float] = {}
    for r in rows:
        path = _catalog_path(r["field"])
        v = _float(r["value"])
        if path is None or v is None:
            continue
        values[(r["device"], path)] = v
        spec = load_hardware(r["device"])
        have = _catalog_value(spec, path)
        if r["confidence"] in ("exact", "secondary"):
            checked += 1
            if have is None or abs(have - v) > 0.005 * abs(v):
                problems.append(f"{r['device']} {path}: catalog {have}, datasheet {v}")
        elif have is not None and abs(have - v) <= 0.005 * abs(v):
            # an uncertain datasheet value may be used, but never silently
            if "uncertain" not in spec.sources.get(path, ""):
                problems.append(f"{r['device']} {path}: uses uncertain value {v} without flagging it")
    assert not problems, "\n".join(problems)
    assert checked > 250
    # the GH200 HBM3e SKU (typed here) holds the table's gh200 *_hbm3e_sku facts
    hbm3e = {r["field"]: float(r["value"]) for r in rows if r["device"] == "gh200" and r["field"].endswith("_hbm3e_sku")}
    g = load_hardware("gh200-144gb").memory
    assert (g.capacity_gb, g.bandwidth_gbps) == (hbm3e["memory_capacity_gb_hbm3e_sku"],
                                                 hbm3e["memory_bandwidth_gbps_hbm3e_sku"])
    # dense never equals the sparse headline where the datasheet gives both
    for (dev, path), dense in values.items():
        if not path.startswith("peak_tflops."):
            continue
        sparse_path = "sparse_" + path
        if (dev, sparse_path) in values:
            spec = load_hardware(dev)
            d, s = _catalog_value(spec, path), _catalog_value(spec, sparse_path)
            if d is not None and s is not None:
                assert d != s and d < s, f"{dev} {path}: dense {d} vs sparse {s}"


def test_unsupported_formats_are_omitted(shared_file):
    for r in _csv_rows(shared_file):
        path = _catalog_path(r["field"])
        if path is None or r["value"] not in ("unsupported", "not_published", "not_listed", "n/a"):
            continue
        if r["field"] == "tdp_w":
            continue  # mi250x-gcd: package power shared by two GCDs; the catalog carries half (flagged)
        spec = load_hardware(r["device"])
        assert _catalog_value(spec, path) is None, f"{r['device']} {path} is {r['value']} in the datasheet"
