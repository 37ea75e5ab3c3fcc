"""Fit the serving frameworks' fitted fields on whole end-to-end sets (``tapeout fit``, step ``frameworks``;
written to ``fitted/frameworks.toml``; the profiles themselves are ``system/frameworks.toml``).

A framework profile has one fitted number: ``host_overhead_us``, the CPU/dispatch time per kernel
that an eager stack adds and the GPU waits for, or (llama.cpp) ``stream_bytes_per_core_clock``, the
DRAM bytes per core per clock its memory-bound kernels move at most. It is a property of the
software, not of a tier, so each profile is fitted once on its designated set, minimising the mean
|ln(predicted / measured)| of the rows' rates averaged over the roofline and tiled tiers
(golden-section search):

- ``deepspeed``: FP6-LLM's DeepSpeed rows at batch <= 4, FP16 and FP6 together
  (``measured/fp6_llm.csv``, decode attention ``mmha`` as the rows state; at larger batch attention,
  not the host gap, dominates). Independent check: the dense DeepSpeed rows of ``measured/flash_llm.csv``.
- ``fastertransformer``: the dense FasterTransformer rows of ``measured/flash_llm.csv`` (OPT-66B
  TP2/TP4, OPT-175B TP8). The 80%-sparse Flash-LLM-in-FasterTransformer rows stay a check; independent check:
  FasterTransformer's own GPT-175B TP8 latencies on Triton (``validate/published/fastertransformer_published.csv``).
- ``gptfast``: gpt-fast's bf16 tensor-parallel rows (``validate/published/gptfast.csv``): the fixed cost
  of its one-shot all-reduce (PyTorch's intra-node comm, messages up to 256 KiB). Check: its
  quantized TP 8 rows.
- ``kernels`` (the default profile): ``prefill_host_overhead_us``, the host's dispatch time per kernel of
  the prefill, which engines launch without CUDA graphs (decode steps are captured), on two sources together:
  TensorRT-LLM v0.5's first-token latencies (``validate/published/trtllm_perf.csv``) and TensorRT-LLM 0.14's
  mean first tokens at light load (``measured/serving/``, 2 and 4 requests/s, simulated). Each alone puts its
  minimum between 9.6 and 15 us, so ``tapeout validate --cv`` scores each with the other's value.
- ``llamacpp``: the f16 text-generation rows (``tg``) of ``measured/llamacpp_gpu_benchmarks.csv``
  (every catalog device with rows): llama.cpp's generation reaches the same ~0.87 TB/s on A100 PCIe
  and SXM (1.9 and 2.0 TB/s of HBM) and ~1.1 TB/s on H100 PCIe, while GDDR cards reach 81-87 % of
  theirs: a cap by the kernels' memory-level parallelism, not a fraction of the bandwidth. Checks: the
  Q4_K_M generation rows. Its host term stays 0 (not identifiable next to the cap from these rows).

Groups are fitted in order, and a group's rows are priced with the values this run has already fitted for its
profile and the profiles it extends (``python-scheduler`` extends ``kernels``), so one run is a fixed point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tapeout.fit import store
from tapeout.fitted import Fit, StoreFile
from tapeout.validate.cases import Case
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import load_cases

TIERS = ("roofline", "tiled")
COMMAND = "tapeout fit --only frameworks"
#: the store's name of each fitted field's entry
ENTRY = {"host_overhead_us": "host", "prefill_host_overhead_us": "prefill_host",
         "stream_bytes_per_core_clock": "stream_cap", "oneshot_allreduce_latency_us": "oneshot_allreduce",
         "sequence_host_overhead_us": "sequence_host"}


@dataclass(frozen=True)
class FitSet:
    framework: str
    dataset: str
    select: Callable[[Case], bool]
    describe: str
    #: the EfficiencySpec field the profile sets, and its search range
    param: str = "host_overhead_us"
    lo: float = 0.0
    hi: float = 30.0
    #: other profiles that carry the same fitted value (written with it)
    also: tuple[str, ...] = ()
    #: the search's resolution (at least; a fit or refit may ask for a coarser one)
    tol: float = 0.1
    #: bracket the minimum with a 13-point scan first (a cap's loss is flat where it stops binding); a host time
    #: that every row pays (its loss falls, then rises, as the term grows) goes straight to golden section
    scan: bool = True
    #: a check set: also report the value its own rows would fit (False where each evaluation simulates
    #: whole serving runs: the check's loss at the fitted value is reported, its own fit is not searched)
    own_best: bool = True


def _batch(c: Case) -> int:
    return int(dict(c.scenario)["batch"])


#: python-scheduler's per-sequence host time: every set of it searches [0, 150] us to 2 us, without the scan
_SEQUENCE_HOST = dict(param="sequence_host_overhead_us", lo=0.0, hi=150.0, tol=2.0, scan=False)
#: the default profile's prefill host time per kernel: both sets search [0, 40] us to 0.1 us, without the scan
_PREFILL_HOST = dict(param="prefill_host_overhead_us", lo=0.0, hi=40.0, scan=False)
#: the serving load points whose mean first token is mostly the request's own prefill: a TensorRT-LLM 0.14 row's
#: mean TTFT at 4 requests/s is within 10 % of its value at 2, from 8 requests/s on queueing grows it (+48 % for
#: 70B on H100 at 467 / 256, up to 20x at 32; docs/calibration.md, "The prefill host gap: two sources")
LIGHT_QPS = 4.0


#: the value of each field at which its term is absent: a cap so high it never binds, a one-shot all-reduce so
#: costly it is never chosen; a host time: 0
NO_TERM = {"stream_bytes_per_core_clock": 1e6, "oneshot_allreduce_latency_us": 1e6}

FIT_SETS = (
    FitSet("deepspeed", "e2e-fp6llm", lambda c: _batch(c) <= 4,
           "measured/fp6_llm.csv end-to-end throughputs at batch <= 4, FP16 and FP6 rows together"),
    FitSet("fastertransformer", "e2e-flashllm", lambda c: c.op_class == "fastertransformer",
           "measured/flash_llm.csv dense FasterTransformer end-to-end tokens/GPU/s, OPT-66B TP2/TP4 and "
           "OPT-175B TP8 on A100"),
    FitSet("llamacpp", "e2e-llamacpp", lambda c: c.op_class == "tg/f16",
           "measured/llamacpp_gpu_benchmarks.csv f16 text generation (tg) on every catalog device with rows",
           param="stream_bytes_per_core_clock", lo=1.0, hi=32.0),
    # two sources, one field (a host time every row pays: golden section straight away)
    FitSet("kernels", "e2e-trtllm", lambda c: c.quantity == "ttft_s",
           "TensorRT-LLM's published first-token latencies (v0.5, batch 1, 128 and 2048 tokens; GPT-J 6B, "
           "Llama 7B/70B, Falcon 180B on H100/L40S FP8 and A100 FP16; validate/published/trtllm_perf.csv)",
           **_PREFILL_HOST),
    FitSet("kernels", "e2e-serving-trt014",
           lambda c: c.quantity == "serving_mean_ttft_s" and float(c.get("rate", math.inf)) <= LIGHT_QPS,
           "TensorRT-LLM 0.14's mean first-token latencies at 2 and 4 requests/s (Triton, Poisson arrivals; "
           "Llama-3.1-8B and 70B TP4 on H100 and H200; measured/serving/serving_measurements.csv)", **_PREFILL_HOST),
    FitSet("gptfast", "e2e-gptfast", lambda c: c.op_class.startswith("bf16/") and not c.op_class.endswith("/tp1"),
           "gpt-fast's bf16 tensor-parallel decode rates (Llama-2-7B and -70B, TP 2/4/8, A100; "
           "validate/published/gptfast.csv)", param="oneshot_allreduce_latency_us", lo=0.0, hi=30.0,
           also=("kernels",)),
    # two sources, one field: their rows are fitted together (fit(), and a fold of tapeout validate --cv refits
    # it on the other source's rows)
    FitSet("python-scheduler", "e2e-serving-sglang", lambda c: c.op_class.endswith("/output_token_throughput"),
           "the offline output throughputs of SGLang 0.3.0 and vLLM 0.6.0 (5,000 ShareGPT requests at once; "
           "Llama-3.1-8B on A100, 70B TP4 on H100; validate/published/sglang_vllm060.csv)", **_SEQUENCE_HOST),
    # the one MI300X row the value is fitted on (AMD's 8xMI300X_2xEPYC-9374F); the other vLLM rows of the set
    # (AMD's other systems, Dell's copy of AMD's harness) stay checks
    FitSet("python-scheduler", "e2e-mlperf", lambda c: c.op_class.startswith("vllm/") and c.get("system").startswith(
        "8xMI300X_2xEPYC-9374F "),
           "MLPerf Inference v4.1 Offline on MI300X (AMD, vLLM 0.4.3, Llama-2-70B fp8, 8 TP1 replicas; "
           "validate/published/mlperf.csv)", **_SEQUENCE_HOST),
)
CHECK_SETS = (
    FitSet("gptfast", "e2e-gptfast", lambda c: not c.op_class.startswith("bf16/") and not c.op_class.endswith("/tp1"),
           "gpt-fast's int8 / int4 tensor-parallel rows (Llama-2-70B, TP 8)", param="oneshot_allreduce_latency_us",
           lo=0.0, hi=30.0),
    FitSet("deepspeed", "e2e-flashllm", lambda c: c.op_class == "deepspeed",
           "the dense DeepSpeed rows of measured/flash_llm.csv"),
    # FasterTransformer on Triton: its rows also pay a cost per generate call that a per-kernel time cannot express
    # (docs/calibration.md, "FasterTransformer's host gap: a second source, a check"); a fold of tapeout validate --cv
    # that holds Flash-LLM out refits the field on them
    FitSet("fastertransformer", "e2e-fastertransformer-published", lambda c: True,
           "FasterTransformer's published GPT-175B end-to-end latencies on Triton (docs/gpt_guide.md; TP8, FP16, "
           "batch 1-32, 128 + 8 and 512 + 32 tokens, 8xA100-80GB NVSwitch; "
           "validate/published/fastertransformer_published.csv)"),
    FitSet("llamacpp", "e2e-llamacpp", lambda c: c.op_class == "tg/q4_k_m",
           "the Q4_K_M text-generation rows of measured/llamacpp_gpu_benchmarks.csv",
           param="stream_bytes_per_core_clock", lo=1.0, hi=32.0),
    FitSet("python-scheduler", "e2e-serving-sglang",
           lambda c: c.op_class.endswith(("/median_itl", "/median_tpot")),
           "the online median TPOT and ITL of the same SGLang / vLLM runs at 4 and 8 requests/s", **_SEQUENCE_HOST,
           own_best=False),
)


def _rows(cases: Sequence[Case], fs: FitSet) -> list[Case]:
    return [c for c in cases if c.dataset == fs.dataset
            and dict(c.scenario).get("framework", "kernels") == fs.framework and fs.select(c)]


def loss(rows: Sequence[Case], value: float, tiers: Sequence[str] = TIERS, param: str = "host_overhead_us",
         extra: Sequence[tuple[str, float]] = ()) -> float:
    """Mean over ``tiers`` of the rows' mean |ln(predicted / measured)| with ``param`` = ``value`` (a serving
    row through its simulated load point, :func:`tapeout.validate.serving.simulated`); ``extra``: other fields'
    values that win over the stored ones (those a fit has just produced, :func:`fit`)."""
    from tapeout.hardware.catalog import load_hardware
    from tapeout.validate import serving

    # the row's framework profile applies; ``param`` = ``value`` wins over it
    eff = tuple(sorted({**dict(extra), param: value}.items()))
    priced = [(c, load_hardware(c.device), tuple(sorted(dict(c.scenario, efficiency=eff).items())), tier)
              for tier in tiers for c in rows]
    total = 0.0
    # the serving rows' load points run in forked workers meanwhile (the values are a serial run's)
    with serving.prefetched([(hw, sc, tier) for c, hw, sc, tier in priced if serving.is_serving(c)]):
        for c, hw, sc, tier in priced:
            if serving.is_serving(c):
                secs = serving.simulated(hw, sc, tier)[c.quantity]
            else:
                secs = e2e_predict(hw, sc, tier).seconds(c.quantity, dict(sc), int(c.get("num_gpus", 1)))
            total += abs(math.log(secs / c.measured_s))
    return total / (len(rows) * len(tiers))


def golden(f: Callable[[float], float], lo: float = 0.0, hi: float = 30.0, tol: float = 0.1,
           scan: bool = True) -> float:
    """Minimiser of ``f`` on [lo, hi]: a 13-point scan brackets the minimum (a loss can be flat where a
    term stops binding, which a bare golden-section search mistakes for a slope), then golden section;
    ``scan`` False: golden section on [lo, hi] at once (a unimodal loss)."""
    if scan:
        xs = [lo + (hi - lo) * i / 12 for i in range(13)]
        fs = [f(x) for x in xs]
        i = min(range(13), key=lambda j: fs[j])
        lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, 12)]
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    while hi - lo > tol:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    return round((lo + hi) / 2, 1)


@dataclass
class FrameworkFit:
    framework: str
    param: str
    value: float
    rows: int
    loss: float
    #: the loss without the term (host 0 / no cap)
    loss_at_zero: float
    #: how it was fitted, with its checks
    method: str
    #: the datasets of its rows
    datasets: tuple[str, ...] = ()

    @property
    def host_overhead_us(self) -> float:
        return self.value if self.param == "host_overhead_us" else 0.0


def fit_value(rows: Sequence[Case], fs: FitSet, *, tol: float = 0.1, tiers: Sequence[str] = TIERS,
              extra: Sequence[tuple[str, float]] = ()) -> float:
    """The value of ``fs.param`` that minimises :func:`loss` on ``rows`` (golden-section search in [lo, hi])."""
    return golden(lambda x: loss(rows, x, tiers, fs.param, extra), fs.lo, fs.hi, tol=max(tol, fs.tol), scan=fs.scan)


def loss_without(rows: Sequence[Case], fs: FitSet, tiers: Sequence[str] = TIERS,
                 extra: Sequence[tuple[str, float]] = ()) -> float:
    """The loss with no term (:data:`NO_TERM`: host 0, or a cap so high it never binds)."""
    return loss(rows, NO_TERM.get(fs.param, 0.0), tiers, fs.param, extra)


def _inherited(name: str, fresh: dict[str, dict[str, float]], param: str) -> tuple[tuple[str, float], ...]:
    """The values this fit run has already produced for profile ``name`` and the profiles it extends (other fields
    than ``param``): a later group's rows are priced with them, so one run is a fixed point (``fit --check``)."""
    from tapeout.system.frameworks import framework

    out: dict[str, float] = {}
    chain: list[str] = []
    while name is not None and name not in chain:
        chain.append(name)
        name = framework(name).base
    for n in reversed(chain):  # the profile's own values win over its base's
        out.update(fresh.get(n, {}))
    out.pop(param, None)
    return tuple(sorted(out.items()))


