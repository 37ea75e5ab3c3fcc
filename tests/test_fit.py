"""The store of fitted numbers (src/tapeout/fitted/) and the fitting driver (tapeout fit)."""

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import store
from tapeout.fitted import DEFAULT, KINDS, KernelConstants
from tapeout.hardware.microarch import MatrixUnitSpec, MicroArch
from tapeout.hardware.spec import EfficiencySpec
from tapeout.workload.ops import Kernel

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "src" / "tapeout" / "hardware" / "catalog"
#: every MicroArch / MatrixUnitSpec field the tiled fit writes
TILED_FIELDS = ("matrix_eta", "dram_eta", "stream_eta", "overlap_p", "decode_tile_latencies", "attention_eta",
                "legacy_path_fraction", "fp8_path_fraction",
                "collective_base_us", "collective_step_us", "collective_eta", "collective_ll_step_us",
                "collective_ll_eta")


# ---- the store loads and validates ------------------------------------------------------------------

def test_every_store_file_loads_with_provenance_and_no_dates():
    for kind in KINDS:
        f = fitted.load(kind)
        assert f.subjects, kind
        text = fitted.path(kind).read_text(encoding="utf-8")
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), f"{kind}.toml carries a date"
        for subject, fits in f.subjects.items():
            for name, fit in fits.items():
                assert fit.values and fit.method and fit.command.startswith("tapeout fit"), (kind, subject, name)
                assert fit.residual is None or fit.metric, (kind, subject, name)


def test_store_values_are_the_fields_the_runtime_reads():
    eff_fields = set(EfficiencySpec.model_fields)
    roof = fitted.load("roofline")
    assert DEFAULT in roof.subjects
    for subject in roof.subjects:
        vals = roof.values(subject)
        assert set(vals) <= eff_fields, subject
        EfficiencySpec(**fitted.roofline_efficiency(subject))  # in range
    tiled = fitted.load("tiled")
    for subject in tiled.subjects:
        assert set(tiled.values(subject)) <= set(TILED_FIELDS), subject
    assert set(tiled.values(DEFAULT)) == {"matrix_eta", "dram_eta", "stream_eta", "overlap_p", "decode_tile_latencies",
                                          "attention_eta", "fp8_path_fraction"}
    fw = fitted.load("frameworks")
    for subject in fw.subjects:
        assert set(fw.values(subject)) <= eff_fields, subject
    assert isinstance(fitted.kernel_constants(), KernelConstants)
    from tapeout.cost.assumptions import HBM_FIELDS, Assumptions

    coef = Assumptions.load().data["area"]["coefficients"]
    assert set(fitted.cost_coefficients()) == set(coef) | set(HBM_FIELDS)


def test_a_written_store_file_reads_back_equal():
    for kind in KINDS:
        f = fitted.load(kind)
        assert fitted.parse(kind, store.dump(f)) == f, kind


