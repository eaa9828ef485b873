"""schemathesis against the published OpenAPI (``/api/v1/openapi.json``) of a real server, logged in.

Every operation gets generated requests (valid and invalid); the server must never answer 5xx, and
every answer must be a status the schema declares, with its content type and body schema. The
event stream (endless by design) and logout (it would revoke the token the run uses) are left out:
``test_api_served`` and the auth branch's tests cover them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from api_served import Served
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api_served import Users

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def logged_in(tmp_path: Path) -> Iterator[tuple[Served, dict[str, str]]]:
    users = Users(tmp_path)
    try:
        with Served(tmp_path, users.service, heartbeat_s=0.2, candles=1_000) as served:
            served.step(5)
            headers = {"Authorization": f"Bearer {users.token(served, 'olga')}"}
            yield served, headers
    finally:
        users.service.close()


@pytest.mark.slow
def test_every_operation_answers_within_its_schema_and_never_5xx(
    logged_in: tuple[Served, dict[str, str]],
) -> None:
    served, headers = logged_in
    with httpx.Client() as c:
        raw = c.get(f"{served.base_url}/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw).exclude(path_regex=r"^/api/v1/(events|auth/logout)$")
    tested, failures = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(base_url=served.base_url, headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as e:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {e}")
        tested.append(operation.label)
    assert len(tested) >= 15, tested
    assert not failures, "\n\n".join(failures)
