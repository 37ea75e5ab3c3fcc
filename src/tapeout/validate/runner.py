"""Price every measured case with a performance tier and summarise the errors per group.

A group is (dataset, op_class, device). Extra subset groups (all-reduce messages >= 1 MiB) are
added after the plain groups; per-dataset overall lines count each case once and leave out the
stated-total rows of the GPT-3 layer (their parts are already counted).

Efficiency data (``efficiency=``):

- ``"catalog"``: the device as :func:`tapeout.hardware.catalog.load_hardware` returns it.
- ``"default"``: the plain :class:`~tapeout.hardware.spec.EfficiencySpec` defaults ("before").
- ``"calibrated"``: the fitted roofline tables (``fitted/roofline.toml``: the device's fits over ``[default]``).
- a mapping ``device name -> EfficiencySpec`` (key ``"*"`` for the rest), used by calibration.

End-to-end cases (datasets ``e2e-*``, :attr:`Case.is_e2e`) are scenarios priced through
:func:`tapeout.predict` on the same device spec (efficiency data as above, no harness host term), and
compared on the quantity the case names (``Case.quantity``). Serving sets (``e2e-serving-*``,
:mod:`tapeout.validate.serving`) are load points simulated with :func:`tapeout.simulate`; their
throughputs are scored on the rate, their latencies (TTFT, ITL) on the time. Their MAPE and MdAPE are computed on the
published rate (tokens/s, tokens/GPU/s), the number the source printed; their bias stays
mean ln(predicted time / measured time) = mean ln(measured rate / predicted rate), so > 0 still means
"predicted too slow" (throughput too low) as for every other group.

Host overhead of the measurement harness: device-timed sets (CUDA events, NCCL) get
``host_overhead_us = 0``; LLMCompass sets (host wall clock around one PyTorch op) get a per-op
host term by op family (matmul, softmax, layernorm, gelu) read from the store (``fitted/harness.toml``,
fitted with the roofline calibration by ``tapeout fit``), or LLMCompass's own simulator values before that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapeout import fitted
from tapeout.hardware.spec import EfficiencySpec, HardwareSpec
from tapeout.perf import estimate
from tapeout.validate import metrics, parallel, serving
from tapeout.validate.cases import KERNEL, LLMCOMPASS, Case
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import load
from tapeout.workload.ops import Op, OpKind

GROUP_KEYS = ("dataset", "op_class", "device", "n", "mape_pct", "mdape_pct", "bias")
#: tier name meaning "what predict would use": tiled where the device has a micro-architecture, else roofline
DEFAULT_TIER = "default"

#: LLMCompass's own fixed per-op overheads (its README / simulator), microseconds; the prior
#: used for the "default" (uncalibrated) run and for devices the store has no fit of
LLMCOMPASS_PRIOR_US: dict[str, dict[str, float]] = {
    "a100-sxm-80gb": {"matmul": 21.0, "softmax": 12.0, "layernorm": 45.0, "gelu": 45.0},
    "mi210": {"matmul": 34.0, "softmax": 22.0, "layernorm": 28.0, "gelu": 21.0},
}

#: subset groups reported in addition: (dataset prefix, op_class, new op_class, predicate)
SUBSETS: tuple[tuple[str, str, str, Callable[[Case], bool]], ...] = (
    ("vidur-allreduce", "allreduce", "allreduce>=1MiB", lambda c: c.get("bytes", 0) >= 1024**2),
    ("llmcompass-allreduce", "allreduce", "allreduce>=1MiB", lambda c: c.get("bytes", 0) >= 1024**2),
)


def harness_family(op: Op) -> str | None:
    """Which per-op host-overhead entry of a PyTorch-timed harness an op takes (None: no host term)."""
    if op.kind in (OpKind.GEMM, OpKind.BMM, OpKind.ATTENTION):
        return "matmul"
    if op.kind is OpKind.SOFTMAX:
        return "softmax"
    if op.kind is OpKind.NORM:
        return "layernorm"
    if op.kind in (OpKind.ELEMENTWISE,):
        return "gelu"
    return None  # collectives: LLMCompass's all-reduce numbers are NCCL curves, not torch-timed


def calibrated_efficiency(device: str) -> EfficiencySpec | None:
    """The fitted roofline efficiency of ``device`` (its fits over ``[default]``; None: an empty store)."""
    table = fitted.roofline_efficiency(device)
    return EfficiencySpec(**table) if table else None


def harness_overheads(calibrated: bool = True) -> dict[str, dict[str, dict[str, float]]]:
    """harness -> device -> op family -> host overhead, µs: the stored fits over LLMCompass's own values."""
    prior = {LLMCOMPASS: {d: dict(v) for d, v in LLMCOMPASS_PRIOR_US.items()}}
    if not calibrated:
        return prior
    for harness, per_device in fitted.harness_overheads().items():
        for device, fams in per_device.items():
            prior.setdefault(harness, {}).setdefault(device, {}).update(fams)
    return prior


