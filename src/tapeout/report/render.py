"""Render a prediction dict (``Prediction.to_dict()``) as a rich table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tapeout.report import fmt

CSV_COLUMNS = (
    "phase", "name", "kind", "count", "shape", "formats", "compute_dtype", "flops", "bytes_read",
    "bytes_written", "intensity", "bound", "time_s", "total_s", "share", "compute_s", "memory_s",
    "network_s", "overhead_s",
)


def to_json(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, allow_nan=False)


def to_csv(d: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in d["ops"]:
        r = dict(row)
        r["shape"] = fmt.shape(row["shape"])
        r["formats"] = fmt.shape(row["formats"])
        w.writerow(r)
    return buf.getvalue()


def _console() -> Any:
    from rich.console import Console

    con = Console()
    # piped output (files, tests, CI logs) gets a width that keeps the per-op table whole
    return con if con.is_terminal else Console(width=160)


def print_table(d: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or _console()
    i, mem = d["inputs"], d["memory"]
    dec = d["phases"]["decode"]
    con.print(
        f"[bold]{i['model']}[/] on [bold]{i['tp']} x {i['hardware']}[/]  "
        f"batch {i['batch']}, {i['input_len']} in / {i['output_len']} out, "
        f"weights {i['weights']}, activations {i['activations']}, KV {i['kv_cache']}, "
        f"attention {i['attention']}, tier {i['tier']}"
    )
    s = Table(show_header=False, box=None, pad_edge=False)
    s.add_row("TTFT (prefill)", fmt.seconds(d["ttft_s"]))
    s.add_row("TPOT (mean decode step)", f"{fmt.seconds(d['tpot_s'])}  "
              f"(context {dec['first_context']}: {fmt.seconds(dec['first_step_s'])} → "
              f"{dec['last_context']}: {fmt.seconds(dec['last_step_s'])})")
    s.add_row("End-to-end latency", fmt.seconds(d["e2e_latency_s"]))
    s.add_row("Throughput", f"{d['throughput_tok_s']:.1f} tokens/s (generated, whole batch)")
    fits = "[green]fits[/]" if mem["fits"] else "[red]does NOT fit[/]"
    s.add_row(
        "Memory per device",
        f"{fmt.nbytes(mem['total_bytes'])} of {fmt.nbytes(mem['capacity_bytes'])} {fits}: "
        f"weights {fmt.nbytes(mem['weights_bytes'])}, KV {fmt.nbytes(mem['kv_cache_bytes'])}, "
        f"activations {fmt.nbytes(mem['activation_bytes'])}, reserve {fmt.nbytes(mem['runtime_reserve_bytes'])}",
    )
    s.add_row("Largest batch that fits", str(mem["max_batch"]))
    con.print(s)
    for phase, title in (("prefill", "Prefill"), ("decode", f"Decode step at context {dec['ops_shown_at_context']}")):
        t = Table(title=title, title_justify="left")
        for col, just in (("op", "left"), ("×", "right"), ("shape", "left"), ("format", "left"),
                          ("bound", "left"), ("per run", "right"), ("total", "right"), ("share", "right"),
                          ("FLOP/B", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in (r for r in d["ops"] if r["phase"] == phase):
            inten = r["intensity"]
            t.add_row(
                r["name"], str(r["count"]), fmt.shape(r["shape"]), r["compute_dtype"], r["bound"],
                fmt.seconds(r["time_s"]), fmt.seconds(r["total_s"]), f"{100 * r['share']:.1f}%",
                "-" if inten is None else f"{inten:.1f}",
            )
        con.print(t)
