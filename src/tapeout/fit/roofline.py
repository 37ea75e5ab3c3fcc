"""Fit the roofline tier's efficiency data to the measured sets (``tapeout fit``, step ``roofline``).

Writes ``fitted/roofline.toml`` and ``fitted/harness.toml`` through the driver (:mod:`tapeout.fit.driver`);
``tapeout fit --only roofline --report`` prints the before/after tables of docs/calibration.md.

Method (docs/calibration.md has the numbers):

1. Every case is split into the roofline's raw terms with the real estimator at unit efficiency
   (compute and memory time at eta = 1, network time at eta = 1, collective steps), so the fit and
   ``perf.roofline`` share one formula: per op ``count * (max(C/eta_c, M/eta_m) + N/eta_i + launch +
   host + steps * alpha)``.
2. Per device, one set of numbers is fitted on all its rows jointly by minimising the weighted mean
   of |ln(predicted / measured)|; each (dataset, op class) group weighs the same, whatever its size.
   The optimiser is a bounded Nelder-Mead in numpy (no scipy needed).
3. Devices and data:
   - compute (matmul_eta, memory_eta, vector_memory_eta, launch_overhead_us): one joint fit per device
     over vidur-gemm + vidur-elementwise + the dense cuBLAS rows of flashllm-kernels (CUDA-event
     timers: no host term; a100-sxm-80gb's launch gap from its sibling, ``LAUNCH_SIBLINGS``) and the LLMCompass
     micro-benchmarks (matmul, softmax, layernorm, gelu: host wall clock), whose per-op host overhead
     per op family is an extra unknown of the same fit. a100-sxm-80gb, h100-sxm, a40 have vidur rows;
     mi210 has only LLMCompass rows, so its launch overhead (confounded with the host term) is held at
     the default (median of the vidur devices). Host overheads belong to the LLMCompass harness, not
     to the device: they go to ``fitted/harness.toml``.
   - collective_latency_us, interconnect_eta: per device with all-reduce data (vidur-allreduce,
     llmcompass-allreduce for a100-sxm-80gb), with the device's launch overhead held. A device whose
     collective rows are all large messages (hccl-gaudi: Gaudi 3's HCCL all-reduce and all-gather, 16-256 MiB)
     gets interconnect_eta alone, its per-step latency and launch gap at ``[default]``; MI300X both on the
     eager out-of-place rows of rccl-mi300x (``CLASS_COLLECTIVE_SETS``), after the default; a sibling on the
     same fabric without rows (``COLLECTIVE_SIBLINGS``: Gaudi 2, H200) takes the measured one's values.
   - a SKU sibling (``SKU_SIBLINGS``: the same part with other memory, GH200 144 GB <- GH200) takes every fitted
     group of its part, after all the steps.
   - attention_eta: fitted alone on the FlashAttention-2 forward rows where a device has them (H100
     SXM), every other field held.
   - ``[default]``: median of the fitted devices, field by field. attention_eta (measured on one
     device only) and vector_eta (every measured non-matrix op is memory-bound) keep the spec defaults.
4. The vectorised copy of the estimator (:class:`Design`) is checked against the real estimator
   (``runner.predict_case``) at the fitted values on every fitted row (:func:`check_design`; the fit stops
   when they differ), and ``tests/test_fit.py`` proves the two equal at random values.

   - matmul_eta of a device without GEMM sweeps (MI300X, Gaudi 2/3, GH200, B200): alone, on its bf16 row
     of mamf (stas00's maximum achievable matmul FLOPS: a shape search on the device), every other field
     [default]. On devices with sweeps the mamf rows stay checks.
   - memory_eta of a device without weight-streaming rows whose DRAM copy is measured (membw-published:
     BabelStream): its copy fraction times the median memory_eta / copy fraction of the devices with both
     (:data:`COPY_TRANSFER`, :func:`copy_fraction_fits`).

The llmcompass-gpt3-layer set is never fitted on: it is a held-out check. The end-to-end
sets (``e2e-*``: FP6-LLM, Flash-LLM, llama.cpp throughput) are not even loaded here: they check the
calibrated per-op model end to end (``tapeout validate``) and must not be fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tapeout import dtypes
from tapeout.fit import store
from tapeout.fitted import DEFAULT, Fit, StoreFile
from tapeout.hardware.spec import EfficiencySpec
from tapeout.perf import estimate
from tapeout.perf.roofline import on_fp8_peak
from tapeout.workload.ops import Kernel
from tapeout.validate.cases import LLMCOMPASS, Case
from tapeout.validate.registry import calibration_names, load_cases
from tapeout.validate.sources.flashllm import is_technique_case
from tapeout.validate.sources.mi300x_kernels import BEST_SHAPE as MI300X_BEST_SHAPE
from tapeout.validate.sources.mi300x_kernels import DATASET as MI300X_KERNELS
from tapeout.validate.sources.mi300x_kernels import FIT_CLASSES as MI300X_FIT_CLASSES
from tapeout.validate.sources.rccl import DATASET as RCCL_MI300X
from tapeout.validate.sources.rccl import FIT_CLASS as RCCL_FIT_CLASS
from tapeout.validate.sources.membw import DATASET as MEMBW
from tapeout.validate.sources.vidur import DEVICE_CAVEATS
from tapeout.workload.ops import COLLECTIVE_KINDS, OpKind

COMMAND = "tapeout fit --only roofline"
METRIC = "weighted mean |ln(predicted/measured)|, each (dataset, op class) group weighing the same"
FP8_METRIC = "|fp8 predicted / measured - bf16 predicted / measured|, %"

FAMILIES = ("matmul", "softmax", "layernorm", "gelu")

#: fitted parameter -> (lower, upper) bound
BOUNDS: dict[str, tuple[float, float]] = {
    "matmul_eta": (0.05, 1.0),
    "attention_eta": (0.05, 1.0),
    "memory_eta": (0.05, 1.0),
    "vector_memory_eta": (0.05, 1.0),
    "launch_overhead_us": (0.0, 50.0),
    "collective_latency_us": (0.0, 100.0),
    "interconnect_eta": (0.05, 1.0),
    **{f"host_{f}_us": (0.0, 200.0) for f in FAMILIES},
}

#: kernel-timed sets (CUDA events: no host term); flashllm-kernels contributes its dense cuBLAS rows only
#: (its sparse rows check the technique kernels: sources.flashllm.TECHNIQUE_CLASSES)
COMPUTE_SETS = ("vidur-gemm", "vidur-elementwise", "flashllm-kernels")
#: a device whose kernel-timed rows are all long GEMMs (Flash-LLM's cuBLAS rows, 70-740 µs) does not
#: identify a launch gap of a few µs, and its host-timed rows (LLMCompass) confound it with the host
#: term: it takes the launch gap of a sibling with the same die and memory system that has
#: kernel-timed rows of short kernels (vidur's serving-stack GEMMs and elementwise ops)
LAUNCH_SIBLINGS = {"a100-sxm-80gb": "a100-pcie-80gb"}
#: fused-attention efficiency of the roofline tier: FlashAttention-2 forward (the kernel vLLM and
#: Hugging Face ran on Hopper before FlashAttention-3); FA3 rows stay a check of the tiled tier
ATTENTION_SETS = ("flashattention-h100",)
ATTENTION_CLASS = "fa2"
#: the attainable matmul fraction of devices that have no GEMM sweep (stas00's maximum achievable matmul
#: FLOPS, bf16 rows; fp8 rows run the W8A8 technique kernel and stay checks)
ATTAINABLE_SETS = ("mamf",)
ATTAINABLE_CLASS = "matmul_bf16"
#: decode-GEMM timings (1-4 tokens: weight streaming) of devices without GEMM sweeps: memory_eta alone on the
#: engines' kernels (mi300x-kernels: the wave-split-K classes; hipBLASLt and Infinity-Cache-sized rows are checks)
MEMORY_SETS = (MI300X_KERNELS,)
MEMORY_CLASSES = MI300X_FIT_CLASSES
#: DRAM copies far larger than the last-level cache (membw-published: BabelStream copy): they measure a device's
#: attainable copy fraction, ``vector_memory_eta`` fitted alone on them (the field that prices a copy). A field of
#: :data:`COPY_TRANSFER` that a device has no own fit of takes ``median(own / copy) x its copy fraction``, the ratio
#: measured on the devices that have both (step 6). memory_eta transfers: its ratios (weight-streaming GEMMs of vidur
#: on H100 SXM and A100 SXM, MI300X's decode GEMMs: 0.91, 1.00, 0.97) lie within 6 % of their median;
#: vector_memory_eta does not (vidur's serving elementwise kernels reach 0.68 of H100's copy fraction but 1.0 of A100
#: SXM's): it stays [default]
COPY_SETS = (MEMBW,)
COPY_CLASS = "copy"
COPY_TRANSFER = ("memory_eta",)
LLMCOMPASS_MICRO = ("llmcompass-matmul", "llmcompass-softmax", "llmcompass-layernorm", "llmcompass-gelu")
COLLECTIVE_SETS = ("vidur-allreduce", "llmcompass-allreduce")
#: collective sets of large messages only (the fabric's bandwidth regime): they identify interconnect_eta, not
#: the per-step latency, which stays [default] (HCCL on Gaudi 3: 16 and 256 MiB per rank)
BANDWIDTH_SETS = ("hccl-gaudi",)
#: all-reduce sets with check classes beside the fitted one: set -> the op class fitted on (rccl-mi300x: RCCL's
#: eager out-of-place rows from 1 KiB, 8 MI300X). Fitted after the cross-device default, which they leave alone
CLASS_COLLECTIVE_SETS = {RCCL_MI300X: RCCL_FIT_CLASS}
#: a device without collective rows that runs the same collective library over the same fabric as a measured
#: one takes its collective fit (Gaudi 2: HCCL over on-chip RoCE ports, 3 to each peer, as Gaudi 3, at 100
#: instead of 200 GbE; H200: NCCL over the HGX baseboard's NVLink 4 and third-generation NVSwitch, 18 links
#: at 900 GB/s bidirectional, the same board fabric as H100 SXM: the catalog's [interconnect] tables are
#: equal, which tests/test_fit.py checks). GH200 is left out: its NVL32 domain runs over NVLink Switch trays,
#: a different fabric
COLLECTIVE_SIBLINGS = {"gaudi2": "gaudi3", "h200": "h100-sxm"}
#: best-shape matmul rows a tool measured in bf16 and in fp8 on one device (each its own shape search or best shape):
#: mamf (stas00's mamf-finder, torch matmul / torch._scaled_mm), mi300x-kernels' hipBLASLt max-achievable-FLOPS rows.
#: Both tiers fit their fp8 path fraction on them (here ``EfficiencySpec.fp8_path_fraction``, step 7)
PAIRED_SETS = {"mamf": ("matmul_bf16", "matmul_fp8"), MI300X_KERNELS: MI300X_BEST_SHAPE}
#: fp8_path_fraction grid (0.01 steps, at most 1: no fp8 deficit unless a pair asks for one)
FP8_GRID = tuple(float(round(f, 3)) for f in np.arange(0.50, 1.0001, 0.01))
#: an fp8 row whose prediction moves by less than this when fp8_path_fraction goes from 1 to 0.9 is bound by
#: something else (Blackwell's best-shape fp8 rows): it constrains nothing
FP8_UNIDENTIFIED = 0.001
#: devices without a pair of their own that take a measured device's fp8_path_fraction: the same die (GH100: H100
#: PCIe, H800 SXM, H200; the tiled tier carries its fraction to the same devices). H200's mamf fp8 row has no bf16
#: row beside it: a check
FP8_SIBLINGS = {"h100-pcie": "h100-sxm", "h800-sxm": "h100-sxm", "h200": "h100-sxm"}
#: the same part in another memory configuration (same die, clocks, module and power; only the HBM stacks differ) takes
#: every fitted group of the named catalog device, whatever its origin (own rows or a sibling's), in both tiers: the
#: GH200 144 GB HBM3e SKU (MLPerf's GH200 runs) from gh200, the 96 GB HBM3 one the mamf rows measured. As for H200
#: beside H100 SXM, the DRAM fraction carries across HBM generations
SKU_SIBLINGS = {"gh200-144gb": "gh200"}
#: the EfficiencySpec fields written per device (runtime_reserve_gb is not a timing fit)
WRITTEN_FIELDS = ("matmul_eta", "attention_eta", "memory_eta", "vector_memory_eta", "vector_eta",
                  "fp8_path_fraction", "launch_overhead_us", "host_overhead_us", "collective_latency_us", "interconnect_eta")


# ---- the vectorised roofline --------------------------------------------------------------------

_CAT_MATRIX, _CAT_ATTENTION, _CAT_VECTOR, _CAT_COLLECTIVE = 0, 1, 2, 3


@dataclass
class Design:
    """Raw roofline terms of a set of cases (one row per op)."""

    cases: list[Case]
    case_idx: np.ndarray
    count: np.ndarray
    cat: np.ndarray
    compute1: np.ndarray  # compute seconds at eta = 1
    memory1: np.ndarray  # memory seconds at eta = 1
    network1: np.ndarray  # network seconds at interconnect_eta = 1
    steps: np.ndarray  # collective steps (alpha multiplier)
    family: np.ndarray  # host-overhead family index, -1 for none
    fp8: np.ndarray  # True where a matrix op runs at the fp8 peak (its eta x fp8_path_fraction)
    measured: np.ndarray  # per case
    weight: np.ndarray  # per case, sums to 1

    @classmethod
    def build(cls, cases: list[Case]) -> "Design":
        from tapeout.hardware.catalog import load_hardware
        from tapeout.validate.runner import harness_family

        unit = dict(matmul_eta=1.0, attention_eta=1.0, memory_eta=1.0, vector_memory_eta=1.0, vector_eta=1.0,
                    fp8_path_fraction=1.0, launch_overhead_us=0.0, host_overhead_us=0.0, collective_latency_us=1.0, interconnect_eta=1.0)
        hws: dict[str, Any] = {}
        cols: dict[str, list[float]] = {k: [] for k in ("idx", "count", "cat", "c", "m", "n", "steps", "fam", "fp8")}
        for i, case in enumerate(cases):
            hw = hws.get(case.device)
            if hw is None:
                hw = hws[case.device] = load_hardware(case.device).with_efficiency(**unit)
            for op in case.ops:
                cost = estimate(op, hw, "roofline")
                if op.kind in COLLECTIVE_KINDS:
                    cat, steps = _CAT_COLLECTIVE, float(cost.terms.get("steps", 0))
                else:
                    cat = (_CAT_ATTENTION if op.kind is OpKind.ATTENTION else
                           _CAT_MATRIX if op.kind in (OpKind.GEMM, OpKind.BMM) else _CAT_VECTOR)
                    steps = 0.0
                fam = harness_family(op) if case.harness == LLMCOMPASS else None
                for k, v in (("idx", i), ("count", op.count), ("cat", cat), ("c", cost.compute_s),
                             ("m", cost.memory_s), ("n", cost.network_s), ("steps", steps),
                             ("fam", FAMILIES.index(fam) if fam else -1),
                             ("fp8", cat in (_CAT_MATRIX, _CAT_ATTENTION) and on_fp8_peak(str(cost.terms["peak"])))):
                    cols[k].append(v)
        groups: dict[tuple[str, str], int] = {}
        for c in cases:
            groups[(c.dataset, c.op_class)] = groups.get((c.dataset, c.op_class), 0) + 1
        w = np.array([1.0 / groups[(c.dataset, c.op_class)] for c in cases])
        return cls(
            cases=cases, case_idx=np.array(cols["idx"], dtype=int), count=np.array(cols["count"], float),
            cat=np.array(cols["cat"], dtype=int), compute1=np.array(cols["c"]), memory1=np.array(cols["m"]),
            network1=np.array(cols["n"]), steps=np.array(cols["steps"]), family=np.array(cols["fam"], dtype=int),
            fp8=np.array(cols["fp8"], dtype=bool),
            measured=np.array([c.measured_s for c in cases]), weight=w / w.sum(),
        )

    def predict(self, p: dict[str, float]) -> np.ndarray:
        """Per-case predicted seconds for efficiency values ``p`` (EfficiencySpec names + host_<family>_us)."""
        eta_c = np.where(self.cat == _CAT_MATRIX, p["matmul_eta"],
                         np.where(self.cat == _CAT_ATTENTION, p["attention_eta"], p["vector_eta"]))
        eta_c = eta_c * np.where(self.fp8, p.get("fp8_path_fraction", 1.0), 1.0)
        vm = p.get("vector_memory_eta") or p["memory_eta"]
        eta_m = np.where(self.cat == _CAT_VECTOR, vm, p["memory_eta"])
        body = np.maximum(self.compute1 / eta_c, self.memory1 / eta_m) + self.network1 / p["interconnect_eta"]
        host = np.array([p.get(f"host_{f}_us", 0.0) for f in FAMILIES] + [0.0])[self.family]
        over = (p["launch_overhead_us"] + host + self.steps * p["collective_latency_us"]) * 1e-6
        per_op = self.count * (body + over)
        return np.bincount(self.case_idx, weights=per_op, minlength=len(self.cases))

    def loss(self, p: dict[str, float]) -> float:
        return float(np.sum(self.weight * np.abs(np.log(self.predict(p) / self.measured))))


# ---- a bounded Nelder-Mead ---------------------------------------------------------------------

def _nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: float = 0.5, iters: int = 400,
                 tol: float = 1e-9) -> tuple[np.ndarray, float]:
    n = len(x0)
    simplex = [x0] + [x0 + step * np.eye(n)[i] for i in range(n)]
    fs = [f(x) for x in simplex]
    for _ in range(iters * n):
        order = np.argsort(fs)
        simplex, fs = [simplex[i] for i in order], [fs[i] for i in order]
        if abs(fs[-1] - fs[0]) < tol:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        xr = centroid + (centroid - simplex[-1])
        fr = f(xr)
        if fr < fs[0]:
            xe = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(xe)
            simplex[-1], fs[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < fs[-2]:
            simplex[-1], fs[-1] = xr, fr
        else:
            xc = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(xc)
            if fc < fs[-1]:
                simplex[-1], fs[-1] = xc, fc
            else:
                simplex = [simplex[0]] + [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex[1:]]
                fs = [fs[0]] + [f(x) for x in simplex[1:]]
    i = int(np.argmin(fs))
    return simplex[i], fs[i]


def _to_value(name: str, z: float) -> float:
    lo, hi = BOUNDS[name]
    return lo + (hi - lo) / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def _to_z(name: str, v: float) -> float:
    lo, hi = BOUNDS[name]
    t = min(max((v - lo) / (hi - lo), 1e-6), 1 - 1e-6)
    return math.log(t / (1 - t))


def fit(design: Design, free: Sequence[str], fixed: dict[str, float], *, sweeps: int = 4,
        grid: int = 41) -> tuple[dict[str, float], float]:
    """Minimise ``design.loss`` over the ``free`` parameters (bounded), others from ``fixed``.

    Coordinate descent on a grid across each parameter's bounds (robust to the flat regions of an
    L1 loss and to local minima), then a Nelder-Mead polish in a logistic transform of the bounds.
    """
    base = {**EfficiencySpec().model_dump(), **fixed}
    cur = {k: base.get(k) if base.get(k) is not None else 0.5 * sum(BOUNDS[k]) for k in free}
    cur = {k: min(max(v, BOUNDS[k][0]), BOUNDS[k][1]) for k, v in cur.items()}

    def loss_of(vals: dict[str, float]) -> float:
        return design.loss({**base, **vals})

    best = loss_of(cur)
    for sweep in range(sweeps):
        improved = False
        for k in free:
            lo, hi = BOUNDS[k]
            if sweep:  # later sweeps zoom in around the current value
                span = (hi - lo) / (4.0 ** sweep)
                lo, hi = max(lo, cur[k] - span), min(hi, cur[k] + span)
            for v in np.linspace(lo, hi, grid):
                trial = {**cur, k: float(v)}
                f = loss_of(trial)
                if f < best - 1e-12:
                    best, cur, improved = f, trial, True
        if not improved and sweep:
            break

    def params(z: np.ndarray) -> dict[str, float]:
        return {k: _to_value(k, zi) for k, zi in zip(free, z)}

    z, fv = _nelder_mead(lambda z: loss_of(params(z)), np.array([_to_z(k, cur[k]) for k in free]), step=0.2)
    if fv < best:
        best, cur = fv, params(z)
    return dict(cur), best


# ---- the calibration ---------------------------------------------------------------------------

@dataclass
class Calibration:
    devices: dict[str, dict[str, Any]]  # device -> EfficiencySpec fields (its own fits over [default])
    default: dict[str, Any]
    harness: dict[str, dict[str, dict[str, float]]]  # harness -> device -> family -> µs
    losses: dict[str, float]
    #: devices whose compute numbers (matmul_eta, ...) were fitted (the others take [default]'s)
    compute_fitted: tuple[str, ...] = ()
    #: the store's entries: subject (device or "default") -> fit name -> Fit
    fits: dict[str, dict[str, Fit]] | None = None
    #: harness -> device -> Fit (the host terms, with the compute fit's provenance)
    harness_fits: dict[str, dict[str, Fit]] | None = None

    def efficiency(self) -> dict[str, EfficiencySpec]:
        """device -> EfficiencySpec (key "*" = default), for ``runner.evaluate(efficiency=...)``."""
        fields = set(EfficiencySpec.model_fields)
        out = {d: EfficiencySpec(**{k: v for k, v in t.items() if k in fields}) for d, t in self.devices.items()}
        out["*"] = EfficiencySpec(**{k: v for k, v in self.default.items() if k in fields})
        return out

    def store_files(self) -> tuple[StoreFile, StoreFile]:
        """``fitted/roofline.toml`` and ``fitted/harness.toml``."""
        return store.build("roofline", self.fits or {}), store.build("harness", self.harness_fits or {})


def _r(x: float, nd: int = 3) -> float:
    return float(f"{x:.{nd}g}") if x < 1 else round(x, 2)


def fit_cases(data_dir: str | Path | None = None) -> list[Case]:
    """The rows the calibration reads (technique-kernel rows left out: they check the technique models)."""
    names = tuple(dict.fromkeys(calibration_names() + ATTENTION_SETS + ATTAINABLE_SETS))
    return [c for c in load_cases(data_dir, names) if not is_technique_case(c)]


def calibrate(data_dir: str | Path | None = None, *, cases: list[Case] | None = None) -> Calibration:
    """Fit every device that has measurements; see the module docstring."""
    if cases is None:
        cases = fit_cases(data_dir)
    # end-to-end sets and technique-kernel rows are checks, never a fit target of device efficiencies
    cases = [c for c in cases if not c.is_e2e and not is_technique_case(c)]
    attention_cases = [c for c in cases if c.dataset in ATTENTION_SETS and c.op_class == ATTENTION_CLASS]
    cases = [c for c in cases if c.dataset not in ATTENTION_SETS]
    spec_default = EfficiencySpec().model_dump()
    fitted: dict[str, dict[str, float]] = {}
    losses: dict[str, float] = {}
    #: device -> fit name -> (values, datasets, rows, loss, method), rounded at the end
    groups: dict[str, dict[str, tuple[dict[str, float], list[str], int | None, float | None, str]]] = {}

    def rows(device: str, sets: Sequence[str]) -> list[Case]:
        return [c for c in cases if c.device == device and c.dataset in sets]

    def sets_of(sel: Sequence[Case]) -> list[str]:
        return sorted({c.dataset for c in sel}, key=lambda x: (x.startswith("llm"), x))

    # 1. compute numbers, one joint fit per device over all its kernel rows (vidur, CUDA events) and
    #    LLMCompass micro-benchmark rows (with that harness's per-op host overhead as extra unknowns).
    #    Devices with kernel-timed rows go first: their launch overheads give the default one.
    harness: dict[str, dict[str, dict[str, float]]] = {LLMCOMPASS: {}}
    harness_groups: dict[str, tuple[list[str], int, float]] = {}
    host_free = tuple(f"host_{f}_us" for f in FAMILIES)
    etas = ("matmul_eta", "memory_eta", "vector_memory_eta")
    compute_devices = sorted({c.device for c in cases if c.dataset in COMPUTE_SETS + LLMCOMPASS_MICRO},
                             key=lambda d: (not rows(d, COMPUTE_SETS), d in LAUNCH_SIBLINGS, d))
    launch_default = spec_default["launch_overhead_us"]
    for dev in compute_devices:
        kernel_rows = rows(dev, COMPUTE_SETS)
        lc_rows = rows(dev, LLMCOMPASS_MICRO)
        sib = LAUNCH_SIBLINGS.get(dev)
        if kernel_rows and sib in fitted:
            free = etas + (host_free if lc_rows else ())
            fixed: dict[str, float] = {"launch_overhead_us": fitted[sib]["launch_overhead_us"]}
        elif kernel_rows:
            free = etas + ("launch_overhead_us",) + (host_free if lc_rows else ())
            fixed = {}
        else:  # launch and host time are confounded without kernel timers: launch = default
            free = etas + host_free
            fixed = {"launch_overhead_us": launch_default}
        sel = kernel_rows + lc_rows
        vals, loss = fit(Design.build(sel), free, fixed)
        fitted[dev] = {k: vals[k] for k in free if not k.startswith("host_")} | fixed
        losses[f"{dev}/compute"] = loss
        if lc_rows:
            harness[LLMCOMPASS][dev] = {f: round(vals[f"host_{f}_us"], 1) for f in FAMILIES}
            harness_groups[dev] = (sets_of(sel), len(sel), loss)
        own = [k for k in free if not k.startswith("host_")]
        groups.setdefault(dev, {})["compute"] = (
            {k: vals[k] for k in own}, sets_of(sel), len(sel), loss,
            "joint bounded fit through the roofline estimator (grid descent, then Nelder-Mead) of every row"
            + (", with LLMCompass's per-op host overhead as extra unknowns (fitted/harness.toml)" if lc_rows else "")
            + ("; launch_overhead_us = [default] (no kernel-timed rows: launch and host time are confounded)"
               if not kernel_rows else ""))
        if kernel_rows and sib in fitted:
            groups[dev]["launch"] = (
                dict(fixed), [], None, None,
                f"carried over from {sib} (same die and memory system, short kernels timed): long GEMMs do not "
                "identify a launch gap of a few us")
        if kernel_rows:
            launch_default = _median([v["launch_overhead_us"] for d, v in fitted.items()
                                      if rows(d, COMPUTE_SETS) and d not in LAUNCH_SIBLINGS],
                                     spec_default["launch_overhead_us"])

    # 1b. fused attention: attention_eta alone, every other field held at the device's fit
    for dev in sorted({c.device for c in attention_cases}):
        sel = [c for c in attention_cases if c.device == dev]
        held = {k: v for k, v in spec_default.items() if k in WRITTEN_FIELDS and k != "attention_eta"}
        held.update(fitted.get(dev, {}))
        held["vector_memory_eta"] = held.get("vector_memory_eta") or held["memory_eta"]
        vals, loss = fit(Design.build(sel), ("attention_eta",), held)
        fitted.setdefault(dev, {})["attention_eta"] = vals["attention_eta"]
        losses[f"{dev}/attention"] = loss
        groups.setdefault(dev, {})["attention"] = (
            {"attention_eta": vals["attention_eta"]}, list(ATTENTION_SETS), len(sel), loss,
            f"attention_eta alone on the {ATTENTION_CLASS} rows (FlashAttention-2 forward), the device's other "
            "fields held")

    # 2. collectives, with the device's launch overhead held
    coll_free = ("collective_latency_us", "interconnect_eta")
    coll: dict[str, dict[str, float]] = {}

    def fit_collective(dev: str, sel: list[Case], launch: float, how: str) -> None:
        """Both collective fields of ``dev`` jointly on its all-reduce rows ``sel``, its launch gap held."""
        vals, loss = fit(Design.build(sel), coll_free, {"launch_overhead_us": launch})
        coll[dev] = vals
        losses[f"{dev}/collective"] = loss
        groups.setdefault(dev, {})["collective"] = (dict(vals), sorted({c.dataset for c in sel}), len(sel), loss, how)

    for dev in sorted({c.device for c in cases if c.dataset in COLLECTIVE_SETS}):
        fit_collective(dev, rows(dev, COLLECTIVE_SETS), fitted.get(dev, {}).get("launch_overhead_us", launch_default),
                       "joint fit of the all-reduce rows, the device's launch overhead held")

    # 3. the cross-device default: median per field over the fitted devices
    default: dict[str, Any] = {k: spec_default[k] for k in WRITTEN_FIELDS}
    default["vector_memory_eta"] = None
    for k in ("matmul_eta", "memory_eta", "vector_memory_eta"):
        default[k] = _median([v.get(k) for v in fitted.values()], spec_default[k] or spec_default["memory_eta"])
    # attention_eta stays the spec default: the one fit (FA2 on Hopper, which lacks FA2 wgmma support)
    # does not carry over to other architectures
    default["launch_overhead_us"] = launch_default
    for k in coll_free:
        default[k] = _median([v[k] for v in coll.values()], spec_default[k])
    default = {k: _r(v) if isinstance(v, float) else v for k, v in default.items()}
    default["host_overhead_us"] = 0.0
    default_fits = {
        "compute": ({k: default[k] for k in ("matmul_eta", "memory_eta", "vector_memory_eta", "launch_overhead_us")},
                    [], None, None,
                    f"median over the fitted devices ({', '.join(sorted(fitted))}; launch_overhead_us: those with "
                    "kernel-timed rows, siblings left out); attention_eta and vector_eta keep the EfficiencySpec "
                    "defaults (only FA2 on H100 is measured; every measured non-matrix op is memory-bound)"),
        "collective": ({k: default[k] for k in coll_free}, [], None, None,
                       f"median over the devices with all-reduce rows ({', '.join(sorted(coll))})"),
    }

    # 3b. devices whose collective rows are all large messages: interconnect_eta alone, the per-step latency
    #     and the launch gap held at [default] (the rows do not identify them: a few us against 230-916 us)
    for dev in sorted({c.device for c in cases if c.dataset in BANDWIDTH_SETS} - set(coll)):
        sel = rows(dev, BANDWIDTH_SETS)
        held = {"launch_overhead_us": fitted.get(dev, {}).get("launch_overhead_us", default["launch_overhead_us"]),
                "collective_latency_us": default["collective_latency_us"]}
        vals, loss = fit(Design.build(sel), ("interconnect_eta",), held)
        coll[dev] = {"interconnect_eta": vals["interconnect_eta"]}
        losses[f"{dev}/collective_bandwidth"] = loss
        groups.setdefault(dev, {})["collective_bandwidth"] = (
            dict(coll[dev]), sets_of(sel), len(sel), loss,
            "interconnect_eta alone on large-message collectives (bandwidth regime), collective_latency_us and "
            "launch_overhead_us held at [default]")
    # 3c. devices whose all-reduce rows come from a set with check classes (rccl-mi300x): both collective fields
    #     on the fitted class, the launch gap held at the device's fit or [default]
    class_rows = [c for c in cases if CLASS_COLLECTIVE_SETS.get(c.dataset) == c.op_class]
    for dev in sorted({c.device for c in class_rows} - set(coll)):
        fit_collective(
            dev, [c for c in class_rows if c.device == dev],
            fitted.get(dev, {}).get("launch_overhead_us", default["launch_overhead_us"]),
            f"joint fit of the all-reduce rows ({', '.join(f'{k}: {v}' for k, v in CLASS_COLLECTIVE_SETS.items())} "
            "class), the device's launch overhead held; after the cross-device default, which it does not enter")
    for dev, src in sorted(COLLECTIVE_SIBLINGS.items()):
        if src in coll and dev not in coll:
            coll[dev] = dict(coll[src])
            group = "collective" if "collective" in groups.get(src, {}) else "collective_bandwidth"
            groups.setdefault(dev, {})[group] = (
                dict(coll[dev]), [], None, None,
                f"carried over from {src} (the same collective library over the same fabric: "
                f"COLLECTIVE_SIBLINGS); {dev} has no collective rows")

    # 4. devices without GEMM sweeps whose best achievable matmul is measured (mamf, bf16: a shape search
    #    on the device, its sustained clock under load included). The roofline has one matmul_eta for every
    #    shape, so a sweep fit lands below the best shape's fraction: on the devices that have both, the
    #    ratio (sweep-fitted / best-shape) is measured, and its median carries the best-shape fraction of
    #    the others to a sweep-equivalent matmul_eta; every other field [default]
    held_default = {k: v for k, v in default.items() if k in WRITTEN_FIELDS and k != "matmul_eta"}
    held_default["vector_memory_eta"] = held_default.get("vector_memory_eta") or default["memory_eta"]
    attainable = [c for c in cases if c.dataset in ATTAINABLE_SETS and c.op_class == ATTAINABLE_CLASS]
    best: dict[str, float] = {}
    best_loss: dict[str, tuple[int, float]] = {}
    for dev in sorted({c.device for c in attainable}):
        sel = [c for c in attainable if c.device == dev]
        vals, loss = fit(Design.build(sel), ("matmul_eta",), held_default)
        best[dev] = vals["matmul_eta"]
        best_loss[dev] = (len(sel), loss)
    both = sorted(d for d in best if d in fitted and "matmul_eta" in fitted[d])
    ratio = _median([fitted[d]["matmul_eta"] / best[d] for d in both], 1.0)
    for dev in sorted(set(best) - set(fitted)):
        fitted[dev] = {"matmul_eta": min(1.0, ratio * best[dev])}
        groups.setdefault(dev, {})["attainable"] = (
            dict(fitted[dev]), list(ATTAINABLE_SETS), best_loss[dev][0], best_loss[dev][1],
            f"matmul_eta = {ratio:.3f} x {best[dev]:.3f}: the best-shape fraction of the dense peak from the "
            f"{ATTAINABLE_CLASS} row (a shape search on the device; residual: that fraction's fit) times the median "
            f"sweep-fitted / best-shape ratio of {', '.join(both)}")

    # 5. the same devices' DRAM fraction, where their decode GEMMs (1-4 tokens: weight streaming) are timed:
    #    memory_eta alone on those rows, matmul_eta (step 4) and every other field held
    streams = [c for c in cases if c.dataset in MEMORY_SETS and c.op_class in MEMORY_CLASSES]
    for dev in sorted({c.device for c in streams} - set(compute_devices)):
        sel = [c for c in streams if c.device == dev]
        vals, loss = fit(Design.build(sel), ("memory_eta",), {**held_default, **fitted.get(dev, {})})
        fitted.setdefault(dev, {})["memory_eta"] = vals["memory_eta"]
        groups.setdefault(dev, {})["memory"] = (
            {"memory_eta": vals["memory_eta"]}, list(MEMORY_SETS), len(sel), loss,
            f"memory_eta alone on the decode GEMMs of 1-4 tokens ({', '.join(MEMORY_CLASSES)}), matmul_eta and the "
            "other fields held")

    # 6. devices whose DRAM copy is measured (membw-published): the COPY_TRANSFER fields they have no own fit of
    copy_fraction_fits(cases, fitted, groups, held_default)

    # 7. the fp8 path: per device with a bf16 / fp8 best-shape pair, the fraction at which the fp8 row is missed by
    #    the same ratio as the bf16 row (every other field at the device's values); [default]: their median;
    #    FP8_SIBLINGS carry it
    def table(dev: str) -> dict[str, Any]:
        t = {k: default[k] for k in WRITTEN_FIELDS}
        t.update({k: _r(v) for k, v in fitted.get(dev, {}).items()})
        t.update({k: _r(v) for k, v in coll.get(dev, {}).items()})
        t["host_overhead_us"] = 0.0
        return t

    fp8_fits: dict[str, float] = {}
    for dev in sorted({c.device for c in cases if c.dataset in PAIRED_SETS}):
        got = fp8_fit(dev, cases, table(dev))
        if got is not None:
            fp8_fits[dev] = got[0]
            groups.setdefault(dev, {})["fp8"] = ({"fp8_path_fraction": got[0]}, [got[1]], 2, got[2], got[3])
    default["fp8_path_fraction"] = _r(_median(list(fp8_fits.values()), spec_default["fp8_path_fraction"]))
    default_fits["fp8"] = ({"fp8_path_fraction": default["fp8_path_fraction"]}, [], None, None,
                           "median over the devices with a bf16 and an fp8 best-shape matmul measured by one tool "
                           f"({', '.join(sorted(fp8_fits))})")
    for dev, src in sorted(FP8_SIBLINGS.items()):
        if src in fp8_fits and dev not in fp8_fits:
            fp8_fits[dev] = fp8_fits[src]
            vals, sets, n, loss, how = groups[src]["fp8"]
            groups.setdefault(dev, {})["fp8"] = (dict(vals), sets, n, loss,
                                                 f"carried over from {src} (same die: FP8_SIBLINGS): {how}")
    for dev, f in fp8_fits.items():
        fitted.setdefault(dev, {})["fp8_path_fraction"] = f
    for dev, src in sorted(SKU_SIBLINGS.items()):
        if src in fitted and dev not in fitted:
            fitted[dev] = dict(fitted[src])
            if src in coll:
                coll[dev] = dict(coll[src])
            groups[dev] = {name: (dict(vals), sets, n, loss, f"carried over from {src} (the same part with other "
                                  f"memory: SKU_SIBLINGS): {how}")
                           for name, (vals, sets, n, loss, how) in groups.get(src, {}).items()}

    devices: dict[str, dict[str, Any]] = {}
    fits: dict[str, dict[str, Fit]] = {DEFAULT: {n: store.fit(v, m, command=COMMAND)
                                                for n, (v, _, _, _, m) in default_fits.items()}}
    for dev in sorted(set(fitted) | set(coll)):
        devices[dev] = table(dev)
        entries = {}
        for i, (name, (vals, sets, n, loss, method)) in enumerate(groups.get(dev, {}).items()):
            if not i and dev in DEVICE_CAVEATS:
                method += f"; note: {DEVICE_CAVEATS[dev]}"
            metric = (FP8_METRIC if name == "fp8" else METRIC) if loss is not None else ""
            entries[name] = store.fit({k: _r(v) for k, v in vals.items()}, method, datasets=sets, rows=n,
                                      residual=loss, metric=metric, command=COMMAND)
        fits[dev] = entries
    harness_fits = {h: {dev: store.fit(fams, "the per-op host overhead of the harness, op family by op family: extra "
                                       "unknowns of the device's joint compute fit (fitted/roofline.toml)",
                                       datasets=harness_groups[dev][0], rows=harness_groups[dev][1],
                                       residual=harness_groups[dev][2], metric=METRIC, command=COMMAND)
                        for dev, fams in sorted(per.items())}
                    for h, per in harness.items() if per}
    return Calibration(devices=devices, default=default, harness=harness, losses=losses,
                       compute_fitted=tuple(sorted(fitted)), fits=fits, harness_fits=harness_fits)


def best_shape_pair(cases: Sequence[Case], device: str) -> tuple[Case, Case] | None:
    """The (bf16, fp8) best-shape matmul rows one tool measured on ``device`` (:data:`PAIRED_SETS`), or None."""
    for dataset, classes in PAIRED_SETS.items():
        rows = [c for c in cases if c.dataset == dataset and c.op_class in classes and c.device == device]
        by = {dtypes.parse(c.ops[0].compute_dtype).peak_key: c for c in rows}
        if "bf16" in by and "fp8" in by:
            return by["bf16"], by["fp8"]
    return None


def match_fraction(target: float, ratio: Callable[[float], float]) -> tuple[float, float] | None:
    """The fp8 path fraction of one best-shape pair, both tiers' rule: the :data:`FP8_GRID` value at which the fp8
    row's predicted / measured ``ratio(f)`` equals the bf16 row's ``target`` (the smallest gap; among equal gaps the
    largest fraction: no fp8 deficit unless the pair asks for one), as (fraction, gap); None where the fp8 row does
    not depend on the fraction (:data:`FP8_UNIDENTIFIED`)."""
    got = {f: ratio(f) for f in FP8_GRID}
    if got[0.9] / got[1.0] < 1 + FP8_UNIDENTIFIED:
        return None  # not bound by the fp8 matrix rate: the pair does not constrain the fraction
    gap, neg = min((round(abs(r - target), 6), -f) for f, r in got.items())
    return -neg, gap


def fp8_fit(device: str, cases: Sequence[Case], held: dict[str, Any]) -> tuple[float, str, float, str] | None:
    """Step 7 of :func:`calibrate`: ``fp8_path_fraction`` of ``device`` from its :func:`best_shape_pair`, the grid value
    (:data:`FP8_GRID`) at which the roofline misses the fp8 row by the same ratio as the bf16 row (``held``: the
    device's other EfficiencySpec fields). (fraction, dataset, remaining gap in %, method), or None without a pair
    or where the fp8 row does not run at the fp8 peak."""
    from tapeout.validate.runner import _Devices, predict_case

    pair = best_shape_pair(cases, device)
    if pair is None:
        return None
    bf16, fp8 = pair

    def ratio(case: Case, f: float) -> float:
        devs = _Devices({device: EfficiencySpec(**{**held, "fp8_path_fraction": f})})
        return predict_case(case, devs, "roofline").predicted_s / case.measured_s

    target = ratio(bf16, 1.0)
    got = match_fraction(target, lambda f: ratio(fp8, f))
    if got is None:
        return None
    fraction, gap = got
    return (fraction, bf16.dataset, gap * 100,
            "the fp8 path's share relative to the 16-bit path: the grid value (0.01, <= 1) at which the roofline "
            f"misses the device's best-shape fp8 matmul by the same ratio as its best-shape bf16 matmul ({bf16.dataset}: "
            f"{bf16.get('M')} x {bf16.get('N')} x {bf16.get('K')} bf16, {fp8.get('M')} x {fp8.get('N')} x "
            f"{fp8.get('K')} fp8; bf16 predicted / measured {target:.3f}; residual: the remaining gap, %), the "
            "device's other fields held")


def copy_fraction_fits(cases: list[Case], fitted: dict[str, dict[str, float]], groups: dict[str, dict[str, Any]],
                       held_default: dict[str, Any]) -> dict[str, float]:
    """Step 6 of :func:`calibrate` (updates ``fitted`` and ``groups``): per device with copy rows, its copy fraction
    (``vector_memory_eta`` alone on them, every other field held); each :data:`COPY_TRANSFER` field a device has no
    own fit of becomes the median (own fit / copy fraction) of the devices that have both, times its copy fraction.
    Returns device -> copy fraction."""
    copies = [c for c in cases if c.dataset in COPY_SETS and c.op_class == COPY_CLASS]
    frac: dict[str, float] = {}
    frac_loss: dict[str, tuple[int, float]] = {}
    for dev in sorted({c.device for c in copies}):
        sel = [c for c in copies if c.device == dev]
        vals, loss = fit(Design.build(sel), ("vector_memory_eta",), {**held_default, **fitted.get(dev, {})})
        frac[dev], frac_loss[dev] = vals["vector_memory_eta"], (len(sel), loss)
    for key in COPY_TRANSFER:
        refs = sorted(d for d in frac if key in fitted.get(d, {}))
        if not refs:
            continue
        ratios = {d: fitted[d][key] / frac[d] for d in refs}
        ratio = _median(list(ratios.values()), 1.0)
        for dev in sorted(d for d in frac if key not in fitted.get(d, {})):
            fitted.setdefault(dev, {})[key] = min(BOUNDS[key][1], ratio * frac[dev])
            groups.setdefault(dev, {})["copy"] = (
                {key: fitted[dev][key]}, list(COPY_SETS), *frac_loss[dev],
                f"{key} = {ratio:.3f} x {frac[dev]:.3f}: the device's copy fraction (vector_memory_eta alone on its "
                f"{COPY_CLASS} rows; residual: that fit) times the median {key} / copy fraction of "
                + ", ".join(f"{d} ({r:.3f})" for d, r in ratios.items()))
    return frac


def _median(values: list[float], fallback: float) -> float:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else fallback


# ---- reports --------------------------------------------------------------------------------

def before_after(data_dir: str | Path | None, cal: Calibration, cases: list[Case] | None = None
                 ) -> list[dict[str, Any]]:
    """Per (dataset, device): n and MAPE with spec defaults (before) and with ``cal`` (after)."""
    from tapeout.validate.runner import _Devices, predict_case
    from tapeout.validate import metrics

    if cases is None:
        cases = load_cases(data_dir, calibration_names() + ATTENTION_SETS)
    before_dev = _Devices("default")
    after_dev = _Devices(cal.efficiency())
    after_dev.harness = {**after_dev.harness, **{h: {**after_dev.harness.get(h, {}), **v}
                                                 for h, v in cal.harness.items()}}
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for c in cases:
        if c.op_class.endswith("/total"):
            key = (c.dataset + " (totals)", c.device)
        else:
            key = (c.dataset, c.device)
        b = predict_case(c, before_dev).predicted_s
        a = predict_case(c, after_dev).predicted_s
        slot = out.setdefault(key, {"b": [], "a": [], "m": []})
        slot["b"].append(b)
        slot["a"].append(a)
        slot["m"].append(c.measured_s)
    rows = []
    for (ds, dev), v in out.items():
        rows.append({"dataset": ds, "device": dev, "n": len(v["m"]),
                     "mape_before": metrics.mape_pct(v["b"], v["m"]), "mape_after": metrics.mape_pct(v["a"], v["m"]),
                     "mdape_before": metrics.mdape_pct(v["b"], v["m"]), "mdape_after": metrics.mdape_pct(v["a"], v["m"]),
                     "bias_after": metrics.log_bias(v["a"], v["m"])})
    return rows


def mamf_table(cal: Calibration, cases: list[Case]) -> list[dict[str, Any]]:
    """The mamf check: best measured matmul TFLOP/s / catalog dense peak (implied eta) vs the fitted eta."""
    from tapeout.hardware.catalog import load_hardware
    from tapeout.perf.roofline import matrix_peak

    effs = cal.efficiency()
    out = []
    for c in cases:
        if c.dataset != "mamf":
            continue
        hw = load_hardware(c.device)
        key, peak = matrix_peak(hw, c.op.compute_dtype)
        eff = effs.get(c.device) or effs["*"]
        achieved = float(c.get("tflops"))
        out.append({"device": c.device, "dtype": c.op.compute_dtype, "peak_key": key, "peak_tflops": peak / 1e12,
                    "achieved_tflops": achieved, "implied_eta": achieved * 1e12 / peak,
                    "matmul_eta": eff.matmul_eta, "fitted": c.device in cal.compute_fitted})
    return out


def check_design(cal: Calibration, cases: list[Case]) -> float:
    """Largest relative difference between the vectorised model and the real harness (should be ~0).

    Cases whose ops run a technique kernel (e.g. mamf's fp8 rows: W8A8 with its scale epilogue) are left
    out: the vectorised design has no term for that work, and no fitted set contains them.
    """
    from tapeout.validate.runner import _Devices, predict_case

    cases = [c for c in cases if all(op.kernel == Kernel.DENSE for op in c.ops)]

    dev = _Devices(cal.efficiency())
    dev.harness = {**dev.harness, **cal.harness}
    by_device: dict[str, list[Case]] = {}
    for c in cases:
        by_device.setdefault(c.device, []).append(c)
    worst = 0.0
    effs = cal.efficiency()
    for device, cs in by_device.items():
        e = (effs.get(device) or effs["*"]).model_dump()
        p = {**e, **{f"host_{f}_us": cal.harness.get(LLMCOMPASS, {}).get(device, {}).get(f, 0.0) for f in FAMILIES}}
        vec = Design.build(cs).predict(p)
        real = np.array([predict_case(c, dev).predicted_s for c in cs])
        worst = max(worst, float(np.max(np.abs(vec / real - 1))))
    return worst
