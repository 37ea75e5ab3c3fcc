"""Command-line front end: a thin layer over the Python API.

Every user mistake becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tapeout.clicommand import BoolValueCommand, options_from, run_app
from tapeout.cliutil import TableOrJson, fail
from tapeout.errors import TapeoutError
from tapeout.datadir import DATA_HELP
from tapeout.workload.scenario import PredictInputs

app = typer.Typer(
    name="tapeout",
    help="Predict LLM inference latency, throughput and memory on real or imagined hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from tapeout import __version__

        typer.echo(f"tapeout {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Predict LLM inference latency, throughput and memory on real or imagined hardware."""


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command(cls=BoolValueCommand)
@options_from(PredictInputs)
def predict(
    model: Annotated[str, typer.Option(help="catalog name, HF repo id, or path to a config.json")],
    hardware: Annotated[str, typer.Option(help="catalog name or path to a TOML/YAML/JSON device file")],
    format: Annotated[Format, typer.Option("--format", "-f", help="table | json | csv")] = Format.table,
    ops: Annotated[bool, typer.Option(
        "--ops/--no-ops", help="table: also print the per-op tables of prefill and one decode step (json and csv "
        "always carry the per-op rows)")] = False,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="also write a self-contained offline HTML report (summary, per-op table, charts)")] = None,
    **inputs: Any,
) -> None:
    """Predict TTFT, TPOT, end-to-end latency, throughput and memory (per-op tables with --ops)."""
    from tapeout.api import predict as api_predict
    from tapeout.report import render

    try:
        p = api_predict(model, hardware, **inputs)
    except TapeoutError as exc:
        fail(str(exc))
    d = p.to_dict()
    if html is not None:
        from tapeout.report.html import write_report

        try:
            typer.echo(f"wrote {write_report(html, {'kind': 'predict', 'prediction': d})}", err=True)
        except TapeoutError as exc:
            fail(str(exc))
    if format is Format.table:
        render.print_table(d, ops=ops)
        return
    for w in d["warnings"]:  # the JSON carries them too; a CSV has no place for them
        typer.echo(f"warning: {w}", err=True)
    if format is Format.json:
        typer.echo(render.to_json(d))
    else:
        typer.echo(render.to_csv(d, baseline=p.baseline.ops() if p.baseline is not None else None), nl=False)


@app.command()
def models(format: Annotated[TableOrJson, typer.Option("--format", "-f")] = TableOrJson.table) -> None:
    """List the model catalog with key numbers."""
    from tapeout.models.catalog import list_models
    from tapeout.report import catalog as rc

    rc.models(list_models(), format.value)


@app.command("hardware")
def hardware_cmd(format: Annotated[TableOrJson, typer.Option("--format", "-f")] = TableOrJson.table) -> None:
    """List the device catalog with key numbers."""
    from tapeout.hardware.catalog import list_hardware
    from tapeout.report import catalog as rc

    rc.hardware(list_hardware(), format.value)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="a model or device name (or a spec file)")],
    format: Annotated[TableOrJson, typer.Option("--format", "-f")] = TableOrJson.table,
) -> None:
    """Print one model or device spec with the sources of its numbers."""
    from tapeout.errors import UnknownNameError
    from tapeout.hardware.catalog import hardware_names, load_hardware
    from tapeout.models.catalog import load_model, model_names
    from tapeout.report import catalog as rc

    spec = None
    path = Path(name).expanduser() if name.strip() else None
    if path is not None and path.exists():
        # a file: a device file if it has a device's keys, else a model (HF config.json, model TOML/YAML)
        loaders = (load_hardware, load_model) if _is_device_file(path) else (load_model, load_hardware)
        try:
            spec = loaders[0](path)
        except TapeoutError as exc:
            fail(str(exc))
        rc.show(spec, format.value)
        return
    for loader in (load_model, load_hardware):
        try:
            spec = loader(name)
            break
        except UnknownNameError:
            continue
        except TapeoutError as exc:
            fail(str(exc))
    if spec is None:
        fail(str(UnknownNameError("model or hardware", name, model_names() + hardware_names())))
    rc.show(spec, format.value)


