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

from tapeout.clicommand import BoolValueCommand
from tapeout.cliutil import TableOrJson, fail, json_safe
from tapeout.errors import TapeoutError





#: pipeline depths tried (after tensor parallelism over the scale-up domain) when a model fits no smaller group
PP_CHOICES = (1, 2, 4, 8, 16)


def _groups(hw: Any) -> list[tuple[int, int]]:
    """(tp, pp) groups to try, smallest device count first; at equal count, more tensor parallelism (no
    pipeline bubble). tp stays within the scale-up domain (powers of two)."""
    max_tp = hw.interconnect.max_devices if hw.interconnect is not None else (8 if hw.pcie_gbps_per_direction else 1)
    tps = [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= max_tp]
    return sorted(((t, p) for t in tps for p in PP_CHOICES), key=lambda g: (g[0] * g[1], g[1]))


def smallest_fitting_group(model: Any, hw: Any, **kw: Any) -> tuple[int, int, Any] | None:
    """(tp, pp, prediction) of the smallest group of ``hw`` devices that holds ``model`` (pp stages run
    pp batches in flight, a full pipeline); None when none of :func:`_groups` does."""
    from tapeout.api import predict

    for tp, pp in _groups(hw):
        try:
            p = predict(model, hw, tp=tp, pp=pp, pp_microbatches=pp, **kw)
        except TapeoutError:  # tp that does not divide the heads, pp beyond the layers
            continue
        if p.memory.fits:
            return tp, pp, p
    return None


def cost_report(hardware: str, assumptions: str | Path | dict | None = None, *, model: str | None = None,
                batch: int = 1, input_len: int = 2048, output_len: int = 128, tp: int | None = None,
                tier: str = "roofline") -> dict[str, Any]:
    """The dict ``tapeout cost --format json`` prints.

    With ``model``, the workload is priced per device. ``tp`` None picks the smallest group that holds the
    model (tensor parallelism within the scale-up domain, then pipeline stages) and says so; a given
    ``tp`` that does not fit is reported as not fitting (no $/Mtok), with the smallest group that would."""
    from tapeout.api import load_hardware, load_model, predict
    from tapeout.cost.assumptions import Assumptions
    from tapeout.cost.price import estimate

    hw = load_hardware(hardware)
    a = Assumptions.load(assumptions)
    r = estimate(hw, a)
    d = r.to_dict()
    if model is not None:
        m = load_model(model)
        kw = dict(batch=batch, input_len=input_len, output_len=output_len, tier=tier)
        pp, note = 1, None
        if tp is None:
            found = smallest_fitting_group(m, hw, **kw)
            if found is None:
                tp, p = 1, predict(m, hw, **kw)
                note = (f"{m.name} fits no group of up to {_groups(hw)[-1][0] * _groups(hw)[-1][1]} {hw.name} "
                        f"devices (tp within the scale-up domain x pp up to {PP_CHOICES[-1]}); priced as one device, "
                        "which cannot run it")
            else:
                tp, pp, p = found
                if tp * pp > 1:
                    note = (f"{m.name} needs {_gb(predict(m, hw, **kw).memory.total_bytes)} on one device of "
                            f"{_gb(p.memory.capacity_bytes)}: priced on the smallest group that holds it, tp {tp}"
                            + (f" x pp {pp} ({pp} batches in flight)" if pp > 1 else "")
                            + f" = {tp * pp} devices")
        else:
            p = predict(m, hw, tp=tp, **kw)
            if not p.memory.fits:
                found = smallest_fitting_group(m, hw, **kw)
                hint = (f"; the smallest group that holds it is tp {found[0]}" + (f" x pp {found[1]}" if found[1] > 1
                                                                                  else "")
                        + " (leave --tp out to price it)") if found else "; no group tried holds it"
                note = (f"does not fit: {m.name} needs {_gb(p.memory.total_bytes)} per device at tp {tp}, "
                        f"{hw.name} has {_gb(p.memory.capacity_bytes)}{hint}")
        devices = tp * pp
        fits = bool(p.memory.fits)
        per_dev = p.throughput_tok_s / devices
        d["performance"] = {
            "model": p.model.name, "batch": batch, "input_len": input_len, "output_len": output_len, "tp": tp,
            "pp": pp, "pp_microbatches": pp, "devices": devices,
            "tier": p.tier, "fits": fits, "ttft_s": p.ttft_s, "tpot_s": p.tpot_s,
            "throughput_tok_s": p.throughput_tok_s, "throughput_tok_s_per_device": per_dev,
            "tok_s_per_kusd": 1000 * r.perf_per_dollar(per_dev) if fits else None,
            "tok_per_joule": r.perf_per_watt(per_dev) if fits else None,
            "usd_per_mtok": r.usd_per_mtok(per_dev) if fits else None,
            "note": note, "warnings": list(p.warnings),
        }
    return json_safe(d)


def _gb(x: float) -> str:
    return f"{x / 1e9:,.1f} GB"


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
        group = f"tp {perf['tp']}" + (f" x pp {perf['pp']}" if perf["pp"] > 1 else "")
        t.add_row(f"{perf['model']} on", f"{perf['devices']} device(s), {group}")
        t.add_row("fits in memory", "yes" if perf["fits"] else "[red]no[/]")
        t.add_row("throughput per device", f"{perf['throughput_tok_s_per_device']:.1f} tok/s")
        t.add_row("tokens/s per $1000", f"{perf['tok_s_per_kusd']:.2f}" if perf["tok_s_per_kusd"] is not None else "-")
        t.add_row("$ per million tokens", f"${perf['usd_per_mtok']:.3f}" if perf["usd_per_mtok"] is not None else "-")
    con.print(t)
    from rich.markup import escape

    if d.get("estimate_note"):
        con.print(f"[yellow]note:[/yellow] {escape(d['estimate_note'])}")
    if perf and perf.get("note"):
        con.print(f"[yellow]note:[/yellow] {escape(perf['note'])}")
    for w in (perf or {}).get("warnings", []):
        con.print(f"[yellow]warning:[/yellow] {escape(w)}")
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
    tp: Annotated[Optional[int], typer.Option(
        help="tensor-parallel degree (with --model; default: the smallest tp x pp group that holds the model)")
    ] = None,
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
app.command("cost", cls=BoolValueCommand)(cost_command)


@app.callback()
def _root() -> None:  # keeps "cost" a subcommand when this app runs alone
    """tapeout cost (standalone)."""


__all__ = ["app", "cost_command", "cost_report"]
