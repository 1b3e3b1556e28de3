"""Schemathesis over the published OpenAPI description, against the app under uvicorn
with a real database and a signed-in admin: whatever it sends, no 5xx."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from api.app import create_app
from tests.api.conftest import LiveApi, World
from vitals.settings import Settings


@pytest.fixture
def admin_api(world: World, live_api: Callable[[str], LiveApi]) -> LiveApi:
    """Signed in once: the fuzzed sign-in endpoint soon throttles this client address."""
    return live_api("admin")


# the description as served; building the app does not touch the database
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url=SecretStr("postgresql://unused"))).openapi()
)


@(
    SCHEMA.exclude(path="/api/v1/events")
    .exclude(method="DELETE", path="/api/v1/session")
    .parametrize()
)
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