def fit_datasets() -> tuple[str, ...]:
    """The datasets the fits and their checks read."""
    return tuple(sorted({fs.dataset for fs in FIT_SETS + CHECK_SETS}))


def fit(data_dir: str | Path | None = None, *, cases: Sequence[Case] | None = None, tol: float = 0.1,
        tiers: Sequence[str] = TIERS) -> dict[str, FrameworkFit]:
    """Fit every profile of :data:`FIT_SETS` on ``cases`` (default: loaded from ``data_dir``); a profile whose
    fit rows are not among them is left out."""
    if cases is None:
        cases = load_cases(data_dir, fit_datasets())
    out: dict[str, FrameworkFit] = {}
    fresh: dict[str, dict[str, float]] = {}
    for sets in fit_groups():
        fs = sets[0]
        per_set = [(s, _rows(cases, s)) for s in sets]
        per_set = [(s, r) for s, r in per_set if r]
        rows = [c for _, r in per_set for c in r]
        if not rows:
            continue
        extra = _inherited(fs.framework, fresh, fs.param)
        h = fit_value(rows, fs, tol=tol, tiers=tiers, extra=extra)
        for name in (fs.framework, *fs.also):
            fresh.setdefault(name, {})[fs.param] = h
        lz = loss_without(rows, fs, tiers, extra)
        lh = loss(rows, h, tiers, fs.param, extra)
        unit = {"host_overhead_us": "us/op", "prefill_host_overhead_us": "us/op",
                "stream_bytes_per_core_clock": "B/core/clock",
                "sequence_host_overhead_us": "us/sequence/step"}.get(fs.param, "us")
        described = "; and ".join(s.describe for s, _ in per_set)
        src = (f"golden-section search in [{fs.lo:g}, {fs.hi:g}] on {described} (whole set, mean of the "
               f"{' and '.join(tiers)} tiers; mean |ln(pred/meas)| {lz:.3f} without the term)")
        for cs in CHECK_SETS:
            if cs.framework != fs.framework:
                continue
            crow = _rows(cases, cs)
            if crow:
                none = loss_without(crow, cs, tiers, extra)
                label = "check on other rows of the same source" if any(cs.dataset == s.dataset for s in sets) \
                    else "independent check"
                src += (f"; {label}: {cs.describe} give mean |ln| {loss(crow, h, tiers, cs.param, extra):.3f} "
                        f"at {h:g} {unit} ({none:.3f} without")
                src += f"; their own best fit {fit_value(crow, cs, tol=max(tol, 0.5), tiers=tiers, extra=extra):g})" \
                    if cs.own_best else ")"
        used = tuple(s.dataset for s, _ in per_set)
        out[fs.framework] = FrameworkFit(fs.framework, fs.param, h, len(rows), lh, lz, src, used)
    return out


