"""The registry of validation sources, the data-directory resolution and the handling of absent data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from measured_rows import HEADER, gemm_row
from tapeout.cli import app
from tapeout.datadir import DATA_ENV, default_data_dir, resolve_data_dir
from tapeout.errors import TapeoutError
from tapeout.validate import registry
from tapeout.validate.sources import MODULES

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture()
def one_set(tmp_path):
    """A data directory holding one vidur GEMM row and nothing else."""
    (tmp_path / "measured").mkdir()
    (tmp_path / "measured" / "vidur_gemm_extract.csv").write_text(
        HEADER + gemm_row(16, 0.05))
    return tmp_path


@pytest.fixture()
def clean_env(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    return monkeypatch


def test_every_source_module_registers_described_datasets_of_a_known_kind():
    ds = registry.datasets()
    assert set(registry.sources()) == set(MODULES)  # every module registers at least one dataset
    for d in ds.values():
        assert d.kind in registry.KINDS and d.description.strip() and d.source in MODULES
        assert d.shipped or d.files
        assert d.kind == registry.END_TO_END if d.name.startswith("e2e-") else d.kind == registry.PER_OP
    kinds = [d.kind for d in ds.values()]
    assert kinds == sorted(kinds, key=registry.KINDS.index)  # per-op sets first, then end-to-end
    # the report order and names of the sets as they were before the split, then the later ones (the MI300X
    # kernel timings, RCCL on MI300X, the published copy bandwidths, the serving sets)
    assert tuple(ds) == (
        "vidur-gemm", "vidur-elementwise", "vidur-attention", "vidur-allreduce", "llmcompass-matmul", "llmcompass-softmax",
        "llmcompass-layernorm", "llmcompass-gelu", "llmcompass-gpt3-layer", "llmcompass-allreduce", "mamf",
        "hccl-gaudi", "flashattention-h100", "attention-kernels", "decode-attention-kernels", "flashllm-kernels", "mi300x-kernels", "fp8-gemm-kernels", "rccl-mi300x",
        "membw-published", "e2e-fp6llm", "e2e-flashllm", "e2e-fastertransformer-published",
        "e2e-llamacpp", "e2e-torchao",
        "e2e-gptfast", "e2e-trtllm", "e2e-frontier-published", "e2e-prefill-published", "e2e-mi300x-published",
        "e2e-gaudi-published", "e2e-serving-trt014", "e2e-serving-lmdeploy", "e2e-mlperf",
        "e2e-serving-sglang")
    assert registry.source_of("e2e-flashllm") == registry.source_of("flashllm-kernels") == "flashllm"


def test_a_registered_kind_matches_the_cases_its_loader_makes(one_set):
    shipped = [n for n, d in registry.datasets().items() if d.shipped]
    for case in registry.load_cases(one_set, ["vidur-gemm", *shipped]):
        assert case.is_e2e == (registry.datasets()[case.dataset].kind == registry.END_TO_END)


def test_a_dataset_without_its_files_is_absent_and_shipped_ones_never_are(one_set):
    loaded = registry.load(one_set)
    present = {"vidur-gemm"} | {n for n, d in registry.datasets().items() if d.shipped}
    assert set(loaded.absent) == set(registry.datasets()) - present
    assert {c.dataset for c in loaded.cases} == present
    with pytest.raises(TapeoutError, match="unknown dataset"):
        registry.load(one_set, ["no-such-set"])


def test_validate_reports_absent_sets_in_json_and_in_the_table(one_set, clean_env):
    res = CliRunner().invoke(app, ["validate", "--data", str(one_set), "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    absent = {r["dataset"]: r for r in rows if r.get("absent")}
    assert set(absent) == set(registry.load(one_set).absent) and "e2e-fp6llm" in absent
    assert all(r["n"] == 0 and r["mape_pct"] is None for r in absent.values())
    assert not any(r["dataset"] in absent for r in rows if not r.get("absent"))
    res = CliRunner().invoke(app, ["validate", "--data", str(one_set)])
    assert res.exit_code == 0, res.output
    assert "absent (no files" in res.output and "e2e-llamacpp" in res.output


def test_ci_true_makes_an_absent_dataset_fail_validate(one_set, clean_env):
    clean_env.setenv("CI", "true")
    res = CliRunner().invoke(app, ["validate", "--data", str(one_set), "--format", "json"])
    assert res.exit_code != 0
    # the progress line ("loading the measured cases from ..."), then one error line naming the absent sets
    lines = res.output.strip().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("error: data") and "e2e-fp6llm" in lines[-1]
    assert "Traceback" not in res.output


def test_default_data_directory_env_var_then_nearest_shared_folder(tmp_path, clean_env):
    work = tmp_path / "work"
    (work / "shared" / "reference-data" / "measured").mkdir(parents=True)
    (work / "repo" / "tests").mkdir(parents=True)
    clean_env.chdir(work / "repo" / "tests")
    assert default_data_dir() == work / "shared" / "reference-data"  # found from a sub-directory of a checkout
    assert resolve_data_dir() == work / "shared" / "reference-data"
    other = tmp_path / "other"
    (other / "vidur").mkdir(parents=True)
    clean_env.setenv(DATA_ENV, str(other))
    assert default_data_dir() == other and resolve_data_dir() == other.resolve()
    # a directory named explicitly (variable or argument) must be a reference-data directory
    clean_env.setenv(DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(TapeoutError, match="does not exist"):
        resolve_data_dir()
    with pytest.raises(TapeoutError, match="data"):
        resolve_data_dir(work / "repo")


def test_without_any_data_directory_only_the_shipped_sets_run(tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    loaded = registry.load()
    shipped = {n for n, d in registry.datasets().items() if d.shipped}
    assert not loaded.data_dir.exists()
    assert {c.dataset for c in loaded.cases} == shipped
    assert set(loaded.absent) == set(registry.datasets()) - shipped
    res = CliRunner().invoke(app, ["validate", "--format", "json"])
    assert res.exit_code == 0, res.output
    clean_env.setenv("CI", "true")
    res = CliRunner().invoke(app, ["validate", "--format", "json"])
    assert res.exit_code != 0 and "absent" in res.output


def test_ci_true_turns_the_suites_skips_on_missing_shared_data_into_failures(tmp_path):
    """A checkout without the shared data skips its accuracy tests; with CI=true they fail instead."""
    tests = ["tests/test_microarch.py::test_derived_peaks_match_the_shared_datasheet_file",
             "tests/test_validate.py::test_shared_loaders_row_counts"]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[DATA_ENV] = str(tmp_path)  # exists, holds nothing
    cmd = [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", *tests]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "2 skipped" in out.stdout, out.stdout
    out = subprocess.run(cmd, cwd=ROOT, env={**env, "CI": "true"}, capture_output=True, text=True)
    # a test that reads the file fails; one whose fixture needs the folder errors: either way the run fails
    assert out.returncode != 0 and "1 failed, 1 error" in out.stdout, out.stdout


def test_runtime_never_imports_validation_or_fitting_code():
    code = ("import sys, tapeout, tapeout.cli, tapeout.cost.cli, tapeout.explore.cli; "
            "tapeout.predict('llama-2-7b', 'a100-sxm-80gb', framework='deepspeed'); "
            "print(sorted(m for m in sys.modules if m.startswith(('tapeout.validate', 'tapeout.fit.')) "
            "or m.endswith('.judge') or m == 'tapeout.fit'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
