"""Running an exploration: grid sweeps, random sampling and NSGA-II search (Optuna, optional),
on a local process pool (default) or a Ray cluster (optional), every finished point stored at once.

    summary = run(space, "runs/gpt3.db", executor="local", jobs=2)

A run resumes by itself: points already in the database are never evaluated again (grid and
random runs skip their keys; a search replays them into the sampler and answers repeated
suggestions from the database).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapeout.errors import TapeoutError
from tapeout.explore.evaluate import context, directions, evaluate, evaluate_many
from tapeout.explore.space import Space, point_key
from tapeout.explore.store import Store

Result = tuple[dict[str, Any], dict[str, Any]]  # (params, metrics)


# ---- executors -----------------------------------------------------------------------------------
_WORKER_SPACE: str | None = None


def _init_worker(space_json: str) -> None:
    global _WORKER_SPACE
    _WORKER_SPACE = space_json
    context(space_json)


def _eval_one(params: dict[str, Any]) -> dict[str, Any]:
    assert _WORKER_SPACE is not None
    return evaluate(context(_WORKER_SPACE), params)


class LocalExecutor:
    """A process pool (``jobs`` workers; 1 evaluates in this process). Results stream back one by one."""

    name = "local"

    def __init__(self, space: Space, jobs: int | None = None) -> None:
        self.space_json = space.to_json()
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.pool = None
        if self.jobs > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_init_worker,
                                            initargs=(self.space_json,))

    def map(self, points: Iterable[dict[str, Any]]) -> Iterator[Result]:
        if self.pool is None:
            ctx = context(self.space_json)
            for p in points:
                yield p, evaluate(ctx, p)
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        it = iter(points)
        window = 4 * self.jobs
        pending: dict[Any, dict[str, Any]] = {}
        for p in it:
            pending[self.pool.submit(_eval_one, p)] = p
            if len(pending) >= window:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                p = pending.pop(f)
                yield p, f.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending[self.pool.submit(_eval_one, nxt)] = nxt

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray tasks of ``chunk`` points each; ``address`` None starts (or joins) a local Ray instance."""

    name = "ray"

    def __init__(self, space: Space, jobs: int | None = None, address: str | None = None, chunk: int = 8) -> None:
        try:
            import ray
        except ImportError:
            raise TapeoutError("the Ray executor needs the 'ray' package (pip install 'tapeout[explore]' or "
                               "pip install ray)", field="executor") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
            if address:
                kw["address"] = address
            elif jobs:
                kw["num_cpus"] = jobs
            ray.init(**kw)
        self.chunk = chunk
        self.space_ref = ray.put(space.to_json())
        self.remote = ray.remote(evaluate_many)
        self.slots = max(1, int(ray.available_resources().get("CPU", jobs or 1)))

    def map(self, points: Iterable[dict[str, Any]]) -> Iterator[Result]:
        ray = self.ray
        it = iter(points)

        def next_chunk() -> list[dict[str, Any]]:
            out = []
            for p in it:
                out.append(p)
                if len(out) >= self.chunk:
                    break
            return out

        pending: dict[Any, list[dict[str, Any]]] = {}
        for _ in range(2 * self.slots):
            c = next_chunk()
            if not c:
                break
            pending[self.remote.remote(self.space_ref, c)] = c
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                c = pending.pop(ref)
                for p, m in zip(c, ray.get(ref)):
                    yield p, m
                nxt = next_chunk()
                if nxt:
                    pending[self.remote.remote(self.space_ref, nxt)] = nxt

    def close(self) -> None:
        if self.started:  # a Ray instance this executor started goes with it
            self.ray.shutdown()


def make_executor(space: Space, kind: str = "local", jobs: int | None = None, address: str | None = None):  # noqa: ANN201
    if kind == "local":
        return LocalExecutor(space, jobs)
    if kind == "ray":
        return RayExecutor(space, jobs, address)
    raise TapeoutError(f"unknown executor {kind!r}; allowed: local, ray", field="executor")


# ---- runs ------------------------------------------------------------------------------------------
@dataclass
class Summary:
    db: Path
    method: str
    executor: str
    total: int  # points this run targets
    skipped: int  # already in the database
    evaluated: int  # evaluated by this call
    seconds: float

    @property
    def points_per_minute(self) -> float:
        return 60 * self.evaluated / self.seconds if self.seconds > 0 else math.nan


