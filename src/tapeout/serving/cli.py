"""``tapeout simulate`` and ``tapeout capacity`` (registered in :mod:`tapeout.cli`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tapeout.clicommand import options_from
from tapeout.cliutil import TableOrJson, fail, json_safe
from tapeout.errors import TapeoutError
from tapeout.serving.export import engine_line
from tapeout.serving.inputs import SCENARIO_EXCLUDE, CapacityInputs, ServingInputs
from tapeout.workload.scenario import PredictInputs

#: what the scenario options mean in a simulation: per replica, the pool of a paged engine
SIMULATE_HELP = {"tp": "tensor-parallel degree of each replica", "pp": "pipeline stages of each replica",
                 "pp_microbatches": "batches in flight through each replica's pipeline (virtual engines; 1: one at "
                 "a time)", "kv_fraction": "share of the free memory the KV pool gets"}
#: the command-line spellings that differ from the field names (--trace writes a Chrome trace; the list options
#: of capacity read as the one value each simulation takes)
SIMULATE_FLAGS = {"trace": "--requests"}
CAPACITY_FLAGS = {"tps": "--tp", "max_batches": "--max-batch"}


def _table(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    i = d["inputs"]
    con = Console() if Console().is_terminal else Console(width=120)
    load = (f"from {Path(i['trace']).name}" if i["trace"] else "all at once" if i["rate"] == "inf"
            else f"at {i['rate']:g} req/s") + (f", at most {i['concurrency']} in flight" if i["concurrency"] else "")
    mb = i.get("pp_microbatches", 1)
    pipe = f"pp{i['pp']}" + (f", {mb} batches in flight" if mb > 1 else "")
    t = Table(title=f"tapeout simulate: {i['model']} on {i['hardware']} (tp{i['tp']} {pipe}), {engine_line(i)}, "
                    f"{i['num_requests']} requests {load}")
    t.add_column("metric")
    for c in ("mean", "p50", "p90", "p99"):
        t.add_column(c, justify="right")
    for k, label in (("ttft_s", "TTFT (ms)"), ("tpot_s", "TPOT (ms)"), ("itl_s", "ITL (ms)"),
                     ("e2e_latency_s", "e2e latency (ms)")):
        t.add_row(label, *(f"{d[k][c] * 1e3:.2f}" for c in ("mean", "p50", "p90", "p99")))
    con.print(t)
    s = Table(show_header=False)
    s.add_column("item")
    s.add_column("value", justify="right")
    rows = [
        ("duration", f"{d['duration_s']:.2f} s"),
        ("request throughput", f"{d['request_throughput_rps']:.3f} req/s"),
        ("output throughput", f"{d['output_throughput_tok_s']:.1f} tok/s"),
        ("total throughput", f"{d['total_throughput_tok_s']:.1f} tok/s"),
        ("goodput", f"{d['goodput_rps']:.3f} req/s"),
        ("KV use mean / max", f"{d['kv_utilization']['mean'] * 100:.1f}% / {d['kv_utilization']['max'] * 100:.1f}%"),
        ("KV pool", f"{d['engine']['kv_capacity_tokens']} tokens ({d['engine']['num_blocks']} blocks)"),
        ("preemptions", str(d["preemptions"])),
        ("mean batch", f"{d['mean_batch_size']:.1f}"),
        ("iterations", str(d["iterations"])),
    ]
    for r in rows:
        s.add_row(*r)
    con.print(s)


@options_from(ServingInputs, (PredictInputs, SCENARIO_EXCLUDE), help=SIMULATE_HELP, flags=SIMULATE_FLAGS)
def simulate_command(
    model: Annotated[str, typer.Option(help="catalog name, HF repo id, or path to a config.json")],
    hardware: Annotated[str, typer.Option(help="catalog name or path to a TOML/YAML device file")],
    chrome_trace: Annotated[Optional[Path], typer.Option(
        "--trace", help="write a Chrome trace (chrome://tracing, Perfetto)")] = None,
    plots: Annotated[Optional[Path], typer.Option(
        "--plots", help="write latency CDFs and batch/KV over time into this folder (explore extra)")] = None,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
    **inputs: Any,
) -> None:
    """Simulate serving: requests through continuous-batching replicas; TTFT, TPOT, ITL, throughput, goodput."""
    from tapeout.serving.sim import simulate

    try:
        many = (inputs["num_requests"] or 1000) >= 2000
        res = simulate(model, hardware, **inputs, progress=sys.stderr.isatty() and many)
        if chrome_trace is not None:
            res.write_trace(chrome_trace)
            typer.echo(f"wrote Chrome trace {chrome_trace}", err=True)
        if plots is not None:
            written = res.plot(plots)
            typer.echo(f"wrote {len(written)} plot file(s) to {plots}", err=True)
    except TapeoutError as exc:
        fail(str(exc))
    d = res.to_dict()
    if format is TableOrJson.json:
        typer.echo(json.dumps(d, indent=2))
    else:
        _table(d)


@options_from(CapacityInputs, (PredictInputs, (*SCENARIO_EXCLUDE, "tp")), help=SIMULATE_HELP, flags=CAPACITY_FLAGS)
def capacity_command(
    model: Annotated[str, typer.Option(help="catalog name, HF repo id, or path to a config.json")],
    hardware: Annotated[str, typer.Option(help="catalog name or path to a device file")],
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
    **inputs: Any,
) -> None:
    """The highest request rate meeting SLOs on a device budget, or the cheapest configuration for a rate ($/Mtok)."""
    from tapeout.serving.capacity import capacity

    # the options given (the JSON names what was chosen, as the Python API's does)
    fields = CapacityInputs.model_fields | PredictInputs.model_fields
    given = {k: v for k, v in inputs.items() if v != fields[k].default}
    try:
        d = capacity(model, hardware, **given)
    except TapeoutError as exc:
        fail(str(exc))
    d = json_safe(d)
    if format is TableOrJson.json:
        typer.echo(json.dumps(d, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console() if Console().is_terminal else Console(width=140)
    i = d["inputs"]
    t = Table(title=f"tapeout capacity: {i['model']} on {i['hardware']}, p{i['percentile']:g} TTFT <= "
                    f"{i['slo_ttft_s']} s, TPOT <= {i['slo_tpot_s']} s"
                    + (f", {i['rate']} req/s" if i["rate"] else f", {i['gpus']} devices"))
    for c in ("tp", "max batch", "replicas", "devices", "req/s", "req/s/device", "TTFT p (ms)", "TPOT p (ms)",
              "$/hour", "$/Mtok", "meets SLO"):
        t.add_column(c, justify="right")
    for r in d["configs"]:
        def f(k: str, fmt: str = "{:.3g}") -> str:
            v = r.get(k)
            return "-" if v is None else fmt.format(v)
        mark = " *" if r is d["best"] or r == d["best"] else ""
        t.add_row(str(r["tp"]) + mark, str(r["max_batch"]), f("replicas", "{}"), f("gpus", "{}"), f("rate_rps"),
                  f("rate_per_gpu_rps"), "-" if r.get("ttft_p_s") is None else f"{r['ttft_p_s'] * 1e3:.1f}",
                  "-" if r.get("tpot_p_s") is None else f"{r['tpot_p_s'] * 1e3:.1f}",
                  f("usd_per_hour", "{:.3f}"), f("usd_per_mtok", "{:.4f}"), "yes" if r.get("meets_slo") else "no")
    con.print(t)
    for tp in sorted({s["tp"] for s in d["skipped"]}):
        why = next(s["reason"] for s in d["skipped"] if s["tp"] == tp)
        con.print(f"skipped tp{tp}: {why.split(';')[0]}")
    b = d["best"]
    con.print("best: none meets the SLOs" if b is None else
              f"best (*): tp{b['tp']}, max batch {b['max_batch']}, {b['replicas']} replica(s) on {b['gpus']} devices, "
              f"{b['rate_rps']:.3g} req/s, ${b['usd_per_mtok']:.4f}/Mtok (device cost model: "
              f"${d['usd_per_device_hour']:.3f}/device-hour)")


__all__ = ["capacity_command", "simulate_command"]