def fit_groups() -> list[tuple[FitSet, ...]]:
    """:data:`FIT_SETS` grouped by (framework, field): the sets of one field are fitted together, in order."""
    groups: dict[tuple[str, str], list[FitSet]] = {}
    for fs in FIT_SETS:
        groups.setdefault((fs.framework, fs.param), []).append(fs)
    return [tuple(g) for g in groups.values()]


METRIC = "mean |ln(predicted/measured)| of the rows, averaged over the roofline and tiled tiers"


def store_file(fits: dict[str, FrameworkFit]) -> StoreFile:
    """``fitted/frameworks.toml``: one entry per fitted field; a profile that carries another's value
    (:attr:`FitSet.also`) gets an entry saying so."""
    subjects: dict[str, dict[str, Fit]] = {}
    also = {fs.framework: fs.also for fs in FIT_SETS}
    for name, f in fits.items():
        entry = store.fit({f.param: f.value}, f.method, datasets=f.datasets, rows=f.rows, residual=f.loss,
                          metric=METRIC, command=COMMAND)
        subjects.setdefault(name, {})[ENTRY[f.param]] = entry
        for other in also.get(name, ()):
            subjects.setdefault(other, {})[ENTRY[f.param]] = entry.model_copy(
                update={"method": f"the {name} profile's value (the same kernel): {f.method}"})
    return store.build("frameworks", {k: subjects[k] for k in sorted(subjects)})