EfficiencyChoice = str | Mapping[str, EfficiencySpec]


class _Devices:
    """Devices with the efficiency data and host term a case needs (cached)."""

    def __init__(self, efficiency: EfficiencyChoice) -> None:
        from tapeout.hardware.catalog import load_hardware

        self._load = load_hardware
        self.efficiency = efficiency
        self.harness = harness_overheads(calibrated=efficiency != "default")
        self._base: dict[str, HardwareSpec] = {}
        self._variants: dict[tuple[str, float], HardwareSpec] = {}

    def base(self, device: str) -> HardwareSpec:
        hw = self._base.get(device)
        if hw is None:
            hw = self._load(device)
            eff = self._efficiency_for(device)
            if eff is not None:
                hw = hw.model_copy(update={"efficiency": eff})
            self._base[device] = hw
        return hw

    def _efficiency_for(self, device: str) -> EfficiencySpec | None:
        e = self.efficiency
        if e == "catalog":
            return None
        if e == "default":
            return EfficiencySpec()
        if e == "calibrated":
            return calibrated_efficiency(device)
        if isinstance(e, Mapping):
            return e.get(device) or e.get("*")
        raise ValueError(f"unknown efficiency choice {e!r}; allowed: catalog, default, calibrated, or a mapping")

    def host_us(self, case: Case, op: Op) -> float:
        if case.harness == KERNEL:
            return 0.0
        fam = harness_family(op)
        if fam is None:
            return 0.0
        return float(self.harness.get(case.harness, {}).get(case.device, {}).get(fam, 0.0))

    def for_op(self, case: Case, op: Op) -> HardwareSpec:
        host = self.host_us(case, op)
        key = (case.device, host)
        hw = self._variants.get(key)
        if hw is None:
            hw = self.base(case.device)
            if hw.efficiency.host_overhead_us != host:
                hw = hw.with_efficiency(host_overhead_us=host)
            self._variants[key] = hw
        return hw


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    predicted_s: float
    bound: str  # bound of the (first) op

    def row(self) -> dict[str, Any]:
        c = self.case
        out = {
            "dataset": c.dataset, "op_class": c.op_class, "device": c.device,
            "measured_s": c.measured_s, "predicted_s": self.predicted_s,
            "ratio": self.predicted_s / c.measured_s, "bound": self.bound, **dict(c.info),
        }
        if serving.is_serving(c):  # the published value (a rate or a latency) and its prediction
            out.update(quantity=c.quantity, measured_value=serving.scored(c, c.measured_s),
                       predicted_value=serving.scored(c, self.predicted_s))
        elif c.is_e2e:  # the published rate and its prediction
            out.update(quantity=c.quantity, measured_rate=1.0 / c.measured_s, predicted_rate=1.0 / self.predicted_s)
        return out


@dataclass(frozen=True, slots=True)
class Evaluation:
    groups: list[dict[str, Any]]
    overall: list[dict[str, Any]]
    results: list[CaseResult]
    #: datasets asked for whose files are not in the data directory (no cases)
    absent: tuple[str, ...] = ()

    def case_rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.results]


def _tier(case: Case, devices: _Devices, tier: str) -> str:
    """The tier ``case`` is priced with: ``tier``, or predict's default for its device (:data:`DEFAULT_TIER`)."""
    if tier != DEFAULT_TIER:
        return tier
    from tapeout.api import default_tier

    return default_tier(devices.base(case.device))


def predict_case(case: Case, devices: _Devices, tier: str = "roofline") -> CaseResult:
    tier = _tier(case, devices, tier)
    if serving.is_serving(case):  # a load point simulated with tapeout.simulate
        return CaseResult(case, serving.simulated(devices.base(case.device), case.scenario, tier)[case.quantity],
                          "serving")
    if case.is_e2e:
        point = e2e_predict(devices.base(case.device), case.scenario, tier)
        secs = point.seconds(case.quantity, dict(case.scenario), int(case.get("num_gpus", 1)))
        return CaseResult(case, secs, point.bound(case.quantity))
    total = 0.0
    bound = ""
    for op in case.ops:
        cost = estimate(op, devices.for_op(case, op), tier)
        total += cost.total_s
        bound = bound or cost.bound
    return CaseResult(case, total, bound)


