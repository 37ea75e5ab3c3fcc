from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference-data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("shared reference data not present")
    return SHARED
