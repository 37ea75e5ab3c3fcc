"""The built-in device catalog (``hardware/catalog/*.toml``) and the loader for user device files.

``load_hardware`` accepts a :class:`HardwareSpec` (returned as is), a catalog name or alias
(case-insensitive; ``_``, spaces and ``-`` are interchangeable), or the path of a TOML/YAML/JSON
device file. Catalog files are parsed and validated once per process.

Catalog files hold facts only. The fitted numbers come from the store (:mod:`tapeout.fitted`): a
device's roofline efficiency is ``fitted/roofline.toml``'s table for it (else ``[default]``) under the
file's own ``[efficiency]`` fields, and its micro-architecture gets its fitted kernel efficiencies and
collective terms from ``fitted/tiled.toml`` under the file's own values. A user's device file takes the
``[default]`` efficiency and the tiled defaults (the MicroArch field defaults), under its own values.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from tapeout import fitted, specio
from tapeout.errors import TapeoutError, UnknownNameError
from tapeout.hardware.spec import HardwareSpec

CATALOG_DIR = Path(__file__).with_name("catalog")
_FILE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def normalize_name(name: str) -> str:
    """Canonical spelling of a device name: lower case, ``_``/whitespace runs become ``-``."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def calibrated_efficiency(device: str) -> dict:
    """The fitted roofline efficiency of ``device``: its table in the store over ``[default]`` (a dict)."""
    return fitted.roofline_efficiency(device)


def _with_efficiency(data: dict, device: str) -> dict:
    """Spec data whose efficiency is: its own [efficiency] fields over the fitted table."""
    own = data.get("efficiency")
    if own is not None and not isinstance(own, dict):
        return data  # let validation report the bad type
    return {**data, "efficiency": {**calibrated_efficiency(device), **(own or {})}}


def _with_fitted(data: dict, device: str) -> dict:
    """A catalog device's data with the store's fitted efficiency and micro-architecture fields (the
    file's own values win)."""
    data = _with_efficiency(data, device)
    ua = data.get("microarch")
    fit = fitted.tiled_microarch(device)
    if not isinstance(ua, dict) or not fit:
        return data
    matrix = ua.get("matrix")
    merged = {**fit, **ua, "sources": {**fit.get("sources", {}), **(ua.get("sources") or {})}}
    if isinstance(matrix, dict) and "matrix" in fit:
        merged["matrix"] = {**fit["matrix"], **matrix}
    return {**data, "microarch": merged}


@functools.cache
def _catalog() -> dict[str, HardwareSpec]:
    """name -> spec for every built-in device file, validated (with the fitted numbers merged in)."""
    return specio.load_catalog(CATALOG_DIR, HardwareSpec, "hardware", _with_fitted)


def clear_caches() -> None:
    """Forget the validated catalog (after ``tapeout fit`` rewrote the store)."""
    _catalog.cache_clear()
    _index.cache_clear()


@functools.cache
def _index() -> dict[str, str]:
    """Every accepted spelling (names and aliases, normalized) -> catalog name."""
    index: dict[str, str] = {}
    for name, spec in _catalog().items():
        for key in (name, *spec.aliases):
            norm = normalize_name(key)
            other = index.get(norm)
            if other is not None and other != name:
                raise RuntimeError(f"hardware alias {key!r} is claimed by both {other} and {name}")
            index[norm] = name
    return index


def hardware_names() -> list[str]:
    """Names of the built-in devices, sorted."""
    return sorted(_catalog())


def list_hardware() -> list[HardwareSpec]:
    """The built-in devices, sorted by name."""
    cat = _catalog()
    return [cat[n] for n in sorted(cat)]


def find_hardware(name: str) -> HardwareSpec | None:
    """The catalog device ``name`` names (its name or an alias, normalized: :func:`normalize_name`), else None.
    Files are not read (:func:`load_hardware` reads them)."""
    found = _index().get(normalize_name(name))
    return None if found is None else _catalog()[found]


def _looks_like_file(text: str) -> bool:
    if text.lower().endswith(_FILE_SUFFIXES):
        return True
    try:
        return Path(text).expanduser().is_file()
    except OSError:  # e.g. a name too long to be a path
        return False


def _load_file(path: Path) -> HardwareSpec:
    data = _with_efficiency(specio.read_mapping(path), "default")
    return specio.build(HardwareSpec, data, origin=f"hardware file {path.name}")


def load_hardware(spec: str | Path | HardwareSpec) -> HardwareSpec:
    """Resolve a device: a spec object, a catalog name/alias, or a device file path.

    Raises :class:`~tapeout.errors.UnknownNameError` (with close matches) for an unknown name and
    :class:`~tapeout.errors.TapeoutError` (one line, naming the field) for a bad device file.
    """
    if isinstance(spec, HardwareSpec):
        return spec
    if isinstance(spec, Path):
        return _load_file(spec.expanduser())
    if not isinstance(spec, str):
        raise TapeoutError(
            f"expected a device name, a device file path or a HardwareSpec, got {type(spec).__name__}",
            field="hardware",
        )
    if not spec.strip():
        raise TapeoutError("empty device name; give a catalog name (see tapeout hardware) or the path of a "
                           "TOML/YAML/JSON device file", field="hardware")
    found = find_hardware(spec)
    if found is not None:
        return found
    text = spec.strip()
    if text and _looks_like_file(text):
        return _load_file(Path(text).expanduser())
    raise UnknownNameError("hardware", text, hardware_names(), field="hardware")
