"""Reading a run back: Pareto front, CSV / Parquet tables, PNG and interactive HTML plots.

Parquet needs ``pyarrow``, PNG ``matplotlib``, HTML ``plotly`` (the ``explore`` extra); a missing
one is skipped with a note, never an error.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tapeout.errors import TapeoutError
from tapeout.explore.space import Space, load_space
from tapeout.explore.store import Store


def pareto_mask(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n x k) under ``directions`` (min/max)."""
    if len(values) == 0:
        return np.zeros(0, bool)
    y = np.array(values, float) * np.array([1.0 if d == "min" else -1.0 for d in directions])
    eff = np.ones(len(y), bool)
    for i in np.lexsort(y.T[::-1]):
        if not eff[i]:
            continue
        dominated = np.all(y >= y[i], axis=1) & np.any(y > y[i], axis=1)
        eff &= ~dominated
    return eff


@dataclass
class RunData:
    db: Path
    space: Space
    rows: list[dict[str, Any]]  # flattened points
    labels: list[str]  # objective labels
    directions: list[str]
    pareto: list[dict[str, Any]]


def _fmt_param(v: Any) -> Any:
    if isinstance(v, dict):  # a memory table
        parts = [str(v.get("kind"))]
        if "interfaces" in v:
            parts.append(f"x{v['interfaces']}")
        if "bandwidth_gbps" in v:
            parts.append(f"{v['bandwidth_gbps']:g}GB/s")
        if "capacity_gb" in v:
            parts.append(f"{v['capacity_gb']:g}GB")
        return " ".join(parts)
    return v


#: per-workload serving metrics (tapeout.explore.serving) written to the tables
SERVING_COLUMNS = ("goodput_rps", "usd_per_mtok_at_slo", "serving_rate_rps", "serving_meets_slo", "serving_ttft_p_s",
                   "serving_tpot_p_s", "serving_slo_attainment", "serving_gpus")


def flatten(key: str, params: dict[str, Any], m: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "feasible": bool(m.get("feasible"))}
    for k, v in params.items():
        row[k] = _fmt_param(v)
    objs = m.get("objectives") or []
    for lab, v in zip(labels, objs):
        row[lab] = v
    for k in ("area_mm2", "device_cost_usd", "die_cost_usd", "memory_cost_usd", "power_w", "yield",
              "peak_tflops_fp16", "usd_per_hour"):
        row[k] = m.get(k)
    mem = m.get("memory") or {}
    for k in ("kind", "interfaces", "bandwidth_gbps", "capacity_gb"):
        row[f"memory.{k}"] = mem.get(k)
    for w, wm in (m.get("workloads") or {}).items():
        for k in ("batch", "ttft_s", "tpot_s", "latency_s", "throughput_per_device", "tok_s_per_kusd",
                  "tok_per_joule", "usd_per_mtok"):
            row[f"{w}.{k}"] = wm.get(k)
        for k in SERVING_COLUMNS:  # only runs with serving objectives have them
            if k in wm:
                row[f"{w}.{k}"] = wm[k]
    row["violations"] = "; ".join(m.get("violations") or [])
    return row


def load_run(db: str | Path) -> RunData:
    db = Path(db)
    try:
        found = db.is_file()
    except (OSError, ValueError):  # a name no file system accepts (a NUL byte, too long)
        found = False
    if not found:
        raise TapeoutError(f"no such run database: {db}", field="report")
    try:
        st = Store(db)
        sj = st.meta("space")
    except sqlite3.DatabaseError as exc:
        raise TapeoutError(f"{db} is not an exploration run database ({exc})", field="report") from None
    try:
        if sj is None:
            raise TapeoutError(f"{db} is not an exploration run (no space recorded)", field="report")
        space = load_space(json.loads(sj), resolve=False)
        labels = [o.label for o in space.objectives.items]
        dirs = [o.direction for o in space.objectives.items]
        rows = [flatten(k, p, m, labels) for k, p, m in st.points()]
    finally:
        st.close()
    feas = [r for r in rows if r["feasible"] and all(r.get(l) is not None for l in labels)]
    mask = pareto_mask(np.array([[r[l] for l in labels] for r in feas], float).reshape(len(feas), len(labels)), dirs)
    front = [r for r, keep in zip(feas, mask) if keep]
    front.sort(key=lambda r: (r[labels[0]] if dirs[0] == "min" else -r[labels[0]]))
    for r in rows:
        r["pareto"] = False
    for r in front:
        r["pareto"] = True
    return RunData(db=db, space=space, rows=rows, labels=labels, directions=dirs, pareto=front)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=_columns(rows) or ["key"], extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def write_outputs(run: RunData, out_dir: str | Path | None = None) -> dict[str, str]:
    """Write CSV (all points, Pareto front), Parquet, PNG, HTML; returns {kind: path or skip note}."""
    out = Path(out_dir) if out_dir else run.db.parent
    out.mkdir(parents=True, exist_ok=True)
    stem = run.db.stem
    written: dict[str, str] = {}
    p = out / f"{stem}.points.csv"
    write_csv(run.rows, p)
    written["points_csv"] = str(p)
    p = out / f"{stem}.pareto.csv"
    write_csv(run.pareto, p)
    written["pareto_csv"] = str(p)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = _columns(run.pareto)
        table = pa.table({c: [None if r.get(c) is None else str(r.get(c)) if isinstance(r.get(c), (dict, list))
                              else r.get(c) for r in run.pareto] for c in cols}) if run.pareto else pa.table({})
        p = out / f"{stem}.pareto.parquet"
        pq.write_table(table, p)
        written["pareto_parquet"] = str(p)
    except ImportError:
        written["pareto_parquet"] = "skipped: pyarrow not installed"
    xs, ys = _axes(run)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 5))
        feas = [r for r in run.rows if r["feasible"]]
        infe = [r for r in run.rows if not r["feasible"] and r.get(xs) is not None and r.get(ys) is not None]
        if infe:
            ax.scatter([r[xs] for r in infe], [r[ys] for r in infe], s=6, c="#dddddd", label="infeasible")
        ax.scatter([r[xs] for r in feas], [r[ys] for r in feas], s=8, c="#7f9fbf", label="feasible")
        ax.scatter([r[xs] for r in run.pareto], [r[ys] for r in run.pareto], s=24, c="#d62728", label="Pareto front")
        ax.set_xlabel(xs)
        ax.set_ylabel(ys)
        ax.set_title(f"{run.space.name}: {len(run.rows)} designs, {len(run.pareto)} on the Pareto front")
        ax.legend()
        fig.tight_layout()
        p = out / f"{stem}.pareto.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        written["png"] = str(p)
    except ImportError:
        written["png"] = "skipped: matplotlib not installed"
    try:
        import plotly.graph_objects as go

        def trace(rows: list[dict[str, Any]], name: str, color: str, size: int) -> Any:
            hover = ["<br>".join(f"{k}={r[k]}" for k in run.space.names if k in r) +
                     "<br>" + "<br>".join(f"{l}={r[l]:.4g}" for l in run.labels if isinstance(r.get(l), float))
                     for r in rows]
            return go.Scatter(x=[r[xs] for r in rows], y=[r[ys] for r in rows], mode="markers", name=name,
                              marker={"color": color, "size": size}, text=hover, hoverinfo="text")

        feas = [r for r in run.rows if r["feasible"]]
        fig = go.Figure([trace(feas, "feasible", "#7f9fbf", 5), trace(run.pareto, "Pareto front", "#d62728", 9)])
        fig.update_layout(title=f"{run.space.name}: Pareto front", xaxis_title=xs, yaxis_title=ys)
        p = out / f"{stem}.pareto.html"
        fig.write_html(str(p), include_plotlyjs=True)
        written["html"] = str(p)
    except ImportError:
        written["html"] = "skipped: plotly not installed"
    return written


