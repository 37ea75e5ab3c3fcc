"""Catalog listings and single-spec views."""

from __future__ import annotations

import json
from typing import Any

from tapeout.report import fmt
from tapeout.report.render import _console


def model_rows(specs: list) -> list[dict[str, Any]]:
    """One row per model (``tapeout models --format json``, ``GET /api/models``), with its source."""
    return [
        {
            "name": m.name, "hf_id": m.hf_id, "params": m.total_params(), "active_params": m.active_params(),
            "layers": m.num_layers, "hidden": m.hidden_size, "heads": m.num_heads, "kv_heads": m.num_kv_heads,
            "attention": m.attention_kind + "".join(f" {n}x{a.label}" for a, n in m.attention_spans() if a.kind != "full"),
            "moe": None if m.moe is None else f"{m.moe.num_experts}x top{m.moe.top_k}",
            "kv_bytes_per_token_fp16": m.kv_bytes_per_token(2.0),
            "source": m.source,
        }
        for m in specs
    ]


def models(specs: list, format: str) -> None:
    rows = model_rows(specs)
    if format == "json":
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="Models")
    for c in ("name", "params", "layers", "hidden", "heads/kv", "attn", "MoE", "KV/token fp16", "HF id"):
        t.add_column(c)
    for r in rows:
        params = fmt.count(r["params"]) + (f" ({fmt.count(r['active_params'])} active)" if r["moe"] else "")
        t.add_row(r["name"], params, str(r["layers"]), str(r["hidden"]), f"{r['heads']}/{r['kv_heads']}",
                  r["attention"], r["moe"] or "-", fmt.nbytes(r["kv_bytes_per_token_fp16"]), r["hf_id"] or "-")
    _console().print(t)


def hardware_rows(specs: list) -> list[dict[str, Any]]:
    """One row per device (``tapeout hardware --format json``, ``GET /api/hardware``), with the sources of
    its numbers."""
    from tapeout.hardware.spec import default_16bit

    return [
        {
            "name": h.name, "display_name": h.display_name, "vendor": h.vendor,
            "peak_tflops": h.peak_tflops, "memory_gb": h.memory.capacity_gb,
            "bandwidth_gbps": h.memory.bandwidth_gbps, "memory_kind": h.memory.kind,
            "interconnect": None if h.interconnect is None else h.interconnect.kind,
            "interconnect_gbps_per_direction": None if h.interconnect is None else h.interconnect.bandwidth_gbps_per_direction,
            "tdp_w": h.tdp_w, "default_16bit": default_16bit(h), "sources": dict(h.sources),
        }
        for h in specs
    ]


def hardware(specs: list, format: str) -> None:
    rows = hardware_rows(specs)
    if format == "json":
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="Hardware (dense peaks; predict's 16-bit default is the faster of fp16 and bf16)")
    for c in ("name", "fp16 TF", "bf16 TF", "fp8 TF", "int8 TOPS", "memory", "GB/s", "link GB/s/dir", "TDP W"):
        t.add_column(c)

    def g(d: dict, k: str) -> str:
        return f"{d[k]:g}" if k in d else "-"

    for r in rows:
        p = r["peak_tflops"]
        t.add_row(r["name"], g(p, "fp16"), g(p, "bf16"), g(p, "fp8"), g(p, "int8"),
                  f"{r['memory_gb']:g} GB {r['memory_kind']}", f"{r['bandwidth_gbps']:g}",
                  "-" if r["interconnect"] is None else f"{r['interconnect']} {r['interconnect_gbps_per_direction']:g}",
                  "-" if r["tdp_w"] is None else f"{r['tdp_w']:g}")
    _console().print(t)


def show(spec: Any, format: str) -> None:
    d = spec.model_dump(mode="json")
    if format == "json":
        print(json.dumps(d, indent=2))
        return
    from rich.table import Table

    sources = d.pop("sources", None)
    t = Table(title=spec.name, show_header=False)
    t.add_column("field")
    t.add_column("value")
    for k, v in d.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        t.add_row(k, str(v))
    con = _console()
    con.print(t)
    if sources:
        s = Table(title="sources")
        s.add_column("field")
        s.add_column("source")
        for k, v in sources.items():
            s.add_row(k, v)
        con.print(s)
