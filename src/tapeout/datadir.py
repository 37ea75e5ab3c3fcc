"""Where the measured reference data are: the one place that resolves the data directory.

Resolution (``tapeout validate --data``, ``tapeout fit --data``, the fits, the
judge and the test suite all use it):

1. an explicit directory (``--data DIR``, or a ``data_dir`` argument);
2. else the environment variable ``TAPEOUT_DATA``;
3. else the nearest ``shared/reference-data`` in the current working directory or any directory above
   it (from a checkout at ``<work>/<repo>``, that is ``<work>/shared/reference-data``: the layout the
   project is developed in).

An explicit directory (1 or 2) must exist and hold ``measured/``, ``vidur/`` or ``llmcompass/``; a bad
one is a one-line error naming ``data``. The default (3) may be absent: the sources it would hold are
then reported absent (:func:`tapeout.validate.registry.load`), and the sources shipped with tapeout
(``validate/published/``) still run. With the environment variable ``CI`` set to ``true`` an absent
source is an error instead (:func:`strict`): ``tapeout validate`` exits non-zero and the test suite's
accuracy guards fail rather than skip.
"""

from __future__ import annotations

import os
from pathlib import Path

from tapeout.errors import TapeoutError

#: the environment variable naming the reference-data directory
DATA_ENV = "TAPEOUT_DATA"
#: the folder looked for in the working directory and above it
DEFAULT_RELATIVE = Path("shared") / "reference-data"
#: help text of every ``--data`` option
DATA_HELP = (f"reference-data directory (default: ${DATA_ENV}, else the nearest {DEFAULT_RELATIVE.as_posix()} "
             "in the current directory or above it)")
#: sub-folders of which a reference-data directory holds at least one
MARKERS = ("measured", "vidur", "llmcompass")


def strict() -> bool:
    """``CI=true``: a missing shared dataset fails the run (and the test suite) instead of being skipped."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def default_data_dir() -> Path:
    """``$TAPEOUT_DATA``, else the nearest ``shared/reference-data`` from the working directory upwards.

    When neither exists this is ``<cwd>/../shared/reference-data`` (absent); nothing is checked here.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        if (d / DEFAULT_RELATIVE).is_dir():
            return d / DEFAULT_RELATIVE
    return cwd.parent / DEFAULT_RELATIVE


def _explicit() -> bool:
    return bool(os.environ.get(DATA_ENV, "").strip())


def check_data_dir(d: Path) -> Path:
    """``d`` if it is a reference-data directory, else a one-line error naming ``data``."""
    if not d.is_dir():
        raise TapeoutError(f"reference-data directory {str(d)!r} does not exist", field="data")
    if not any((d / sub).is_dir() for sub in MARKERS):
        raise TapeoutError(
            f"{str(d)!r} holds no {', '.join(m + '/' for m in MARKERS)} folder; point --data (or ${DATA_ENV}) at a "
            "reference-data directory", field="data")
    return d


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory to read: ``data_dir`` or ``$TAPEOUT_DATA`` (checked), else the default (may be absent)."""
    if data_dir is not None:
        return check_data_dir(Path(data_dir).expanduser()).resolve()
    d = default_data_dir()
    if _explicit():
        return check_data_dir(d).resolve()
    return d


__all__ = ["DATA_ENV", "DATA_HELP", "DEFAULT_RELATIVE", "check_data_dir", "default_data_dir", "resolve_data_dir",
           "strict"]