def test_a_broken_store_file_is_a_one_line_error_naming_the_entry(tmp_path, monkeypatch):
    for kind in KINDS:
        shutil.copy(fitted.path(kind, fitted.PACKAGE_DIR), tmp_path)
    text = (tmp_path / "kernels.toml").read_text()
    value = fitted.kernel_constants().onchip_eta
    (tmp_path / "kernels.toml").write_text(text.replace(f"onchip_eta = {value!r}", "onchip_eta = nan", 1))
    with pytest.raises(TapeoutError, match=r"kernels.toml \[flashllm.staging\]: .*values") as exc:
        fitted.parse("kernels", (tmp_path / "kernels.toml").read_text())
    assert "\n" not in str(exc.value)
    monkeypatch.setenv(fitted.FITTED_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(TapeoutError, match="no roofline.toml"):
        fitted.load("roofline")


def test_the_runtime_merges_the_store_into_the_catalog_and_user_values_win(tmp_path):
    from tapeout import load_hardware, predict

    hw = load_hardware("h100-sxm")
    tiled = fitted.load("tiled").values("h100-sxm")
    assert hw.microarch.matrix_eta == tiled["matrix_eta"]
    assert hw.microarch.matrix.legacy_path_fraction == tiled["legacy_path_fraction"]
    assert hw.microarch.sources["matrix_eta"].startswith("fitted (tapeout fit")
    roof = fitted.roofline_efficiency("h100-sxm")
    assert hw.efficiency.attention_eta == roof["attention_eta"] and hw.efficiency.source == roof["source"]
    # a device without fits takes the defaults of both tiers
    l4 = load_hardware("l4")
    assert l4.microarch.stream_eta == fitted.tiled_default("stream_eta")
    assert l4.efficiency.matmul_eta == fitted.roofline_efficiency(DEFAULT)["matmul_eta"]
    # a user's device file still sets its own efficiencies, and a call overrides any of them
    text = (CATALOG / "h100-sxm.toml").read_text()
    text = text.replace('name = "h100-sxm"', 'name = "my-h100"').replace("aliases = [", "aliases = [\"my-h100-x\", ")
    text = text.replace("[microarch]\n", "[microarch]\nmatrix_eta = 0.5\n")
    text += "\n[efficiency]\nmatmul_eta = 0.5\n"
    (tmp_path / "mine.toml").write_text(text)
    mine = load_hardware(str(tmp_path / "mine.toml"))
    assert mine.microarch.matrix_eta == 0.5 and mine.efficiency.matmul_eta == 0.5
    assert mine.microarch.dram_eta == fitted.tiled_default("dram_eta")  # no device fits for a user file
    a = predict("llama-2-7b", "h100-sxm", batch=8, input_len=512, output_len=16, tier="roofline")
    b = predict("llama-2-7b", "h100-sxm", batch=8, input_len=512, output_len=16, tier="roofline",
                efficiency={"matmul_eta": roof["matmul_eta"] / 2})
    assert b.ttft_s > a.ttft_s


def test_no_catalog_file_holds_a_fitted_value():
    names = ("_eta", "overlap_p", "legacy_path_fraction", "fp8_path_fraction", "collective_base_us", "collective_step_us",
             "collective_ll_step_us", "host_overhead_us", "launch_overhead_us", "fit:")
    for path in sorted(CATALOG.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        assert not [n for n in names if n in text], path.name
    import tomllib

    fw = tomllib.loads((ROOT / "src" / "tapeout" / "system" / "frameworks.toml").read_text())
    for name, table in fw.items():  # a profile's definition never holds what the store fits for it
        assert not (set(table) & (set(fitted.load("frameworks").values(name)) | {"source"})), name


def test_no_module_global_is_set_on_a_module():
    """Fitted numbers reach code as values (the store, or parameters): nothing calls setattr on a module."""
    src = ROOT / "src" / "tapeout"
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py") if re.search(r"\bsetattr\(", p.read_text())]
    assert offenders == []


# ---- the runtime never imports fitting or validation code -----------------------------------------------

def test_runtime_never_imports_fitting_or_validation_code():
    code = ("import sys, tapeout.api, tapeout.cost, tapeout.explore, tapeout.cli; "
            "from tapeout.cost.price import estimate; "
            "tapeout.api.predict('llama-2-7b', 'a100-sxm-80gb', framework='deepspeed', weights='int4_g128'); "
            "tapeout.api.predict('opt-13b', 'a100-sxm-80gb', sparsity=0.8, tier='tiled'); "
            "estimate(tapeout.api.load_hardware('h100-sxm')); "
            "print(sorted(m for m in sys.modules if m.startswith(('tapeout.fit.', 'tapeout.validate')) "
            "or m in ('tapeout.fit', 'tapeout.validate.judge')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]", out.stdout


# ---- the vectorised roofline of the calibration is the estimator -----------------------------------------

def _synthetic_cases():
    from tapeout.validate.cases import LLMCOMPASS, Case
    from tapeout.workload.standalone import (activation_op, attention_op, bmm_op, collective_op, gemm_op, norm_op,
                                             softmax_op)

    cases = []
    for dev in ("a100-sxm-80gb", "h100-sxm", "mi210", "l4"):
        ops = [gemm_op(m, n, k) for m in (1, 16, 512, 4096) for n, k in ((4096, 4096), (1024, 14336))]
        ops += [norm_op(t, 4096) for t in (1, 256, 8192)] + [softmax_op(t, 2048) for t in (8, 4096)]
        ops += [activation_op(e, e / 2) for e in (1e4, 1e7)]
        # dense matrix ops at the fp8 peak (the Design's fp8 column): a batched matmul and fused attention
        ops += [bmm_op(8, 2048, 2048, 128, dtype="fp8"), attention_op(1, 32, 8, 128, sq=4096, dtype="fp8")]
        ops += [collective_op("allreduce", b, g) for b in (4096, 1 << 20, 1 << 28) for g in (2, 8)]
        for i, op in enumerate(ops):
            harness = LLMCOMPASS if i % 3 == 0 and op.kind.value != "allreduce" else "kernel"
            cases.append(Case("synthetic", op.kind.value, dev, (op,), 1e-3, harness=harness))
        cases.append(Case("synthetic", "pair", dev, (ops[0], ops[-1]), 1e-3))
    return cases


def _design_vs_estimator(cases, seed):
    import numpy as np

    from tapeout.fit.roofline import BOUNDS, FAMILIES, Design
    from tapeout.validate.cases import LLMCOMPASS
    from tapeout.validate.runner import _Devices, predict_case

    rng = random.Random(seed)
    worst = 0.0
    by_dev = {}
    for c in cases:
        by_dev.setdefault(c.device, []).append(c)
    for dev, cs in by_dev.items():
        p = {k: rng.uniform(*BOUNDS[k]) for k in ("matmul_eta", "attention_eta", "memory_eta", "vector_memory_eta",
                                                   "launch_overhead_us", "collective_latency_us", "interconnect_eta")}
        p["vector_eta"] = rng.uniform(0.1, 1.0)
        p["fp8_path_fraction"] = rng.uniform(0.5, 1.0)
        host = {f: rng.uniform(0, 50) for f in FAMILIES}
        devices = _Devices({dev: EfficiencySpec(**p), "*": EfficiencySpec(**p)})
        devices.harness = {LLMCOMPASS: {dev: host}}
        vec = Design.build(cs).predict({**p, **{f"host_{f}_us": v for f, v in host.items()}})
        real = np.array([predict_case(c, devices).predicted_s for c in cs])
        worst = max(worst, float(np.max(np.abs(vec / real - 1))))
    return worst


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_calibrations_vectorised_roofline_equals_the_estimator(seed):
    assert _design_vs_estimator(_synthetic_cases(), seed) < 1e-9


def test_the_vectorised_roofline_equals_the_estimator_on_the_fitted_rows(shared_data):
    from tapeout.fit.roofline import fit_cases

    cases = [c for c in fit_cases(shared_data) if all(op.kernel == Kernel.DENSE for op in c.ops)]
    sample = [c for i, c in enumerate(cases) if i % 50 == 0]
    assert len({c.dataset for c in sample}) >= 8
    assert _design_vs_estimator(sample, 7) < 1e-9


# ---- fit --check -------------------------------------------------------------------------------------

def test_differences_compare_values_within_a_tolerance():
    a = store.build("kernels", {"x": {"f": store.fit({"p": 1.0, "q": 2.0}, "m")}})
    b = store.build("kernels", {"x": {"g": store.fit({"p": 1.0 + 1e-9, "q": 2.1, "r": 3.0}, "other text")}})
    diffs = store.differences(a, b, rel=1e-6)
    assert [(d.subject, d.name, d.stored, d.refit) for d in diffs] == [("x", "q", 2.0, 2.1), ("x", "r", None, 3.0)]
    assert "stored absent" in store.differences(b, a)[-1].describe().replace("re-fit absent", "stored absent")
    assert store.differences(a, a) == []


def _tapeout(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tapeout.fit", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})})


def test_fit_check_passes_on_the_store_and_detects_a_tampered_value(shared_data, tmp_path):
    for kind in KINDS:
        shutil.copy(fitted.path(kind, fitted.PACKAGE_DIR), tmp_path)
    ok = _tapeout("--check", "--only", "cost", "--data", str(shared_data), "--store", str(tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "cost.toml: matches the re-fit" in ok.stdout
    text = (tmp_path / "cost.toml").read_text()
    value = fitted.load("cost").values("area")["noc_per_core"]
    tampered = text.replace(f"noc_per_core = {value!r}", f"noc_per_core = {value * 1.01!r}")
    assert tampered != text
    (tmp_path / "cost.toml").write_text(tampered)
    bad = _tapeout("--check", "--only", "cost", "--data", str(shared_data), "--store", str(tmp_path))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "differs: cost.toml [area] noc_per_core" in bad.stdout and "FAILED" in bad.stdout
    # the real store is untouched; without --check the driver rewrites the copy, and it matches again
    assert fitted.load("cost").values("area")["noc_per_core"] == value
    assert _tapeout("--only", "cost", "--data", str(shared_data), "--store", str(tmp_path)).returncode == 0
    assert (tmp_path / "cost.toml").read_text() == fitted.path("cost", fitted.PACKAGE_DIR).read_text()


def test_fit_refuses_absent_data_and_bad_arguments_in_one_line(tmp_path):
    (tmp_path / "measured").mkdir()
    out = _tapeout("--check", "--only", "kernels", "--data", str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "absent" in out.stderr, out.stderr
    out = _tapeout("--check", "--store", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "store" in out.stderr
    from typer.testing import CliRunner

    from tapeout.cli import app

    r = CliRunner().invoke(app, ["fit", "--only", "nothing"])
    assert r.exit_code == 2 and "only: unknown steps" in r.output


def test_microarch_fields_default_to_the_stores_default():
    base = dict(cores=1, clock_mhz=1000, matrix=MatrixUnitSpec(units_per_core=1, macs_per_clock={"fp16": 8}),
                vector={"fp32_lanes_per_core": 32}, registers_kb_per_core=64, shared_memory_kb_per_core=48, l2_mb=1)
    ua = MicroArch(**base)
    for k in ("matrix_eta", "dram_eta", "stream_eta", "overlap_p", "decode_tile_latencies"):
        assert getattr(ua, k) == fitted.tiled_default(k)
    assert ua.matrix.fp8_path_fraction == fitted.tiled_default("fp8_path_fraction")


def test_collective_siblings_run_over_the_measured_devices_fabric():
    """A device that takes another's collective fit (H200 <- H100 SXM: the same HGX NVLink 4 / NVSwitch board)
    has the same scale-up fabric in the catalog (Gaudi 2 <- Gaudi 3: the same RoCE port layout at half the
    rate), and both tiers' stored values for it are the measured device's."""
    from tapeout.fit.roofline import COLLECTIVE_SIBLINGS
    from tapeout.hardware.catalog import load_hardware

    for sib, src in COLLECTIVE_SIBLINGS.items():
        a, b = load_hardware(sib).interconnect, load_hardware(src).interconnect
        assert (a.topology, a.links, a.max_devices) == (b.topology, b.links, b.max_devices), sib
    h200, h100 = load_hardware("h200"), load_hardware("h100-sxm")
    assert h200.interconnect.model_dump() == h100.interconnect.model_dump()
    keys = ("collective_base_us", "collective_step_us", "collective_eta", "collective_ll_step_us", "collective_ll_eta")
    assert h100.microarch.collective_eta is not None
    assert [getattr(h200.microarch, k) for k in keys] == [getattr(h100.microarch, k) for k in keys]
    assert (h200.efficiency.collective_latency_us, h200.efficiency.interconnect_eta) == (
        h100.efficiency.collective_latency_us, h100.efficiency.interconnect_eta)


def test_a_sku_sibling_is_its_part_with_other_memory_and_every_fitted_value():
    """GH200 144 GB HBM3e <- GH200 96 GB HBM3 (SKU_SIBLINGS): the catalog differs in the memory table alone (NVIDIA:
    144 GB at 4.9 TB/s against 96 GB at 4 TB/s), and both tiers store the same values for both SKUs, each group
    saying where it came from."""
    from tapeout.fit.roofline import SKU_SIBLINGS
    from tapeout.hardware.catalog import load_hardware

    assert SKU_SIBLINGS == {"gh200-144gb": "gh200"}
    for sib, src in SKU_SIBLINGS.items():
        a, b = load_hardware(sib), load_hardware(src)
        skip = {"name", "display_name", "aliases", "notes", "memory", "sources", "efficiency", "microarch"}
        assert a.model_dump(exclude=skip) == b.model_dump(exclude=skip)
        for part in ("efficiency", "microarch"):  # every value equal; the provenance names the store entry
            assert getattr(a, part).model_dump(exclude={"source", "sources"}) == \
                getattr(b, part).model_dump(exclude={"source", "sources"})
        assert a.memory.bandwidth_gbps > b.memory.bandwidth_gbps and a.memory.capacity_gb > b.memory.capacity_gb
        for kind in ("tiled", "roofline"):
            mine, theirs = fitted.load(kind).fits(sib), fitted.load(kind).fits(src)
            assert set(mine) == set(theirs) and mine, (kind, sib)
            for name, f in mine.items():
                assert f.values == theirs[name].values and f"carried over from {src}" in f.method
    g = load_hardware("gh200-144gb")
    assert (g.memory.kind, g.memory.capacity_gb, g.memory.bandwidth_gbps) == ("HBM3e", 144, 4900)


def test_a_fit_run_prices_later_groups_with_the_values_it_has_just_fitted():
    """python-scheduler extends kernels: its per-sequence fit must see kernels' fresh prefill host gap (and the
    one-shot all-reduce gptfast's fit gives kernels), its own fresh fields over its base's, never the field
    being fitted; without this one `tapeout fit` run is not a fixed point and `fit --check` fails."""
    from tapeout.fit.frameworks import _inherited

    fresh = {"kernels": {"prefill_host_overhead_us": 11.5, "oneshot_allreduce_latency_us": 6.0},
             "python-scheduler": {"oneshot_allreduce_latency_us": 4.0}, "gptfast": {"host_overhead_us": 1.0}}
    got = dict(_inherited("python-scheduler", fresh, "sequence_host_overhead_us"))
    assert got == {"prefill_host_overhead_us": 11.5, "oneshot_allreduce_latency_us": 4.0}
    assert _inherited("kernels", fresh, "prefill_host_overhead_us") == (("oneshot_allreduce_latency_us", 6.0),)
    assert _inherited("deepspeed", fresh, "host_overhead_us") == ()


def test_the_prefill_host_gap_is_fitted_on_two_sources(shared_data):
    """TensorRT-LLM v0.5's 20 first tokens and TensorRT-LLM 0.14's 24 mean first tokens at 2 and 4 requests/s
    (6 engine / length configurations x 2 devices x 2 rates); the heavier load points stay checks."""
    from tapeout.fit.frameworks import _rows, fit_datasets, fit_groups
    from tapeout.validate.registry import load_cases

    (group,) = [g for g in fit_groups() if g[0].param == "prefill_host_overhead_us"]
    assert [s.dataset for s in group] == ["e2e-trtllm", "e2e-serving-trt014"]
    assert "e2e-serving-trt014" in fit_datasets()
    cases = load_cases(shared_data, ["e2e-trtllm", "e2e-serving-trt014"])
    trt, serving = (_rows(cases, s) for s in group)
    assert len(trt) == 20 and {c.quantity for c in trt} == {"ttft_s"}
    assert len(serving) == 24 and {c.quantity for c in serving} == {"serving_mean_ttft_s"}
    assert sorted({float(dict(c.info)["rate"]) for c in serving}) == [2.0, 4.0]
    assert {c.device for c in serving} == {"h100-sxm", "h200"}
