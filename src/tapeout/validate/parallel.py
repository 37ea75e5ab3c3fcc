"""Forked worker processes for the validation harness's independent, deterministic jobs: the serving load points
:func:`tapeout.validate.serving.prefetched` simulates and the refits of ``tapeout validate --cv``
(:mod:`tapeout.fit.cv`).

The workers are forked, so they read the parent's data (the loaded cases, warm caches) without pickling it; each
job returns plain values, and the parent gets the values a serial run would compute. ``$TAPEOUT_WORKERS`` sets how
many (default: the machine's cores, at most 4; 1 runs every job in the calling process). A worker never forks
workers of its own: inside one, :func:`pool` runs its jobs serially.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from tapeout.errors import TapeoutError

#: how many worker processes run the harness's parallel jobs; 1: none (every job in the calling process)
WORKERS_ENV = "TAPEOUT_WORKERS"


def workers(jobs: int) -> int:
    """Worker processes for ``jobs`` jobs: ``$TAPEOUT_WORKERS`` (default the cores, at most 4), never more than the
    jobs; a value that is not a positive integer is a one-line error naming the variable."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw and not (raw.isdigit() and int(raw) > 0):
        raise TapeoutError(f"{raw!r}; allowed: a positive integer (1: no worker processes)", field=WORKERS_ENV)
    n = int(raw) if raw else min(os.cpu_count() or 1, 4)
    return max(1, min(n, jobs))


@contextmanager
def pool(jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """A process pool of forked workers for ``jobs`` jobs, or None where they should run serially: one worker
    (:func:`workers`), no ``fork`` start method, or this process is itself a worker. The workers start at the
    first ``submit``/``map``, so a caller sets the data they read before that."""
    n = workers(jobs)
    if n < 2 or "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.parent_process() is not None:
        yield None
        return
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as ex:
        yield ex


__all__ = ["WORKERS_ENV", "pool", "workers"]
