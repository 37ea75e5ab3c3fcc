"""``tapeout explore SPACE`` and ``tapeout explore --report RUN``.

Registered in the main CLI as ``app.command("explore")(explore_command)``; runnable alone through
``app`` below (tests use it).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tapeout.clicommand import BoolValueCommand, RichProgress
from tapeout.cliutil import TableOrJson, fail, json_safe
from tapeout.errors import TapeoutError


class Executor(str, Enum):
    local = "local"
    ray = "ray"


class Method(str, Enum):
    auto = "auto"
    grid = "grid"
    nsga2 = "nsga2"
    random = "random"




def explore_command(
    space: Annotated[Optional[Path], typer.Argument(help="design-space file (TOML/YAML/JSON)")] = None,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="print the Pareto front of a run database and write CSV/Parquet/PNG/HTML")] = None,
    db: Annotated[Optional[Path], typer.Option(
        help="run database (default: SPACE's file name with suffix .db, or .TIER.db with --tier, in the working "
        "directory)")] = None,
    executor: Annotated[Executor, typer.Option(help="local process pool | ray")] = Executor.local,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="worker processes (default: CPU count)")] = None,
    method: Annotated[Optional[Method], typer.Option(help="auto | grid | nsga2 | random (default: the space's)")] = None,
    trials: Annotated[Optional[int], typer.Option(help="points for nsga2 / random (at least 1)")] = None,
    tier: Annotated[Optional[str], typer.Option(help="performance tier (default: the space's)")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: a local Ray)")] = None,
    rate: Annotated[Optional[float], typer.Option(
        help="serving objectives: requests/s (sets the space's serving.rate)")] = None,
    slo_ttft: Annotated[Optional[float], typer.Option(help="serving objectives: TTFT SLO, s (serving.slo_ttft)")] = None,
    slo_tpot: Annotated[Optional[float], typer.Option(help="serving objectives: TPOT SLO, s (serving.slo_tpot)")] = None,
    num_requests: Annotated[Optional[int], typer.Option(
        help="serving objectives: requests simulated per replica (serving.num_requests)")] = None,
    fresh: Annotated[bool, typer.Option("--fresh/--no-fresh", help="discard an existing run database")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="progress bar with ETA")] = True,
    out: Annotated[Optional[Path], typer.Option(help="--report: output directory (default: beside the database)")] = None,
    top: Annotated[int, typer.Option(help="--report: rows of the front to print")] = 20,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="--report: table | json")] = TableOrJson.table,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="--report: also write a self-contained offline HTML report (Pareto plot, designs)")] = None,
) -> None:
    """Explore a design space (grid / NSGA-II, local or Ray), or report a run's Pareto front."""
    from tapeout.explore import report as rp

    if (space is None) == (report is None):
        fail("give a SPACE file to explore, or --report RUN to report a run (not both)")
    if html is not None and report is None:
        fail("html: goes with --report RUN (the report of a stored run)")
    try:
        if report is not None:
            run_data = rp.load_run(report)
            files = rp.write_outputs(run_data, out)
            if html is not None:
                from tapeout.report.html import write_report

                files["report_html"] = str(write_report(html, {"kind": "explore", "run": rp.to_dict(run_data)}))
            if format is TableOrJson.json:
                typer.echo(json.dumps(json_safe({**rp.summary(run_data, top), "files": files}), indent=2))
            else:
                rp.print_front(run_data, top)
                for k, v in files.items():
                    typer.echo(f"{k}: {v}")
            return
        from tapeout.explore.run import run
        from tapeout.explore.space import load_space

        assert space is not None
        sp = load_space(space)
        serving = {k: v for k, v in (("rate", rate), ("slo_ttft", slo_ttft), ("slo_tpot", slo_tpot),
                                     ("num_requests", num_requests)) if v is not None}
        if tier is not None or serving:
            d = json.loads(sp.to_json())
            if tier is not None:
                d["tier"] = tier
            if serving:
                d["serving"] = {**(d.get("serving") or {}), **serving}
            sp = load_space(d)
        # runs go to the working directory (never beside a space shipped inside the package)
        target = db or Path(space.with_suffix(f".{tier}.db" if tier is not None else ".db").name)
        bar = RichProgress(sp.name) if progress else None
        s = run(sp, target, executor=executor.value, jobs=jobs, method=method.value if method else None,
                trials=trials, progress=bar, ray_address=ray_address, fresh=fresh)
    except TapeoutError as exc:
        fail(str(exc))
    typer.echo(f"{s.method} on {s.executor}: {s.evaluated} evaluated, {s.skipped} already in {s.db}, "
               f"{s.seconds:.1f} s ({s.points_per_minute:,.0f} points/min)")
    try:
        line = rp.feasibility_line(rp.load_run(s.db))
    except TapeoutError:
        line = None
    if line:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"report: tapeout explore --report {s.db}")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("explore", cls=BoolValueCommand)(explore_command)


@app.callback()
def _root() -> None:  # keeps "explore" a subcommand when this app runs alone
    """tapeout explore (standalone)."""


__all__ = ["app", "explore_command"]
