"""``tapeout simulate`` and ``tapeout capacity`` (registered in :mod:`tapeout.cli`)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tapeout.clicommand import options_from
from tapeout.cliutil import TableOrJson, fail, json_safe
from tapeout.errors import TapeoutError
from tapeout.serving.sim import SCENARIO_EXCLUDE
from tapeout.workload.scenario import PredictInputs

#: what the scenario options mean in a simulation: per replica, whole experts only, the pool of a paged engine
SIMULATE_HELP = {"tp": "tensor-parallel degree of each replica", "pp": "pipeline stages of each replica",
                 "pp_microbatches": "batches in flight through each replica's pipeline (virtual engines; 1: one at "
                 "a time)", "ep": "expert parallelism: 1 or tp", "kv_fraction": "share of the free memory the KV "
                 "pool gets"}


def _rate(text: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "infinity"):
        return math.inf
    try:
        v = float(t)
    except ValueError:
        fail(f"rate: {text!r} is not a number; allowed: a number > 0 or inf")
    if not (v > 0) or math.isnan(v):
        fail(f"rate: {text!r}; allowed: a number > 0 or inf")
    return v


def _int_or_text(text: str) -> Any:
    return int(text) if text.strip().isdigit() else text


def _table(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    i = d["inputs"]
    con = Console() if Console().is_terminal else Console(width=120)
    load = (f"from {Path(i['trace']).name}" if i["trace"] else "all at once" if i["rate"] == "inf"
            else f"at {i['rate']:g} req/s") + (f", at most {i['concurrency']} in flight" if i["concurrency"] else "")
    mb = i.get("pp_microbatches", 1)
    pipe = f"pp{i['pp']}" + (f", {mb} batches in flight" if mb > 1 else "")
    t = Table(title=f"tapeout simulate: {i['model']} on {i['hardware']} (tp{i['tp']} {pipe}), {i['scheduler']}, "
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


@options_from(PredictInputs, exclude=SCENARIO_EXCLUDE, help=SIMULATE_HELP)
def simulate_command(
    model: Annotated[str, typer.Option(help="catalog name, HF repo id, or path to a config.json")],
    hardware: Annotated[str, typer.Option(help="catalog name or path to a TOML/YAML device file")],
    scheduler: Annotated[str, typer.Option(help="static | continuous | chunked")] = "continuous",
    max_batch: Annotated[int, typer.Option("--max-batch", help="running requests at most")] = 256,
    max_num_tokens: Annotated[Optional[int], typer.Option(
        "--max-num-tokens", help="tokens per iteration (default 8192 continuous, 2048 chunked)")] = None,
    kv_tokens: Annotated[Optional[int], typer.Option("--kv-tokens", help="KV pool in tokens (instead of kv-fraction)")] = None,
    block_size: Annotated[int, typer.Option("--block-size", help="tokens per KV block")] = 16,
    kv_policy: Annotated[str, typer.Option(
        "--kv-policy", help="reserve (a request's final context at admission, never preempted) | paged (blocks "
        "as tokens come, preemption by recompute) | turbomind (LMDeploy TurboMind's: priority by arrival, the "
        "newest swapped out keeping their prefix's KV)")] = "reserve",
    replicas: Annotated[int, typer.Option(help="engine replicas behind the router")] = 1,
    router: Annotated[str, typer.Option(help="round_robin | least_tokens")] = "round_robin",
    prefill_replicas: Annotated[int, typer.Option("--prefill-replicas", help="P/D disaggregation: prefill pool")] = 0,
    decode_replicas: Annotated[int, typer.Option("--decode-replicas", help="P/D disaggregation: decode pool")] = 0,
    input_len: Annotated[str, typer.Option(
        "--input-len", help="prompt tokens: 512, or lognormal:mean=250,sigma=1 | uniform:low=..,high=.. | "
        "normal:mean=..,std=.. | empirical:path=lens.csv,column=..")] = "1024",
    output_len: Annotated[str, typer.Option("--output-len", help="output tokens (same forms)")] = "128",
    num_requests: Annotated[Optional[int], typer.Option("--num-requests", help="requests (default 1000)")] = None,
    rate: Annotated[str, typer.Option(help="requests/s, or inf (all at once)")] = "inf",
    arrival: Annotated[str, typer.Option(help="poisson | gamma")] = "poisson",
    burstiness: Annotated[float, typer.Option(help="gamma shape (1: Poisson)")] = 1.0,
    concurrency: Annotated[Optional[int], typer.Option(help="requests in flight at most (closed loop with rate inf)")] = None,
    requests: Annotated[Optional[Path], typer.Option(
        "--requests", help="JSONL request trace: {arrival_s, input_len, output_len} per line ('sample': the "
        "shipped one)")] = None,
    workload: Annotated[Optional[str], typer.Option(help="length preset: sharegpt")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    slo_ttft: Annotated[Optional[float], typer.Option("--slo-ttft", help="TTFT SLO, seconds (goodput)")] = None,
    slo_tpot: Annotated[Optional[float], typer.Option("--slo-tpot", help="TPOT SLO, seconds (goodput)")] = None,
    exact: Annotated[bool, typer.Option("--exact", help="price every iteration exactly (no shape buckets)")] = False,
    trace: Annotated[Optional[Path], typer.Option("--trace", help="write a Chrome trace (chrome://tracing, Perfetto)")] = None,
    plots: Annotated[Optional[Path], typer.Option(
        "--plots", help="write latency CDFs and batch/KV over time into this folder (explore extra)")] = None,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
    **inputs: Any,
) -> None:
    """Simulate serving: requests through continuous-batching replicas; TTFT, TPOT, ITL, throughput, goodput."""
    from tapeout.serving.sim import simulate

    try:
        res = simulate(
            model, hardware, **inputs, scheduler=scheduler, max_batch=max_batch, max_num_tokens=max_num_tokens,
            kv_tokens=kv_tokens, block_size=block_size, kv_policy=kv_policy, replicas=replicas, router=router,
            prefill_replicas=prefill_replicas, decode_replicas=decode_replicas, input_len=_int_or_text(input_len),
            output_len=_int_or_text(output_len), num_requests=num_requests, rate=_rate(rate), arrival=arrival,
            burstiness=burstiness, concurrency=concurrency, trace=requests, workload=workload, seed=seed,
            slo_ttft=slo_ttft, slo_tpot=slo_tpot, exact=exact,
            progress=sys.stderr.isatty() and (num_requests or 1000) >= 2000,
        )
        if trace is not None:
            res.write_trace(trace)
            typer.echo(f"wrote Chrome trace {trace}", err=True)
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


def _ints(text: str, field: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"{field}: {text!r}; allowed: comma-separated integers, e.g. 1,2,4")
    if not out or any(x < 1 for x in out):
        fail(f"{field}: {text!r}; allowed: comma-separated integers >= 1")
    return out


@options_from(PredictInputs, exclude=(*SCENARIO_EXCLUDE, "tp"), help=SIMULATE_HELP)
def capacity_command(
    model: Annotated[str, typer.Option(help="catalog name, HF repo id, or path to a config.json")],
    hardware: Annotated[str, typer.Option(help="catalog name or path to a device file")],
    slo_ttft: Annotated[Optional[float], typer.Option("--slo-ttft", help="TTFT SLO, seconds")] = None,
    slo_tpot: Annotated[Optional[float], typer.Option("--slo-tpot", help="TPOT SLO, seconds")] = None,
    percentile: Annotated[float, typer.Option(help="percentile the SLOs apply to")] = 99,
    rate: Annotated[Optional[float], typer.Option(
        help="requests/s to serve: find the cheapest configuration (default: the highest rate on --gpus)")] = None,
    gpus: Annotated[int, typer.Option(help="devices available (highest-rate mode)")] = 8,
    tp: Annotated[Optional[str], typer.Option("--tp", help="tensor-parallel degrees to try, e.g. 1,2,4,8")] = None,
    max_batch: Annotated[str, typer.Option("--max-batch", help="max batch sizes to try")] = "64,128,256",
    scheduler: Annotated[str, typer.Option(help="static | continuous | chunked")] = "continuous",
    input_len: Annotated[str, typer.Option("--input-len", help="prompt tokens (int or distribution)")] = "1024",
    output_len: Annotated[str, typer.Option("--output-len", help="output tokens (int or distribution)")] = "128",
    workload: Annotated[Optional[str], typer.Option(help="length preset: sharegpt")] = None,
    num_requests: Annotated[int, typer.Option("--num-requests", help="requests per replica and point")] = 300,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="table | json")] = TableOrJson.table,
    **inputs: Any,
) -> None:
    """The highest request rate meeting SLOs on a device budget, or the cheapest configuration for a rate ($/Mtok)."""
    from tapeout.serving.capacity import capacity

    sim: dict[str, Any] = {"input_len": _int_or_text(input_len), "output_len": _int_or_text(output_len)}
    if workload is not None:
        sim["workload"] = workload
    # the scenario options given (the defaults are simulate's own; the JSON names only what was chosen)
    sim |= {k: v for k, v in inputs.items() if v != PredictInputs.model_fields[k].default}
    try:
        d = capacity(model, hardware, slo_ttft=slo_ttft, slo_tpot=slo_tpot, percentile=percentile, rate=rate,
                     gpus=gpus, tps=_ints(tp, "tp") if tp else None, max_batches=_ints(max_batch, "max_batch"),
                     scheduler=scheduler, num_requests=num_requests, seed=seed, **sim)
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
