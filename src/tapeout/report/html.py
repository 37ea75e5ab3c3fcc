"""The one page: ``static/index.html`` with its CSS and JS, served live by ``tapeout ui`` or written as a
self-contained offline report (``tapeout predict ... --html``, ``tapeout explore --report RUN --html``).

The charts use plotly.js as the plotly Python package ships it (``plotly.offline.get_plotlyjs()``): served
from the app, inlined in a report; nothing is loaded from a CDN. Without plotly the page still shows every
number and table, and says that the charts need it. This module needs neither FastAPI nor uvicorn.
"""

from __future__ import annotations

import functools
import json
import typing
from pathlib import Path
from typing import Any

from tapeout.errors import TapeoutError

STATIC = Path(__file__).with_name("static")
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@functools.cache
def plotly_js() -> str | None:
    """plotly.min.js from the installed plotly package (None without it)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    return get_plotlyjs()


def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def asset(name: str) -> tuple[str, str] | None:
    """(body, media type) of a static asset served at ``/static/NAME``; None for an unknown name."""
    if name == "plotly.min.js":
        js = plotly_js()
        return None if js is None else (js, MEDIA[".js"])
    if name in ("app.js", "app.css"):
        return _read(name), MEDIA[Path(name).suffix]
    return None


def live_html() -> str:
    """The page as ``tapeout ui`` serves it: assets from ``/static/``, data from ``/api/``."""
    head = '<link rel="stylesheet" href="/static/app.css">'
    scripts = '<script src="/static/app.js" defer></script>'  # it loads /static/plotly.min.js after the numbers
    return _read("index.html").replace("<!--HEAD-->", head).replace("<!--SCRIPTS-->", scripts)


def _inline(text: str) -> str:
    return text.replace("</", "<\\/")  # a script's text may not close its element


def report_html(report: dict[str, Any]) -> str:
    """The page with ``report`` (``{"kind": "predict", "prediction": Prediction.to_dict()}`` or ``{"kind":
    "explore", "run": explore.report.to_dict(run)}``) and every asset inlined: one file that opens offline."""
    js = plotly_js()
    data = json.dumps(report, allow_nan=False, separators=(",", ":"))
    head = f"<style>{_read('app.css')}</style>"
    # the data and the page's script first: the numbers show while plotly.js (4 MB) is still being parsed
    scripts = f"<script>window.TAPEOUT_REPORT = {_inline(data)};</script><script>{_inline(_read('app.js'))}</script>" + \
        (f"<script>{_inline(js)}</script>" if js is not None else "")
    return _read("index.html").replace("<!--HEAD-->", head).replace("<!--SCRIPTS-->", scripts)


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write :func:`report_html` to ``path`` (folders created); one-line errors."""
    p = Path(path)
    if plotly_js() is None:
        raise TapeoutError("the report's charts need plotly; allowed: pip install 'tapeout[ui]'", field="html")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(report_html(report), encoding="utf-8")
    except OSError as exc:
        raise TapeoutError(f"cannot write {str(p)!r}: {exc.strerror}", field="html") from None
    return p


def options() -> dict[str, Any]:
    """The choices the page's inputs offer, from where each list lives (formats are free text: these are
    suggestions)."""
    from tapeout import dtypes
    from tapeout.perf import TIERS
    from tapeout.serving.inputs import KV_POLICIES, PREFILL_PASSES, ROUTERS, SCHEDULERS, ServingInputs
    from tapeout.serving.workload import ARRIVALS, PRESETS
    from tapeout.system.frameworks import frameworks
    from tapeout.workload.scenario import Scenario

    def literal(field: str) -> list[str]:
        return list(typing.get_args(Scenario.model_fields[field].annotation))

    return {"formats": list(dtypes.SUGGESTED), "tiers": sorted(TIERS), "frameworks": sorted(frameworks()),
            "attention": literal("attention"), "mla_attention": literal("mla_attention"),
            "sparse_kernel": literal("sparse_kernel"), "schedulers": list(SCHEDULERS), "kv_policies": list(KV_POLICIES),
            "prefill_passes": list(PREFILL_PASSES), "routers": list(ROUTERS), "arrivals": list(ARRIVALS),
            "workloads": list(PRESETS),
            # the serving form's selects start at simulate's defaults
            "serving_defaults": {k: ServingInputs.model_fields[k].default
                                 for k in ("scheduler", "kv_policy", "prefill_pass", "max_batch")}}


__all__ = ["asset", "live_html", "options", "plotly_js", "report_html", "write_report"]