def _is_device_file(path: Path) -> bool:
    """True for a spec file whose top level has a device's keys (peak_tflops, memory)."""
    from tapeout.specio import read_mapping

    if not path.is_file() or path.suffix.lower() not in (".toml", ".yaml", ".yml", ".json"):
        return False
    try:
        data = read_mapping(path)
    except TapeoutError:
        return False
    return bool({"peak_tflops", "memory"} & set(data))


@app.command("quantize-error", cls=BoolValueCommand)
def quantize_error(
    file: Annotated[Path, typer.Argument(help="a .safetensors file")],
    weights: Annotated[str, typer.Option(help="target format, e.g. fp6_e3m2, int4_g128, nf4, fp8")],
    all_tensors: Annotated[bool, typer.Option(
        "--all/--no-all", help="include 1-D tensors (norms, biases); also --all true|false")] = False,
    match: Annotated[Optional[str], typer.Option(help="regular expression selecting tensor names")] = None,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
) -> None:
    """Quantize every weight tensor of a safetensors file and print its error (MSE, SQNR, max, cosine) and size."""
    from tapeout.report import quant as rq
    from tapeout.numerics.qerror import quantize_file

    try:
        res = quantize_file(file, weights, all_tensors=all_tensors, match=match)
    except TapeoutError as exc:
        fail(str(exc))
    d = res.to_dict()
    if format is TableOrJson.json:
        typer.echo(rq.to_json(d))
    else:
        rq.print_table(d)


@app.command()
def validate(
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP)] = None,
    tier: Annotated[Optional[str], typer.Option(
        help="performance tier: tiled | roofline (default: as predict, tiled where the device has a "
        "micro-architecture, else roofline)")] = None,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
    efficiency: Annotated[str, typer.Option(
        help="catalog (devices as loaded) | calibrated (fitted/roofline.toml) | default (spec defaults)")
    ] = "catalog",
    compare_tier: Annotated[Optional[str], typer.Option(
        "--compare-tier", help="price the same cases with this tier too: a '<tier> MAPE' column (table; "
        "default roofline when --tier is not) and the key compare_mape_pct (json, only with this option)")
    ] = None,
    plots: Annotated[Optional[Path], typer.Option(
        "--plots", help="write a predicted-vs-measured plot per dataset into this folder (PNG with matplotlib, "
        "HTML with plotly, else a self-contained SVG page)")] = None,
    cv: Annotated[bool, typer.Option(
        "--cv", help="cross-validate: refit what each end-to-end source constrains without it and report its "
        "groups held out (json rows gain held_out, in_sample_mape_pct)")] = False,
) -> None:
    """Compare predictions with measured data: error per dataset, op class and device."""
    from tapeout.clicommand import RichProgress
    from tapeout.datadir import resolve_data_dir, strict
    from tapeout.perf import TIERS
    from tapeout.validate import evaluate
    from tapeout.validate.registry import load
    from tapeout.validate.render import groups_json, print_table
    from tapeout.validate.runner import DEFAULT_TIER

    if efficiency not in ("catalog", "calibrated", "default"):
        fail(f"efficiency: unknown choice {efficiency!r}; allowed: catalog, calibrated, default")
    for field, t in (("tier", tier), ("compare-tier", compare_tier)):
        if t is not None and t not in TIERS:
            fail(f"{field}: unknown tier {t!r}; allowed: {', '.join(sorted(TIERS))}")
    if data is not None and data.exists() and not data.is_dir():
        fail(f"data: {data} is a file; give the reference-data directory (the one holding measured/ and hardware/)")
    if plots is not None and plots.exists() and not plots.is_dir():
        fail(f"plots: {plots} is a file; give a folder to write the plots into (created when missing)")
    if cv and compare_tier is not None:
        fail("compare-tier: not with --cv (run the other tier's --cv on its own)")
    run_tier = tier or DEFAULT_TIER
    label = tier or "default (tiled where a micro-architecture exists, else roofline)"
    cmp_tier = compare_tier
    if cmp_tier is None and format is not TableOrJson.json and run_tier != "roofline" and not cv:
        cmp_tier = "roofline"  # the roofline figures beside the selected tier's
    if cmp_tier == run_tier and compare_tier is None:
        cmp_tier = None
    result = None
    try:
        typer.echo(f"validate: loading the measured cases from {resolve_data_dir(data)} ...", err=True)
        loaded = load(data)
        if loaded.absent and strict():
            fail(f"data: CI=true and {len(loaded.absent)} dataset(s) absent from {loaded.data_dir}: "
                 f"{', '.join(loaded.absent)}")
        bar = RichProgress(f"tier {run_tier}", unit="cases")
        if cv:
            from tapeout.fit.cv import cross_validate

            result = cross_validate(loaded.cases, run_tier, efficiency=efficiency, absent=loaded.absent, progress=bar)
            ev = result.evaluation
        else:
            ev = evaluate(data, run_tier, efficiency=efficiency, cases=loaded.cases, absent=loaded.absent,
                          progress=bar)
        cmp = None
        if cmp_tier:
            cmp = evaluate(data, cmp_tier, efficiency=efficiency, cases=loaded.cases,
                           progress=RichProgress(f"tier {cmp_tier}", unit="cases"))
    except TapeoutError as exc:
        fail(str(exc))
    if plots is not None:
        from tapeout.validate.plots import write_plots

        written = write_plots(ev, plots, tier=run_tier, compare=cmp, compare_tier=cmp_tier)
        typer.echo(f"wrote {len(written)} plot file(s) to {plots}", err=True)
    if format is TableOrJson.json:
        typer.echo(groups_json(ev, cmp if compare_tier else None, cv=result))
    else:
        title = f"tapeout validate: tier {label}, efficiency {efficiency}" + (", end-to-end held out" if cv else "")
        print_table(ev, title=title, compare=cmp, compare_tier=cmp_tier or "roofline", data_dir=loaded.data_dir,
                    cv=result)


