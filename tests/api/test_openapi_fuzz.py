"""Schemathesis over the published OpenAPI description, against the app under uvicorn
with a real database and a signed-in admin: whatever it sends, no 5xx."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from api.app import create_app
from tests.api.conftest import LiveApi, World
from vitals.settings import Settings

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow


@pytest.fixture
def admin_api(world: World, live_api: Callable[[str], LiveApi]) -> LiveApi:
    """Signed in once: the fuzzed sign-in endpoint soon throttles this client address."""
    return live_api("admin")


# the description as served; building the app does not touch the database
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url=SecretStr("postgresql://unused"))).openapi()
)


# the live stream never ends (a request would wait for ever); signing out would end the
# fuzzer's own session
FUZZED = SCHEMA.exclude(path="/api/v1/events").exclude(method="DELETE", path="/api/v1/session")


@FUZZED.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(
    case: schemathesis.Case,  # type: ignore[type-arg]
    admin_api: LiveApi,
) -> None:
    api = admin_api
    case.call_and_validate(
        base_url=api.base_url,
        headers={"X-CSRF-Token": api.csrf_token},
        cookies=api.cookies,
        checks=[not_a_server_error],
    )


def test_every_operation_is_a_test_of_its_own(request: pytest.FixtureRequest) -> None:
    """One test per operation, each with its own id: a test runner that schedules by id
    (pytest-xdist) must not fold the 64 into one (see ``tests/api/conftest.py``)."""
    labels = [r.ok().label for r in FUZZED.get_all_operations() if isinstance(r, Ok)]
    ids = [
        item.nodeid
        for item in request.session.items
        if item.nodeid.split("::")[-1].startswith("test_no_server_error")
    ]
    if not ids:
        pytest.skip("the fuzz test is not selected in this run")
    assert len(set(ids)) == len(ids) == len(labels) > 50
    assert {i.split("[", 1)[1].rstrip("]") for i in ids} == set(labels)
