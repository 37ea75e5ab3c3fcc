"""Copies of frozen, slotted dataclasses (ops, op costs) with some fields changed, for hot paths.

``dataclasses.replace`` re-runs ``__init__`` and walks the fields' metadata on every call; copying the slots
costs about half as much. For classes without ``__post_init__`` (nothing to re-check) the result is equal.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

_set = object.__setattr__


def evolve(obj: T, **changes: Any) -> T:
    """``obj`` with ``changes`` (``dataclasses.replace`` for a frozen dataclass with ``slots=True`` and no
    ``__post_init__``)."""
    cls = type(obj)
    slots = cls.__slots__  # type: ignore[attr-defined]
    new = object.__new__(cls)
    for f in slots:
        _set(new, f, getattr(obj, f))
    for k, v in changes.items():
        if k not in slots:
            raise TypeError(f"{cls.__name__} has no field {k!r}")
        _set(new, k, v)
    return new


__all__ = ["evolve"]
