"""The API's health and readiness over a real database."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from tests.conftest import Broker
from vitals.settings import MqttSettings, Settings


def test_ready_when_the_database_is_migrated(db: str, broker: Broker) -> None:
    broker.add_account("api", "api-health-password")
    settings = Settings(
        database_url=SecretStr(db),
        mqtt=MqttSettings(
            port=broker.port, username="api", password=SecretStr("api-health-password")
        ),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["schema_version"] >= 3


def test_not_ready_without_a_database() -> None:
    settings = Settings(database_url=SecretStr("host=127.0.0.1 port=1 dbname=x connect_timeout=1"))
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
