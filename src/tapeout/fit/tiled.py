"""Fit the tiled tier's per-device kernel efficiencies on the shared measured sets (``tapeout fit``, step
``tiled``; written to ``fitted/tiled.toml``).

For each device with measurements, and always across *whole* sets (never one row):

- ``matrix_eta`` and ``dram_eta`` on the GEMM sets (vidur-gemm, llmcompass-matmul, the dense cuBLAS
  rows of flashllm-kernels; mamf is held out as a check): a coarse grid, then a fine grid around the
  best point;
- ``stream_eta`` on the elementwise / reduction sets (vidur-elementwise, llmcompass-softmax,
  -layernorm, -gelu); vidur-elementwise is thinned to every 8th row (it has ~60k rows of 5 op classes);
- ``attention_eta`` (the share of the GEMM main-loop rate a fused prefill-attention main loop sustains) on the
  device's forward-attention rows of its native-path kernels (:data:`ATTENTION_SETS`, :data:`ATTENTION_CLASSES`:
  FlashAttention-3 on H100, aiter's asm kernel on MI300X), its kernel efficiencies held; ``[default]`` takes the
  median over the devices with such rows;
- ``legacy_path_fraction`` (devices with two matrix paths: Hopper) on the FlashAttention-2 rows of
  ``measured/flashattention_figures.csv`` (FA2 uses mma.sync, FA3 wgmma), ``attention_eta`` held;
- ``collective_base_us``, ``collective_step_us`` and ``collective_eta`` jointly on the all-reduce
  sets (vidur-allreduce, llmcompass-allreduce; MI300X: the fitted class of rccl-mi300x,
  :data:`CLASS_COLLECTIVE_SETS`), messages >= 1 MiB (NCCL's bandwidth protocol);
  ``collective_ll_step_us`` and ``collective_ll_eta`` on messages < 1 MiB (the low-latency
  protocol); prediction takes the faster of the two;
- ``matrix_eta`` of a device without GEMM sweeps whose best achievable bf16 matmul is measured
  (:data:`ATTAINABLE_DEVICES`: mamf's shape search), alone on that row, the other fields [default]; then its
  ``dram_eta`` alone on its decode GEMMs (1-4 tokens: weight streaming) where they are measured
  (:data:`MEMORY_SETS`: MI300X's wave-split-K rows of ``mi300x-kernels``), ``matrix_eta`` held;
- ``dram_eta`` and ``stream_eta`` of a device with DRAM copy rows (``membw-published``: BabelStream) and no own
  fit of them: its copy fraction times the median own / copy ratio of the devices with both (:func:`copy_fits`);
  a device's own copy data wins over a sibling's carried values;
- ``fp8_path_fraction`` (the share of the fp8 MAC rate the fp8 path sustains relative to the 16-bit path) per device
  with a best-shape matmul measured in both bf16 and fp8 by one tool (:data:`PAIRED_SETS`: mamf's shape search,
  AMD's hipBLASLt max-achievable-FLOPS rows of ``mi300x-kernels``): the value at which the tiled tier misses the
  fp8 row by the same ratio as the bf16 row (the mapper's shape effects and the device's 16-bit fit divide out),
  the device's kernel efficiencies held; siblings and :data:`DIE_SIBLINGS` carry it, ``[default]`` takes the median
  over the devices with such a pair; ``fp8-gemm-kernels`` checks it;
- ``[default]``: the median of each kernel efficiency over the devices fitted on their own GEMM and
  streaming rows (the MicroArch defaults: devices without measurements, user device files);
- ``decode_tile_latencies`` (the fixed work of a decode-attention tile, in DRAM latencies) per device on its
  decode-attention kernel rows (:data:`DECODE_SETS`: vidur's FlashAttention grid on A100, rows >=
  :data:`DECODE_MIN_S`; FlashAttention-2 paged decode on H100 SXM), the device's kernel efficiencies held: grid 1,
  then 0.25 around the best; siblings and :data:`DIE_SIBLINGS` carry it (same die and kernel); ``[default]`` takes
  the median over the devices with such rows (the MicroArch default);
- ``overlap_p`` is one value for all devices (:data:`OVERLAP_P`; chosen by comparing the GEMM error of
  a few values, docs/tiled.md) and held by every fit.

The objective is the mean over (dataset, op class) groups of the group MAPE, so a 20-row set
weighs as much as an 880-row one. Siblings (same die and power class) carry a fitted device's kernel
efficiencies (their entries say so); a SKU sibling (``fit.roofline.SKU_SIBLINGS``: the same part with other memory,
GH200 144 GB) takes every group of its part, last. Every prediction goes through the real estimator
(``perf.estimate(op, hw, "tiled")``) on the catalog device with the roofline calibration and the
measurement harness's host terms (``validate.runner._Devices``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from tapeout.fit import store
from tapeout.fit.roofline import (CLASS_COLLECTIVE_SETS, COLLECTIVE_SETS, COLLECTIVE_SIBLINGS, PAIRED_SETS,
                                  SKU_SIBLINGS, best_shape_pair, match_fraction)
from tapeout.fitted import DEFAULT, MATRIX_FIELDS, Fit, StoreFile
from tapeout.hardware.catalog import load_hardware
from tapeout.perf import estimate
from tapeout.validate.cases import Case
from tapeout.validate.registry import load_cases
from tapeout.validate.sources.attention_kernels import DATASET as ATTENTION_KERNELS
from tapeout.validate.sources.decode_attention_kernels import DATASET as DECODE_KERNELS
from tapeout.validate.sources.decode_attention_kernels import KERNELS as DECODE_KERNEL_CLASSES
from tapeout.validate.sources.flashllm import is_technique_case
from tapeout.validate.sources.mi300x_kernels import DATASET as MI300X_KERNELS
from tapeout.validate.sources.mi300x_kernels import FIT_CLASSES as MI300X_FIT_CLASSES
from tapeout.validate.sources.membw import DATASET as MEMBW
from tapeout.validate.runner import _Devices

#: mamf (1-2 rows per device) is held out; flashllm-kernels contributes its dense cuBLAS rows only
#: (kernel-timed skinny GEMMs on A100 SXM; its sparse rows check the technique kernels:
#: validate/sources/flashllm.py, TECHNIQUE_CLASSES)
GEMM_SETS = ("vidur-gemm", "llmcompass-matmul", "flashllm-kernels")
STREAM_SETS = ("vidur-elementwise", "llmcompass-softmax", "llmcompass-layernorm", "llmcompass-gelu")
#: the all-reduce sets (COLLECTIVE_SETS) and the sets fitted on one op class (CLASS_COLLECTIVE_SETS: rccl-mi300x's
#: eager out-of-place rows; its graph-mode, in-place and sub-KiB rows are checks) are fit/roofline.py's, one list
#: for both tiers
THIN = 8
#: the best streaming efficiency seen for HBM in the shared data (vidur H100 weight streams:
#: 3084 of 3352 GB/s); dram_eta is not allowed above it
DRAM_ETA_MAX = 0.92
#: the p of the p-norm overlap of every device: the GEMM objective summed over the five fitted devices is
#: lowest at 2 (30.1 % at p = 2, 31.1 at 3, 32.1 at 4, 31.4 at 1.5; docs/tiled.md); held by every fit
OVERLAP_P = 2.0
#: the devices fitted on their own measurements
DEVICES = ("a100-sxm-80gb", "h100-sxm", "a40", "mi210", "a100-pcie-80gb", "h100-pcie")

#: vidur's "a100" compute profile does not say SXM or PCIe: the harness (validate/sources/vidur.py,
#: VIDUR_COMPUTE_DEVICES) maps it to a100-pcie-80gb. Its GEMMs top out at 255 TFLOP/s (82% of the dense
#: peak) and its weight streams at 1.67 TB/s, like stas00's A100 PCIe (253 TFLOP/s, 81%), while A100 SXM
#: measurements reach 271 (stas00) and 279 TFLOP/s (LLMCompass, 89%) (docs/tiled.md, "Which A100").

#: devices with the same die, clocks and power class take the fitted kernel efficiencies of the
#: measured one (not the collective values: their links differ; a sibling on the same fabric takes those from
#: ``COLLECTIVE_SIBLINGS``, one map for both tiers)
SIBLINGS = {
    "a100-sxm-80gb": ("a100-sxm-40gb", "a800-sxm-80gb"),
    "h100-sxm": ("h800-sxm", "h200", "gh200"),
    "a40": ("a6000",),
    "mi210": ("mi250x-gcd",),
}
#: devices without GEMM sweeps whose best achievable bf16 matmul is measured (mamf: stas00's shape search
#: on the device, its sustained clock under load included): matrix_eta alone on that row. GH200 keeps
#: H100 SXM's value: its one row (1024 x 15360 x 4096) would need matrix_eta 0.965 against H100's 0.81,
#: far more than its 900 W power class explains (mamf: 0.838 vs 0.803 of the peak), i.e. the mapper's
#: wave quantization at that shape, not the device; the row stays a check
ATTAINABLE_SETS = ("mamf",)
ATTAINABLE_CLASS = "matmul_bf16"
ATTAINABLE_DEVICES = ("mi300x",)
#: decode-GEMM timings (weight streaming) of devices without GEMM sweeps: dram_eta alone on the engines'
#: kernels (mi300x-kernels: the wave-split-K classes; hipBLASLt and Infinity-Cache-sized rows are checks)
MEMORY_SETS = (MI300X_KERNELS,)
MEMORY_CLASSES = MI300X_FIT_CLASSES
KERNEL_KEYS = ("matrix_eta", "dram_eta", "stream_eta", "legacy_path_fraction", "fp8_path_fraction", "attention_eta",
               "decode_tile_latencies")
FP8_KEYS = ("fp8_path_fraction",)
#: DRAM copies far larger than the last-level cache (membw-published: BabelStream copy): a device's copy fraction is
#: ``stream_eta`` fitted alone on them (the field that prices a copy). A field of :data:`COPY_TRANSFER` that a device
#: has no own fit of takes ``median(own / copy) x its copy fraction`` over the devices that have both (H100 SXM and
#: A100 SXM's GEMM and streaming fits, MI300X's decode-GEMM dram_eta: each field's ratios lie within 3 % of their median). The device's own
#: copy data wins over a sibling's carried value (SIBLINGS)
COPY_SETS = (MEMBW,)
COPY_CLASS = "copy"
COPY_TRANSFER = ("dram_eta", "stream_eta")
#: the fields whose cross-device median is the MicroArch default
DEFAULT_KEYS = ("matrix_eta", "dram_eta", "stream_eta")
#: fitted on a device's decode-attention rows; the default is their median over such devices
DECODE_KEYS = ("decode_tile_latencies",)
#: the mma.sync / wgmma ratio, the attention main loop's issue rate and the decode tile's fixed work (its chain of
#: dependent loads, counted in DRAM latencies) are properties of the SM and the kernel: every part with the same die
#: takes them, whatever its clocks and power class (vidur's "a100" rows: the PCIe card, docs/tiled.md "Which A100")
DIE_SIBLINGS = {"h100-sxm": ("h100-pcie",), "a100-pcie-80gb": ("a100-sxm-80gb", "a100-sxm-40gb", "a800-sxm-80gb")}
#: the FlashAttention-2/3 forward rows on H100 (validate/sources/flashattention.py, dataset "flashattention-h100")
FLASH_SETS = ("flashattention-h100",)
#: forward prefill-attention kernel sets and their native-matrix-path classes (FlashAttention-3: Hopper wgmma;
#: aiter's fmha_fwd_v3: CDNA3 MFMA; FlashAttention-4: Blackwell tcgen05): attention_eta per device on these; the
#: FlashAttention-2 rows (mma.sync, the previous-generation path on Hopper and Blackwell) fit legacy_path_fraction
ATTENTION_SETS = ("flashattention-h100", ATTENTION_KERNELS)
ATTENTION_CLASSES = ("fa3", "aiter-asm", "fa4")
#: fitted on a device's native-path forward-attention rows; the default is their median over such devices
ATTENTION_KEYS = ("attention_eta",)
#: decode-attention sets and their fitted op classes: vidur's FlashAttention decode grid on A100 (validate/sources/vidur.py,
#: class "decode"; its prefill rows are checks) and the published decode kernels (validate/sources/
#: decode_attention_kernels.py: FlashAttention-2 paged decode on H100 SXM)
DECODE_SETS: dict[str, tuple[str, ...]] = {"vidur-attention": ("decode",), DECODE_KERNELS: tuple(DECODE_KERNEL_CLASSES)}
#: vidur prints kernel times to 0.001 ms: rows under 0.02 ms (rounding > 2.5 %) are left out of the fit
DECODE_MIN_S = 20e-6
COMMAND = "tapeout fit --only tiled"
METRIC = "mean over (dataset, op class) groups of the group MAPE, %"


def _variant(hw, **ua):  # noqa: ANN001, ANN202
    matrix = {k: ua.pop(k) for k in MATRIX_FIELDS if k in ua}
    upd = dict(ua)
    if matrix:
        upd["matrix"] = hw.microarch.matrix.model_copy(update=matrix)
    return hw.model_copy(update={"microarch": hw.microarch.model_copy(update=upd)})


def predict(cases: Sequence[Case], devices: _Devices, **ua: float) -> np.ndarray:
    """Per-case predicted seconds with the micro-architecture fields ``ua`` set (the real estimator)."""
    out = np.empty(len(cases))
    variants: dict[int, Any] = {}
    for i, c in enumerate(cases):
        t = 0.0
        for op in c.ops:
            base = devices.for_op(c, op)
            hw = variants.get(id(base))
            if hw is None:
                hw = variants[id(base)] = _variant(base, **ua)
            t += estimate(op, hw, "tiled").total_s
        out[i] = t
    return out


def objective(cases: Sequence[Case], pred: np.ndarray) -> float:
    meas = np.array([c.measured_s for c in cases])
    err = np.abs(pred / meas - 1.0)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[(c.dataset, c.op_class)].append(i)
    return float(np.mean([err[idx].mean() for idx in groups.values()])) * 100


def error(cases: Sequence[Case], devices: _Devices, **ua: float) -> float:
    """:func:`objective` of ``cases`` predicted with the micro-architecture fields ``ua`` set."""
    return objective(cases, predict(cases, devices, **ua))


def grid_fit(cases: Sequence[Case], devices: _Devices, names: tuple[str, ...], grids: list[np.ndarray],
             fixed: dict[str, float]) -> tuple[float, dict[str, float]]:
    best: tuple[float, dict[str, float]] = (float("inf"), {})
    for point in np.array(np.meshgrid(*grids)).T.reshape(-1, len(names)):
        params = {**fixed, **{n: float(round(v, 3)) for n, v in zip(names, point)}}
        s = error(cases, devices, **params)
        if s < best[0]:
            best = (s, params)
    return best


def _fine(center: float, half: float, step: float, lo: float, hi: float) -> np.ndarray:
    return np.unique(np.clip(np.arange(center - half, center + half + step / 10, step), lo, hi))


def coarse_fine(cases: Sequence[Case], devices: _Devices, name: str, coarse: np.ndarray,
                fine: tuple[float, float, float, float], fixed: dict[str, float]) -> tuple[float, dict[str, float]]:
    """One field on a coarse grid, then on ``fine`` = (half width, step, low, high) around the best point."""
    _, p = grid_fit(cases, devices, (name,), [coarse], fixed)
    return grid_fit(cases, devices, (name,), [_fine(p[name], *fine)], fixed)


def fit_device(device: str, cases: Sequence[Case], devices: _Devices, held: dict[str, float] | None = None
               ) -> tuple[dict[str, float], dict[str, Fit]]:
    """The fitted fields of ``device`` (with ``overlap_p`` and ``held``) and its store entries."""
    params: dict[str, float] = {"overlap_p": OVERLAP_P, **(held or {})}
    entries: dict[str, Fit] = {}

    def entry(name: str, keys: Sequence[str], sel: Sequence[Case], s: float, method: str) -> None:
        entries[name] = store.fit({k: params[k] for k in keys}, method, datasets=sorted({c.dataset for c in sel}),
                                  rows=len(sel), residual=s, metric=METRIC, command=COMMAND)

    gemm = [c for c in cases if c.dataset in GEMM_SETS and c.device == device]
    if gemm:
        s, p = grid_fit(gemm, devices, ("matrix_eta", "dram_eta"),
                        [np.arange(0.60, 1.001, 0.05), np.arange(0.60, DRAM_ETA_MAX + 0.001, 0.04)], params)
        s, p = grid_fit(gemm, devices, ("matrix_eta", "dram_eta"),
                        [_fine(p["matrix_eta"], 0.04, 0.01, 0.3, 1.0),
                         _fine(p["dram_eta"], 0.04, 0.01, 0.3, DRAM_ETA_MAX)], params)
        params.update(matrix_eta=p["matrix_eta"], dram_eta=p["dram_eta"])
        entry("gemm", ("matrix_eta", "dram_eta"), gemm, s,
              f"grid (coarse 0.05 / 0.04, then 0.01 around the best) through the tiled estimator; dram_eta <= "
              f"{DRAM_ETA_MAX}; overlap_p {OVERLAP_P:g}")
    best = [c for c in cases if c.dataset in ATTAINABLE_SETS and c.op_class == ATTAINABLE_CLASS
            and c.device == device]
    if not gemm and best and device in ATTAINABLE_DEVICES:
        s, p = grid_fit(best, devices, ("matrix_eta",), [np.arange(0.30, 1.001, 0.05)], params)
        s, p = grid_fit(best, devices, ("matrix_eta",), [_fine(p["matrix_eta"], 0.05, 0.005, 0.3, 1.0)], params)
        params["matrix_eta"] = float(round(p["matrix_eta"], 3))
        entry("attainable", ("matrix_eta",), best, s,
              f"matrix_eta alone on the {ATTAINABLE_CLASS} row (the best matmul a shape search on the device found; "
              "grid 0.05, then 0.005), the other fields [default]")
    streams = [c for c in cases if c.dataset in MEMORY_SETS and c.op_class in MEMORY_CLASSES and c.device == device]
    if not gemm and streams and device in ATTAINABLE_DEVICES:
        s, p = grid_fit(streams, devices, ("dram_eta",), [np.arange(0.30, DRAM_ETA_MAX + 0.001, 0.02)], params)
        s, p = grid_fit(streams, devices, ("dram_eta",), [_fine(p["dram_eta"], 0.02, 0.005, 0.3, DRAM_ETA_MAX)],
                        params)
        params["dram_eta"] = float(round(p["dram_eta"], 3))
        entry("memory", ("dram_eta",), streams, s,
              f"dram_eta alone on the decode GEMMs of 1-4 tokens ({', '.join(MEMORY_CLASSES)}; grid 0.02, then "
              f"0.005; <= {DRAM_ETA_MAX}), matrix_eta held at its own fit, the other fields [default]")
    stream = [c for c in cases if c.dataset in STREAM_SETS and c.device == device]
    stream = [c for i, c in enumerate(stream) if c.dataset != "vidur-elementwise" or i % THIN == 0]
    if stream:
        s, p = grid_fit(stream, devices, ("stream_eta",), [np.arange(0.30, DRAM_ETA_MAX + 0.001, 0.02)], params)
        params["stream_eta"] = p["stream_eta"]
        entry("stream", ("stream_eta",), stream, s,
              f"grid 0.02 up to {DRAM_ETA_MAX} through the tiled estimator (vidur-elementwise thinned to every "
              f"{THIN}th row)")
    attn = [c for c in cases if c.dataset in ATTENTION_SETS and c.op_class in ATTENTION_CLASSES and c.device == device]
    if attn:
        s, p = coarse_fine(attn, devices, "attention_eta", np.arange(0.40, 1.001, 0.05), (0.05, 0.01, 0.3, 1.0), params)
        params["attention_eta"] = p["attention_eta"]
        entry("attention", ATTENTION_KEYS, attn, s,
              f"grid 0.05, then 0.01 (<= 1), on the forward-attention rows of the native-path kernels "
              f"({', '.join(ATTENTION_CLASSES)}), the device's kernel efficiencies held")
    fa2 = [c for c in cases if c.dataset in FLASH_SETS and c.op_class == "fa2" and c.device == device]
    if fa2:
        s, p = grid_fit(fa2, devices, ("legacy_path_fraction",), [np.arange(0.30, 1.001, 0.02)], params)
        params["legacy_path_fraction"] = p["legacy_path_fraction"]
        entry("legacy", ("legacy_path_fraction",), fa2, s,
              "grid 0.02 on the FlashAttention-2 forward rows (mma.sync; FA3's wgmma rows stay a check), the device's "
              "kernel efficiencies held")
    dec = [c for c in cases if c.op_class in DECODE_SETS.get(c.dataset, ()) and c.device == device
           and (c.dataset != "vidur-attention" or c.measured_s >= DECODE_MIN_S)]
    if dec:
        s, p = coarse_fine(dec, devices, "decode_tile_latencies", np.arange(0.0, 30.1, 1.0), (1.0, 0.25, 0.0, 40.0),
                           params)
        params["decode_tile_latencies"] = p["decode_tile_latencies"]
        entry("decode", DECODE_KEYS, dec, s,
              f"grid 1, then 0.25, on the device's decode-attention kernel rows (vidur-attention: rows >= "
              f"{DECODE_MIN_S * 1e3:g} ms), the device's kernel efficiencies held")
    coll = [c for c in cases if c.device == device and (c.dataset in COLLECTIVE_SETS
                                                         or CLASS_COLLECTIVE_SETS.get(c.dataset) == c.op_class)]
    big = [c for c in coll if c.get("bytes", 0) >= 1024 ** 2]
    small = [c for c in coll if c.get("bytes", 0) < 1024 ** 2]
    if big:
        names = ("collective_base_us", "collective_step_us", "collective_eta")
        s, p = grid_fit(big, devices, names,
                        [np.arange(0.0, 80.1, 4.0), np.arange(0.0, 10.1, 1.0), np.arange(0.40, 1.001, 0.04)], params)
        b0, a0, e0 = (p[n] for n in names)
        s, p = grid_fit(big, devices, names,
                        [np.clip(np.arange(b0 - 3, b0 + 3.1, 1.0), 0, None),
                         np.clip(np.arange(a0 - 0.8, a0 + 0.81, 0.2), 0, None),
                         np.clip(np.arange(e0 - 0.03, e0 + 0.031, 0.01), 0.1, 1.0)], params)
        params.update({n: p[n] for n in names})
        entry("collective", names, big, s, "joint grid on the all-reduce rows >= 1 MiB (NCCL's bandwidth protocol)")
    if small and big:
        names = ("collective_ll_step_us", "collective_ll_eta")
        s, p = grid_fit(small, devices, names, [np.arange(0.0, 12.1, 0.5), np.arange(0.02, 0.61, 0.02)], params)
        params.update({n: p[n] for n in names})
        entry("collective_ll", names, small, s,
              "joint grid on the all-reduce rows < 1 MiB (NCCL's low-latency protocol), the bandwidth protocol held")
    fitted_names = {n for f in entries.values() for n in f.values}
    return {k: v for k, v in params.items() if k in fitted_names}, entries


def fp8_fit(device: str, cases: Sequence[Case], devices: _Devices, held: dict[str, float]) -> Fit | None:
    """``fp8_path_fraction`` of ``device`` from its :func:`best_shape_pair`: the grid value (0.01) at which the fp8
    row's predicted / measured ratio equals the bf16 row's (``held``: the device's kernel efficiencies); residual:
    the remaining gap between the two ratios, %. None without a pair, or where the fp8 row does not depend on the
    fraction (:func:`~tapeout.fit.roofline.match_fraction`)."""
    pair = best_shape_pair(cases, device)
    if pair is None:
        return None
    bf16, fp8 = pair
    target = predict([bf16], devices, **held)[0] / bf16.measured_s
    got = match_fraction(target, lambda f: predict([fp8], devices, **held, fp8_path_fraction=f)[0] / fp8.measured_s)
    if got is None:
        return None
    fraction, gap = got
    return store.fit({"fp8_path_fraction": fraction},
                     "the fp8 path's share relative to the 16-bit path: the grid value (0.01, <= 1) at which the tiled "
                     "tier misses the device's best-shape fp8 matmul by the same ratio as its best-shape bf16 matmul "
                     f"({bf16.dataset}: {bf16.get('M')} x {bf16.get('N')} x {bf16.get('K')} bf16, {fp8.get('M')} x "
                     f"{fp8.get('N')} x {fp8.get('K')} fp8; residual: the remaining gap, %), the device's kernel "
                     "efficiencies held", datasets=[bf16.dataset], rows=2, residual=gap * 100,
                     metric="|fp8 predicted / measured - bf16 predicted / measured|, %", command=COMMAND)


def copy_fits(cases: Sequence[Case], devices: _Devices, default: dict[str, float], values: dict[str, dict[str, float]],
              own: dict[str, dict[str, Fit]]) -> dict[str, float]:
    """Devices with copy rows (and a micro-architecture): their copy fraction (stream_eta alone on the rows, grid
    0.005), and each :data:`COPY_TRANSFER` field they have no own fit of from the ratio of the devices that have
    both; updates ``values`` and ``own`` (fit "copy"). Returns device -> copy fraction."""
    copies = [c for c in cases if c.dataset in COPY_SETS and c.op_class == COPY_CLASS
              and load_hardware(c.device).microarch is not None]
    measured = {d: dict(v) for d, v in values.items()}  # own fits only: a carried value never feeds a ratio
    frac: dict[str, float] = {}
    res: dict[str, float] = {}
    for dev in sorted({c.device for c in copies}):
        sel = [c for c in copies if c.device == dev]
        held = {"overlap_p": OVERLAP_P, **{k: default[k] for k in DEFAULT_KEYS}, **values.get(dev, {})}
        s, p = grid_fit(sel, devices, ("stream_eta",), [np.arange(0.30, 1.0001, 0.005)], held)
        frac[dev], res[dev] = p["stream_eta"], s
    for dev in sorted(frac):
        sel = [c for c in copies if c.device == dev]
        carried: dict[str, float] = {}
        why = []
        for key in COPY_TRANSFER:
            ratios = {d: measured[d][key] / frac[d] for d in sorted(frac) if key in measured.get(d, {})}
            if key in measured.get(dev, {}) or not ratios:
                continue
            ratio = float(np.median(list(ratios.values())))
            carried[key] = float(round(min(DRAM_ETA_MAX, ratio * frac[dev]), 3))
            why.append(f"{key} = {ratio:.3f} x {frac[dev]:.3f} (median {key} / copy fraction of "
                       + ", ".join(f"{d} {r:.3f}" for d, r in ratios.items()) + ")")
        if carried:
            values.setdefault(dev, {}).update(carried)
            own.setdefault(dev, {})["copy"] = store.fit(
                carried, f"the device's copy fraction (stream_eta alone on its {COPY_CLASS} rows, grid 0.005; residual: "
                "that fit) times the ratio measured on the devices with both: " + "; ".join(why)
                + f"; <= {DRAM_ETA_MAX}", datasets=list(COPY_SETS), rows=len(sel), residual=res[dev], metric=METRIC,
                command=COMMAND)
    return frac


def fit_cases(data_dir: Any = None) -> list[Case]:
    return [c for c in load_cases(data_dir, list(check_names()))
            if not is_technique_case(c)]


def _carried(fit: Fit, keys: Sequence[str], source: str, why: str) -> Fit:
    return store.fit({k: fit.values[k] for k in keys}, f"carried over from {source} ({why}): {fit.method}",
                     datasets=fit.datasets, rows=fit.rows, residual=fit.residual, metric=fit.metric, command=COMMAND)


def fit_tiled(cases: Sequence[Case], devices: Sequence[str] = DEVICES, progress: Any = None) -> StoreFile:
    """``fitted/tiled.toml``: every device of ``devices`` fitted on its rows, the cross-device default, the
    devices fitted on their best-shape matmul alone, and the siblings' carried values."""
    hw_devices = _Devices("catalog")
    own: dict[str, dict[str, Fit]] = {}
    values: dict[str, dict[str, float]] = {}
    for dev in devices:
        values[dev], own[dev] = fit_device(dev, cases, hw_devices)
        if progress:
            progress(dev, values[dev])
    # the default: medians over the devices with their own GEMM and streaming fits
    default: dict[str, float] = {}
    for k in DEFAULT_KEYS:
        vals = [v[k] for d, v in values.items() if k in v and "gemm" in own[d]]
        default[k] = float(round(float(np.median(vals)), 3))
    measured = sorted(d for d in values if "gemm" in own[d])
    decoded = sorted(d for d in values if "decode" in own[d])
    if not decoded:
        raise ValueError(f"no device has decode-attention rows ({', '.join(DECODE_SETS)}): "
                         "decode_tile_latencies cannot be fitted")
    decode = {k: float(round(float(np.median([values[d][k] for d in decoded])), 3)) for k in DECODE_KEYS}
    subjects: dict[str, dict[str, Fit]] = {DEFAULT: {
        "kernels": store.fit(default, f"median over the devices fitted on their own GEMM and streaming rows "
                             f"({', '.join(measured)})", command=COMMAND),
        "decode": store.fit(decode, f"median over the devices fitted on their own decode-attention rows "
                            f"({', '.join(decoded)})", command=COMMAND),
        "overlap": store.fit({"overlap_p": OVERLAP_P}, "held by every fit: the GEMM objective summed over the "
                             "five fitted devices is lowest at p = 2 among 1.5, 2, 3, 4 (docs/tiled.md)",
                             command=COMMAND)}}
    for dev in ATTAINABLE_DEVICES:
        held = {k: default[k] for k in DEFAULT_KEYS if k != "matrix_eta"}
        vals, fits = fit_device(dev, cases, hw_devices, held)
        if fits:
            values[dev], own[dev] = vals, fits
            if progress:
                progress(dev, vals)
    subjects[DEFAULT]["attention"] = attention_default(values, own)
    for dev in sorted({c.device for c in cases if c.dataset in PAIRED_SETS}):
        if load_hardware(dev).microarch is None:
            continue
        f = fp8_fit(dev, cases, hw_devices, {"overlap_p": OVERLAP_P, **values.get(dev, {})})
        if f is not None:
            values.setdefault(dev, {}).update(f.values)
            own.setdefault(dev, {})["fp8"] = f
            if progress:
                progress(dev, f.values)
    subjects[DEFAULT]["fp8"] = fp8_default(values, own)
    copy_fits(cases, hw_devices, default, values, own)
    for dev in sorted(own, key=lambda d: (d not in devices, d)):
        subjects[dev] = dict(own[dev])
    for dev in devices:
        for sib in SIBLINGS.get(dev, ()):
            carried = {}
            sib_own = {n for g in own.get(sib, {}).values() for n in g.values}
            for name, f in own.get(dev, {}).items():
                keys = [k for k in f.values if k in KERNEL_KEYS and k not in sib_own]
                if keys:
                    carried[name] = _carried(f, keys, dev, "same die and power class")
            if carried:
                subjects.setdefault(sib, {}).update(carried)
        for sib in (s for s, src in COLLECTIVE_SIBLINGS.items() if src == dev):
            for name in ("collective", "collective_ll"):
                if name in own.get(dev, {}) and name not in own.get(sib, {}):
                    subjects.setdefault(sib, {})[name] = _carried(
                        own[dev][name], tuple(own[dev][name].values), dev,
                        "the same collective library over the same fabric: COLLECTIVE_SIBLINGS")
        for sib in DIE_SIBLINGS.get(dev, ()):
            for name, keys in (("legacy", ("legacy_path_fraction",)), ("fp8", FP8_KEYS), ("attention", ATTENTION_KEYS),
                               ("decode", DECODE_KEYS)):
                if name in own.get(dev, {}) and name not in own.get(sib, {}):
                    subjects.setdefault(sib, {})[name] = _carried(
                        own[dev][name], keys, dev, "same die; a property of the SM")
    for dev, src in sorted(SKU_SIBLINGS.items()):
        if src in subjects and dev not in subjects:
            subjects[dev] = {name: _carried(f, tuple(f.values), src, "the same part with other memory: SKU_SIBLINGS")
                             for name, f in subjects[src].items()}
    ordered = {DEFAULT: subjects.pop(DEFAULT)}
    ordered.update({k: subjects[k] for k in sorted(subjects)})
    return store.build("tiled", ordered)


def fp8_default(values: dict[str, dict[str, float]], own: dict[str, dict[str, Fit]]) -> Fit:
    """``[default.fp8]``: the median ``fp8_path_fraction`` over the devices with a bf16 / fp8 best-shape pair (the
    MatrixUnitSpec default: devices without such a pair)."""
    fitted = sorted(d for d in values if "fp8" in own.get(d, {}))
    if not fitted:
        raise ValueError(f"no device has a bf16 and an fp8 best-shape matmul ({', '.join(PAIRED_SETS)}): "
                         "fp8_path_fraction cannot be fitted")
    med = {k: float(round(float(np.median([values[d][k] for d in fitted])), 3)) for k in FP8_KEYS}
    return store.fit(med, "median over the devices with a bf16 and an fp8 best-shape matmul measured by one tool "
                     f"({', '.join(fitted)})", command=COMMAND)


def attention_default(values: dict[str, dict[str, float]], own: dict[str, dict[str, Fit]]) -> Fit:
    """``[default.attention]``: the median ``attention_eta`` over the devices fitted on their own forward-attention
    rows (the MicroArch default: A100 and every device without such rows)."""
    fitted = sorted(d for d in values if "attention" in own.get(d, {}))
    if not fitted:
        raise ValueError(f"no device has native-path forward-attention rows ({', '.join(ATTENTION_SETS)}): "
                         "attention_eta cannot be fitted")
    med = {k: float(round(float(np.median([values[d][k] for d in fitted])), 3)) for k in ATTENTION_KEYS}
    return store.fit(med, f"median over the devices fitted on their own forward-attention rows ({', '.join(fitted)})",
                     command=COMMAND)


def check_names() -> tuple[str, ...]:
    """The datasets the fit reads."""
    return tuple(dict.fromkeys(GEMM_SETS + STREAM_SETS + COLLECTIVE_SETS + tuple(CLASS_COLLECTIVE_SETS) + FLASH_SETS
                               + ATTAINABLE_SETS + MEMORY_SETS + tuple(DECODE_SETS) + ATTENTION_SETS + COPY_SETS))
