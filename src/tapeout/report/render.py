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
    "network_s", "overhead_s", "kernel", "weight_bytes", "matrix_s", "dequant_s", "extract_s",
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
    from rich.table import Table

    con = console or _console()
    i, mem = d["inputs"], d["memory"]
    dec = d["phases"]["decode"]
    pp, mb, ep = i.get("pp", 1), i.get("pp_microbatches", 1), i.get("ep", 1)
    layout = ([f"tp {i['tp']} x pp {pp}, {mb} in flight"] if pp > 1 else []) + ([f"experts over {ep}"] if ep > 1 else [])
    devices = f"{i['tp'] * pp} x {i['hardware']}" + (f" ({'; '.join(layout)})" if layout else "")
    con.print(
        f"[bold]{i['model']}[/] on [bold]{devices}[/]  "
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
    scope = "whole batch" if mb == 1 else f"{mb} batches in flight"
    s.add_row("Throughput", f"{d['throughput_tok_s']:.1f} tokens/s (generated, {scope})")
    fits = "[green]fits[/]" if mem["fits"] else "[red]does NOT fit[/]"
    s.add_row(
        "Memory per device",
        f"{fmt.nbytes(mem['total_bytes'])} of {fmt.nbytes(mem['capacity_bytes'])} {fits}: "
        f"weights {fmt.nbytes(mem['weights_bytes'])}, KV {fmt.nbytes(mem['kv_cache_bytes'])}, "
        f"activations {fmt.nbytes(mem['activation_bytes'])}, reserve {fmt.nbytes(mem['runtime_reserve_bytes'])}",
    )
    s.add_row("Largest batch that fits", str(mem["max_batch"]))
    conc = d.get("concurrency", i["batch"])
    if conc and conc < i["batch"]:
        s.add_row("KV pool", f"{mem['kv_capacity_tokens']} tokens: {conc} of {i['batch']} sequences run at once, "
                  f"in waves (TTFT and TPOT are the first wave's; e2e and throughput cover all)")
    con.print(s)
    from rich.markup import escape

    techniques = _techniques_line(i)
    if techniques:
        con.print(escape(techniques))
    if "comparison" in d:
        _print_comparison(con, d["comparison"])
    for phase, title in (("prefill", "Prefill"), ("decode", f"Decode step at context {dec['ops_shown_at_context']}")):
        t = Table(title=title, title_justify="left")
        for col, just in (("op", "left"), ("×", "right"), ("shape", "left"), ("format w/a", "left"),
                          ("kernel", "left"), ("bytes", "right"), ("bound", "left"), ("per run", "right"),
                          ("dequant/extract", "right"), ("total", "right"), ("share", "right"), ("FLOP/B", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in (r for r in d["ops"] if r["phase"] == phase):
            inten = r["intensity"]
            extra = r.get("dequant_s", 0.0) or r.get("extract_s", 0.0)
            t.add_row(
                escape(r["name"]), str(r["count"]), fmt.shape(r["shape"]), _format(r), r.get("kernel", "dense"),
                fmt.nbytes(r["bytes_read"] + r["bytes_written"]), r["bound"], fmt.seconds(r["time_s"]),
                fmt.seconds(extra) if extra else "-", fmt.seconds(r["total_s"]), f"{100 * r['share']:.1f}%",
                "-" if inten is None else f"{inten:.1f}",
            )
        con.print(t)


def _format(r: dict[str, Any]) -> str:
    """Weights/activations (compute) of a GEMM, the activation or KV format of other ops."""
    f = r.get("formats") or {}
    if "weights" in f:
        s = f"{f['weights']}/{f.get('act', '')}"
        if "sparsity" in f:
            s += f" sp {f['sparsity']}"
        return s
    if "kv" in f and f["kv"] != f.get("act"):
        return f"kv {f['kv']}"
    return r["compute_dtype"]


def _techniques_line(i: dict[str, Any]) -> str:
    parts = []
    if i.get("sparsity"):
        parts.append(f"sparsity {i['sparsity']} (kernel {i.get('sparse_kernel', 'auto')})")
    for rule in i.get("layers") or []:
        sel = "all layers" if rule.get("layers") is None else f"layers {rule['layers']}"
        what = ", ".join(f"{k} {v}" for k, v in rule.items() if k not in ("match", "layers"))
        parts.append(f"[{rule['match']} @ {sel}: {what}]")
    return ("Techniques: " + "; ".join(parts)) if parts else ""


def _print_comparison(con: Any, c: dict[str, Any]) -> None:
    from rich.table import Table

    b = c["baseline"]
    t = Table(title=f"Compared with weights {b['weights']}, activations {b['activations']}, KV {b['kv_cache']}",
              title_justify="left")
    for col in ("", "baseline", "technique", "speedup"):
        t.add_column(col, justify="left" if not col else "right")
    for key, label in (("ttft_s", "prefill (TTFT)"), ("tpot_s", "decode step (TPOT)"),
                       ("e2e_latency_s", "end to end")):
        v = c[key]
        t.add_row(label, fmt.seconds(v["baseline"]), fmt.seconds(v["technique"]), f"{v['speedup']:.2f}x")
    v = c["throughput_tok_s"]
    t.add_row("throughput", f"{v['baseline']:.1f} tok/s", f"{v['technique']:.1f} tok/s", f"{v['speedup']:.2f}x")
    w = c["memory"]["weights_bytes"]
    t.add_row("weights per device", fmt.nbytes(w["baseline"]), fmt.nbytes(w["technique"]), f"x{w['ratio']:.2f}")
    mb = c["memory"]["max_batch"]
    t.add_row("largest batch", str(mb["baseline"]), str(mb["technique"]), "")
    con.print(t)
