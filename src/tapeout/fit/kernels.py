"""Fit the technique kernels' constants on whole kernel tables (``tapeout fit``, step ``kernels``; written to
``fitted/kernels.toml``). docs/techniques.md has the derivations and the figures.

- ``onchip_eta`` and ``tiled_csl_stream_eta``: one grid over both, minimising the mean |ln(predicted /
  measured)| of every Flash-LLM SpMM / cuBLAS speedup (A100, 70/80/90 % sparsity, N = 8/16/32) on the
  roofline and tiled tiers together;
- the Sputnik counts (``sputnik_ops_per_nnz``, ``_per_nnz_col``, ``_per_row``): least squares (relative
  error) on every Sputnik row of the same table;
- ``int_group_scale_ops`` and ``int_kernel_overhead_ops``: one grid over both on FP6-LLM's six W4A16
  kernel comparisons (TensorRT-LLM's fine-grained and per-channel kernels, LLaMA-70B layers), both tiers;
- ``token_<kind>_bytes_per_core_clock`` (norm, rope, act): one grid per kind on vidur's per-token kernels of at
  least :data:`TOKEN_MIN_TOKENS` tokens whose tensors exceed L2, on H100 SXM and A100 PCIe together (one value for both devices: the cap
  is the kernel's, bytes in flight per core), through the tiled estimator with the devices' stored
  efficiencies; vidur's A40 rows are the check (docs/calibration.md, "Per-token kernels").

Every candidate reaches the estimator explicitly: kernel constants as a
:class:`~tapeout.fitted.KernelConstants` passed to the op builder, ``onchip_eta`` and ``tiled_csl_stream_eta``
as the device's efficiency fields (a tier reads them where it prices an op); nothing is set on a module.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tapeout.fit import store
from tapeout.fitted import KernelConstants, StoreFile, kernel_constants
from tapeout.validate import judge
from tapeout.workload.ops import TOKEN_KERNELS, token_kernel

TIERS = ("roofline", "tiled")
COMMAND = "tapeout fit --only kernels"
METRIC = "mean |ln(predicted/measured)| of the figures, over the roofline and tiled tiers"
ONCHIP_GRID = [round(0.30 + 0.02 * i, 3) for i in range(16)]
STREAM_GRID = [round(0.76 + 0.02 * j, 3) for j in range(11)]
GROUP_SCALE_GRID = [0.25 * i for i in range(9)]
OVERHEAD_GRID = [0.25 * j for j in range(17)]


def grid(axes: Sequence[Sequence[float]], loss: Callable[..., float]) -> tuple[tuple[float, ...], float]:
    """Exhaustive grid: the point of ``axes`` with the lowest ``loss(*point)`` (the first one on ties)."""
    best: tuple[float, tuple[float, ...]] = (math.inf, ())
    for point in itertools.product(*axes):
        value = loss(*point)
        if value < best[0] - 1e-12:
            best = (value, tuple(point))
    return best[1], best[0]


def _device() -> Any:
    from tapeout import load_hardware

    return load_hardware(judge.DEVICE)


def fit_flash(data: Path, tiers: Sequence[str] = TIERS, base: KernelConstants | None = None
              ) -> tuple[float, float, float, int]:
    """(onchip_eta, tiled_csl_stream_eta, loss, rows) on the SpMM / cuBLAS speedups of ``tiers`` together."""
    hw = _device()
    base = base or kernel_constants()
    table = judge.flash_table(data)
    shapes = []
    for (n_b, m_out, k_in), v in sorted(table.items()):
        dense = v.get(("cublas", 0.0))
        if dense is None:
            continue
        for s in (0.7, 0.8, 0.9):
            if ("flash-llm", s) in v:
                shapes.append((m_out, k_in, n_b, s, v[("flash-llm", s)] / dense))
    t_dense = {(t, sh[:3]): judge.kernel_time(*sh[:3], None, "dense", hw, t, base) for t in tiers for sh in shapes}

    def loss(onchip: float, stream: float) -> float:
        h = hw.with_efficiency(onchip_eta=onchip, tiled_csl_stream_eta=stream)
        total = 0.0
        for t in tiers:
            for m_out, k_in, n_b, s, measured in shapes:
                pred = t_dense[(t, (m_out, k_in, n_b))] / judge.kernel_time(m_out, k_in, n_b, s, "tensor", h, t, base)
                total += abs(math.log(pred / measured))
        return total / (len(shapes) * len(tiers))

    (onchip, stream), best = grid([ONCHIP_GRID, STREAM_GRID], loss)
    return round(onchip, 3), round(stream, 3), best, len(shapes)


def fit_sputnik(data: Path) -> tuple[float, float, float, int, float]:
    """Least-squares (relative error) fit of Sputnik's effective lane-instructions per nonzero, per nonzero
    and column, per row, on every Sputnik row of the Flash-LLM kernel set: (three counts, rows, rms residual)."""
    from tapeout.perf.quant import rates

    r = rates(_device())
    A, y = [], []
    for (N, M, K), v in judge.flash_table(data).items():
        for (sw, s), tflops in v.items():
            if sw != "sputnik":
                continue
            meas = 2 * M * N * K / (tflops * 1e12)
            nnz = (1 - s) * M * K
            cuda = 2 * N * nnz / r.vector_flops
            A.append([nnz / r.alu_ops / meas, nnz * N / r.alu_ops / meas, M / r.alu_ops / meas])
            y.append(1 - cuda / meas)
    a, b = np.array(A), np.array(y)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    rms = float(np.sqrt(np.mean((a @ sol - b) ** 2)))
    return float(sol[0]), float(sol[1]), float(sol[2]), len(y), rms


def fit_int_kernel(data: Path, tiers: Sequence[str] = TIERS, base: KernelConstants | None = None
                   ) -> tuple[float, float, float, int]:
    """Grid fit of (int_group_scale_ops, int_kernel_overhead_ops) on the six W4A16 figures of both tiers;
    returns (group scale ops, overhead ops, mean |log error|, figures)."""
    hw = _device()
    base = base or kernel_constants()
    figs = judge.w4a16_figures(data)

    def loss(scale: float, overhead: float) -> float:
        k = base.model_copy(update={"int_group_scale_ops": scale, "int_kernel_overhead_ops": overhead})
        rows = [r for t in tiers for r in judge.w4a16_ratios(figs, t, hw, k)]
        return sum(abs(math.log(p / m)) for _, _, m, p in rows) / len(rows)

    (s, e), best = grid([GROUP_SCALE_GRID, OVERHEAD_GRID], loss)
    return s, e, best, sum(len(v) for v in figs.values())


#: vidur devices the per-token caps are fitted on (their DRAM outruns the kernels; A40's does not: the check)
TOKEN_DEVICES = ("h100-sxm", "a100-pcie-80gb")
#: rows of at least this many tokens (the plateau: below it launch and latency set the time)
TOKEN_MIN_TOKENS = 1024
TOKEN_COARSE = [round(2.0 + 0.5 * i, 2) for i in range(29)]
TOKEN_DATASET = "vidur-elementwise"


def token_rows(data: Path, devices: Sequence[str] = TOKEN_DEVICES) -> dict[str, list[Any]]:
    """vidur's per-token kernel rows of at least :data:`TOKEN_MIN_TOKENS` tokens on ``devices``, by kind."""
    from tapeout import load_hardware
    from tapeout.perf.tiled.elementwise import outgrows_l2
    from tapeout.validate.registry import load_cases

    out: dict[str, list[Any]] = {k: [] for k in TOKEN_KERNELS}
    for c in load_cases(data, [TOKEN_DATASET]):
        kind = token_kernel(c.ops[0])
        if (kind and c.device in devices and int(c.get("tokens", 0)) >= TOKEN_MIN_TOKENS
                and outgrows_l2(c.ops[0], load_hardware(c.device))):
            out[kind].append(c)
    return out


