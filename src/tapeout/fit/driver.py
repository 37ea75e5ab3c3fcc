"""The one fitting driver: ``tapeout fit`` / ``python -m tapeout.fit``.

Regenerates every file of the store (:mod:`tapeout.fitted`) from the reference-data directory, in the
order the fits depend on each other:

1. ``roofline`` -> ``roofline.toml`` and ``harness.toml`` (per-op sets; the roofline estimator);
2. ``tiled`` -> ``tiled.toml`` (per-op sets; the tiled estimator on devices with step 1's efficiency and
   harness terms);
3. ``frameworks`` -> ``frameworks.toml`` (end-to-end sets, both tiers: needs 1 and 2);
4. ``kernels`` -> ``kernels.toml`` (technique kernel tables, both tiers: needs 1 and 2);
5. ``cost`` -> ``cost.toml`` (die areas).

Without ``--check`` each step writes its files and the next one reads them (every cache of the store is
dropped in between). With ``--check`` nothing is written: each step is re-fitted on the stored values of
the steps before it and compared with its stored values (relative tolerance ``--tol``); the exit status is 1
when any value differs, 2 when the data or the store is missing. Values are compared, never the
provenance text (which carries no dates: a re-fit of the same data writes the same files).

``--store DIR`` reads and writes another store (``$TAPEOUT_FITTED`` for the whole process); ``--only STEP``
runs some steps (repeatable); ``--report`` adds the roofline's before/after tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tapeout import fitted
from tapeout.errors import TapeoutError
from tapeout.fit import store
from tapeout.fitted import StoreFile

Log = Callable[[str], None]


class FitError(TapeoutError):
    """A fit that cannot run (data absent) or whose estimator copy disagrees with the estimator."""


def forget() -> None:
    """Drop everything computed from the store: parsed files, the device catalog, framework profiles, the
    cost tables, memoised graphs and op costs, predictions of the validation, loaded cases."""
    import sys as _sys

    from tapeout.cost import assumptions
    from tapeout.hardware import catalog
    from tapeout.system import compose, frameworks

    fitted.reload()
    catalog.clear_caches()
    frameworks.frameworks.cache_clear()
    assumptions._builtin.cache_clear()
    assumptions._default.cache_clear()
    compose.clear_caches()
    api = _sys.modules.get("tapeout.api")
    if api is not None:
        api.clear_caches()
    e2e = _sys.modules.get("tapeout.validate.e2e")
    if e2e is not None:
        e2e._E2E_CACHE.clear()
    registry = _sys.modules.get("tapeout.validate.registry")
    if registry is not None:
        registry._load.cache_clear()


def _require(data: Path, names: Sequence[str], step: str) -> None:
    from tapeout.validate.registry import load

    absent = load(data, tuple(names)).absent
    if absent:
        raise FitError(f"step {step} needs the datasets {', '.join(absent)}, absent from {data}", field="data")


def _require_files(data: Path, files: Sequence[str], step: str) -> None:
    missing = [f for f in files if not (data / f).is_file()]
    if missing:
        raise FitError(f"step {step} needs {', '.join(missing)}, absent from {data}", field="data")


# ---- the steps ------------------------------------------------------------------------------------

def fit_roofline(data: Path, log: Log, report: bool = False) -> list[StoreFile]:
    from tapeout.fit import roofline

    _require(data, tuple(dict.fromkeys(roofline.calibration_names() + roofline.ATTENTION_SETS
                                       + roofline.ATTAINABLE_SETS)), "roofline")
    cases = roofline.fit_cases(data)
    cal = roofline.calibrate(data, cases=cases)
    worst = roofline.check_design(cal, cases)
    if worst > 1e-6:
        raise FitError(f"the vectorised roofline (fit.roofline.Design) and perf.estimate differ by up to {worst:.2e} "
                       "at the fitted values", field="roofline")
    for k, v in cal.losses.items():
        log(f"  roofline {k}: mean |ln(pred/meas)| = {v:.3f}")
    if report:
        log("| dataset | device | n | MAPE before % | MAPE after % | bias after |")
        for r in roofline.before_after(data, cal, cases):
            log(f"| {r['dataset']} | {r['device']} | {r['n']} | {r['mape_before']:.1f} | {r['mape_after']:.1f} | "
                f"{r['bias_after']:+.2f} |")
    return list(cal.store_files())


def fit_tiled(data: Path, log: Log, report: bool = False) -> list[StoreFile]:
    from tapeout.fit import tiled

    _require(data, tiled.check_names(), "tiled")
    cases = tiled.fit_cases(data)
    return [tiled.fit_tiled(cases, progress=lambda dev, vals: log(f"  tiled {dev}: {vals}"))]


def fit_frameworks(data: Path, log: Log, report: bool = False) -> list[StoreFile]:
    from tapeout.fit import frameworks

    _require(data, frameworks.fit_datasets(), "frameworks")
    fits = frameworks.fit(data)
    for f in fits.values():
        log(f"  frameworks {f.framework}: {f.param} = {f.value:g} (mean |ln| {f.loss_at_zero:.3f} -> {f.loss:.3f})")
    return [frameworks.store_file(fits)]


def fit_kernels(data: Path, log: Log, report: bool = False) -> list[StoreFile]:
    from tapeout.fit import kernels

    _require_files(data, ("measured/flash_llm.csv", "measured/fp6_llm.csv"), "kernels")
    f = kernels.fit_kernels(data)
    for subject in f.subjects:
        log(f"  kernels {subject}: {f.values(subject)}")
    return [f]


def fit_cost(data: Path, log: Log, report: bool = False) -> list[StoreFile]:
    from tapeout.cost.assumptions import Assumptions
    from tapeout.fit import cost

    _require_files(data, ("llmcompass/ae/figure6/real_hardware/die_area.csv",
                          "llmcompass/extracted_from_code/core_area_mm2.csv"), "cost")
    a = Assumptions.load()
    coef = cost.fit(a, shared=data)
    rep = cost.report(cost.with_coefficients(a, coef), shared=data)
    if report:
        for die, r in rep.items():
            t = r["total"]
            log(f"  cost {die}: model {t['model']:.1f} mm2 vs annotated {t['annotated_sum']:.1f} "
                f"({t['error_vs_annotated']:+.2%})")
    return [cost.store_file(coef, cost.residuals(rep))]


@dataclass(frozen=True)
class Step:
    name: str
    kinds: tuple[str, ...]
    run: Callable[[Path, Log, bool], list[StoreFile]]


STEPS = (
    Step("roofline", ("roofline", "harness"), fit_roofline),
    Step("tiled", ("tiled",), fit_tiled),
    Step("frameworks", ("frameworks",), fit_frameworks),
    Step("kernels", ("kernels",), fit_kernels),
    Step("cost", ("cost",), fit_cost),
)
STEP_NAMES = tuple(s.name for s in STEPS)


@dataclass
class Outcome:
    differences: list[store.Difference]
    written: list[Path]
    seconds: dict[str, float]


def run(data: str | Path | None = None, *, check: bool = False, only: Sequence[str] = (), tol: float = 1e-3,
        report: bool = False, log: Log = print) -> Outcome:
    """Run the steps (``only``: some of them, in the driver's order); see the module docstring."""
    from tapeout.datadir import resolve_data_dir

    bad = sorted(set(only) - set(STEP_NAMES))
    if bad:
        raise TapeoutError(f"unknown steps {bad}; allowed: {', '.join(STEP_NAMES)}", field="only")
    d = resolve_data_dir(data)
    if not d.is_dir():
        raise FitError(f"no reference-data directory at {d}; pass --data or set $TAPEOUT_DATA", field="data")
    diffs: list[store.Difference] = []
    written: list[Path] = []
    seconds: dict[str, float] = {}
    forget()
    for step in STEPS:
        if only and step.name not in only:
            continue
        t0 = time.perf_counter()
        log(f"fit {step.name} ...")
        files = step.run(d, log, report)
        if {f.kind for f in files} != set(step.kinds):
            raise RuntimeError(f"step {step.name} produced {[f.kind for f in files]}, expected {step.kinds}")
        for f in files:
            if check:
                found = store.differences(fitted.load(f.kind), f, rel=tol)
                diffs += found
                log(f"  {f.kind}.toml: " + ("matches the re-fit" if not found else f"{len(found)} value(s) differ"))
            else:
                written.append(store.write(f, fitted.store_dir()))
                log(f"  wrote {written[-1]}")
        if not check:
            forget()
        seconds[step.name] = time.perf_counter() - t0
        log(f"  ({seconds[step.name]:.1f} s)")
    return Outcome(diffs, written, seconds)


def main(argv: list[str] | None = None) -> int:
    from tapeout.datadir import DATA_HELP

    ap = argparse.ArgumentParser(prog="tapeout fit", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help=DATA_HELP)
    ap.add_argument("--check", action="store_true", help="re-fit and compare with the stored values; write nothing")
    ap.add_argument("--only", action="append", default=[], choices=STEP_NAMES, help="run this step (repeatable)")
    ap.add_argument("--store", default=None, help=f"the store directory (default: ${fitted.FITTED_ENV}, else the "
                    "package's src/tapeout/fitted)")
    ap.add_argument("--tol", type=float, default=1e-3, help="relative tolerance of --check (default 1e-3)")
    ap.add_argument("--report", action="store_true", help="print the roofline's before/after tables and the area fit")
    args = ap.parse_args(argv)
    return execute(data=args.data, check=args.check, only=args.only, store_dir=args.store, tol=args.tol,
                   report=args.report)


def execute(*, data: str | Path | None, check: bool, only: Sequence[str], store_dir: str | Path | None,
            tol: float, report: bool) -> int:
    """Run the driver and print its outcome: 0 (written, or --check matched), 1 (--check differs), 2 (error)."""
    if not tol >= 0:
        print("error: tol: must be >= 0", file=sys.stderr)
        return 2
    if store_dir is not None:
        p = Path(store_dir).expanduser()
        if not p.is_dir():
            print(f"error: store: {p} is not a directory", file=sys.stderr)
            return 2
        os.environ[fitted.FITTED_ENV] = str(p.resolve())
    t0 = time.perf_counter()
    try:
        out = run(data, check=check, only=only, tol=tol, report=report)
    except TapeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = time.perf_counter() - t0
    if check:
        for diff in out.differences:
            print(f"differs: {diff.describe()}")
        print(f"fit --check: {'OK, the stored values are the re-fit' if not out.differences else 'FAILED'} "
              f"({total:.0f} s)")
        return 1 if out.differences else 0
    print(f"fit: wrote {len(out.written)} file(s) ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