def _axes(run: RunData) -> tuple[str, str]:
    if len(run.labels) >= 2:
        return run.labels[0], run.labels[1]
    return "device_cost_usd", run.labels[0]


def violations(run: RunData, top: int = 5) -> list[tuple[str, int]]:
    """The most common reasons designs are infeasible, with how many designs each rules out."""
    counts: Counter[str] = Counter()
    for r in run.rows:
        if not r["feasible"]:
            # the number in "area 912 > 858 mm2" differs per design: count the reason, not the value
            reasons = {_reason(v) for v in (r.get("violations") or "").split("; ") if v}
            counts.update(reasons or {"objective value missing"})
    return counts.most_common(top)


def _reason(violation: str) -> str:
    import re

    return re.sub(r"(?<![A-Za-z_\d])\d[\d.,]*(e[+-]?\d+)?", "N", violation)


def summary(run: RunData, top: int = 20) -> dict[str, Any]:
    return {
        "db": str(run.db), "space": run.space.name, "points": len(run.rows),
        "feasible": sum(1 for r in run.rows if r["feasible"]), "objectives": dict(zip(run.labels, run.directions)),
        "pareto_size": len(run.pareto), "pareto": run.pareto[:top] if top else run.pareto,
        "violations": [{"reason": k, "designs": n} for k, n in violations(run)],
    }


def to_dict(run: RunData) -> dict[str, Any]:
    """A run as JSON (``GET /api/explore``, the ``--html`` report): the summary with the whole front, every
    point, the design parameters' names and the plot's axes."""
    from tapeout.cliutil import json_safe

    xs, ys = _axes(run)
    return json_safe({**summary(run, 0), "parameters": list(run.space.names), "labels": run.labels,
                      "axes": [xs, ys],
                      "feasibility": feasibility_line(run), "rows": run.rows})


def feasibility_line(run: RunData) -> str | None:
    """One line on the infeasible designs of a run and why (None when every design is feasible)."""
    feas = sum(1 for r in run.rows if r["feasible"])
    if not run.rows:
        return "the run holds no designs yet"
    if feas == len(run.rows):
        return None
    head = "no design is feasible" if feas == 0 else f"{len(run.rows) - feas} of {len(run.rows)} designs are infeasible"
    return f"{head}; most common reasons (designs): " + "; ".join(f"{k} ({n})" for k, n in violations(run))


def print_front(run: RunData, top: int = 20) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console() if Console().is_terminal else Console(width=180)
    feas = sum(1 for r in run.rows if r["feasible"])
    t = Table(title=f"{run.space.name}: Pareto front, {len(run.pareto)} designs ({feas} of {len(run.rows)} "
                    "evaluated designs are feasible)")
    params = list(run.space.names)
    for c in params + run.labels + ["area_mm2", "device_cost_usd", "power_w"]:
        t.add_column(c, justify="right")
    for r in run.pareto[:top]:
        cells = [str(r.get(c, "")) for c in params]
        for c in run.labels + ["area_mm2", "device_cost_usd", "power_w"]:
            v = r.get(c)
            cells.append("-" if v is None else f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v))
        t.add_row(*cells)
    con.print(t)
    if len(run.pareto) > top:
        con.print(f"... {len(run.pareto) - top} more in the CSV")
    line = feasibility_line(run)
    if line:
        from rich.markup import escape

        con.print(f"[yellow]{escape(line)}[/]", highlight=False)


__all__ = ["RunData", "load_run", "pareto_mask", "print_front", "summary", "to_dict", "write_csv", "write_outputs"]