def token_loss(rows: Sequence[Any], kind: str, per: float) -> float:
    """Mean |ln(predicted / measured)| of ``rows`` on the tiled tier with the ``kind`` cap at ``per``."""
    from tapeout import load_hardware
    from tapeout.perf import estimate

    hws: dict[str, Any] = {}
    total = 0.0
    for c in rows:
        hw = hws.get(c.device)
        if hw is None:
            hw = hws[c.device] = load_hardware(c.device).with_efficiency(token_kernel_bytes_per_core_clock={kind: per})
        t = sum(estimate(op, hw, "tiled").total_s for op in c.ops)
        total += abs(math.log(t / c.measured_s))
    return total / max(len(rows), 1)


def fit_token_caps(data: Path) -> tuple[dict[str, float], dict[str, int], float]:
    """({kind: bytes per core per clock}, {kind: rows}, mean loss over the kinds): a coarse grid (0.5) and a fine
    one (0.1) per kind."""
    rows = token_rows(data)
    caps: dict[str, float] = {}
    losses = []
    for kind in TOKEN_KERNELS:
        sel = rows[kind]
        (c,), _ = grid([TOKEN_COARSE], lambda p, sel=sel, kind=kind: token_loss(sel, kind, p))
        fine = [round(c + 0.1 * i, 2) for i in range(-5, 6) if c + 0.1 * i > 0]
        (f,), loss = grid([fine], lambda p, sel=sel, kind=kind: token_loss(sel, kind, p))
        caps[kind] = f
        losses.append(loss)
    return caps, {k: len(v) for k, v in rows.items()}, sum(losses) / len(losses)


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def fit_kernels(data: Path) -> StoreFile:
    """``fitted/kernels.toml``."""
    onchip, stream, flash_loss, flash_rows = fit_flash(data)
    nnz, col, row, sput_rows, rms = fit_sputnik(data)
    scale, overhead, int_loss, int_rows = fit_int_kernel(data)
    caps, cap_rows, cap_loss = fit_token_caps(data)
    return store.build("kernels", {
        "flashllm": {"staging": store.fit(
            {"onchip_eta": onchip, "tiled_csl_stream_eta": stream},
            f"grid (onchip_eta {ONCHIP_GRID[0]}..{ONCHIP_GRID[-1]}, tiled_csl_stream_eta {STREAM_GRID[0]}.."
            f"{STREAM_GRID[-1]}, steps 0.02) on every Flash-LLM SpMM / cuBLAS speedup (A100; measured/flash_llm.csv)",
            datasets=("measured/flash_llm.csv",), rows=flash_rows, residual=flash_loss, metric=METRIC,
            command=COMMAND)},
        "sputnik": {"csr": store.fit(
            {"sputnik_ops_per_nnz": _sig(nnz), "sputnik_ops_per_nnz_col": _sig(col, 2),
             "sputnik_ops_per_row": _sig(row)},
            "least squares (relative error) on every Sputnik row of the Flash-LLM kernel table (A100), the FMAs at "
            "the vector FP32 rate; rounded to 3 (per column: 2) significant digits",
            datasets=("measured/flash_llm.csv",), rows=sput_rows, residual=rms,
            metric="rms relative error of the rows' time", command=COMMAND)},
        "intn": {"weight_only": store.fit(
            {"int_group_scale_ops": scale, "int_kernel_overhead_ops": overhead},
            f"grid (group scale 0..{GROUP_SCALE_GRID[-1]}, overhead 0..{OVERHEAD_GRID[-1]}, steps 0.25) on FP6-LLM's "
            "comparisons with TensorRT-LLM's W4A16 kernels (fine-grained and per-channel, LLaMA-70B layers L1-L4, "
            "batch 8/16/32, A100); derived (Marlin-ideal) values would be 0.5 and 0",
            datasets=("measured/fp6_llm.csv",), rows=int_rows, residual=int_loss, metric=METRIC, command=COMMAND)},
        "token": {"kernels": store.fit(
            {f"token_{k}_bytes_per_core_clock": v for k, v in caps.items()},
            f"one grid per kind (coarse 0.5 from {TOKEN_COARSE[0]} to {TOKEN_COARSE[-1]}, then 0.1) on vidur's "
            f"per-token kernels of >= {TOKEN_MIN_TOKENS} tokens whose tensors exceed L2 (rows: "
            + ", ".join(f"{k} {n}" for k, n in cap_rows.items())
            + f") on {' and '.join(TOKEN_DEVICES)} together, through the tiled estimator with the devices' stored "
            "efficiencies; vidur's A40 rows are the check",
            datasets=(TOKEN_DATASET,), rows=sum(cap_rows.values()), residual=cap_loss,
            metric="mean |ln(predicted/measured)| of the rows, averaged over the three kinds", command=COMMAND)},
    })
