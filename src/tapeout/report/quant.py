"""Render ``tapeout quantize-error`` results (``FileError.to_dict()``): a rich table or JSON."""

from __future__ import annotations

import json
from typing import Any

from tapeout.report import fmt


def _db(x: float | None) -> str:
    return "exact" if x is None else f"{x:.2f}"


def print_table(d: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    if not con.is_terminal and console is None:
        con = Console(width=160)
    t = Table(title=f"{d['file']} in {d['weights']}", title_justify="left")
    for col, just in (("tensor", "left"), ("shape", "left"), ("dtype", "left"), ("bytes", "right"),
                      ("quantized", "right"), ("MSE", "right"), ("SQNR dB", "right"), ("max |err|", "right"),
                      ("cosine", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in d["tensors"]:
        t.add_row(r["name"], "x".join(str(s) for s in r["shape"]), r["dtype"], fmt.nbytes(r["original_bytes"]),
                  fmt.nbytes(r["quantized_bytes"]), f"{r['mse']:.3e}", _db(r["sqnr_db"]),
                  f"{r['max_abs_error']:.3e}", f"{r['cosine']:.6f}")
    tot = d["total"]
    t.add_row(f"total ({tot['tensors']} tensors)", "", "", fmt.nbytes(tot["original_bytes"]),
              fmt.nbytes(tot["quantized_bytes"]), f"{tot['mse']:.3e}", _db(tot["sqnr_db"]),
              f"{tot['max_abs_error']:.3e}", f"{tot['cosine']:.6f}", style="bold")
    con.print(t)
    comp = tot.get("compression")
    con.print(f"size: {fmt.nbytes(tot['original_bytes'])} -> {fmt.nbytes(tot['quantized_bytes'])}"
              + (f" ({comp:.2f}x smaller)" if comp else "")
              + (f"; skipped {len(d['skipped'])} tensors (1-D, integer or filtered; --all includes 1-D)"
                 if d["skipped"] else ""))


def to_json(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, allow_nan=False)
