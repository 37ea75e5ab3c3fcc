"""Schemathesis fuzzes the web API from its OpenAPI schema: no request, however odd, gets a 5xx; every
4xx answers one line in ``detail``. Bounded: a few examples per operation (``tapeout ui``'s API; the ``ui``
and ``test`` extras)."""

from __future__ import annotations

import pytest

from tapeout.datadir import strict

try:
    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.checks import not_a_server_error

    from tapeout.web.app import create_app
except ImportError as exc:  # the ui or test extra is not installed
    if strict():
        raise
    pytest.skip(f"web fuzzing needs the ui and test extras ({exc.name} missing)", allow_module_level=True)

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_one_line_errors(case):
    response = case.call_and_validate(checks=[not_a_server_error])
    assert response.status_code < 500
    if 400 <= response.status_code < 500:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail, detail