class Progress:
    """Callback interface (the CLI passes a rich progress bar)."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def stop(self) -> None: ...


def resolve_method(space: Space, method: str | None) -> str:
    m = method or space.search.method
    if m == "auto":
        if space.grid_size() <= space.search.max_grid:
            return "grid"
        try:
            import optuna  # noqa: F401

            return "nsga2"
        except ImportError:
            return "random"
    if m == "nsga2":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise TapeoutError("NSGA-II search needs the 'optuna' package (pip install 'tapeout[explore]')",
                               field="search.method") from None
    return m


def _store_all(store: Store, results: Iterable[Result], progress: Progress | None) -> int:
    n = 0
    for params, metrics in results:
        store.add(point_key(params), params, metrics)
        n += 1
        if progress is not None:
            progress.advance()
    return n


def run(space: Space, db: str | Path, *, executor: str = "local", jobs: int | None = None,
        method: str | None = None, trials: int | None = None, progress: Progress | None = None,
        ray_address: str | None = None, fresh: bool = False) -> Summary:
    """Explore ``space`` into the SQLite file ``db`` (created, or resumed when it exists)."""
    db = Path(db)
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise TapeoutError(f"expected a positive number of points, got {trials!r}", field="trials")
    if fresh and db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    store.bind(space.to_json(), space.digest)
    m = resolve_method(space, method)
    n_trials = trials if trials is not None else space.search.trials
    t0 = time.perf_counter()
    ex = make_executor(space, executor, jobs, ray_address)
    try:
        done = store.done_keys()
        if m in ("grid", "random"):
            if m == "grid":
                todo_all = list(space.grid())
            else:
                size = space.grid_size()
                k = min(n_trials, size)
                idx = random.Random(space.search.seed).sample(range(size), k)
                todo_all = [space.point(i) for i in idx]
            todo = [p for p in todo_all if point_key(p) not in done]
            total, skipped = len(todo_all), len(todo_all) - len(todo)
            if progress is not None:
                progress.start(total, skipped)
            evaluated = _store_all(store, ex.map(todo), progress)
        else:
            total = n_trials
            skipped, evaluated = _nsga2(space, store, ex, n_trials, progress)
    finally:
        ex.close()
        if progress is not None:
            progress.stop()
        store.close()
    return Summary(db=db, method=m, executor=ex.name, total=total, skipped=skipped, evaluated=evaluated,
                   seconds=time.perf_counter() - t0)


def _nsga2(space: Space, store: Store, ex: Any, n_trials: int, progress: Progress | None) -> tuple[int, int]:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = space.names
    # Optuna categorical choices must be hashable scalars: index into each parameter's values
    dists = {n: CategoricalDistribution(list(range(len(space.parameters[n])))) for n in names}
    dirs = ["minimize" if d == "min" else "maximize" for d in directions(space)]

    def constraints(trial: Any) -> list[float]:
        return trial.system_attrs.get("constraints", [0.0])

    # Optuna >= 5 reads a trial's constraints itself (constraints_func is deprecated there); 3.x/4.x
    # need constraints_func, which returns the system attribute set before study.tell
    kw = {"constraints_func": constraints} if int(optuna.__version__.split(".")[0]) < 5 else {}
    stored = list(store.points())
    # a resumed search gets a fresh random stream (the seeded one would repeat the stored points)
    sampler = optuna.samplers.NSGAIISampler(population_size=space.search.population,
                                            seed=space.search.seed + len(stored), **kw)
    gen_key = sampler._get_generation_key() if hasattr(sampler, "_get_generation_key") else "nsga2:generation"
    study = optuna.create_study(directions=dirs, sampler=sampler)
    generations = store.generations()

    def values(metrics: dict[str, Any]) -> list[float]:
        out = []
        for v, d in zip(metrics.get("objectives") or [], dirs):
            if v is None or not math.isfinite(v):
                v = math.inf if d == "minimize" else -math.inf
            out.append(float(v))
        return out or [math.nan] * len(dirs)

    def cons(metrics: dict[str, Any]) -> list[float]:
        return [0.0 if metrics.get("feasible") else 1.0 + len(metrics.get("violations") or [])]

    def index_of(params: dict[str, Any]) -> dict[str, int] | None:
        try:
            return {n: space.parameters[n].index(params[n]) for n in names}
        except (KeyError, ValueError):
            return None

    replayed = 0
    for key, params, metrics in sorted(stored, key=lambda t: generations.get(t[0], 0)):
        idx = index_of(params)
        if idx is None:
            continue
        attrs = {"constraints": cons(metrics), gen_key: generations.get(key, 0)}
        study.add_trial(create_trial(params=idx, distributions=dists, values=values(metrics),
                                     system_attrs=attrs, state=TrialState.COMPLETE))
        replayed += 1
    if progress is not None:
        progress.start(n_trials, min(replayed, n_trials))
    evaluated = 0
    told = replayed
    while told < n_trials:
        batch = []
        for _ in range(min(space.search.population, n_trials - told)):
            tr = study.ask(dists)
            params = {n: space.parameters[n][tr.params[n]] for n in names}
            batch.append((tr, params))
        cached = {}
        todo = []
        seen = set()
        for tr, params in batch:
            key = point_key(params)
            got = store.get(key)
            if got is not None:
                cached[tr.number] = got
            elif key not in seen:
                seen.add(key)
                todo.append(params)
        fresh: dict[str, dict[str, Any]] = {}
        for params, metrics in ex.map(todo):
            store.add(point_key(params), params, metrics)
            fresh[point_key(params)] = metrics
            evaluated += 1
        for tr, params in batch:
            metrics = cached.get(tr.number) or fresh[point_key(params)]
            study._storage.set_trial_system_attr(tr._trial_id, "constraints", cons(metrics))
            study.tell(tr, values(metrics))
            gen = study._storage.get_trial_system_attrs(tr._trial_id).get(gen_key)
            if gen is not None:
                store.set_generation(point_key(params), gen)
            told += 1
            if progress is not None:
                progress.advance()
    return replayed, evaluated


__all__ = ["LocalExecutor", "Progress", "RayExecutor", "Summary", "make_executor", "resolve_method", "run"]
