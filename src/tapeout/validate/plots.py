"""Predicted-vs-measured plots of a validation run, one per dataset (``tapeout validate --plots DIR``).

Per dataset ``<name>``:

- ``<name>.png`` (matplotlib, when importable);
- ``<name>.html``: interactive plotly (when importable; ``plotly.min.js`` is written once beside the
  pages, so they work offline), else a self-contained page with an inline SVG scatter drawn here
  (log-log axes, the y = x line, one colour per op class, a tooltip per point).

matplotlib and plotly are the optional ``explore`` extra; the module imports them only when called,
so the option always writes something. Axes are times in seconds (end-to-end sets: the reciprocal of
the published rate, as the harness compares them). With ``compare`` (another tier's evaluation of the
same cases) its predictions are drawn as grey hollow markers.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

from tapeout.validate.runner import CaseResult, Evaluation

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
COMPARE_COLOR = "#9e9e9e"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "dataset"


def _by_dataset(ev: Evaluation) -> dict[str, list[CaseResult]]:
    out: dict[str, list[CaseResult]] = {}
    for r in ev.results:
        if r.case.op_class.endswith("/total"):
            continue  # stated layer totals: sums of rows already drawn
        out.setdefault(r.case.dataset, []).append(r)
    return out


def _series(rs: list[CaseResult]) -> dict[str, tuple[list[float], list[float], list[str]]]:
    """op class -> (measured, predicted, labels)."""
    out: dict[str, tuple[list[float], list[float], list[str]]] = {}
    for r in rs:
        m, p, lab = out.setdefault(r.case.op_class, ([], [], []))
        m.append(r.case.measured_s)
        p.append(r.predicted_s)
        info = ", ".join(f"{k}={v}" for k, v in r.case.info[:6])
        lab.append(f"{r.case.op_class} {r.case.device}: measured {r.case.measured_s:.4g} s, "
                   f"predicted {r.predicted_s:.4g} s ({info})")
    return out


def _compare_points(rs: list[CaseResult], compare: Evaluation | None) -> tuple[list[float], list[float]]:
    """The compare tier's (measured, predicted) for the same cases (the same Case objects)."""
    if compare is None:
        return [], []
    ids = {id(r.case) for r in rs}
    pts = [(r.case.measured_s, r.predicted_s) for r in compare.results if id(r.case) in ids]
    return [m for m, _ in pts], [p for _, p in pts]


def _title(ds: str, tier: str, overall: dict[str, Any] | None, compare_tier: str | None,
           compare_overall: dict[str, Any] | None) -> str:
    t = f"{ds}: tier {tier}"
    if overall is not None:
        t += f", MAPE {overall['mape_pct']:.1f}%"
    if compare_tier and compare_overall is not None:
        t += f" ({compare_tier}: {compare_overall['mape_pct']:.1f}%)"
    return t


def _range(values: list[float]) -> tuple[float, float]:
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return 1e-6, 1.0
    lo, hi = math.log10(min(pos)), math.log10(max(pos))
    pad = max(0.05 * (hi - lo), 0.1)
    return lo - pad, hi + pad


def _png(path: Path, title: str, series: dict, cmp: tuple[list[float], list[float]], compare_tier: str | None,
         lims: tuple[float, float]) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(6.4, 6.0), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = 10 ** lims[0], 10 ** lims[1]
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    if cmp[0]:
        ax.scatter(cmp[0], cmp[1], s=14, facecolors="none", edgecolors=COMPARE_COLOR, lw=0.8,
                   label=compare_tier or "compare")
    for i, (oc, (m, p, _)) in enumerate(series.items()):
        ax.scatter(m, p, s=10, color=PALETTE[i % len(PALETTE)], alpha=0.8, label=oc)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("measured, s")
    ax.set_ylabel("predicted, s")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)


def _plotly_html(path: Path, title: str, series: dict, cmp: tuple[list[float], list[float]],
                 compare_tier: str | None, lims: tuple[float, float]) -> None:
    import plotly.graph_objects as go

    n = sum(len(m) for m, _, _ in series.values()) + len(cmp[0])
    Scatter = go.Scattergl if n > 5000 else go.Scatter
    fig = go.Figure()
    lo, hi = 10 ** lims[0], 10 ** lims[1]
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                             line=dict(color="black", dash="dash", width=1)))
    if cmp[0]:
        fig.add_trace(Scatter(x=cmp[0], y=cmp[1], mode="markers", name=compare_tier or "compare",
                              marker=dict(color="rgba(0,0,0,0)", size=6, line=dict(color=COMPARE_COLOR, width=1))))
    for i, (oc, (m, p, lab)) in enumerate(series.items()):
        fig.add_trace(Scatter(x=m, y=p, mode="markers", name=oc, text=lab if n <= 5000 else None,
                              hoverinfo="text" if n <= 5000 else "x+y+name",
                              marker=dict(color=PALETTE[i % len(PALETTE)], size=5)))
    fig.update_xaxes(type="log", range=list(lims), title="measured, s")
    fig.update_yaxes(type="log", range=list(lims), title="predicted, s", scaleanchor="x")
    fig.update_layout(title=title, width=760, height=700)
    fig.write_html(str(path), include_plotlyjs="directory")


