"""A small world for API tests over a real database: two care teams, an account of each
role, a patient in each team with a kit, readings, an open alert, and the protocols
published as the alerts engine does at start-up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from alerts.protocol import builtin_protocols
from alerts.published import publish_protocols
from api.app import create_app
from api.common.passwords import hash_password
from store.clinicians import create_clinician
from store.consents import record_usual_consents
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests import second_factor
from tests.api_server import serving
from tests.second_factor import TEST_KEY
from vitals.catalogue import BY_NAME
from vitals.settings import ApiSettings, Settings

PASSWORD = "correct horse battery staple"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis (4.32) names each operation's test ``test[GET /x]``, but pytest 9.2
    builds a node id from the function's original name and its parametrize call only, so
    all 64 shared the bare id; pytest-xdist, which hands tests to its workers by id, then
    ran one operation in place of all of them. Each gets the id its name says (as pytest
    gives any other node); ``test_openapi_fuzz`` checks that they are distinct."""
    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and item.parent is not None:
            item._id = item.parent.id.child(item.name)


@dataclass(frozen=True)
class World:
    db: str
    team_a: int
    team_b: int
    patient_a: int  # team A, with readings and an open high alert
    patient_a2: int  # team A, quiet
    patient_b: int  # team B
    alert_a: int
    alert_b: int
    emails: dict[str, str]  # role key -> e-mail


def add_vitals(
    conn: psycopg.Connection,
    patient_id: int,
    device_id: str,
    metric: str,
    rows: list[tuple[datetime, float]],
) -> None:
    mid = BY_NAME[metric].metric_id
    with conn.cursor().copy(
        "COPY vitals (time, patient_id, device_id, metric_id, value, flags) FROM STDIN"
    ) as copy:
        for at, value in rows:
            copy.write_row((at, patient_id, device_id, mid, value, 0))


def open_alert(conn: psycopg.Connection, patient_id: int, rule_id: str, priority: str) -> int:
    row = conn.execute(
        "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at, evidence)"
        " VALUES (%s, %s, 'clinical', %s, 'active', now() - interval '5 min', %s)"
        " RETURNING alert_id",
        (patient_id, rule_id, priority, Jsonb({"value": 86.0, "threshold": 88.0})),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, transition, actor) VALUES (%s, now(), 'opened',"
        " 'system')",
        (row[0],),
    )
    return int(row[0])


@pytest.fixture
def world(db: str) -> World:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(db, autocommit=True) as conn:
        publish_protocols(conn, builtin_protocols())
        team_a = ensure_team(conn, "Chirurgie digestive A")
        team_b = ensure_team(conn, "Chirurgie cardiaque B")
        emails = {
            "admin": "admin@hopital.example",
            "coordinator": "coord@hopital.example",
            "physician": "medecin@hopital.example",
            "other": "other@hopital.example",
        }
        pw = hash_password(PASSWORD)
        admin_a = create_clinician(conn, emails["admin"], "Admin A", "admin", pw, [team_a])
        create_clinician(conn, emails["coordinator"], "Infirmière A", "coordinator", pw, [team_a])
        create_clinician(
            conn, emails["physician"], "Dr A", "physician", pw, [team_a], "en", "America/New_York"
        )
        other_b = create_clinician(conn, emails["other"], "Dr B", "physician", pw, [team_b])
        patient_a = ensure_patient(conn, "PA-001", team_a, "en", "America/New_York")
        patient_a2 = ensure_patient(conn, "PA-002", team_a, "es", "Europe/Madrid")
        patient_b = ensure_patient(conn, "PB-001", team_b, "it", "Europe/Rome")
        # the patients' consents, as the team records them at discharge (monitoring,
        # sharing with their physician at home, the transfer for one outside the EU)
        record_usual_consents(conn, patient_a, admin_a, "en", ("Dr Jane Miller", "US"))
        record_usual_consents(conn, patient_a2, admin_a, "es", ("Dra. Lucía García", "ES"))
        record_usual_consents(conn, patient_b, other_b, "it", ("Dott. Marco Rossi", "IT"))
        register_gateway(conn, "gw-a-001", team_a)
        register_device(conn, "ox-a-001", "pulse_oximeter", "gw-a-001")
        enroll(conn, "ox-a-001", patient_a, now - timedelta(days=3))
        add_vitals(
            conn,
            patient_a,
            "ox-a-001",
            "spo2_pct",
            [(now - timedelta(minutes=m), 95.0 - (m % 3)) for m in range(1, 600)],
        )
        add_vitals(
            conn,
            patient_a,
            "ox-a-001",
            "heart_rate_bpm",
            [(now - timedelta(minutes=m), 80.0 + (m % 5)) for m in range(1, 600)],
        )
        add_vitals(conn, patient_a, "ox-a-001", "battery_pct", [(now - timedelta(minutes=2), 15)])
        conn.execute(
            "INSERT INTO gateway_status (gateway_id, online, status_at) VALUES ('gw-a-001', true,"
            " now())"
        )
        alert_a = open_alert(conn, patient_a, "spo2_critical", "high")
        alert_b = open_alert(conn, patient_b, "spo2_low", "medium")
    return World(db, team_a, team_b, patient_a, patient_a2, patient_b, alert_a, alert_b, emails)


