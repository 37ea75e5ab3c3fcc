"""Small pieces the command-line front ends (and their stores) share; typer loads only to fail."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, NoReturn


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


def fail(msg: str) -> NoReturn:
    """Print a one-line error and exit with status 2 (bad input)."""
    import typer

    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def json_safe(x: Any) -> Any:
    """``x`` with non-finite floats replaced by None (JSON has no inf/NaN), recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x