def _published(case: Case, seconds: float) -> float:
    """What an end-to-end case's percentage error is taken on: the published rate, or the time for a
    serving latency (TTFT, ITL)."""
    return serving.scored(case, seconds) if serving.is_serving(case) else 1.0 / seconds


def _group_row(dataset: str, op_class: str, device: str, rs: list[CaseResult]) -> dict[str, Any]:
    p = [r.predicted_s for r in rs]
    m = [r.case.measured_s for r in rs]
    s = metrics.summarize(p, m)
    if all(r.case.is_e2e for r in rs):  # percentage errors on the published value; bias in time (see above)
        pv = [_published(r.case, x) for r, x in zip(rs, p)]
        mv = [_published(r.case, x) for r, x in zip(rs, m)]
        s["mape_pct"] = metrics.mape_pct(pv, mv)
        s["mdape_pct"] = metrics.mdape_pct(pv, mv)
    return {"dataset": dataset, "op_class": op_class, "device": device, **s}


def summarize_results(results: list[CaseResult]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(groups, per-dataset overall lines)."""
    by_group: dict[tuple[str, str, str], list[CaseResult]] = {}
    for r in results:
        c = r.case
        by_group.setdefault((c.dataset, c.op_class, c.device), []).append(r)
    groups = [_group_row(*key, rs) for key, rs in by_group.items()]
    for ds, op_class, new_class, pred in SUBSETS:
        for (d, oc, dev), rs in by_group.items():
            if d == ds and oc == op_class:
                sub = [r for r in rs if pred(r.case)]
                if sub:
                    groups.append(_group_row(d, new_class, dev, sub))
    by_ds: dict[str, list[CaseResult]] = {}
    for r in results:
        if not r.case.op_class.endswith("/total"):
            by_ds.setdefault(r.case.dataset, []).append(r)
    overall = [_group_row(ds, "*", "*", rs) for ds, rs in by_ds.items()]
    return groups, overall


def evaluate(data_dir: str | Path | None = None, tier: str = "roofline", *,
             efficiency: EfficiencyChoice = "catalog", datasets: list[str] | None = None,
             cases: list[Case] | None = None, absent: tuple[str, ...] = (), progress: Any = None) -> Evaluation:
    """Price all cases and summarise; ``cases`` skips loading (reuse across runs; ``absent`` then says which
    datasets were not found). ``tier`` :data:`DEFAULT_TIER` prices each case with predict's default for its
    device. ``progress``: an object with ``start(total, done)``, ``advance(n)`` and ``stop()`` (the CLI's
    progress bar)."""
    if cases is None:
        loaded = load(data_dir, datasets)
        cases, absent = loaded.cases, loaded.absent
    devices = _Devices(efficiency)
    results = price_cases(cases, devices, tier, progress)
    groups, overall = summarize_results(results)
    return Evaluation(groups, overall, results, tuple(absent))


def price_cases(cases: list[Case], devices: _Devices, tier: str, progress: Any = None) -> list[CaseResult]:
    """:func:`predict_case` of every case, advancing ``progress`` (see :func:`evaluate`) when one is given. The
    serving load points (most of the time of a full run) are simulated in forked workers meanwhile
    (:func:`tapeout.validate.serving.prefetched`); the results are a serial run's."""
    parallel.workers(1)  # a bad $TAPEOUT_WORKERS fails before any work
    points = [(devices.base(c.device), c.scenario, _tier(c, devices, tier)) for c in cases if serving.is_serving(c)]
    with serving.prefetched(points):
        if progress is None:
            return [predict_case(c, devices, tier) for c in cases]
        progress.start(len(cases), 0)
        results = []
        try:
            for i, c in enumerate(cases):
                results.append(predict_case(c, devices, tier))
                if i % 50 == 49 or i == len(cases) - 1:
                    progress.advance(i % 50 + 1)
        finally:
            progress.stop()
        return results


def run_validation(data_dir: str | Path | None = None, tier: str = "roofline", *,
                   efficiency: EfficiencyChoice = "catalog", datasets: list[str] | None = None) -> list[dict]:
    """One dict per (dataset, op_class, device) group with keys exactly :data:`GROUP_KEYS`.

    Per-case rows (for plots) come from :func:`evaluate` (``Evaluation.case_rows()``).
    """
    return evaluate(data_dir, tier, efficiency=efficiency, datasets=datasets).groups


__all__ = ["CaseResult", "Evaluation", "GROUP_KEYS", "evaluate", "run_validation", "summarize_results"]
