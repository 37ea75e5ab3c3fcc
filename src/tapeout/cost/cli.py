"""``tapeout cost HARDWARE``: die area per component, die and device cost, power, $/hour, and
(with ``--model``) performance per dollar and dollars per million tokens.

Registered in the main CLI as ``app.command("cost")(cost_command)``; runnable alone through
``app`` below (tests use it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tapeout.cliutil import TableOrJson, fail, json_safe
from tapeout.errors import TapeoutError





def cost_report(hardware: str, assumptions: str | Path | dict | None = None, *, model: str | None = None,
                batch: int = 1, input_len: int = 2048, output_len: int = 128, tp: int = 1,
                tier: str = "roofline") -> dict[str, Any]:
    """The dict ``tapeout cost --format json`` prints."""
    from tapeout.api import load_hardware, predict
    from tapeout.cost.assumptions import Assumptions
    from tapeout.cost.price import estimate

    hw = load_hardware(hardware)
    a = Assumptions.load(assumptions)
    r = estimate(hw, a)
    d = r.to_dict()
    if model is not None:
        p = predict(model, hw, batch=batch, input_len=input_len, output_len=output_len, tp=tp, tier=tier)
        per_dev = p.throughput_tok_s / tp
        d["performance"] = {
            "model": p.model.name, "batch": batch, "input_len": input_len, "output_len": output_len, "tp": tp,
            "tier": tier, "fits": p.memory.fits, "ttft_s": p.ttft_s, "tpot_s": p.tpot_s,
            "throughput_tok_s": p.throughput_tok_s, "throughput_tok_s_per_device": per_dev,
            "tok_s_per_kusd": 1000 * r.perf_per_dollar(per_dev), "tok_per_joule": r.perf_per_watt(per_dev),
            "usd_per_mtok": r.usd_per_mtok(per_dev),
        }
    return json_safe(d)


def _table(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console() if Console().is_terminal else Console(width=140)
    t = Table(title=f"tapeout cost: {d['hardware']} ({d['node']}, area from {d['area_source']})")
    t.add_column("item")
    t.add_column("value", justify="right")
    t.add_row("die area", f"{d['area_mm2']:.1f} mm2")
    for k, v in d["components_mm2"].items():
        t.add_row(f"  {k}", f"{v:.1f} mm2")
    if d.get("core_mm2"):
        t.add_row("  one core", f"{d['core_mm2']:.3f} mm2")
    t.add_row("dies per wafer (gross)", f"{d['dies_per_wafer']:.1f}")
    t.add_row(f"yield ({d['assumptions']['yield']['model']})", f"{d['yield']:.3f}")
    t.add_row("die cost", f"${d['die_cost_usd']:,.0f}")
    t.add_row("memory", f"${d['memory_cost_usd']:,.0f}")
    t.add_row("packaging", f"${d['packaging_cost_usd']:,.0f}")
    t.add_row("board", f"${d['board_cost_usd']:,.0f}")
    t.add_row("device cost", f"${d['device_cost_usd']:,.0f}")
    t.add_row(f"power ({d['power_source']})", f"{d['power_w']:.0f} W")
    t.add_row("cost per hour (capex + energy)", f"${d['usd_per_hour']:.3f}")
    perf = d.get("performance")
    if perf:
        t.add_row("throughput per device", f"{perf['throughput_tok_s_per_device']:.1f} tok/s")
        t.add_row("tokens/s per $1000", f"{perf['tok_s_per_kusd']:.2f}")
        t.add_row("$ per million tokens", f"${perf['usd_per_mtok']:.3f}" if perf["usd_per_mtok"] is not None else "-")
    con.print(t)
    if d.get("estimate_note"):
        con.print(f"[yellow]note:[/yellow] {d['estimate_note']}")
    con.print("assumptions and their sources: --format json (key 'assumptions'); data files in tapeout/cost/data/")


def cost_command(
    hardware: Annotated[str, typer.Argument(help="catalog device name or a device file (TOML/YAML/JSON)")],
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
    assumptions: Annotated[Optional[Path], typer.Option(
        help="TOML/YAML/JSON file overriding cost assumptions (sections area, dies, memory, links, price)")] = None,
    model: Annotated[Optional[str], typer.Option(help="also price a workload: model name or config.json")] = None,
    batch: Annotated[int, typer.Option(help="concurrent sequences (with --model)")] = 1,
    input_len: Annotated[int, typer.Option(help="prompt tokens (with --model)")] = 2048,
    output_len: Annotated[int, typer.Option(help="generated tokens (with --model)")] = 128,
    tp: Annotated[int, typer.Option(help="tensor-parallel degree (with --model)")] = 1,
    tier: Annotated[str, typer.Option(help="performance tier (with --model)")] = "roofline",
) -> None:
    """Die area per component, die and device cost, power and $/hour of a device (and $/Mtok with --model)."""
    try:
        d = cost_report(hardware, assumptions, model=model, batch=batch, input_len=input_len,
                        output_len=output_len, tp=tp, tier=tier)
    except TapeoutError as exc:
        fail(str(exc))
    if format is TableOrJson.json:
        typer.echo(json.dumps(d, indent=2, allow_nan=False))
    else:
        _table(d)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("cost")(cost_command)


@app.callback()
def _root() -> None:  # keeps "cost" a subcommand when this app runs alone
    """tapeout cost (standalone)."""


__all__ = ["app", "cost_command", "cost_report"]
