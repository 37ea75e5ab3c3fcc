"""The JSON request bodies of the web API, derived in one place from the Python API's own signatures.

``request_model(tapeout.predict)`` is a pydantic model with one field per keyword argument of
:func:`tapeout.predict` (same names, types and defaults; paths and spec objects travel as names), plus
``model_file`` / ``hardware_file`` for an uploaded config.json or device file. :func:`call` turns a
validated body back into the keyword arguments and calls the function. Nothing here knows the list of
arguments, so a new argument of the API appears in the web API (and its OpenAPI schema) by itself.

Types are checked strictly at the boundary (``batch: true`` or ``"4"`` is not an integer); values are
checked by the API itself, whose one-line :class:`~tapeout.errors.TapeoutError` is what the CLI prints.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Callable, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from tapeout.errors import TapeoutError

#: arguments that name a spec which may instead be uploaded, and what the upload holds
FILE_ARGS = {
    "model": "a Hugging Face config.json (or a model TOML/YAML): its content and file name",
    "hardware": "a device file (TOML/YAML/JSON, as `tapeout show` reads it): its content and file name",
}
#: arguments of the Python API that make no sense over HTTP (a terminal progress bar)
SKIP = frozenset({"progress"})
#: bounds the server puts on work one request may ask for (the Python API has none)
LIMITS: dict[str, dict[str, Any]] = {"num_requests": {"ge": 1, "le": 20000}}
#: the largest upload accepted, in characters
MAX_FILE_CHARS = 2_000_000


class Upload(BaseModel):
    """An uploaded spec file: its name (the suffix picks the reader, as for a path) and its text."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=200, description="file name, e.g. config.json or my-chip.toml")
    content: str = Field(max_length=MAX_FILE_CHARS, description="the file's text")


def _wire(t: Any) -> Any:
    """A parameter's type as JSON carries it: a path or a spec object becomes its name (str), a tuple an array."""
    if t is Any:
        return Any
    if typing.get_origin(t) is tuple:  # tuple[int, ...]: a JSON array of the items
        args = [a for a in typing.get_args(t) if a is not Ellipsis]
        return list[_wire(args[0])] if len(set(args)) == 1 else list[Any]
    if typing.get_origin(t) in (Union, types.UnionType):
        args: list[Any] = []
        for a in typing.get_args(t):
            w = _wire(a)
            if w not in args:
                args.append(w)
        return Union[tuple(args)] if len(args) > 1 else args[0]
    if t is Path or (isinstance(t, type) and issubclass(t, BaseModel)):
        return str
    return t


def _json_default(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))


@functools.cache
def request_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """The request body of ``fn``: a field per keyword argument (a default JSON cannot carry, such as
    ``rate=inf``, becomes null: left out or null means the API's default)."""
    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in SKIP or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        t = _wire(hints.get(p.name, Any))
        default = p.default
        desc = None
        if default is p.empty:
            if p.name in FILE_ARGS:  # a name or an upload
                t, default, desc = Optional[t], None, f"a catalog name, or leave it out and give {p.name}_file"
            else:
                default = ...
        elif not _json_default(default):
            t, default, desc = Optional[t], None, f"null or left out: {default!r}"
        fields[p.name] = (t, Field(default, description=desc, **LIMITS.get(p.name, {})))
    for name, what in FILE_ARGS.items():
        if name in fields:
            fields[f"{name}_file"] = (Optional[Upload], Field(None, description=what))
    doc = (inspect.getdoc(fn) or "").split("\n\n")[0]
    return create_model(f"{fn.__name__.title().replace('_', '')}Request",
                        __config__=ConfigDict(extra="forbid", strict=True), __doc__=doc, **fields)


def _save(folder: Path, upload: dict[str, Any]) -> Path:
    """The upload written under ``folder`` with its (sanitised) file name."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload["name"].replace("\\", "/")).name).lstrip(".") or "upload"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(upload["content"], encoding="utf-8")
    return path


def call(fn: Callable[..., Any], body: BaseModel) -> Any:
    """``fn(**body)``: null means the API's default, uploads are written to a temporary folder and passed
    as paths (so the API's own readers parse them), and a name and a file for the same spec is an error."""
    params = inspect.signature(fn).parameters
    given = body.model_dump(exclude_unset=True)
    kwargs = {k: v for k, v in given.items()
              if not (v is None and k in params and params[k].default is not None)}
    with tempfile.TemporaryDirectory(prefix="tapeout-upload-") as tmp:
        for name in FILE_ARGS:
            if name not in params:
                continue
            upload = kwargs.pop(f"{name}_file", None)
            if upload is not None:
                if kwargs.get(name) is not None:
                    raise TapeoutError(f"give a name or {name}_file, not both", field=name)
                kwargs[name] = _save(Path(tmp) / name, upload)
            elif kwargs.get(name) is None and params[name].default is params[name].empty:
                raise TapeoutError(f"missing: give a catalog name ({name}) or upload a file ({name}_file)",
                                   field=name)
        return fn(**kwargs)


__all__ = ["FILE_ARGS", "Upload", "call", "request_model"]
