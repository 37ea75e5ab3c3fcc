"""The validation harness's forked workers (tapeout.validate.parallel): serving load points simulated in workers give
a serial run's values, a worker's failure is raised by the parent in order, and a worker never forks its own."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from tapeout.errors import TapeoutError
from tapeout.validate import parallel, serving
from tapeout.validate.registry import load
from tapeout.validate.runner import DEFAULT_TIER, _Devices, price_cases

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method")


@pytest.fixture(scope="module")
def serving_cases():
    """SGLang's and vLLM's shipped serving rows (e2e-serving-sglang) of the first three load points."""
    cases = [c for c in load(None, ["e2e-serving-sglang"]).cases if serving.is_serving(c)]
    points: list = []
    out = []
    for c in cases:
        key = (c.device, c.scenario)
        if key not in points:
            if len(points) == 3:
                continue
            points.append(key)
        out.append(c)
    assert len(points) == 3 and len(out) > 3
    return out


def _priced(cases, monkeypatch, workers: str) -> list[float]:
    monkeypatch.setenv(parallel.WORKERS_ENV, workers)
    serving._CACHE.clear()
    return [r.predicted_s for r in price_cases(cases, _Devices("catalog"), DEFAULT_TIER)]


def test_load_points_simulated_in_workers_equal_a_serial_run(serving_cases, monkeypatch):
    pooled = _priced(serving_cases, monkeypatch, "2")
    assert not serving._PENDING and not serving._POINTS  # every worker's result was taken, the points released
    serial = _priced(serving_cases, monkeypatch, "1")
    assert pooled == serial  # bit for bit: the simulator is deterministic


def test_a_load_point_that_fails_in_a_worker_raises_in_the_parent(serving_cases, monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    serving._CACHE.clear()
    hw = _Devices("catalog").base(serving_cases[0].device)
    good = serving_cases[0].scenario
    bad = tuple(sorted(dict(good, model="no-such-model").items()))
    with serving.prefetched([(hw, good, "roofline"), (hw, bad, "roofline")]):
        assert set(serving._PENDING) == {serving.key(hw, good, "roofline"), serving.key(hw, bad, "roofline")}
        assert serving.simulated(hw, good, "roofline")["serving_tpot_p50_s"] > 0
        with pytest.raises(TapeoutError, match="no-such-model"):
            serving.simulated(hw, bad, "roofline")
    assert not serving._PENDING


def _pool_inside_a_worker() -> bool:
    with parallel.pool(8) as ex:
        return ex is None


def test_a_worker_runs_its_own_jobs_serially(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "4")
    with parallel.pool(8) as ex:
        assert ex is not None
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as ex:
        assert ex.submit(_pool_inside_a_worker).result()


@pytest.mark.parametrize("bad", ["0", "-1", "four", "2.5"])
def test_a_bad_worker_count_fails_before_any_simulation(bad, serving_cases, monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, bad)
    serving._CACHE.clear()
    with pytest.raises(TapeoutError, match=f"^{parallel.WORKERS_ENV}: '{bad}'; allowed: a positive integer"):
        price_cases(serving_cases, _Devices("catalog"), DEFAULT_TIER)
    assert not serving._CACHE
