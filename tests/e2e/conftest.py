"""Fixtures for end-to-end tests: an enrolled kit and an ingest process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.api_server import serving
from tests.conftest import INGEST_PASSWORD, Broker
from tests.mqtt_clients import connect
from tests.second_factor import TEST_KEY
from tests.stack import ServiceProcess, wait_for
from vitals.settings import ApiSettings, Settings

ENROLLED_FROM = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Kit:
    gateway_id: str
    password: str
    devices: tuple[str, ...]
    patient_id: int


@pytest.fixture
def make_kit(db: str, broker: Broker) -> Callable[[str, tuple[str, ...]], Kit]:
    def make(gateway_id: str, devices: tuple[str, ...] = ("ox-1",)) -> Kit:
        with psycopg.connect(db, autocommit=True) as conn:
            team = ensure_team(conn, "Test team")
            patient = ensure_patient(conn, f"P-{gateway_id}", team)
            password = register_gateway(conn, gateway_id)
            qualified = []
            for dev in devices:
                device_id = f"{dev}-{gateway_id}"
                register_device(conn, device_id, dev.split("-")[0], gateway_id)
                enroll(conn, device_id, patient, ENROLLED_FROM, None)
                qualified.append(device_id)
        broker.add_account(gateway_id, password)
        return Kit(gateway_id, password, tuple(qualified), patient)

    return make


def forget_session(broker: Broker, client_id: str) -> None:
    """Discard what the broker kept for an earlier test's ingest under this client id (its
    session persists, as in production): a test that stopped ingest with messages still
    queued (the dead-letter flood) must not hand them to the next test's database."""
    client = connect(client_id, client_id, INGEST_PASSWORD, broker.port)  # a clean start
    client.disconnect()
    client.loop_stop()


def ingest_env(db: str, broker: Broker, client_id: str = "ingest-1") -> dict[str, str]:
    """The environment of an ingest worker, its broker session started afresh."""
    forget_session(broker, client_id)
    return {
        "POSTOP_DATABASE_URL": db,
        "POSTOP_MQTT__PORT": str(broker.port),
        "POSTOP_MQTT__USERNAME": client_id,  # each worker its own account
        "POSTOP_MQTT__PASSWORD": INGEST_PASSWORD,
        "POSTOP_INGEST__CLIENT_ID": client_id,
        "POSTOP_INGEST__REFRESH_AGGREGATES_S": "3600",
    }


@pytest.fixture
def ingest(db: str, broker: Broker, workdir: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess("ingest.main", ingest_env(db, broker), workdir / "ingest")
    proc.start()
    wait_for(lambda: "subscribed to readings" in proc.log(), 30, "ingest to subscribe")
    yield proc
    proc.stop()
    print(f"--- ingest log (tail) ---\n{proc.log()[-4000:]}")  # shown when the test fails


def count_rows(db: str, table: str = "vitals") -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


NOW_MS = int((datetime.now(UTC) - timedelta(days=2)).timestamp() * 1000)


@pytest.fixture
def api_server(db: str) -> Iterator[str]:
    keys_public = "BPlaceholderKeyTheBrowserCannotUseHere"
    settings = Settings(
        database_url=db,  # type: ignore[arg-type]
        api=ApiSettings(vapid_public_key=keys_public, second_factor_key=TEST_KEY),
    )
    with serving(settings) as served:
        yield served.base_url
