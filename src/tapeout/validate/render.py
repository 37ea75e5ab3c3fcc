"""Print a validation run: a rich table of groups with one overall line per dataset, or JSON."""

from __future__ import annotations

import json
import math
from typing import Any

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


def groups_json(ev: Evaluation, compare: Evaluation | None = None) -> str:
    """The JSON array of group objects: keys exactly GROUP_KEYS, plus ``compare_mape_pct`` with ``compare``."""
    by_group = compare_mape(ev, compare)[0] if compare is not None else None
    out = []
    for g in ev.groups:
        obj = {k: _clean(g[k]) for k in GROUP_KEYS}
        if by_group is not None:
            obj["compare_mape_pct"] = _clean(by_group.get(_key(g), float("nan")))
        out.append(obj)
    return json.dumps(out, indent=2, allow_nan=False)


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.1f}"


def print_table(ev: Evaluation, console: Any = None, *, title: str = "", compare: Evaluation | None = None,
                compare_tier: str = "roofline") -> None:
    """The groups, one overall line per dataset; with ``compare`` a column ``<compare_tier> MAPE``."""
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
    overall = {o["dataset"]: o for o in ev.overall}
    by_ds: dict[str, list[dict[str, Any]]] = {}
    for g in ev.groups:
        by_ds.setdefault(g["dataset"], []).append(g)
    for i, (ds, gs) in enumerate(by_ds.items()):
        if i:
            t.add_section()
        for g in gs:
            extra = [_pct(cmp_groups.get(_key(g)))] if compare is not None else []
            t.add_row(g["dataset"], g["op_class"], g["device"], str(g["n"]), f"{g['mape_pct']:.1f}",
                      f"{g['mdape_pct']:.1f}", f"{g['bias']:+.2f}", *extra)
        o = overall.get(ds)
        if o is not None:
            extra = [f"[bold]{_pct(cmp_overall.get(ds))}[/]"] if compare is not None else []
            t.add_row(f"[bold]{ds}[/]", "[bold]overall[/]", "", f"[bold]{o['n']}[/]", f"[bold]{o['mape_pct']:.1f}[/]",
                      f"[bold]{o['mdape_pct']:.1f}[/]", f"[bold]{o['bias']:+.2f}[/]", *extra)
    con.print(t)
    con.print("bias = mean ln(predicted/measured): > 0 predicts too slow. Groups 'allreduce>=1MiB' are subsets; "
              "'overall' counts each case once and leaves out the GPT-3 layer's stated totals. e2e-* sets: "
              "MAPE/MdAPE on the published tokens/s; bias > 0 = predicted throughput too low."
              + (f" '{compare_tier} MAPE': the {compare_tier} tier on the same cases." if compare is not None else ""))
