"""Leave-one-source-out cross-validation of what is fitted on end-to-end data (``tapeout validate --cv``; the
result types are :mod:`tapeout.validate.heldout`'s).

In-sample, every end-to-end source is scored with the stored parameters, some of which were fitted on
that very source. Here each end-to-end source S (a module of :mod:`tapeout.validate.sources`: all of
its datasets, per-op and end-to-end, are left out together) is scored with parameters that never saw
it: every parameter whose stored fit read S's data is refitted on the other sources through the real
estimator, with the fit functions the stored values came from, and S's end-to-end cases are priced with
the refitted values, passed per call. Parameters S did not constrain keep their stored values (their fits
never read S). The per-op datasets (and the per-op device calibration fitted on them) stay in-sample.

The parameters fitted on end-to-end sources' data (:func:`parameters`):

- the framework profiles' fitted fields (``fitted/frameworks.toml``, :mod:`tapeout.fit.frameworks`):
  DeepSpeed's and FasterTransformer's host gap per op, llama.cpp's streaming cap, gpt-fast's one-shot
  all-reduce cost, the default profile's prefill host gap (TensorRT-LLM's first-token rows). A refit uses the fit's own rows of the other sources; when S held them all, the
  fit's check rows of other sources constrain the same field and are fitted instead (DeepSpeed: the
  DeepSpeed rows of Flash-LLM's end-to-end set); when there are none, the field takes its prior, the
  :class:`~tapeout.hardware.spec.EfficiencySpec` default (no host gap, no cap, a free one-shot
  all-reduce), and the output says so.
- the technique kernel constants (``fitted/kernels.toml``, :mod:`tapeout.fit.kernels`) fitted on the kernel
  tables of the same publications: Flash-LLM's kernel benchmark (``onchip_eta``, ``tiled_csl_stream_eta``,
  the Sputnik counts) and FP6-LLM's W4A16 comparisons (the intN kernel counts). No other source constrains
  them, so without their source they take their derived priors (:data:`KERNEL_CONSTANTS`). ``onchip_eta`` and
  ``tiled_csl_stream_eta`` reach a prediction through ``predict(..., efficiency=...)``, the others through
  ``predict(..., kernel_constants=...)``: every value is passed per call, nothing is set on a module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tapeout.validate import parallel
from tapeout.validate.cases import Case
from tapeout.validate.heldout import CrossValidation, Fold
from tapeout.validate.registry import source_of, sources
from tapeout.validate.runner import (CaseResult, EfficiencyChoice, Evaluation, _Devices, predict_case, price_cases,
                                    summarize_results)


def _framework_of(c: Case) -> str:
    return str(dict(c.scenario).get("framework", "kernels"))


def _sparse_extract(c: Case) -> bool:
    """Unstructured (or 1xN) weight sparsity: Flash-LLM's and Sputnik's kernels are candidates."""
    sp = dict(c.scenario).get("sparsity")
    return sp is not None and str(sp) != "2:4"


def _int_weights(c: Case) -> bool:
    from tapeout import dtypes

    sc = dict(c.scenario)
    fmts = [sc.get("weights"), sc.get("lm_head")]
    return any(f and dtypes.parse(str(f)).kind == "int" for f in fmts)


@dataclass(frozen=True)
class Param:
    """One parameter fitted on end-to-end sources' data."""

    name: str
    stored: float | None
    prior: float | None
    #: what the prior means
    prior_note: str
    #: the sources whose data the stored value was fitted on
    sources: frozenset[str]
    #: whether a case's prediction depends on it
    applies: Callable[[Case], bool]
    #: how a value reaches one prediction: ("efficiency", EfficiencySpec field) or ("kernel", KernelConstants field)
    via: tuple[str, str]
    #: framework fields: the fit's sets (:data:`~tapeout.fit.frameworks.FIT_SETS`) and the sets of
    #: other data that constrain the same field (its check sets), fitted when the fit's own rows are held out
    fit_sets: tuple[Any, ...] = ()
    fallback_sets: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Refit:
    param: Param
    value: float | None
    #: "refit" (on the other sources' rows), "fallback" (on check rows of other sources) or "prior"
    how: str
    note: str
    rows: int = 0

    def describe(self) -> str:
        v = "none" if self.value is None else f"{self.value:g}"
        s = "none" if self.param.stored is None else f"{self.param.stored:g}"
        return f"{self.param.name}: {s} -> {v} ({self.how}: {self.note})"


