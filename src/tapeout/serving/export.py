"""Exports of a :class:`~tapeout.serving.sim.SimResult`: a Chrome trace and plots.

- :func:`write_chrome_trace` (``tapeout simulate --trace out.json``): the Trace Event Format that
  ``chrome://tracing`` and Perfetto open. One process per replica; per iteration (or run of equal decode
  steps) a complete event with its prefill tokens, decoding and running requests; counters of the running
  requests and KV blocks in use; per request an async span from its send time to its last token, with an
  instant at its first token.
- :func:`write_plots` (``--plots DIR``): latency CDFs (TTFT, TPOT, ITL, e2e) and the batch size and KV use
  over time, as ``serving.png`` (matplotlib) and ``serving.html`` (plotly). Both come with the ``explore``
  extra and are imported here only; without either, a one-line error says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tapeout.errors import TapeoutError

if TYPE_CHECKING:  # pragma: no cover
    from tapeout.serving.sim import SimResult

US = 1e6


def chrome_trace(res: "SimResult") -> dict[str, Any]:
    """The trace as a dict (``traceEvents``, times in microseconds)."""
    ev: list[dict[str, Any]] = []
    for r in res.replicas:
        ev.append({"name": "process_name", "ph": "M", "pid": r.rid, "args": {"name": f"replica {r.rid} ({r.role})"}})
        nb = r.cfg.num_blocks
        for t0, t1, steps, pre, dec, run, u0, u1 in r.timeline:
            name = "prefill+decode" if pre and dec else "prefill" if pre else f"decode x{steps}"
            ev.append({"name": name, "cat": "iteration", "ph": "X", "pid": r.rid, "tid": 0, "ts": t0 * US,
                       "dur": (t1 - t0) * US, "args": {"steps": steps, "prefill_tokens": pre, "decodes": dec,
                                                       "running": run, "kv_blocks": u1}})
            ev.append({"name": "running", "ph": "C", "pid": r.rid, "ts": t0 * US, "args": {"requests": run}})
            ev.append({"name": "kv_blocks", "ph": "C", "pid": r.rid, "ts": t0 * US,
                       "args": {"used": u0, "free": nb - u0}})
    rec = res.recorder
    for i in range(len(res.requests)):
        pid = int(rec.replica[i])
        common = {"cat": "request", "id": i, "pid": pid, "tid": 1}
        ev.append({"name": f"request {i}", "ph": "b", "ts": float(rec.sent[i]) * US,
                   "args": {"input_len": int(res.requests.input_len[i]),
                            "output_len": int(res.requests.output_len[i]),
                            "preemptions": int(rec.preemptions[i])}, **common})
        ev.append({"name": "first token", "ph": "n", "ts": float(rec.first[i]) * US, **common})
        ev.append({"name": f"request {i}", "ph": "e", "ts": float(rec.finish[i]) * US, **common})
    return {"traceEvents": ev, "displayTimeUnit": "ms", "otherData": {"tapeout": res.inputs}}


def write_chrome_trace(res: "SimResult", path: str | Path) -> Path:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(chrome_trace(res)), encoding="utf-8")
    except OSError as exc:
        raise TapeoutError(f"cannot write {str(p)!r}: {exc.strerror}", field="trace") from None
    return p


def _cdf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.size > 20000:  # a CDF drawn from 20,000 quantiles looks the same
        q = np.linspace(0, 100, 20000)
        return np.percentile(x, q), q / 100
    s = np.sort(x)
    return s, np.arange(1, s.size + 1) / max(s.size, 1)


def _series(res: "SimResult") -> dict[str, Any]:
    lat = {"TTFT": res.ttft, "TPOT": res.tpot, "ITL": res.itl, "e2e latency": res.e2e}
    time = []
    for r in res.replicas:
        tl = np.array([(a, run, u1 / max(r.cfg.num_blocks, 1)) for a, _, _, _, _, run, _, u1 in r.timeline]) \
            if r.timeline else np.zeros((0, 3))
        time.append((r.rid, tl))
    return {"latency": {k: _cdf(np.asarray(v, dtype=float)) for k, v in lat.items() if np.size(v)}, "time": time}


def _thin(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` points, evenly spread, the first and last kept."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) if n else np.zeros(0, int)


def series_dict(res: "SimResult", most: int = 500) -> dict[str, Any]:
    """The plots' data as JSON (``POST /api/simulate?series=true``): each latency CDF (milliseconds,
    fraction of requests; ITL: of tokens) and per replica the running requests and the fraction of KV
    blocks in use at each iteration's start time, each at most ``most`` points."""
    data = _series(res)
    lat = {}
    for name, (x, y) in data["latency"].items():
        i = _thin(len(x), most)
        lat[name] = {"ms": (x[i] * 1e3).tolist(), "fraction": y[i].tolist()}
    time = []
    for rid, tl in data["time"]:
        i = _thin(len(tl), most)
        time.append({"replica": rid, "t_s": tl[i, 0].tolist() if tl.size else [],
                     "running": tl[i, 1].tolist() if tl.size else [], "kv_used": tl[i, 2].tolist() if tl.size else []})
    return {"latency_cdf": lat, "over_time": time}


