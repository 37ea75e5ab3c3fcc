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


def groups_json(ev: Evaluation) -> str:
    """The JSON array of group objects (keys exactly GROUP_KEYS)."""
    return json.dumps([{k: _clean(g[k]) for k in GROUP_KEYS} for g in ev.groups], indent=2, allow_nan=False)


def print_table(ev: Evaluation, console: Any = None, *, title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    if not con.is_terminal:
        con = Console(width=120)
    t = Table(title=title or None, show_lines=False)
    for name, justify in (("dataset", "left"), ("op class", "left"), ("device", "left"), ("n", "right"),
                          ("MAPE %", "right"), ("MdAPE %", "right"), ("bias ln(p/m)", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    overall = {o["dataset"]: o for o in ev.overall}
    by_ds: dict[str, list[dict[str, Any]]] = {}
    for g in ev.groups:
        by_ds.setdefault(g["dataset"], []).append(g)
    for i, (ds, gs) in enumerate(by_ds.items()):
        if i:
            t.add_section()
        for g in gs:
            t.add_row(g["dataset"], g["op_class"], g["device"], str(g["n"]), f"{g['mape_pct']:.1f}",
                      f"{g['mdape_pct']:.1f}", f"{g['bias']:+.2f}")
        o = overall.get(ds)
        if o is not None:
            t.add_row(f"[bold]{ds}[/]", "[bold]overall[/]", "", f"[bold]{o['n']}[/]", f"[bold]{o['mape_pct']:.1f}[/]",
                      f"[bold]{o['mdape_pct']:.1f}[/]", f"[bold]{o['bias']:+.2f}[/]")
    con.print(t)
    con.print("bias = mean ln(predicted/measured): > 0 predicts too slow. Groups 'allreduce>=1MiB' are subsets; "
              "'overall' counts each case once and leaves out the GPT-3 layer's stated totals. e2e-* sets: "
              "MAPE/MdAPE on the published tokens/s; bias > 0 = predicted throughput too low.")