#: the kernel constants a tier reads where it prices an op: they reach a prediction as efficiency fields
PRICED_PER_DEVICE = ("onchip_eta", "tiled_csl_stream_eta")
#: kernel constants fitted by :mod:`tapeout.fit.kernels` (KernelConstants field, source, prior, prior note, applies);
#: those :data:`PRICED_PER_DEVICE` reach a prediction as efficiency fields, the others as kernel constants
KERNEL_CONSTANTS: tuple[tuple[str, str, float, str, Callable[[Case], bool]], ...] = (
    ("onchip_eta", "flashllm", 1.0, "the shared memory's full bandwidth", _sparse_extract),
    ("tiled_csl_stream_eta", "flashllm", 1.0, "Tiled-CSL streams as the dense GEMM does", _sparse_extract),
    ("sputnik_ops_per_nnz", "flashllm", 0.0, "the FMAs alone", _sparse_extract),
    ("sputnik_ops_per_nnz_col", "flashllm", 0.0, "the FMAs alone", _sparse_extract),
    ("sputnik_ops_per_row", "flashllm", 0.0, "the FMAs alone", _sparse_extract),
    ("int_group_scale_ops", "fp6llm", 0.5, "derived, Marlin-ideal", _int_weights),
    ("int_kernel_overhead_ops", "fp6llm", 0.0, "derived, Marlin-ideal", _int_weights),
)


def parameters() -> list[Param]:
    """Every parameter fitted on the data of an end-to-end source, with its stored value and prior."""
    from tapeout.fit.frameworks import CHECK_SETS, fit_groups
    from tapeout.fitted import kernel_constants
    from tapeout.hardware.spec import EfficiencySpec
    from tapeout.system.frameworks import framework

    out = []
    for sets in fit_groups():
        fs = sets[0]
        frameworks = {fs.framework, *fs.also}
        out.append(Param(
            name=f"{fs.framework}.{fs.param}", stored=getattr(framework(fs.framework), fs.param),
            prior=EfficiencySpec.model_fields[fs.param].default,
            prior_note="the EfficiencySpec default: " + {
                "host_overhead_us": "no host gap", "prefill_host_overhead_us": "no prefill host gap",
                "stream_bytes_per_core_clock": "no cap",
                "sequence_host_overhead_us": "no per-sequence host time"}.get(fs.param, "free"),
            sources=frozenset(source_of(s.dataset) for s in sets),
            applies=lambda c, frameworks=frameworks: c.is_e2e and _framework_of(c) in frameworks,
            via=("efficiency", fs.param), fit_sets=sets,
            fallback_sets=tuple(cs for cs in CHECK_SETS if cs.framework == fs.framework and cs.param == fs.param)))
    stored = kernel_constants()
    for field, source, prior, note, applies in KERNEL_CONSTANTS:
        out.append(Param(name=f"kernel_constants.{field}", stored=float(getattr(stored, field)), prior=prior,
                         prior_note=note, sources=frozenset({source}), applies=applies,
                         via=("efficiency", field) if field in PRICED_PER_DEVICE else ("kernel", field)))
    return out


def _rows(pool: Sequence[Case], sets: Sequence[Any]) -> tuple[list[Case], Any, str]:
    """The rows of ``sets`` in ``pool``, the first set that has rows (its field and search range), and what they are."""
    from tapeout.fit.frameworks import _rows as fit_rows

    rows: list[Case] = []
    first = None
    what = []
    for fs in sets:
        r = fit_rows(pool, fs)
        if r:
            rows += r
            first = first or fs
            what.append(fs.describe)
    return rows, first, "; ".join(what)


def refit(param: Param, held_out: str, pool: Sequence[Case], *, tol: float = 0.1,
          tiers: Sequence[str] | None = None) -> Refit:
    """``param`` refitted without source ``held_out`` (``pool``: the cases of every other source), with the
    fit the stored value came from (``tiers``: default the fit's own, both tiers)."""
    from tapeout.fit.frameworks import TIERS, fit_value

    for how, sets in (("refit", param.fit_sets), ("fallback", param.fallback_sets)):
        rows, fs, what = _rows(pool, sets)
        if rows:
            note = f"fitted on {what}" if how == "refit" else f"its own fit rows held out; fitted on {what}"
            value = fit_value(rows, fs, tol=tol, tiers=tiers or TIERS)
            return Refit(param, value, how, f"{note} ({len(rows)} rows)", len(rows))
    if param.sources - {held_out} and not param.fit_sets:
        raise NotImplementedError(f"{param.name}: other sources constrain it but no refit is wired")
    return Refit(param, param.prior, "prior", f"no other source constrains it; prior = {param.prior_note}")