@pytest.fixture
def app_settings(world: World) -> Settings:
    return Settings(
        database_url=SecretStr(world.db),
        api=ApiSettings(
            vapid_public_key="BPublicKeyForTests",
            login_max_failures=3,
            second_factor_key=TEST_KEY,
        ),
    )


def credentials(settings: Settings, email: str, password: str = PASSWORD) -> dict[str, str]:
    """The sign-in body: e-mail, password and the authenticator's current code."""
    return {
        "email": email,
        "password": password,
        "code": second_factor.code(settings.database_url.get_secret_value(), email),
    }


@pytest.fixture
def anonymous(app_settings: Settings) -> Iterator[TestClient]:
    # API clients say which language they read (the answers' sentences follow it)
    with TestClient(create_app(app_settings), headers={"Accept-Language": "en"}) as client:
        yield client


@pytest.fixture
def login(app_settings: Settings) -> Iterator[Callable[[str], TestClient]]:
    """A signed-in client for a role key of ``World.emails`` (CSRF header set)."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        # one app (and event loop) each; sentences in English, as this client asks
        client = TestClient(create_app(app_settings), headers={"Accept-Language": "en"})
        client.__enter__()
        clients.append(client)
        emails = {
            "admin": "admin@hopital.example",
            "coordinator": "coord@hopital.example",
            "physician": "medecin@hopital.example",
            "other": "other@hopital.example",
        }
        res = client.post("/api/v1/session", json=credentials(app_settings, emails[role]))
        assert res.status_code == 200, res.text
        client.headers["X-CSRF-Token"] = res.json()["csrf_token"]
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def audit_rows(db: str, action: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT actor, patient_id, detail FROM audit_log WHERE action = %s ORDER BY audit_id",
            (action,),
        ).fetchall()


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    cookies: dict[str, str]
    csrf_token: str


@pytest.fixture
def live_api(app_settings: Settings) -> Iterator[Callable[[str], LiveApi]]:
    """The app under uvicorn on a free loopback port, and sign-ins against it."""
    import httpx

    with serving(app_settings) as served:
        base = served.base_url

        def sign_in(role: str) -> LiveApi:
            emails = {
                "admin": "admin@hopital.example",
                "coordinator": "coord@hopital.example",
                "physician": "medecin@hopital.example",
                "other": "other@hopital.example",
            }
            res = httpx.post(f"{base}/api/v1/session", json=credentials(app_settings, emails[role]))
            res.raise_for_status()
            return LiveApi(base, dict(res.cookies), res.json()["csrf_token"])

        yield sign_in
