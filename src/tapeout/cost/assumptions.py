"""The cost model's assumptions: data files under ``cost/data/`` with a source for every number.

``Assumptions.load(overrides)`` returns the built-in tables with the user's overrides merged in
(a mapping or a TOML/YAML/JSON file with the sections ``area``, ``dies``, ``memory``, ``links``,
``price``). New entries may be added under ``area.nodes``, ``price.nodes``, ``memory`` and
``dies``; anywhere else an override must name an existing key, so a typo is an error, not a
silently ignored number.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from tapeout.errors import TapeoutError

DATA_DIR = Path(__file__).with_name("data")
SECTIONS = ("area", "dies", "memory", "links", "price")
#: sections (dotted) under which overrides may add new tables
_OPEN = {("area", "nodes"), ("price", "nodes"), ("memory",), ("dies",), ("price", "power", "node_energy")}


@functools.cache
def _builtin() -> dict[str, Any]:
    """The data files with the fitted area coefficients of the store (``fitted/cost.toml``) merged in."""
    data = {s: tomllib.loads((DATA_DIR / f"{s}.toml").read_text(encoding="utf-8")) for s in SECTIONS}
    _with_fitted(data)
    return data


#: store coefficients that set a field of every HBM kind in memory.toml instead of an area coefficient
HBM_FIELDS = {"hbm_phy_mm2": "phy_mm2", "hbm_ctrl_mm2": "ctrl_mm2"}


def _with_fitted(data: dict[str, Any]) -> None:
    """Each calibrated area coefficient's ``value`` and ``source``, and the HBM PHY / controller areas."""
    from tapeout import fitted

    coefficients = data["area"]["coefficients"]
    for name, (value, source) in fitted.cost_coefficients().items():
        if name in HBM_FIELDS:
            for kind, mem in data["memory"].items():
                if kind.upper().startswith("HBM"):
                    mem[HBM_FIELDS[name]] = value
        elif name in coefficients:
            coefficients[name] = {"value": value, **coefficients[name], "source": source}
        else:
            raise RuntimeError(f"fitted/cost.toml sets {name}, which cost/data/area.toml does not define")
    unset = sorted(k for k, c in coefficients.items() if "value" not in c)
    if unset:
        raise RuntimeError(f"area coefficients without a fitted value: {unset}")


#: ranges of the numeric assumptions a user may override, by key name: (low, high, low inclusive, unit).
#: Keys not named here must be finite and >= 0 (prices, areas, energies, counts are never negative).
RANGES: dict[str, tuple[float, float, bool, str]] = {
    "diameter_mm": (0, 1000, False, "mm"),
    "edge_exclusion_mm": (0, 100, True, "mm"),
    "scribe_mm": (0, 10, True, "mm"),
    "wafer_usd": (0, 1e7, True, "USD per wafer"),
    "d0_per_cm2": (0, 100, True, "defects per cm2"),
    "negative_binomial_alpha": (0, 1e6, False, ""),
    "package_yield": (0, 1, False, "fraction"),
    "vendor_gross_margin": (0, 0.99, True, "fraction"),
    "utilization": (0, 1, False, "fraction"),
    "power_fraction": (0, 1, True, "fraction"),
    "lifetime_years": (0, 100, False, "years"),
    "pue": (1, 10, True, "power usage effectiveness"),
    "energy_usd_per_kwh": (0, 100, True, "USD per kWh"),
    "usable_fraction": (0, 1, False, "fraction"),
    "logic_gain": (0, 1e3, False, "x N7 density"),
    "logic_gain_products": (0, 1e3, False, "x N7 density"),
    "sram_gain": (0, 1e3, False, "x N7 density"),
    "analog_gain": (0, 1e3, False, "x N7 density"),
    "interface_gbps": (0, 1e7, False, "GB/s per interface"),
    "interface_gb": (0, 1e7, False, "GB per interface"),
    "lane_gbps": (0, 1e6, False, "Gbit/s per lane"),
}


def _check_number(key: str, v: Any, here: tuple[str, ...]) -> None:
    """A one-line error unless ``v`` is a finite number in the range the key allows."""
    name = ".".join(here)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TapeoutError(f"{name} must be a number, got {v!r}", field="assumptions")
    if not math.isfinite(v):
        raise TapeoutError(f"{name} must be a finite number, got {v!r}", field="assumptions")
    lo, hi, lo_incl, unit = RANGES.get(key, (0, math.inf, True, ""))
    if not ((v >= lo if lo_incl else v > lo) and v <= hi):
        allowed = f"{lo:g} {'<=' if lo_incl else '<'} x" + (f" <= {hi:g}" if math.isfinite(hi) else "")
        raise TapeoutError(f"{name} = {v!r} is outside the allowed range {allowed}" + (f" {unit}" if unit else ""),
                           field="assumptions")


def _check_new(v: Any, here: tuple[str, ...]) -> None:
    """Check every number of a table an override adds (a new node, memory kind or die)."""
    if isinstance(v, dict):
        for k, x in v.items():
            _check_new(x, (*here, k))
    elif isinstance(v, (int, float)) and not isinstance(v, str):
        _check_number(here[-1], v, here)


