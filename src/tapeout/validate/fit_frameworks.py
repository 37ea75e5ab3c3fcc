"""Fit the serving frameworks' per-op host overhead (``system/frameworks.toml``) on whole end-to-end sets.

``python -m tapeout.validate.fit_frameworks [--data DIR] [--write]``

A framework profile is one number, ``host_overhead_us``: the CPU/dispatch time per kernel that an
eager stack adds and the GPU waits for. It is a property of the software, not of a tier, so each
profile is fitted once on its designated set, minimising the mean |ln(predicted / measured)| of
the rows' tokens per GPU-second averaged over the roofline and tiled tiers (golden-section search
on 0-30 µs):

- ``deepspeed``: FP6-LLM's DeepSpeed rows at batch <= 4, FP16 and FP6 together
  (``measured/fp6_llm.csv``; at larger batch DeepSpeed's decode attention, which no kernel model
  here describes, dominates the absolute error). Independent check: the dense DeepSpeed rows of
  ``measured/flash_llm.csv``.
- ``fastertransformer``: the dense FasterTransformer rows of ``measured/flash_llm.csv`` (OPT-66B
  TP2/TP4, OPT-175B TP8). The 80%-sparse Flash-LLM-in-FasterTransformer rows stay a check.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tapeout.system.frameworks import FRAMEWORKS_FILE, frameworks
from tapeout.validate.datasets import Case, e2e_predict, load_cases

TIERS = ("roofline", "tiled")


@dataclass(frozen=True)
class FitSet:
    framework: str
    dataset: str
    select: Callable[[Case], bool]
    describe: str


def _batch(c: Case) -> int:
    return int(dict(c.scenario)["batch"])


FIT_SETS = (
    FitSet("deepspeed", "e2e-fp6llm", lambda c: _batch(c) <= 4,
           "measured/fp6_llm.csv end-to-end throughputs at batch <= 4, FP16 and FP6 rows together"),
    FitSet("fastertransformer", "e2e-flashllm", lambda c: c.op_class == "fastertransformer",
           "measured/flash_llm.csv dense FasterTransformer end-to-end tokens/GPU/s, OPT-66B TP2/TP4 and "
           "OPT-175B TP8 on A100"),
)
CHECK_SETS = (
    FitSet("deepspeed", "e2e-flashllm", lambda c: c.op_class == "deepspeed",
           "the dense DeepSpeed rows of measured/flash_llm.csv"),
)


def _rows(cases: Sequence[Case], fs: FitSet) -> list[Case]:
    return [c for c in cases if c.dataset == fs.dataset and dict(c.scenario).get("framework") == fs.framework
            and fs.select(c)]


def loss(rows: Sequence[Case], host_us: float, tiers: Sequence[str] = TIERS) -> float:
    """Mean over ``tiers`` of the rows' mean |ln(predicted / measured)| at ``host_us`` per op."""
    from tapeout.hardware.catalog import load_hardware

    total = 0.0
    for tier in tiers:
        for c in rows:
            sc = tuple((k, v) for k, v in c.scenario if k != "framework")
            hw = load_hardware(c.device).with_efficiency(host_overhead_us=host_us)
            pt = e2e_predict(hw, sc, tier)
            total += abs(math.log(pt.seconds(c.quantity, dict(sc), int(c.get("num_gpus", 1))) / c.measured_s))
    return total / (len(rows) * len(tiers))


def golden(f: Callable[[float], float], lo: float = 0.0, hi: float = 30.0, tol: float = 0.1) -> float:
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
    host_overhead_us: float
    rows: int
    loss: float
    loss_at_zero: float
    source: str


def fit(data_dir: str | Path | None = None, *, tol: float = 0.1, tiers: Sequence[str] = TIERS
        ) -> dict[str, FrameworkFit]:
    cases = load_cases(data_dir, sorted({fs.dataset for fs in FIT_SETS + CHECK_SETS}))
    today = _dt.date.today().isoformat()
    out: dict[str, FrameworkFit] = {}
    for fs in FIT_SETS:
        rows = _rows(cases, fs)
        if not rows:
            continue
        h = golden(lambda x: loss(rows, x, tiers), tol=tol)
        lz, lh = loss(rows, 0.0, tiers), loss(rows, h, tiers)
        src = (f"fitted {today} (python -m tapeout.validate.fit_frameworks): {fs.describe} ({len(rows)} rows, "
               f"whole set, mean of the {' and '.join(tiers)} tiers; mean |ln(pred/meas)| {lz:.3f} at 0 -> {lh:.3f})")
        for cs in CHECK_SETS:
            if cs.framework != fs.framework:
                continue
            crow = _rows(cases, cs)
            if crow:
                best = golden(lambda x: loss(crow, x, tiers), tol=max(tol, 0.5))
                src += (f"; independent check: {cs.describe} give mean |ln| {loss(crow, h, tiers):.3f} at "
                        f"{h:g} ({loss(crow, 0.0, tiers):.3f} at 0; their own best fit {best:g})")
        out[fs.framework] = FrameworkFit(fs.framework, h, len(rows), lh, lz, src)
    return out


def write(fits: dict[str, FrameworkFit], path: Path = FRAMEWORKS_FILE) -> None:
    """Replace ``host_overhead_us`` and ``source`` of the fitted tables; everything else stays."""
    text = path.read_text(encoding="utf-8")
    for name, f in fits.items():
        start = text.index(f"[{name}]\n")
        end = text.find("\n[", start + 1)
        end = len(text) if end < 0 else end
        block = text[start:end]
        block = re.sub(r"^host_overhead_us = .*$", f"host_overhead_us = {f.host_overhead_us}", block, flags=re.M)
        src = f.source.replace("\\", "\\\\").replace('"', '\\"')
        block = re.sub(r"^source = .*$", lambda _m: f'source = "{src}"', block, flags=re.M)
        text = text[:start] + block + text[end:]
    path.write_text(text, encoding="utf-8")
    frameworks.cache_clear()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tapeout.validate.fit_frameworks", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="reference-data directory (default: ../shared/reference-data)")
    ap.add_argument("--write", action="store_true", help="store the fits in system/frameworks.toml")
    args = ap.parse_args(argv)
    fits = fit(args.data)
    stored = frameworks()
    for f in fits.values():
        print(f"{f.framework}: {f.host_overhead_us:g} us/op (stored {stored[f.framework].host_overhead_us:g}); "
              f"{f.source}")
    if args.write:
        write(fits)
        print(f"wrote {FRAMEWORKS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
