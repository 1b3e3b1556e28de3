"""Fixtures and helpers of the web app's security tests (``test_webapp_*.py``): the API
tests' world (two care teams over a real database) plus the attacker's own accounts.
Imported by those modules, so that no shared conftest is needed in this folder."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.common.passwords import hash_password
from store.clinicians import create_clinician
from tests.api.conftest import PASSWORD, World, app_settings, world
from vitals.settings import Settings

__all__ = ["PASSWORD", "Clients", "World", "add_clinician", "app_settings", "clients", "world"]


def add_clinician(db: str, email: str, role: str, teams: list[int], language: str = "fr") -> int:
    with psycopg.connect(db, autocommit=True) as conn:
        return create_clinician(conn, email, email, role, hash_password(PASSWORD), teams, language)


class Clients:
    """Signed-in API clients, each with its own app instance and CSRF header."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open: list[TestClient] = []

    def anonymous(self) -> TestClient:
        # a 500 is an answer to assert on, as a browser would get it
        client = TestClient(create_app(self.settings), raise_server_exceptions=False)
        client.__enter__()
        self._open.append(client)
        return client

    def signed_in(self, email: str) -> TestClient:
        client = self.anonymous()
        res = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        assert res.status_code == 200, res.text
        client.headers["X-CSRF-Token"] = res.json()["csrf_token"]
        return client

    def close(self) -> None:
        for client in self._open:
            client.__exit__(None, None, None)


@pytest.fixture
def clients(app_settings: Settings) -> Iterator[Clients]:
    made = Clients(app_settings)
    yield made
    made.close()
