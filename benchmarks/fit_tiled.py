"""Fit the tiled tier's per-device kernel efficiencies on the shared measured sets.

    python benchmarks/fit_tiled.py [--data DIR] [--devices a100-sxm-80gb,...] [--write]

For each device with measurements, and always across *whole* sets (never one row):

- ``matrix_eta`` and ``dram_eta`` on the GEMM sets (vidur-gemm, llmcompass-matmul, the dense cuBLAS
  rows of flashllm-kernels; mamf is held out as a check): a coarse
  grid, then a fine grid around the best point;
- ``stream_eta`` on the elementwise / reduction sets (vidur-elementwise, llmcompass-softmax,
  -layernorm, -gelu); vidur-elementwise is thinned to every 8th row (it has ~60k rows of 5 op classes);
- ``legacy_path_fraction`` (devices with two matrix paths: Hopper) on the FlashAttention-2 rows of
  ``measured/flashattention_figures.csv`` (FA2 uses mma.sync, FA3 wgmma);
- ``collective_base_us``, ``collective_step_us`` and ``collective_eta`` jointly on the all-reduce
  sets (vidur-allreduce, llmcompass-allreduce), messages >= 1 MiB (NCCL's bandwidth protocol);
  ``collective_ll_step_us`` and ``collective_ll_eta`` on messages < 1 MiB (the low-latency
  protocol); prediction takes the faster of the two;
- ``overlap_p`` is one value for all devices (``--overlap-p``; chosen by comparing the GEMM error
  of a few values, see docs/tiled.md).

The objective is the mean over (dataset, op class) groups of the group MAPE, so a 20-row set
weighs as much as an 880-row one. ``--write`` stores the values in the device's ``[microarch]``
table of the catalog (with a source entry naming this fit); without it the script only prints.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

from tapeout.hardware.catalog import CATALOG_DIR, load_hardware
from tapeout.perf import estimate
from tapeout.specio import set_toml_key
from tapeout.validate.cases import Case
from tapeout.datadir import DATA_HELP
from tapeout.validate.registry import load_cases
from tapeout.validate.sources.flashllm import is_technique_case
from tapeout.validate.runner import _Devices

#: mamf (1-2 rows per device) is held out; flashllm-kernels contributes its dense cuBLAS rows only
#: (kernel-timed skinny GEMMs on A100 SXM; its sparse rows check the technique kernels:
#: validate/sources/flashllm.py, TECHNIQUE_CLASSES)
GEMM_SETS = ("vidur-gemm", "llmcompass-matmul", "flashllm-kernels")
STREAM_SETS = ("vidur-elementwise", "llmcompass-softmax", "llmcompass-layernorm", "llmcompass-gelu")
COLLECTIVE_SETS = ("vidur-allreduce", "llmcompass-allreduce")
THIN = 8
#: the best streaming efficiency seen for HBM in the shared data (vidur H100 weight streams:
#: 3084 of 3352 GB/s); dram_eta is not allowed above it
DRAM_ETA_MAX = 0.92

#: vidur's "a100" compute profile does not say SXM or PCIe: the harness (validate/sources/vidur.py,
#: VIDUR_COMPUTE_DEVICES) maps it to a100-pcie-80gb. Its GEMMs top out at 255 TFLOP/s (82% of the dense
#: peak) and its weight streams at 1.67 TB/s, like stas00's A100 PCIe (253 TFLOP/s, 81%), while A100 SXM
#: measurements reach 271 (stas00) and 279 TFLOP/s (LLMCompass, 89%) (docs/tiled.md, "Which A100").

#: devices with the same die, clocks and power class take the fitted kernel efficiencies of the
#: measured one (not the collective values: their links differ)
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
KERNEL_KEYS = ("matrix_eta", "dram_eta", "stream_eta", "legacy_path_fraction")
#: the mma.sync / wgmma ratio is a property of the SM: every part with the same die takes it
LEGACY_SIBLINGS = {"h100-sxm": ("h100-pcie",)}
#: the FlashAttention-2/3 forward rows on H100 (validate/sources/flashattention.py, dataset "flashattention-h100")
FLASH_SETS = ("flashattention-h100",)


def _variant(hw, **ua):
    return hw.model_copy(update={"microarch": hw.microarch.model_copy(update=ua)})


def predict(cases: list[Case], devices: _Devices, **ua: float) -> np.ndarray:
    out = np.empty(len(cases))
    for i, c in enumerate(cases):
        t = 0.0
        for op in c.ops:
            t += estimate(op, _variant(devices.for_op(c, op), **ua), "tiled").total_s
        out[i] = t
    return out


def objective(cases: list[Case], pred: np.ndarray) -> float:
    meas = np.array([c.measured_s for c in cases])
    err = np.abs(pred / meas - 1.0)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[(c.dataset, c.op_class)].append(i)
    return float(np.mean([err[idx].mean() for idx in groups.values()])) * 100


def grid_fit(cases: list[Case], devices: _Devices, names: tuple[str, ...], grids: list[np.ndarray],
             fixed: dict[str, float]) -> tuple[float, dict[str, float]]:
    best = (float("inf"), {})
    for point in np.array(np.meshgrid(*grids)).T.reshape(-1, len(names)):
        params = {**fixed, **{n: float(round(v, 3)) for n, v in zip(names, point)}}
        s = objective(cases, predict(cases, devices, **params))
        if s < best[0]:
            best = (s, params)
    return best


def fit_device(device: str, cases: list[Case], devices: _Devices, overlap_p: float) -> dict[str, float]:
    hw = load_hardware(device)
    ua = hw.microarch
    params: dict[str, float] = {"overlap_p": overlap_p}
    gemm = [c for c in cases if c.dataset in GEMM_SETS and c.device == device]
    if gemm:
        s, p = grid_fit(gemm, devices, ("matrix_eta", "dram_eta"),
                        [np.arange(0.60, 1.001, 0.05), np.arange(0.60, DRAM_ETA_MAX + 0.001, 0.04)], params)
        me, de = p["matrix_eta"], p["dram_eta"]
        s, p = grid_fit(gemm, devices, ("matrix_eta", "dram_eta"),
                        [np.unique(np.clip(np.arange(me - 0.04, me + 0.041, 0.01), 0.3, 1.0)),
                         np.unique(np.clip(np.arange(de - 0.04, de + 0.041, 0.01), 0.3, DRAM_ETA_MAX))], params)
        params.update(matrix_eta=p["matrix_eta"], dram_eta=p["dram_eta"])
        print(f"  {device}: GEMM objective {s:.2f}% with matrix_eta={p['matrix_eta']}, dram_eta={p['dram_eta']} "
              f"({len(gemm)} rows)", file=sys.stderr)
    best = [c for c in cases if c.dataset in ATTAINABLE_SETS and c.op_class == ATTAINABLE_CLASS
            and c.device == device]
    if not gemm and best and device in ATTAINABLE_DEVICES:
        s, p = grid_fit(best, devices, ("matrix_eta",), [np.arange(0.30, 1.001, 0.05)], params)
        me = p["matrix_eta"]
        s, p = grid_fit(best, devices, ("matrix_eta",),
                        [np.unique(np.clip(np.arange(me - 0.05, me + 0.051, 0.005), 0.3, 1.0))], params)
        params["matrix_eta"] = float(round(p["matrix_eta"], 3))
        print(f"  {device}: best-matmul objective {s:.2f}% with matrix_eta={params['matrix_eta']} "
              f"({len(best)} row)", file=sys.stderr)
    stream = [c for c in cases if c.dataset in STREAM_SETS and c.device == device]
    stream = [c for i, c in enumerate(stream) if c.dataset != "vidur-elementwise" or i % THIN == 0]
    if stream:
        s, p = grid_fit(stream, devices, ("stream_eta",), [np.arange(0.30, DRAM_ETA_MAX + 0.001, 0.02)], params)
        params["stream_eta"] = p["stream_eta"]
        print(f"  {device}: streaming objective {s:.2f}% with stream_eta={p['stream_eta']} ({len(stream)} rows)",
              file=sys.stderr)
    fa2 = [c for c in cases if c.dataset == "flashattention-h100" and c.op_class == "fa2" and c.device == device]
    if fa2 and ua.matrix.legacy_path_fraction is not None:
        best = (float("inf"), 1.0)
        for lf in np.arange(0.30, 1.001, 0.02):
            hw2 = hw.model_copy(update={"microarch": ua.model_copy(update={
                **params, "matrix": ua.matrix.model_copy(update={"legacy_path_fraction": float(round(lf, 3))})})})
            pred = np.array([sum(estimate(op, hw2, "tiled").total_s for op in c.ops) for c in fa2])
            s = objective(fa2, pred)
            if s < best[0]:
                best = (s, float(round(lf, 3)))
        params["legacy_path_fraction"] = best[1]
        print(f"  {device}: FA2 objective {best[0]:.2f}% with legacy_path_fraction={best[1]}", file=sys.stderr)
    coll = [c for c in cases if c.dataset in COLLECTIVE_SETS and c.device == device]
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
        print(f"  {device}: bandwidth-protocol objective {s:.2f}% with base={p[names[0]]} us, "
              f"step={p[names[1]]} us, eta={p[names[2]]} ({len(big)} rows >= 1 MiB)", file=sys.stderr)
    if small and big:
        names = ("collective_ll_step_us", "collective_ll_eta")
        s, p = grid_fit(small, devices, names, [np.arange(0.0, 12.1, 0.5), np.arange(0.02, 0.61, 0.02)], params)
        params.update({n: p[n] for n in names})
        print(f"  {device}: low-latency-protocol objective {s:.2f}% with step={p[names[0]]} us, "
              f"eta={p[names[1]]} ({len(small)} rows < 1 MiB)", file=sys.stderr)
    return params


SOURCE = "fit: benchmarks/fit_tiled.py on {sets} (whole sets, docs/tiled.md)"
SIBLING_SOURCE = "{sets} (benchmarks/fit_tiled.py, docs/tiled.md)"


def write(device: str, params: dict[str, float], sets: dict[str, str]) -> None:
    """Store fitted values in the device's [microarch] tables (only these keys are touched)."""
    path = CATALOG_DIR / f"{device}.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in params.items():
        text = set_toml_key(text, "microarch.matrix" if key == "legacy_path_fraction" else "microarch", key, str(value))
        src_key = f"matrix.{key}" if key == "legacy_path_fraction" else key
        note = sets.get(key, "-")
        fmt = SIBLING_SOURCE if note.startswith("carried over") else SOURCE
        text = set_toml_key(text, "microarch.sources", f'"{src_key}"', f'"{fmt.format(sets=note)}"')
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help=DATA_HELP)
    ap.add_argument("--devices", default="a100-sxm-80gb,h100-sxm,a40,mi210,a100-pcie-80gb,h100-pcie")
    ap.add_argument("--overlap-p", type=float, default=2.0)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    cases = [c for c in load_cases(args.data, list(GEMM_SETS + STREAM_SETS + COLLECTIVE_SETS + FLASH_SETS
                                                    + ATTAINABLE_SETS))
             if not is_technique_case(c)]
    devices = _Devices("catalog")
    for dev in args.devices.split(","):
        params = fit_device(dev, cases, devices, args.overlap_p)
        used = sorted({c.dataset for c in cases if c.device == dev})
        sets = {"matrix_eta": " + ".join(s for s in used if s in GEMM_SETS)
                or f"{' + '.join(ATTAINABLE_SETS)} {ATTAINABLE_CLASS} row (the best matmul a shape search found)",
                "dram_eta": " + ".join(s for s in used if s in GEMM_SETS),
                "stream_eta": " + ".join(s for s in used if s in STREAM_SETS),
                "legacy_path_fraction": "flashattention-h100 FA2 rows",
                "overlap_p": "all GEMM sets (one value for every device)",
                **{k: " + ".join(s for s in used if s in COLLECTIVE_SETS) + " (>= 1 MiB)"
                   for k in ("collective_base_us", "collective_step_us", "collective_eta")},
                **{k: " + ".join(s for s in used if s in COLLECTIVE_SETS) + " (< 1 MiB)"
                   for k in ("collective_ll_step_us", "collective_ll_eta")}}
        print(dev, params)
        params.pop("overlap_p", None)  # one value for every device: the MicroArch default
        if args.write:
            write(dev, params, sets)
            kernel = {k: v for k, v in params.items() if k in KERNEL_KEYS}
            for sib in SIBLINGS.get(dev, ()):
                own = {"matrix_eta"} if sib in ATTAINABLE_DEVICES else set()
                write(sib, {k: v for k, v in kernel.items() if k not in own}, {k: f"carried over from {dev} (same die and power class), fitted on "
                                    + sets.get(k, "-") for k in kernel if k not in own})
            if "legacy_path_fraction" in params:
                for sib in LEGACY_SIBLINGS.get(dev, ()):
                    write(sib, {"legacy_path_fraction": params["legacy_path_fraction"]},
                          {"legacy_path_fraction": f"carried over from {dev} (same GH100 die; the mma.sync/wgmma "
                           "ratio is a property of the SM), fitted on " + sets["legacy_path_fraction"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
