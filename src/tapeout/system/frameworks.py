"""Serving-framework profiles: the explicit host/dispatch overhead per op (``frameworks.toml``)."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tapeout.errors import TapeoutError

FRAMEWORKS_FILE = Path(__file__).with_name("frameworks.toml")
DEFAULT_FRAMEWORK = "kernels"


@dataclass(frozen=True, slots=True)
class Framework:
    name: str
    host_overhead_us: float
    description: str
    source: str
    #: most DRAM bytes per core per clock the framework's kernels move (None: no cap)
    stream_bytes_per_core_clock: float | None = None


@functools.cache
def frameworks() -> dict[str, Framework]:
    data = tomllib.loads(FRAMEWORKS_FILE.read_text(encoding="utf-8"))
    return {name: Framework(name, float(t["host_overhead_us"]), t["description"], t["source"],
                            t.get("stream_bytes_per_core_clock"))
            for name, t in data.items()}


def framework(name: str) -> Framework:
    """The profile called ``name`` (case-insensitive), or a one-line error listing the known ones."""
    key = str(name).strip().lower()
    try:
        return frameworks()[key]
    except KeyError:
        raise TapeoutError(f"unknown framework {name!r}; allowed: {', '.join(frameworks())}",
                           field="framework") from None