def _svg_html(path: Path, title: str, series: dict, cmp: tuple[list[float], list[float]],
              compare_tier: str | None, lims: tuple[float, float]) -> None:
    """A self-contained page: inline SVG scatter, log-log axes, y = x, decade grid, tooltips."""
    size, left, top, plot = 640, 70, 40, 520
    lo, hi = lims

    def sx(v: float) -> float:
        return left + (math.log10(v) - lo) / (hi - lo) * plot

    def sy(v: float) -> float:
        return top + plot - (math.log10(v) - lo) / (hi - lo) * plot

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 200}" height="{size}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="white" stroke="black"/>']
    for d in range(math.ceil(lo), math.floor(hi) + 1):
        x, y = sx(10.0 ** d), sy(10.0 ** d)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot}" stroke="#ddd"/>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot + 16}" text-anchor="middle">1e{d}</text>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">1e{d}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot}" x2="{left + plot}" y2="{top}" stroke="black" '
                 f'stroke-dasharray="5,4"/>')
    parts.append(f'<text x="{left + plot / 2}" y="{top + plot + 34}" text-anchor="middle">measured, s</text>')
    parts.append(f'<text x="18" y="{top + plot / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 18 {top + plot / 2})">predicted, s</text>')
    parts.append(f'<text x="{left}" y="24" font-size="13">{e(title)}</text>')
    for m, p in zip(*cmp):
        parts.append(f'<circle cx="{sx(m):.1f}" cy="{sy(p):.1f}" r="3.5" fill="none" stroke="{COMPARE_COLOR}"/>')
    legend = [("y = x", "black")] + ([(compare_tier or "compare", COMPARE_COLOR)] if cmp[0] else [])
    for i, (oc, (ms, ps, labs)) in enumerate(series.items()):
        col = PALETTE[i % len(PALETTE)]
        legend.append((oc, col))
        for m, p, lab in zip(ms, ps, labs):
            parts.append(f'<circle cx="{sx(m):.1f}" cy="{sy(p):.1f}" r="2.5" fill="{col}" fill-opacity="0.8">'
                         f'<title>{e(lab)}</title></circle>')
    for i, (name, col) in enumerate(legend):
        y = top + 10 + 16 * i
        parts.append(f'<rect x="{left + plot + 14}" y="{y - 8}" width="10" height="10" fill="{col}"/>')
        parts.append(f'<text x="{left + plot + 30}" y="{y + 1}">{e(name)}</text>')
    parts.append("</svg>")
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{e(title)}</title></head>\n'
            f'<body>\n{"".join(parts)}\n<p style="font-family:sans-serif;font-size:12px">Predicted vs measured '
            f'(log-log); dashed: y = x. Hover a point for its case. Written without matplotlib/plotly '
            f'(pip install "tapeout[explore]" for PNG and interactive plots).</p>\n</body></html>\n')
    path.write_text(page, encoding="utf-8")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def write_plots(ev: Evaluation, out_dir: str | Path, *, tier: str = "", compare: Evaluation | None = None,
                compare_tier: str | None = None) -> list[Path]:
    """Write one predicted-vs-measured plot per dataset into ``out_dir``; returns the files written."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    have_png = _importable("matplotlib.figure")
    have_plotly = _importable("plotly.graph_objects")
    overall = {o["dataset"]: o for o in ev.overall}
    cmp_overall = {o["dataset"]: o for o in compare.overall} if compare is not None else {}
    written: list[Path] = []
    for ds, rs in _by_dataset(ev).items():
        series = _series(rs)
        cmp = _compare_points(rs, compare)
        lims = _range([v for m, p, _ in series.values() for v in (*m, *p)] + cmp[0] + cmp[1])
        title = _title(ds, tier, overall.get(ds), compare_tier, cmp_overall.get(ds))
        stem = _safe(ds)
        if have_png:
            png = d / f"{stem}.png"
            _png(png, title, series, cmp, compare_tier, lims)
            written.append(png)
        page = d / f"{stem}.html"
        (_plotly_html if have_plotly else _svg_html)(page, title, series, cmp, compare_tier, lims)
        written.append(page)
    return written


__all__ = ["write_plots"]
