"""The built-in device catalog (``hardware/catalog/*.toml``) and the loader for user device files.

``load_hardware`` accepts a :class:`HardwareSpec` (returned as is), a catalog name or alias
(case-insensitive; ``_``, spaces and ``-`` are interchangeable), or the path of a TOML/YAML/JSON
device file. Catalog files are parsed and validated once per process.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path

from tapeout import specio
from tapeout.errors import TapeoutError, UnknownNameError
from tapeout.hardware.spec import HardwareSpec

CATALOG_DIR = Path(__file__).with_name("catalog")
#: fitted efficiency data (written by ``python -m tapeout.validate.calibrate``)
CALIBRATION_FILE = Path(__file__).with_name("calibration.toml")
_FILE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def normalize_name(name: str) -> str:
    """Canonical spelling of a device name: lower case, ``_``/whitespace runs become ``-``."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@functools.cache
def calibration_tables() -> dict[str, dict]:
    """``{"default": {...}, "<device>": {...}}`` from calibration.toml (empty when absent)."""
    if not CALIBRATION_FILE.is_file():
        return {}
    data = tomllib.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def calibrated_efficiency(device: str) -> dict:
    """The fitted efficiency table of ``device``, else the cross-device ``[default]`` (a dict)."""
    tables = calibration_tables()
    return dict(tables.get(device) or tables.get("default") or {})


def _with_efficiency(data: dict, device: str) -> dict:
    """Spec data whose efficiency is: its own [efficiency] fields over the calibrated table."""
    own = data.get("efficiency")
    if own is not None and not isinstance(own, dict):
        return data  # let validation report the bad type
    return {**data, "efficiency": {**calibrated_efficiency(device), **(own or {})}}


@functools.cache
def _catalog() -> dict[str, HardwareSpec]:
    """name -> spec for every built-in device file, validated (with calibrated efficiency)."""
    return specio.load_catalog(CATALOG_DIR, HardwareSpec, "hardware", _with_efficiency)


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
    name = _index().get(normalize_name(spec))
    if name is not None:
        return _catalog()[name]
    text = spec.strip()
    if text and _looks_like_file(text):
        return _load_file(Path(text).expanduser())
    raise UnknownNameError("hardware", text, hardware_names(), field="hardware")
