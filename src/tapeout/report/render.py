"""Render a prediction dict (``Prediction.to_dict()``) as a rich table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tapeout.report import fmt

#: the per-op row's keys (:func:`tapeout.prediction.op_row`) that are not columns: ``terms``, a mapping per op
CSV_OMIT = ("terms",)


def to_json(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, allow_nan=False)


def to_csv(d: dict[str, Any], baseline: list[dict[str, Any]] | None = None) -> str:
    """Per-op rows; with ``baseline`` (the ``compare_to`` run's ``ops()``) a first column ``run`` tells the
    technique's rows from the baseline's."""
    buf = io.StringIO()
    cols = [k for k in d["ops"][0] if k not in CSV_OMIT]  # the per-op rows' keys, defined once in op_row
    cols = ["run", *cols] if baseline is not None else cols
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    runs = [("technique", d["ops"]), ("baseline", baseline)] if baseline is not None else [("", d["ops"])]
    for run, rows in runs:
        for row in rows:
            r = dict(row, run=run)
            r["shape"] = fmt.shape(row["shape"])
            r["formats"] = fmt.shape(row["formats"])
            w.writerow(r)
    return buf.getvalue()


def _console() -> Any:
    from rich.console import Console

    con = Console()
    # piped output (files, tests, CI logs) gets a width that keeps the per-op table whole
    return con if con.is_terminal else Console(width=200)


def print_table(d: dict[str, Any], console: Any = None, *, ops: bool = False) -> None:
    """The summary (warnings and notes first); with ``ops`` the per-op tables, fitted to the console width."""
    from rich.markup import escape
    from rich.table import Table

    con = console or _console()
    i, mem = d["inputs"], d["memory"]
    dec = d["phases"]["decode"]
    pp, mb, ep = i.get("pp", 1), i.get("pp_microbatches", 1), i.get("ep", 1)
    dp = i.get("dp_attention", 1)
    layout = ([f"tp {i['tp']} x pp {pp}, {mb} in flight"] if pp > 1 else []) + ([f"experts over {ep}"] if ep > 1 else [])
    if dp > 1:
        layout.append(f"data-parallel attention: {dp} groups of batch {i['batch']}")
    devices = f"{max(i['tp'] * pp, dp)} x {i['hardware']}" + (f" ({'; '.join(layout)})" if layout else "")
    con.print(
        f"[bold]{i['model']}[/] on [bold]{devices}[/]  "
        f"batch {i['batch']}, {i['input_len']} in / {i['output_len']} out, "
        f"weights {i['weights']}, activations {i['activations']}, KV {i['kv_cache']}, "
        f"attention {i['attention']}, tier {i['tier']}"
    )
    for w in d.get("warnings", []):
        con.print(f"[yellow]warning:[/] {escape(w)}")
    for n in d.get("notes", []):
        con.print(f"note: {escape(n)}")
    info = d.get("model_info", {})
    spans = info.get("attention_layers", {})
    if len(spans) > 1 or any(k != "full" for k in spans) or "mla_forms" in info:
        forms = info.get("mla_forms")
        con.print("attention layers: " + ", ".join(f"{n} {k}" for k, n in spans.items())
                  + (f"; MLA {forms['prefill']} prefill, {forms['decode']} decode" if forms else ""))
    s = Table(show_header=False, box=None, pad_edge=False)
    s.add_row("TTFT (prefill)", fmt.seconds(d["ttft_s"]))
    if mb > 1:
        # a cycle advances every batch in flight one token: max(one batch's pass, mb x the slowest stage)
        stages = dec.get("stage_times_s") or []
        s.add_row("TPOT (mean decode cycle)",
                  f"{fmt.seconds(d['tpot_s'])}  (cycle at context {dec['first_context']}: "
                  f"{fmt.seconds(dec['first_cycle_s'])} → {dec['last_context']}: {fmt.seconds(dec['last_cycle_s'])})")
        s.add_row("", f"each cycle moves all {mb} batches in flight one token: max(one batch's pass through the "
                      f"{pp} stages, {mb} x the slowest stage); at context {dec['ops_shown_at_context']} one pass is "
                      f"{fmt.seconds(sum(stages))}, the slowest stage {fmt.seconds(max(stages) if stages else 0.0)}")
    else:
        s.add_row("TPOT (mean decode step)", f"{fmt.seconds(d['tpot_s'])}  "
                  f"(context {dec['first_context']}: {fmt.seconds(dec['first_step_s'])} → "
                  f"{dec['last_context']}: {fmt.seconds(dec['last_step_s'])})")
    a2a = (d["phases"]["prefill"].get("all_to_all_s", 0.0), dec.get("all_to_all_s", 0.0))
    if any(a2a):
        s.add_row("Expert all-to-all", f"{fmt.seconds(a2a[0])} of the prefill, {fmt.seconds(a2a[1])} of a decode step "
                  "(dispatch + combine)")
        if d["inputs"].get("two_batch_overlap"):
            shown = (d["phases"]["prefill"]["all_to_all_exposed_s"], dec["all_to_all_exposed_s"])
            s.add_row("", f"two-batch overlap: {fmt.seconds(shown[0])} and {fmt.seconds(shown[1])} of them not hidden "
                          "by the other micro-batch's compute")
    s.add_row("End-to-end latency", fmt.seconds(d["e2e_latency_s"]))
    scope = "whole batch" if mb == 1 else f"{mb} batches in flight"
    if dp > 1:
        scope = f"all {dp} data-parallel groups"
    s.add_row("Throughput", f"{d['throughput_tok_s']:.1f} tokens/s (generated, {scope})")
    fits = "[green]fits[/]" if mem["fits"] else "[red]does NOT fit[/]"
    s.add_row(
        "Memory per device",
        f"{fmt.nbytes(mem['total_bytes'])} of {fmt.nbytes(mem['capacity_bytes'])}"
        f" ({mem['capacity_bytes'] / 2**30:g} GiB) {fits}: "
        f"weights {fmt.nbytes(mem['weights_bytes'])}, KV {fmt.nbytes(mem['kv_cache_bytes'])}, "
        f"activations {fmt.nbytes(mem['activation_bytes'])}, reserve {fmt.nbytes(mem['runtime_reserve_bytes'])}",
    )
    s.add_row("Largest batch that fits", str(mem["max_batch"]))
    conc = d.get("concurrency", i["batch"])
    if conc and conc < i["batch"]:
        s.add_row("KV pool", f"{mem['kv_capacity_tokens']} tokens: {conc} of {i['batch']} sequences run at once, "
                  f"in waves (TTFT and TPOT are the first wave's; e2e and throughput cover all)")
    con.print(s)

    techniques = _techniques_line(i)
    if techniques:
        con.print(escape(techniques))
    if "comparison" in d:
        _print_comparison(con, d["comparison"])
    if not ops:
        con.print("per-op tables: add --ops (or --format csv / json for every op's terms)", style="dim")
        return
    # narrow terminals drop the optional columns first; rich wraps what remains instead of cutting names
    optional = {"kernel", "dequant/extract", "FLOP/B", "shape"} if con.width < 120 else \
        {"kernel", "dequant/extract", "FLOP/B"} if con.width < 150 else set()
    for phase, title in (("prefill", "Prefill"), ("decode", f"Decode step at context {dec['ops_shown_at_context']}")):
        t = Table(title=title, title_justify="left")
        rows = [r for r in d["ops"] if r["phase"] == phase]
        cells = {
            "op": [escape(r["name"]) for r in rows],
            "×": [str(r["count"]) for r in rows],
            "shape": [fmt.shape(r["shape"]) for r in rows],
            "stored → computes": [_format(r) for r in rows],
            "kernel": [r.get("kernel", "dense") for r in rows],
            "bytes": [fmt.nbytes(r["bytes_read"] + r["bytes_written"]) for r in rows],
            "bound": [r["bound"] for r in rows],
            "per run": [fmt.seconds(r["time_s"]) for r in rows],
            "dequant/extract": [fmt.seconds(x) if (x := r.get("dequant_s", 0.0) or r.get("extract_s", 0.0)) else "-"
                                for r in rows],
            "total": [fmt.seconds(r["total_s"]) for r in rows],
            "share": [f"{100 * r['share']:.1f}%" for r in rows],
            "FLOP/B": ["-" if r["intensity"] is None else f"{r['intensity']:.1f}" for r in rows],
        }
        # columns that say nothing for this run (every kernel dense, nothing dequantized) are left out
        empty = {c for c, fill in (("kernel", "dense"), ("dequant/extract", "-")) if all(x == fill for x in cells[c])}
        cols = [c for c in cells if c not in optional | empty]
        for c in cols:
            # op names stay whole (the first thing a reader looks for); the other cells fold
            t.add_column(c, justify="left" if c in ("op", "shape", "stored → computes", "kernel", "bound")
                         else "right", overflow="fold", no_wrap=c == "op",
                         min_width=max(map(len, cells["op"]), default=2) if c == "op" else None)
        for k in range(len(rows)):
            t.add_row(*(cells[c][k] for c in cols))
        con.print(t)
    con.print("stored → computes: the formats an op reads and writes (w: weights, a: activations, kv: KV cache, "
              "table: embedding) → the format its arithmetic runs in (matrix ops: the peak used; '-': data "
              "movement only)", style="dim")


def _format(r: dict[str, Any]) -> str:
    """What an op stores (weights, activations, KV cache, table) and the format it computes in."""
    f = r.get("formats") or {}
    names = {"weights": "w", "act": "a", "kv": "kv", "table": "table"}
    stored = " ".join(f"{names[k]} {v}" for k, v in f.items() if k in names)
    if "sparsity" in f:
        stored += f" sp {f['sparsity']}"
    ran = r.get("computes_in")
    return f"{stored or '-'} → {ran or '-'}"


def _techniques_line(i: dict[str, Any]) -> str:
    parts = []
    if i.get("sparsity"):
        parts.append(f"sparsity {i['sparsity']} (kernel {i.get('sparse_kernel', 'auto')})")
    for rule in i.get("layers") or []:
        from tapeout.workload.layers import range_label

        sel = "all layers" if rule.get("layers") is None else f"layers {range_label(tuple(rule['layers']))}"
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