def _merge(base: dict, over: dict, path: tuple[str, ...]) -> None:
    for k, v in over.items():
        here = (*path, k)
        if k not in base:
            if path not in _OPEN:
                raise TapeoutError(f"unknown assumption {'.'.join(here)!r}", field="assumptions")
            _check_new(v, here)
            base[k] = copy.deepcopy(v)
        elif isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise TapeoutError(f"{'.'.join(here)} must be a table", field="assumptions")
            _merge(base[k], v, here)
        else:
            if isinstance(base[k], (int, float)) and not isinstance(base[k], bool):
                _check_number(k, v, here)
            elif isinstance(base[k], str) and not isinstance(v, str):
                raise TapeoutError(f"{'.'.join(here)} must be text, got {v!r}", field="assumptions")
            base[k] = v


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


class Assumptions:
    """All tables of the area and cost model; read-only after construction."""

    def __init__(self, data: dict[str, Any], overridden: tuple[str, ...] = ()) -> None:
        self.data = data
        self.overridden = overridden
        self._memo: dict[tuple[str, str], Any] = {}

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def load(cls, overrides: dict[str, Any] | str | Path | None = None) -> "Assumptions":
        if overrides is None:
            return _default()
        if isinstance(overrides, (str, Path)):
            from tapeout import specio

            overrides = specio.read_mapping(overrides)
        if not isinstance(overrides, dict):
            raise TapeoutError("overrides must be a mapping of sections", field="assumptions")
        data = copy.deepcopy(_builtin())
        bad = sorted(set(overrides) - set(SECTIONS))
        if bad:
            raise TapeoutError(f"unknown sections {bad}; allowed: {', '.join(SECTIONS)}", field="assumptions")
        _merge(data, overrides, ())
        return cls(data, tuple(sorted(_leaves(overrides))))

    # ---- area -------------------------------------------------------------------------------
    def node_key(self, process_node: str, *, field: str = "process_node") -> str:
        """The node table key (``N7``, ``N4``...) a process-node string names."""
        k = ("node", process_node)
        if k not in self._memo:
            self._memo[k] = _node_key(self, process_node, field)
        return self._memo[k]

    def node_area(self, key: str) -> dict[str, Any]:
        return self.data["area"]["nodes"][key]

    def node_price(self, key: str) -> dict[str, Any]:
        try:
            return self.data["price"]["nodes"][key]
        except KeyError:
            raise TapeoutError(f"no wafer price for node {key}", field="assumptions.price.nodes") from None

    def coefficient(self, name: str) -> tuple[float, str]:
        c = self.data["area"]["coefficients"][name]
        return float(c["value"]), c["scales"]

    def relative_area(self, key: str) -> float | None:
        v = self.data["area"]["relative_area"].get(key)
        return None if v is None or isinstance(v, str) else float(v)

    # ---- memory and links -------------------------------------------------------------------
    def memory_key(self, kind: str) -> str:
        k = ("memory", kind)
        if k not in self._memo:
            self._memo[k] = _memory_key(self, kind)
        return self._memo[k]

    def memory(self, key: str) -> dict[str, Any]:
        return self.data["memory"][key]

    def link(self, kind: str) -> dict[str, Any]:
        k = ("link", kind)
        if k not in self._memo:
            self._memo[k] = _link(self, kind)
        return self._memo[k]

    # ---- dies --------------------------------------------------------------------------------
    def die_entry(self, device: str) -> tuple[str, dict[str, Any]] | None:
        for name, entry in self.data["dies"].items():
            if device in entry.get("devices", ()) or device == name:
                return name, entry
        return None

    def price(self, *path: str) -> Any:
        d: Any = self.data["price"]
        for p in path:
            d = d[p]
        return d


def _leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        out.extend(_leaves(v, key) if isinstance(v, dict) else [key])
    return out


@functools.cache
def _default() -> Assumptions:
    return Assumptions(copy.deepcopy(_builtin()))


def _node_key(a: Assumptions, process_node: str, field: str) -> str:
    toks = set(_tokens(process_node))
    found = [k for k, n in a.data["area"]["nodes"].items() if toks & {m.lower() for m in n.get("match", [k])} or k.lower() in toks]
    if not found:
        known = ", ".join(a.data["area"]["nodes"])
        raise TapeoutError(f"process node {process_node!r} is not in the area model (known: {known})", field=field)
    if len(found) > 1:
        raise TapeoutError(
            f"process node {process_node!r} names several nodes ({', '.join(found)}): a chiplet package; "
            "the area model covers one monolithic die", field=field)
    return found[0]


def _memory_key(a: Assumptions, kind: str) -> str:
    toks = _tokens(kind)
    joined = "-".join(toks)
    best = None
    for key, m in a.data["memory"].items():
        for pat in [key.lower(), *(p.lower() for p in m.get("match", []))]:
            if pat in toks or pat == joined or joined.startswith(pat + "-") or joined == pat:
                if best is None or len(pat) > best[1]:
                    best = (key, len(pat))
    if best is None:
        raise TapeoutError(f"memory kind {kind!r} is not in the cost model (known: {', '.join(a.data['memory'])})",
                           field="memory.kind")
    return best[0]


def _link(a: Assumptions, kind: str) -> dict[str, Any]:
    low = kind.lower()
    for entry in a.data["links"]["kinds"]:
        if any(m in low for m in entry["match"]):
            return entry
    raise TapeoutError(f"interconnect kind {kind!r} has no lane rate", field="interconnect.kind")  # pragma: no cover


__all__ = ["Assumptions", "DATA_DIR", "SECTIONS"]