def engine_line(inputs: dict[str, Any]) -> str:
    """The engine a run simulated, in words (the CLI table's and the plots' titles): the scheduler, the KV
    policy, the prefill pass and, when on, two-batch overlap."""
    tbo = ", two-batch overlap" if inputs.get("two_batch_overlap") else ""
    return f"{inputs['scheduler']}, {inputs['kv_policy']} KV, {inputs['prefill_pass']} prefill{tbo}"


def write_plots(res: "SimResult", folder: str | Path) -> list[Path]:
    """``serving.png`` and/or ``serving.html`` in ``folder`` (created); the paths written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    data = _series(res)
    title = (f"{res.inputs['model']} on {res.inputs['hardware']} (tp{res.inputs['tp']}), "
             f"{engine_line(res.inputs)}, rate {res.inputs['rate']}")
    written: list[Path] = []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is not None:
        fig, ax = plt.subplots(1, 3, figsize=(16, 4.5))
        for name, (x, y) in data["latency"].items():
            ax[0].plot(x * 1e3, y, label=name)
        ax[0].set_xscale("log")
        ax[0].set_xlabel("latency (ms)")
        ax[0].set_ylabel("fraction of requests (ITL: of tokens)")
        ax[0].legend()
        for rid, tl in data["time"]:
            if tl.size:
                ax[1].step(tl[:, 0], tl[:, 1], where="post", label=f"replica {rid}")
                ax[2].step(tl[:, 0], tl[:, 2] * 100, where="post", label=f"replica {rid}")
        ax[1].set_xlabel("time (s)")
        ax[1].set_ylabel("running requests")
        ax[2].set_xlabel("time (s)")
        ax[2].set_ylabel("KV blocks in use (%)")
        fig.suptitle(title)
        fig.tight_layout()
        p = out / "serving.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        go = None
    if go is not None:
        fig = make_subplots(rows=1, cols=3, subplot_titles=("latency CDF", "running requests", "KV blocks in use (%)"))
        for name, (x, y) in data["latency"].items():
            fig.add_trace(go.Scatter(x=x * 1e3, y=y, mode="lines", name=name), row=1, col=1)
        for rid, tl in data["time"]:
            if tl.size:
                fig.add_trace(go.Scatter(x=tl[:, 0], y=tl[:, 1], mode="lines", line_shape="hv",
                                         name=f"replica {rid} running"), row=1, col=2)
                fig.add_trace(go.Scatter(x=tl[:, 0], y=tl[:, 2] * 100, mode="lines", line_shape="hv",
                                         name=f"replica {rid} KV"), row=1, col=3)
        fig.update_xaxes(type="log", title_text="latency (ms)", row=1, col=1)
        fig.update_xaxes(title_text="time (s)", row=1, col=2)
        fig.update_xaxes(title_text="time (s)", row=1, col=3)
        fig.update_layout(title=title)
        p = out / "serving.html"
        fig.write_html(p, include_plotlyjs="directory")  # plotly.min.js beside it: works offline
        written.append(p)
    if not written:
        raise TapeoutError("plots need matplotlib or plotly; allowed: pip install 'tapeout[explore]'", field="plots")
    return written


__all__ = ["engine_line", "chrome_trace", "series_dict", "write_chrome_trace", "write_plots"]
