"""The registry of validation sources: every measured dataset, who published it, and how to load it.

A *source* is one origin of measurements (a paper's repository, a benchmark tool's table, a README),
written as one module of :mod:`tapeout.validate.sources`. Each module registers its dataset(s) with
:func:`register`: a name (``vidur-gemm``, ``e2e-fp6llm``), a kind (``per-op``: ops priced with
``perf.estimate``; ``end-to-end``: scenarios priced with :func:`tapeout.predict`), a description, the
files it reads under the data directory (glob patterns; a dataset with none of them is *absent*) or
``shipped=True`` for the typed figures under ``validate/published/`` (present whatever the directory).

Report order: the per-op datasets, then the end-to-end ones, each in the order their modules
register them (:data:`tapeout.validate.sources.MODULES`).

The data directory is always passed in (``data_dir``); ``None`` means the documented default of
:mod:`tapeout.datadir`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import Case
from tapeout.datadir import resolve_data_dir

PER_OP = "per-op"
END_TO_END = "end-to-end"
KINDS = (PER_OP, END_TO_END)

Loader = Callable[[Path], list[Case]]


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    kind: str
    #: the source (module of :mod:`tapeout.validate.sources`) it comes from: what cross-validation holds out
    source: str
    description: str
    loader: Loader
    #: glob patterns under the data directory: the dataset is present when one of them matches a file
    files: tuple[str, ...] = ()
    #: read from ``validate/published/`` (typed figures shipped with tapeout): always present
    shipped: bool = False
    #: the per-op device calibration may fit on it (``fit/roofline.py``); False: a check only
    calibration: bool = True

    def present(self, data_dir: Path) -> bool:
        return self.shipped or any(next(data_dir.glob(p), None) is not None for p in self.files)


_REGISTRY: dict[str, Dataset] = {}


def register(name: str, *, kind: str, description: str, files: Sequence[str] = (), shipped: bool = False,
             calibration: bool = True) -> Callable[[Loader], Loader]:
    """Decorator: register ``loader(data_dir) -> list[Case]`` as dataset ``name`` of the calling source module."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; allowed: {', '.join(KINDS)}")
    if not shipped and not files:
        raise ValueError(f"dataset {name!r}: name the files it reads, or shipped=True")

    def deco(loader: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} registered twice")
        source = loader.__module__.rsplit(".", 1)[-1]
        _REGISTRY[name] = Dataset(name, kind, source, description, loader, tuple(files), shipped,
                                  calibration and kind == PER_OP)
        return loader

    return deco


@functools.cache
def datasets() -> dict[str, Dataset]:
    """Every registered dataset, by name, in report order (per-op first, then end-to-end)."""
    import tapeout.validate.sources  # noqa: F401 (the modules register their datasets on import)

    items = list(_REGISTRY.values())
    return {d.name: d for d in sorted(items, key=lambda d: KINDS.index(d.kind))}


def names(kind: str | None = None) -> tuple[str, ...]:
    """Dataset names in report order, of one kind (``per-op`` / ``end-to-end``) or all."""
    return tuple(n for n, d in datasets().items() if kind is None or d.kind == kind)


def e2e_names() -> tuple[str, ...]:
    """The end-to-end datasets (never fitted on by the per-op calibration)."""
    return names(END_TO_END)


def calibration_names() -> tuple[str, ...]:
    """The per-op datasets the device calibration may fit on."""
    return tuple(n for n, d in datasets().items() if d.calibration)


def sources() -> dict[str, tuple[str, ...]]:
    """source -> its dataset names (report order)."""
    out: dict[str, tuple[str, ...]] = {}
    for d in datasets().values():
        out[d.source] = out.get(d.source, ()) + (d.name,)
    return out


def source_of(dataset: str) -> str:
    return datasets()[dataset].source


def _check_names(selected: Sequence[str] | None) -> tuple[str, ...]:
    all_names = tuple(datasets())
    chosen = all_names if selected is None else tuple(selected)
    unknown = [n for n in chosen if n not in datasets()]
    if unknown:
        raise TapeoutError(f"unknown dataset(s) {unknown}; allowed: {', '.join(all_names)}", field="datasets")
    return chosen


@dataclass(frozen=True, slots=True)
class Loaded:
    """The cases of the present datasets, the names of the absent ones, and where they were looked for."""

    cases: list[Case]
    absent: tuple[str, ...]
    data_dir: Path


def load(data_dir: str | Path | None = None, selected: Sequence[str] | None = None) -> Loaded:
    """Load the named datasets (default: all) from ``data_dir`` (default: :mod:`tapeout.datadir`).

    A dataset none of whose files exists is reported in ``absent``; an unknown name is an error.
    """
    chosen = _check_names(selected)
    d = resolve_data_dir(data_dir)
    d = d.resolve() if d.is_dir() else d
    present = tuple(n for n in chosen if datasets()[n].present(d))
    # cases are immutable: reuse them while no CSV under the directory changed
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in d.rglob("*.csv"))) if d.is_dir() else ()
    cases, missing = _load(d, present, stamp)
    absent = tuple(n for n in chosen if n not in present or n in missing)
    return Loaded(list(cases), absent, d)


def load_cases(data_dir: str | Path | None = None, selected: Sequence[str] | None = None) -> list[Case]:
    """All cases of the named datasets (default: all) found under ``data_dir``; absent datasets add none."""
    return load(data_dir, selected).cases


@functools.lru_cache(maxsize=8)
def _load(d: Path, chosen: tuple[str, ...], stamp: tuple) -> tuple[tuple[Case, ...], frozenset[str]]:
    cases: list[Case] = []
    missing: set[str] = set()
    for name in chosen:
        try:
            cases += datasets()[name].loader(d)
        except FileNotFoundError:  # a file the patterns did not name
            missing.add(name)
    return tuple(cases), frozenset(missing)


__all__ = ["END_TO_END", "KINDS", "PER_OP", "Dataset", "Loaded", "calibration_names", "datasets", "e2e_names",
           "load", "load_cases", "names", "register", "source_of", "sources"]
