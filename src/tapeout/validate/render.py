"""Print a validation run: a rich table of groups with one overall line per dataset, or JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from tapeout.validate.heldout import CrossValidation
from tapeout.validate.runner import GROUP_KEYS, Evaluation


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 4)
    return v


def _key(g: dict[str, Any]) -> tuple[str, str, str]:
    return g["dataset"], g["op_class"], g["device"]


def compare_mape(ev: Evaluation, compare: Evaluation) -> tuple[dict[tuple[str, str, str], float], dict[str, float]]:
    """The compare run's MAPE per group key and per dataset overall (same cases, another tier)."""
    return ({_key(g): g["mape_pct"] for g in compare.groups}, {o["dataset"]: o["mape_pct"] for o in compare.overall})


def absent_row(dataset: str) -> dict[str, Any]:
    """The JSON object of a dataset whose files are not in the data directory."""
    return {"dataset": dataset, "op_class": "*", "device": "*", "n": 0, "mape_pct": None, "mdape_pct": None,
            "bias": None, "absent": True}


def groups_json(ev: Evaluation, compare: Evaluation | None = None, cv: CrossValidation | None = None) -> str:
    """The JSON array of group objects: keys exactly GROUP_KEYS, plus ``compare_mape_pct`` with ``compare``;
    then one object per absent dataset (:func:`absent_row`: ``n`` 0, errors null, ``"absent": true``).

    With ``cv`` (``ev`` is then ``cv.evaluation``) every object gains ``held_out`` (true: the group's errors
    come from parameters refitted without its source) and ``in_sample_mape_pct``.
    """
    by_group = compare_mape(ev, compare)[0] if compare is not None else None
    in_sample = {_key(g): g["mape_pct"] for g in cv.in_sample.groups} if cv is not None else {}
    out = []
    for g in ev.groups:
        obj = {k: _clean(g[k]) for k in GROUP_KEYS}
        if by_group is not None:
            obj["compare_mape_pct"] = _clean(by_group.get(_key(g), float("nan")))
        if cv is not None:
            obj["held_out"] = g["dataset"] in cv.held_out_datasets
            obj["in_sample_mape_pct"] = _clean(in_sample.get(_key(g), float("nan")))
        out.append(obj)
    for name in ev.absent:
        out.append({**absent_row(name), **({"held_out": False, "in_sample_mape_pct": None} if cv is not None else {})})
    return json.dumps(out, indent=2, allow_nan=False)


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.1f}"


def print_table(ev: Evaluation, console: Any = None, *, title: str = "", compare: Evaluation | None = None,
                compare_tier: str = "roofline", data_dir: Any = None, cv: CrossValidation | None = None) -> None:
    """The groups, one overall line per dataset; with ``compare`` a column ``<compare_tier> MAPE``; with ``cv``
    (``ev`` is then ``cv.evaluation``) the columns "held out" and "in-sample MAPE", then :func:`print_cv`."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    if not con.is_terminal:
        con = Console(width=120)
    t = Table(title=title or None, show_lines=False)
    for name, justify in (("dataset", "left"), ("op class", "left"), ("device", "left"), ("n", "right"),
                          ("MAPE %", "right"), ("MdAPE %", "right"), ("bias ln(p/m)", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    cmp_groups, cmp_overall = compare_mape(ev, compare) if compare is not None else ({}, {})
    if compare is not None:
        t.add_column(f"{compare_tier} MAPE", justify="right")
    held = cv.held_out_datasets if cv is not None else frozenset()
    cv_groups = {_key(g): g["mape_pct"] for g in cv.in_sample.groups} if cv is not None else {}
    cv_overall = {o["dataset"]: o["mape_pct"] for o in cv.in_sample.overall} if cv is not None else {}
    if cv is not None:
        t.add_column("held out", justify="center")
        t.add_column("in-sample MAPE", justify="right")
    overall = {o["dataset"]: o for o in ev.overall}
    by_ds: dict[str, list[dict[str, Any]]] = {}
    for g in ev.groups:
        by_ds.setdefault(g["dataset"], []).append(g)
    for i, (ds, gs) in enumerate(by_ds.items()):
        if i:
            t.add_section()
        for g in gs:
            extra = [_pct(cmp_groups.get(_key(g)))] if compare is not None else []
            if cv is not None:
                extra += ["yes" if ds in held else "", _pct(cv_groups.get(_key(g)))]
            t.add_row(g["dataset"], g["op_class"], g["device"], str(g["n"]), f"{g['mape_pct']:.1f}",
                      f"{g['mdape_pct']:.1f}", f"{g['bias']:+.2f}", *extra)
        o = overall.get(ds)
        if o is not None:
            extra = [f"[bold]{_pct(cmp_overall.get(ds))}[/]"] if compare is not None else []
            if cv is not None:
                extra += ["[bold]yes[/]" if ds in held else "", f"[bold]{_pct(cv_overall.get(ds))}[/]"]
            t.add_row(f"[bold]{ds}[/]", "[bold]overall[/]", "", f"[bold]{o['n']}[/]", f"[bold]{o['mape_pct']:.1f}[/]",
                      f"[bold]{o['mdape_pct']:.1f}[/]", f"[bold]{o['bias']:+.2f}[/]", *extra)
    con.print(t)
    con.print("bias = mean ln(predicted/measured): > 0 predicts too slow. Groups 'allreduce>=1MiB' are subsets; "
              "'overall' counts each case once and leaves out the GPT-3 layer's stated totals. e2e-* sets: "
              "MAPE/MdAPE on the published tokens/s; bias > 0 = predicted throughput too low."
              + (f" '{compare_tier} MAPE': the {compare_tier} tier on the same cases." if compare is not None else ""))
    if ev.absent:
        where = f" under {data_dir}" if data_dir is not None else ""
        con.print(f"absent (no files{where}): {', '.join(ev.absent)}")
    if cv is not None:
        print_cv(cv, con)


def print_cv(cv: CrossValidation, console: Any = None) -> None:
    """Per end-to-end source: in-sample and held-out error, then what was refitted without it."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table(title="cross-validation: each end-to-end source held out (leave-one-source-out)")
    for name, justify in (("source", "left"), ("datasets", "left"), ("n", "right"), ("in-sample MAPE %", "right"),
                          ("held-out MAPE %", "right"), ("in-sample bias", "right"), ("held-out bias", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    summaries = [f.summary() for f in cv.folds]
    for s in summaries:
        t.add_row(s["source"], ", ".join(s["datasets"]), str(s["n"]), _pct(s["in_sample_mape_pct"]),
                  _pct(s["held_out_mape_pct"]), f"{s['in_sample_bias']:+.2f}", f"{s['held_out_bias']:+.2f}")
    con.print(t)
    for s in summaries:
        lines = s["refits"] or ["no fitted parameter read this source's data: held out = in-sample"]
        con.print(f"{s['source']}:")
        for line in lines:
            con.print(f"  {line}", highlight=False, soft_wrap=True)
    con.print("Held out: the source's end-to-end cases priced with every parameter its data constrained refitted "
              "on the other sources (framework fields through fit.frameworks' fit), or at its prior where no other "
              "source constrains it. Per-op groups stay in-sample.", soft_wrap=True)
