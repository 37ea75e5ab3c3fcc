"""Error metrics of predictions against measurements.

- ``mape_pct``: mean absolute percentage error, 100 * mean(|p - m| / m).
- ``mdape_pct``: median absolute percentage error (robust to a few outliers).
- ``bias``: mean of ln(p / m); > 0 means predictions are too slow (over-estimate time),
  exp(bias) is the geometric-mean ratio predicted/measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _arrays(predicted: Sequence[float], measured: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape:
        raise ValueError(f"{p.size} predictions vs {m.size} measurements")
    if np.any(m <= 0) or np.any(p <= 0):
        raise ValueError("predictions and measurements must be > 0")
    return p, m


def ape_pct(predicted: Sequence[float], measured: Sequence[float]) -> np.ndarray:
    """Absolute percentage errors, element-wise."""
    p, m = _arrays(predicted, measured)
    return 100.0 * np.abs(p - m) / m


def mape_pct(predicted: Sequence[float], measured: Sequence[float]) -> float:
    e = ape_pct(predicted, measured)
    return float(e.mean()) if e.size else float("nan")


def mdape_pct(predicted: Sequence[float], measured: Sequence[float]) -> float:
    e = ape_pct(predicted, measured)
    return float(np.median(e)) if e.size else float("nan")


def log_bias(predicted: Sequence[float], measured: Sequence[float]) -> float:
    p, m = _arrays(predicted, measured)
    return float(np.mean(np.log(p / m))) if p.size else float("nan")


def summarize(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float | int]:
    """n, mape_pct, mdape_pct, bias of one group."""
    p, m = _arrays(predicted, measured)
    return {"n": int(p.size), "mape_pct": mape_pct(p, m), "mdape_pct": mdape_pct(p, m), "bias": log_bias(p, m)}


__all__ = ["ape_pct", "log_bias", "mape_pct", "mdape_pct", "summarize"]
