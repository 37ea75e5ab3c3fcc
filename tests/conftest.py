"""Shared fixtures. The measured reference data are found as ``tapeout validate`` finds them
(:mod:`tapeout.datadir`: ``$TAPEOUT_DATA``, else the nearest ``shared/reference-data`` from the
working directory upwards). Where they are absent, the tests that need them skip; with ``CI=true``
they fail instead, so that a CI run without the data cannot pass."""

from pathlib import Path

import pytest

from tapeout.datadir import DATA_ENV, default_data_dir, strict

SHARED = default_data_dir()


def missing_shared(what: str) -> None:
    """Skip (or, with ``CI=true``, fail) a test whose shared reference data ``what`` is absent."""
    msg = f"shared reference data not present: {SHARED / what} (set {DATA_ENV})"
    if strict():
        pytest.fail(f"{msg}; CI=true: a missing shared dataset fails the run", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "measured").is_dir():
        missing_shared("measured")
    return SHARED


@pytest.fixture(scope="session")
def shared_file():
    """``shared_file("hardware/datasheets.csv")``: the path, or skip/fail as :func:`missing_shared` does."""

    def get(rel: str) -> Path:
        path = SHARED / rel
        if not path.exists():
            missing_shared(rel)
        return path

    return get