def with_values(case: Case, values: Sequence[tuple[Param, float | None]]) -> Case:
    """``case`` whose prediction uses ``values`` (per call: efficiency fields or kernel constants)."""
    sc = dict(case.scenario)
    eff = dict(sc.get("efficiency", ()))
    consts = dict(sc.get("kernel_constants", ()))
    for p, v in values:
        kind, key = p.via
        if kind == "efficiency":
            eff[key] = v
        else:
            consts[key] = p.prior if v is None else v
    if eff:
        sc["efficiency"] = tuple(sorted(eff.items()))
    if consts:
        sc["kernel_constants"] = tuple(sorted(consts.items()))
    return dataclasses.replace(case, scenario=tuple(sorted(sc.items())))


def cross_validate(cases: Sequence[Case], tier: str = "roofline", *, efficiency: EfficiencyChoice = "catalog",
                   absent: tuple[str, ...] = (), tol: float = 0.1, fit_tiers: Sequence[str] | None = None,
                   progress: Any = None) -> CrossValidation:
    """Score every case in-sample, then every end-to-end source with parameters refitted without it
    (``fit_tiers``: the tiers the refits average over; default the stored fits' own, both; ``progress``:
    as :func:`~tapeout.validate.runner.evaluate`'s, for the in-sample pass)."""
    parallel.workers(1)  # a bad $TAPEOUT_WORKERS fails before any work
    devices = _Devices(efficiency)
    in_results = price_cases(list(cases), devices, tier, progress)
    params = parameters()
    folds: list[Fold] = []
    merged: dict[int, CaseResult] = {}
    scored = {source: names for source, names in sources().items()
              if any(c.dataset in names and c.is_e2e for c in cases)}
    jobs = [(p.name, source) for source in scored for p in params if source in p.sources]
    refitted = _refit_all(jobs, params, cases, tol, fit_tiers)
    for source, names in scored.items():
        e2e_idx = [i for i, c in enumerate(cases) if c.dataset in names and c.is_e2e]
        refits = [refitted[(p.name, source)] for p in params if source in p.sources]
        used: set[str] = set()
        held: list[CaseResult] = []
        for i in e2e_idx:
            c = cases[i]
            values = [(r.param, r.value) for r in refits if r.param.applies(c)]
            used |= {p.name for p, _ in values}
            r = predict_case(with_values(c, values), devices, tier)
            res = CaseResult(c, r.predicted_s, r.bound)
            held.append(res)
            merged[i] = res
        present = tuple(n for n in names if any(c.dataset == n for c in cases))
        folds.append(Fold(source, present, refits, frozenset(used), held, [in_results[i] for i in e2e_idx]))
    results = [merged.get(i, r) for i, r in enumerate(in_results)]
    groups, overall = summarize_results(results)
    in_groups, in_overall = summarize_results(in_results)
    return CrossValidation(Evaluation(in_groups, in_overall, in_results, tuple(absent)),
                           Evaluation(groups, overall, results, tuple(absent)), folds)


#: the cases the forked workers read (set just before the pool starts; never pickled)
_SHARED: list[Case] = []


def _refit_job(job: tuple[str, str], tol: float, tiers: Sequence[str] | None) -> tuple[float | None, str, str, int]:
    """One refit by parameter name and held-out source, on :data:`_SHARED` (a worker's copy of the cases): its
    value, how, note and rows (a :class:`Refit` holds the parameter, whose predicates do not pickle)."""
    name, source = job
    (param,) = [p for p in parameters() if p.name == name]
    names = set(sources()[source])
    r = refit(param, source, [c for c in _SHARED if c.dataset not in names], tol=tol, tiers=tiers)
    return r.value, r.how, r.note, r.rows


def _refit_all(jobs: Sequence[tuple[str, str]], params: Sequence[Param], cases: Sequence[Case], tol: float,
               tiers: Sequence[str] | None) -> dict[tuple[str, str], Refit]:
    """Every (parameter, held-out source) refit. The refits are independent and deterministic, so with more than
    one worker (``$TAPEOUT_WORKERS``, :mod:`tapeout.validate.parallel`) they run in forked processes, which read
    the cases without copying them; the values are those of a serial run (``params``: :func:`parameters`, whose
    predicates the workers rebuild)."""
    by_name = {p.name: p for p in params}
    _SHARED[:] = list(cases)
    try:
        with parallel.pool(len(jobs)) as ex:
            if ex is not None:
                out = list(ex.map(_refit_job, jobs, [tol] * len(jobs), [tiers] * len(jobs)))
            else:
                out = [_refit_job(j, tol, tiers) for j in jobs]
    finally:
        _SHARED.clear()
    return {job: Refit(by_name[job[0]], value, how, note, rows) for job, (value, how, note, rows) in zip(jobs, out)}


__all__ = ["KERNEL_CONSTANTS", "CrossValidation", "Fold", "Param", "Refit", "cross_validate", "parameters", "refit",
           "with_values"]
