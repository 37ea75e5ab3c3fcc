"""Running explorations: grid results, resume after SIGKILL, Ray = local, NSGA-II, reports."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tapeout.explore import report as rp
from tapeout.explore.cli import app
from tapeout.explore.run import run
from tapeout.explore.space import load_space, point_key
from tapeout.explore.store import Store

WORKLOAD = {"name": "gpt3", "model": "gpt-3-175b", "num_layers": 12, "batch": 8, "input_len": 512, "output_len": 16}
MEMORY = [{"kind": "HBM2e", "interfaces": 4}, {"kind": "HBM2e", "interfaces": 5}, {"kind": "HBM3", "interfaces": 5},
          {"kind": "CXL-DDR5", "bandwidth_gbps": 1024, "capacity_gb": 512}]


def space_dict(**params):
    return {"name": "t", "base": "a100-sxm-80gb", "parameters": params, "workloads": [WORKLOAD],
            "constraints": {"max_area_mm2": 858}, "objectives": ["throughput", "perf_per_dollar"]}


SMALL = space_dict(cores=[64, 128], l2_mb=[24, 48], memory=MEMORY[1::2])
LARGE = space_dict(cores=[48, 64, 80, 96, 112, 128], l2_mb=[16, 32, 48, 64], clock_mhz=[1200, 1410, 1600],
                   memory=MEMORY)


def results(db: Path) -> dict[str, tuple[dict, dict]]:
    st = Store(db)
    try:
        return {k: (p, m) for k, p, m in st.points()}
    finally:
        st.close()


def test_grid_run_stores_every_point_and_resumes(tmp_path):
    sp = load_space(SMALL)
    db = tmp_path / "r.db"
    s = run(sp, db, jobs=1)
    assert (s.method, s.evaluated, s.skipped, s.total) == ("grid", 8, 0, 8)
    res = results(db)
    assert set(res) == {point_key(p) for p in sp.grid()}
    for params, m in res.values():
        assert m["area_mm2"] > 0 and m["device_cost_usd"] > 0
        assert len(m["objectives"]) == 2 and m["workloads"]["gpt3"]["throughput_per_device"] > 0
    again = run(sp, db, jobs=1)
    assert (again.evaluated, again.skipped) == (0, 8)
    with pytest.raises(Exception, match="different space"):
        run(load_space(space_dict(cores=[32])), db, jobs=1)


def test_sigkill_halfway_then_resume_gives_the_same_results(tmp_path):
    sp = load_space(LARGE)
    n = sp.grid_size()
    f = tmp_path / "space.json"
    f.write_text(json.dumps(LARGE))
    db = tmp_path / "killed.db"
    code = ("import sys; from tapeout.explore.cli import app; "
            f"app(['explore', {str(f)!r}, '--db', {str(db)!r}, '-j', '2', '--no-progress'])")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stored = 0
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as c:
                        stored = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
                if stored >= n // 3:
                    break
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI process and its pool workers
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    with sqlite3.connect(db) as c:
        at_kill = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    assert 0 < at_kill < n, "the run must be killed halfway"
    s = run(sp, db, jobs=2)
    assert s.skipped == at_kill and s.evaluated == n - at_kill
    # every point evaluated exactly once across the two runs
    st = Store(db)
    counts = st.evaluation_counts()
    st.close()
    assert len(counts) == n and set(counts.values()) == {1}
    # the same result set as an uninterrupted run
    ref = tmp_path / "ref.db"
    run(sp, ref, jobs=2)
    assert results(db) == results(ref)


def test_ray_and_local_give_identical_results(tmp_path):
    pytest.importorskip("ray")
    sp = load_space(SMALL)
    run(sp, tmp_path / "local.db", jobs=2)
    s = run(sp, tmp_path / "ray.db", executor="ray", jobs=2)
    assert s.executor == "ray" and s.evaluated == 8
    assert results(tmp_path / "ray.db") == results(tmp_path / "local.db")


def test_nsga2_search_and_resume(tmp_path):
    pytest.importorskip("optuna")
    d = {**LARGE, "search": {"method": "nsga2", "trials": 60, "population": 12, "seed": 1}}
    sp = load_space(d)
    db = tmp_path / "s.db"
    s1 = run(sp, db, jobs=1)
    assert s1.method == "nsga2" and 0 < s1.evaluated <= 60
    s2 = run(sp, db, jobs=1, trials=90)
    assert s2.skipped == s1.evaluated and s2.evaluated > 0
    st = Store(db)
    assert set(st.evaluation_counts().values()) == {1}
    st.close()


def test_random_search_is_deterministic(tmp_path):
    d = {**LARGE, "search": {"method": "random", "trials": 20, "seed": 3}}
    run(load_space(d), tmp_path / "a.db", jobs=1)
    run(load_space(d), tmp_path / "b.db", jobs=1)
    assert set(results(tmp_path / "a.db")) == set(results(tmp_path / "b.db"))
    assert len(results(tmp_path / "a.db")) == 20


def test_pareto_mask():
    y = np.array([[1, 5], [2, 4], [3, 3], [2, 5], [3, 1], [3, 1]], float)
    assert pareto_list(y, ["min", "min"]) == [0, 1, 4, 5]
    assert pareto_list(y, ["max", "max"]) == [2, 3]
    assert pareto_list(y, ["min", "max"]) == [0]  # (1, 5) dominates (2, 5)


def pareto_list(y, dirs):
    return [i for i, k in enumerate(rp.pareto_mask(y, dirs)) if k]


def test_report_command_writes_tables_and_plots(tmp_path):
    sp = load_space(SMALL)
    db = tmp_path / "r.db"
    run(sp, db, jobs=1)
    res = CliRunner().invoke(app, ["explore", "--report", str(db), "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["points"] == 8 and d["pareto_size"] >= 1
    files = d["files"]
    assert Path(files["points_csv"]).is_file() and Path(files["pareto_csv"]).is_file()
    for kind, module in (("pareto_parquet", "pyarrow"), ("png", "matplotlib"), ("html", "plotly")):
        try:
            __import__(module)
        except ImportError:
            assert files[kind].startswith("skipped")
        else:
            assert Path(files[kind]).is_file()
    front = d["pareto"]
    feasible = [r for r in rp.load_run(db).rows if r["feasible"]]
    for r in feasible:  # nothing feasible dominates a front member
        for f in front:
            assert not (r["throughput"] > f["throughput"] and r["perf_per_dollar"] > f["perf_per_dollar"])
    res = CliRunner().invoke(app, ["explore", "--report", str(db)])
    assert res.exit_code == 0 and "Pareto front" in res.output


def test_explore_command_runs_and_rejects_bad_input(tmp_path, monkeypatch):
    f = tmp_path / "spaces" / "s.json"
    f.parent.mkdir()
    f.write_text(json.dumps(SMALL))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the run database goes to the working directory, not beside the space
    res = CliRunner().invoke(app, ["explore", str(f), "-j", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "8 evaluated" in res.output and (work / "s.db").is_file() and not (f.parent / "s.db").exists()
    res = CliRunner().invoke(app, ["explore", str(f), "-j", "1"])  # with the progress bar; resumes
    assert res.exit_code == 0 and "0 evaluated, 8 already" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SMALL, "parameters": {"corez": [1]}}))
    res = CliRunner().invoke(app, ["explore", str(bad)])
    assert res.exit_code == 2 and "corez" in res.output
    res = CliRunner().invoke(app, ["explore"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["explore", "--report", str(tmp_path / "none.db")])
    assert res.exit_code == 2 and "no such run" in res.output


def test_llmcompass_study_devices():
    """The three devices of docs/design-study.md (Part 1) keep their documented sizes and costs."""
    from tapeout.explore.study import LLMCOMPASS_DRAM_USD_PER_GB, devices

    d = devices()
    area = {k: v.cost.area_mm2 for k, v in d.items()}
    assert area["GA100"] == pytest.approx(831, abs=1)
    assert area["latency"] == pytest.approx(497, abs=1)
    assert area["throughput"] == pytest.approx(794, abs=1)
    hw = {k: v.design.hardware for k, v in d.items()}
    assert hw["GA100"].peak_tflops["fp16"] == pytest.approx(369.6, rel=1e-3)
    assert hw["latency"].peak_tflops["fp16"] == pytest.approx(369.6 / 2, rel=1e-3)
    assert hw["throughput"].peak_tflops["fp16"] == pytest.approx(369.6 * 2, rel=1e-3)
    assert hw["throughput"].memory.interfaces == 256 and hw["throughput"].memory.capacity_gb == 512
    assert d["throughput"].cost.memory_cost_usd == pytest.approx(512 * 2.4)
    assert 512 * LLMCOMPASS_DRAM_USD_PER_GB == pytest.approx(154)