@app.command("fit")
def fit_command(
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP)] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="re-fit and compare with the stored values (exit 1 when any differs); write nothing")] = False,
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="run this step (repeatable): roofline | tiled | frameworks | kernels | cost")] = None,
    store: Annotated[Optional[Path], typer.Option(
        "--store", help="the store directory to read and write (default: $TAPEOUT_FITTED, else src/tapeout/fitted)")
    ] = None,
    tol: Annotated[float, typer.Option(help="relative tolerance of --check")] = 1e-3,
    report: Annotated[bool, typer.Option("--report", help="print the roofline's before/after tables")] = False,
) -> None:
    """Regenerate every fitted number (src/tapeout/fitted/) from the measured data, or --check them."""
    from tapeout.fit.driver import STEP_NAMES, execute

    bad = sorted(set(only or ()) - set(STEP_NAMES))
    if bad:
        fail(f"only: unknown steps {bad}; allowed: {', '.join(STEP_NAMES)}")
    raise typer.Exit(execute(data=data, check=check, only=only or (), store_dir=store, tol=tol, report=report))


from tapeout.cost.cli import cost_command  # noqa: E402 (both import only typer)
from tapeout.explore.cli import explore_command  # noqa: E402
from tapeout.serving.cli import capacity_command, simulate_command  # noqa: E402
from tapeout.web.cli import ui_command  # noqa: E402

app.command("cost", cls=BoolValueCommand)(cost_command)
app.command("explore", cls=BoolValueCommand)(explore_command)
app.command("simulate", cls=BoolValueCommand)(simulate_command)
app.command("capacity", cls=BoolValueCommand)(capacity_command)
app.command("ui")(ui_command)


def main(argv: list[str] | None = None) -> None:
    """The ``tapeout`` console script: every error one line on stderr, status 2 for bad input."""
    sys.exit(run_app(app, argv))


if __name__ == "__main__":
    main()
