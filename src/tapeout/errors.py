"""Errors raised at the boundary of tapeout.

Every user-facing mistake is a :class:`TapeoutError`: a one-line message that names the
field and what is allowed. The CLI prints the message and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TapeoutError(ValueError):
    """A user-facing error: bad input, unknown name, malformed spec file."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class UnknownNameError(TapeoutError, KeyError):
    """A catalog lookup that found nothing; the message lists the closest names."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, field: str | None = None,
                 also: str = "") -> None:
        known = sorted(set(known))
        close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
        super().__init__(f"unknown {kind} {name!r}; {hint}" + (f" {also}" if also else ""), field=field)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
