"""Reading spec files (TOML, YAML, JSON) into validated pydantic models with one-line errors."""

from __future__ import annotations

import inspect
import json
import tomllib
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tapeout.errors import TapeoutError

M = TypeVar("M", bound=BaseModel)


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Parse a .toml, .yaml/.yml or .json file into a dict, or raise a one-line TapeoutError."""
    p = Path(path)
    if not p.is_file():
        raise TapeoutError(f"no such file: {p}", field="path")
    suffix = p.suffix.lower()
    try:
        text = p.read_text(encoding="utf-8")
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml  # lazy: only user files need it

            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise TapeoutError(f"unsupported spec file type {suffix!r}; allowed: .toml, .yaml, .yml, .json", field="path")
    except TapeoutError:
        raise
    except Exception as exc:  # parse errors of any of the three formats
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TapeoutError(f"cannot parse {p.name}: {msg}", field="path") from None
    if not isinstance(data, dict):
        raise TapeoutError(f"{p.name} must contain a table/mapping at the top level", field="path")
    return data


def validation_message(exc: ValidationError) -> str:
    """The first pydantic error as 'field.path: message' (one line)."""
    errs = exc.errors()
    parts = []
    for e in errs[:3]:
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ").removeprefix(f"{loc}: ")
        parts.append(f"{loc}: {msg}" if loc else msg)  # a model-level check names its fields itself
    more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
    return "; ".join(parts) + more


def build(model: type[M], data: dict[str, Any], *, origin: str) -> M:
    """Validate ``data`` as ``model``; a failure becomes a TapeoutError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise TapeoutError(f"invalid {origin}: {validation_message(exc)}") from None


def keyword_signature(fn: Callable[..., Any], *models: type[BaseModel] | tuple[type[BaseModel], tuple[str, ...]],
                      exclude: tuple[str, ...] = ()) -> inspect.Signature:
    """``fn``'s signature with its ``**kwargs`` replaced by one keyword-only parameter per field of ``models``, in
    order (type and default; a model may come as ``(model, its exclusions)``; ``exclude`` and names already
    present left out): the signature of a function whose keywords models define, for ``help()``, ``inspect``
    and documentation."""
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    seen = {p.name for p in params} | set(exclude)
    for m in models:
        model, skip = m if isinstance(m, tuple) else (m, ())
        for k, f in model.model_fields.items():
            if k not in seen and k not in skip:
                params.append(inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                                annotation=f.annotation))
                seen.add(k)
    return inspect.signature(fn).replace(parameters=params)


def keyword_api(fn: Callable[..., Any], *models: type[BaseModel] | tuple[type[BaseModel], tuple[str, ...]],
                exclude: tuple[str, ...] = ()) -> None:
    """Give ``fn``, whose ``**kwargs`` are ``models``' fields (:func:`keyword_signature`), their signature and
    annotations, so that ``inspect.signature``, ``help()`` and ``typing.get_type_hints`` (the web layer's request
    bodies) see them."""
    var = [p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    sig = keyword_signature(fn, *models, exclude=exclude)
    own = {k: v for k, v in fn.__annotations__.items() if k not in var}
    fn.__annotations__ = own | {p.name: p.annotation for p in sig.parameters.values() if p.name not in own}
    fn.__signature__ = sig  # type: ignore[attr-defined]


def load_catalog(directory: Path, model: type[M], kind: str,
                 prepare: Callable[[dict[str, Any], str], dict[str, Any]] | None = None) -> dict[str, M]:
    """Validate every ``*.toml`` of a built-in catalog folder; the file stem must equal ``name``.

    ``prepare(data, stem)`` may complete the raw data first (e.g. merge calibration tables).
    A broken built-in file is a packaging bug, so it raises RuntimeError rather than a user error.
    """
    specs: dict[str, M] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise RuntimeError(f"broken built-in {kind} file {path.name}: {exc}") from None
        if prepare is not None:
            data = prepare(data, path.stem)
        spec = build(model, data, origin=f"built-in {kind} file {path.name}")
        if getattr(spec, "name", None) != path.stem:
            raise RuntimeError(f"built-in {kind} file {path.name} declares name {getattr(spec, 'name', None)!r}")
        specs[path.stem] = spec
    return specs


# ---- plausibility and strict numbers (shared by the spec models) ------------------------------------
def plausible(value: float | None, lo: float, hi: float, unit: str, hint: str = "") -> float | None:
    """``value`` when ``lo <= value <= hi`` (None passes), else a ValueError naming the unit and the range.

    Used for datasheet fields whose unit is easy to get wrong by a factor of 10^3..10^9 (bytes for GB,
    B/s for GB/s, Hz for MHz): pydantic prefixes the field name, so the one-line error names the field,
    the unit and what is allowed."""
    if value is None:
        return value
    if not lo <= value <= hi:
        raise ValueError(f"{value:g} {unit} is outside the plausible range {lo:g} to {hi:g} {unit}"
                         + (f" ({hint})" if hint else ""))
    return value


def reject_bools(cls: Any, data: Any, keys: tuple[str, ...] | None = None) -> Any:
    """Raise when a number field of ``cls`` (or the named ``keys``) is given a bool (pydantic's lax mode
    reads True as 1): ``batch=True`` is a mistake, not one sequence."""
    if not isinstance(data, dict):
        return data
    for k, v in data.items():
        if not isinstance(v, bool) or (keys is not None and k not in keys):
            continue
        f = cls.model_fields.get(k)
        if f is not None and "bool" not in str(f.annotation):
            raise ValueError(f"{k}: expected a number, got {v!r}")
    return data


def strict_int(v: Any) -> int:
    """An integer given as an integer (Python or numpy), never a bool, a string or a float."""
    import numbers

    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ValueError(f"expected an integer, got {type(v).__name__} {v!r}")
    return int(v)
