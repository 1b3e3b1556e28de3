"""Administration through the API over a real database and a real broker: a patient, a
gateway whose one-time password really opens the broker (and only its own topics), a
device, enrollments over time ranges, accounts; every action audited."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from postop.broker_accounts import follow_broker_accounts
from postop.local_mosquitto import LocalMosquitto
from postop.ports import free_port
from store.mqtt_accounts import verify_password
from tests import second_factor
from tests.api.conftest import PASSWORD, World, audit_rows
from tests.mqtt_clients import Publisher
from tests.stack import wait_for
from vitals.topics import readings_topic

NEW_PATIENT = {
    "pseudonym": "PA-777",
    "language": "de",
    "time_zone": "Europe/Berlin",
    "home_country": "DE",
    "procedure": "Sleeve gastrectomy",
    "surgery_date": "2026-11-18",
    "discharged_at": "2026-11-21T10:00:00Z",
    "protocol": "digestive_surgery",
    "home_physician": {"name": "Dr. Klaus Weber", "email": "weber@praxis.example"},
}


@pytest.fixture
def followed_broker(world: World, workdir: Path) -> Iterator[LocalMosquitto]:
    broker = LocalMosquitto(workdir / "mqtt", free_port())
    broker.write_config()
    broker.start()
    stop = threading.Event()
    follow_broker_accounts(world.db, broker, stop)
    yield broker
    stop.set()
    broker.stop()


def test_create_a_patient(login: Callable[[str], TestClient], world: World) -> None:
    client = login("admin")
    res = client.post("/api/v1/patients", json={**NEW_PATIENT, "team_id": world.team_a})
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["pseudonym"] == "PA-777"
    assert body["home_physician"]["name"] == "Dr. Klaus Weber"
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT team_id, language, time_zone, home_country, protocol FROM patients"
            " WHERE pseudonym = 'PA-777'"
        ).fetchone()
    assert row == (world.team_a, "de", "Europe/Berlin", "DE", "digestive_surgery")
    assert audit_rows(world.db, "patient_created")[0][1] == body["patient_id"]
    again = client.post("/api/v1/patients", json={**NEW_PATIENT, "team_id": world.team_a})
    assert again.status_code == 409
    assert again.json()["detail"] == "The pseudonym PA-777 is taken."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "Time zone: unknown time zone"),
        ({"protocol": "brain_surgery"}, "Unknown protocol"),
        ({"pseudonym": "x"}, "Pseudonym: not in the expected form."),
        ({"home_country": "germany"}, "Home country: not in the expected form."),
        ({"surgery_date": "yesterday"}, "Surgery date: not a valid date."),
        ({"name": "Jane Doe"}, "Home physician: not expected here."),
    ],
)
def test_invalid_patient_gets_a_readable_422(
    login: Callable[[str], TestClient], world: World, change: dict[str, str], message: str
) -> None:
    res = login("admin").post(
        "/api/v1/patients", json={**NEW_PATIENT, "team_id": world.team_a, **change}
    )
    assert res.status_code == 422
    assert message in res.json()["detail"]


def test_admin_cannot_create_in_another_team(
    login: Callable[[str], TestClient], world: World
) -> None:
    res = login("admin").post("/api/v1/patients", json={**NEW_PATIENT, "team_id": world.team_b})
    assert res.status_code == 403
    assert res.json()["detail"] == "You are not a member of this care team."


def test_registered_gateway_connects_at_once_and_only_to_its_topics(
    login: Callable[[str], TestClient], world: World, followed_broker: LocalMosquitto
) -> None:
    client = login("admin")
    res = client.post("/api/v1/gateways", json={"gateway_id": "gw-home-042"})
    assert res.status_code == 201
    creds = res.json()
    assert creds["mqtt_username"] == "gw-home-042"
    with psycopg.connect(world.db) as conn:
        stored = conn.execute(
            "SELECT mqtt_password_hash FROM gateways WHERE gateway_id = 'gw-home-042'"
        ).fetchone()
    assert stored is not None
    assert creds["mqtt_password"] not in stored[0]
    assert verify_password(creds["mqtt_password"], stored[0])
    # the broker learnt the account from the NOTIFY: the gateway connects and publishes
    wait_for(
        lambda: "gw-home-042" in followed_broker.password_file.read_text(),
        10,
        "the password file to follow the database",
    )
    pub = Publisher("gw-home-042", creds["mqtt_password"], followed_broker.port)
    try:
        own = pub.publish(b"{}")
        other = pub.publish(b"{}", readings_topic("gw-a-001"))
        acks = pub.wait_acks([own, other])
    finally:
        pub.client.disconnect()
    assert not acks[0].is_failure
    assert acks[1].is_failure  # another home's topic: refused by the ACL
    again = client.post("/api/v1/gateways", json={"gateway_id": "gw-home-042"})
    assert again.status_code == 409


def test_wrong_gateway_password_is_refused(
    login: Callable[[str], TestClient], world: World, followed_broker: LocalMosquitto
) -> None:
    login("admin").post("/api/v1/gateways", json={"gateway_id": "gw-home-043"})
    wait_for(lambda: "gw-home-043" in followed_broker.password_file.read_text(), 10, "file")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("gw-home-043", "guessed")
    result: list[bool] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(rc.is_failure)
    client.connect("127.0.0.1", followed_broker.port)
    client.loop_start()
    wait_for(lambda: bool(result), 10, "CONNACK")
    client.loop_stop()
    assert result == [True]


def test_device_enrollment_over_a_time_range(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("admin")
    assert client.post("/api/v1/gateways", json={"gateway_id": "gw-home-044"}).status_code == 201
    dev = {"device_id": "cuff-044", "kind": "bp_cuff", "gateway_id": "gw-home-044"}
    assert client.post("/api/v1/devices", json=dev).status_code == 201
    assert client.post("/api/v1/devices", json=dev).status_code == 409
    orphan = client.post("/api/v1/devices", json={**dev, "device_id": "x-1", "gateway_id": "nope"})
    assert orphan.status_code == 404
    url = f"/api/v1/patients/{world.patient_a2}/enrollments"
    res = client.post(url, json={"device_id": "cuff-044", "start": "2026-11-01T00:00:00Z"})
    assert res.status_code == 201
    enrollment = res.json()["enrollment_id"]
    # the same device cannot be another patient's at the same time
    clash = client.post(
        f"/api/v1/patients/{world.patient_a}/enrollments",
        json={"device_id": "cuff-044", "start": "2026-11-10T00:00:00Z"},
    )
    assert clash.status_code == 409
    assert "already enrolled" in clash.json()["detail"]
    backwards = client.post(
        url,
        json={
            "device_id": "cuff-044",
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-11-01T00:00:00Z",
        },
    )
    assert backwards.status_code == 422
    ended = client.post(f"{url}/{enrollment}/end", json={"at": "2026-11-20T00:00:00Z"})
    assert ended.status_code == 200
    assert ended.json()["devices"][0]["end"] == "2026-11-20T00:00:00Z"
    with psycopg.connect(world.db) as conn:
        valid = conn.execute(
            "SELECT lower(valid)::text, upper(valid)::text FROM enrollments"
            " WHERE enrollment_id = %s",
            (enrollment,),
        ).fetchone()
    assert valid == ("2026-11-01 00:00:00+00", "2026-11-20 00:00:00+00")
    # and now the other patient may have it from then on
    later = client.post(
        f"/api/v1/patients/{world.patient_a}/enrollments",
        json={"device_id": "cuff-044", "start": "2026-11-20T00:00:00Z"},
    )
    assert later.status_code == 201
    assert [r[2]["device_id"] for r in audit_rows(world.db, "device_enrolled")] == [  # type: ignore[index]
        "cuff-044",
        "cuff-044",
    ]


def test_admin_creates_an_account_that_can_sign_in(
    login: Callable[[str], TestClient], world: World, anonymous: TestClient
) -> None:
    body = {
        "email": "ide.nuit@hopital.example",
        "display_name": "IDE de nuit",
        "role": "coordinator",
        "password": "nuit-" + PASSWORD,
        "team_ids": [world.team_a],
    }
    client = login("admin")
    assert client.post("/api/v1/clinicians", json=body).status_code == 201
    assert client.post("/api/v1/clinicians", json=body).status_code == 409
    short = client.post(
        "/api/v1/clinicians", json={**body, "email": "a@b.example", "password": "x"}
    )
    assert short.status_code == 422
    assert "Password: too short" in short.json()["detail"]
    # the new account has no second factor: it enrols at its first sign-in on the page
    first = anonymous.post(
        "/api/v1/session",
        json={"email": "IDE.Nuit@hopital.example", "password": "nuit-" + PASSWORD},
    )
    assert first.status_code == 403
    assert "second factor" in first.json()["detail"]
    res = anonymous.post(
        "/api/v1/session",
        json={
            "email": "IDE.Nuit@hopital.example",
            "password": "nuit-" + PASSWORD,
            "code": second_factor.code(world.db, "ide.nuit@hopital.example"),
        },
    )
    assert res.status_code == 200
    assert res.json()["clinician"]["team_ids"] == [world.team_a]
    with psycopg.connect(world.db) as conn:
        hashed = conn.execute(
            "SELECT password_hash FROM clinicians WHERE email = 'ide.nuit@hopital.example'"
        ).fetchone()
    assert hashed is not None
    assert hashed[0].startswith("$argon2id$")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/patients/{p}/enrollments", {"device_id": "ox-a-001"}),
        ("/api/v1/patients/{p}/enrollments/1/end", {}),
        ("/api/v1/patients/{p}/end-follow-up", {}),
    ],
)
def test_admin_actions_on_another_teams_patient_are_forbidden(
    login: Callable[[str], TestClient], world: World, path: str, body: dict[str, object]
) -> None:
    res = login("admin").post(path.format(p=world.patient_b), json=body)
    assert res.status_code == 403
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT follow_up_ended_at, (SELECT count(*) FROM enrollments WHERE patient_id = %s)"
            " FROM patients WHERE patient_id = %s",
            (world.patient_b, world.patient_b),
        ).fetchone()
    assert row == (None, 0)


USUAL = {
    "discharge_sbp_mmhg": 128,
    "discharge_hr_bpm": 64,
    "discharge_weight_kg": 81.5,
    "beta_blocker": True,
    "sleep_apnoea": True,
}


def _usual_row(db: str, patient_id: int) -> tuple[object, ...] | None:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT discharge_sbp_mmhg, discharge_hr_bpm, discharge_weight_kg, beta_blocker,"
            " sleep_apnoea FROM patients WHERE patient_id = %s",
            (patient_id,),
        ).fetchone()


def test_coordinator_enters_the_usual_values_at_discharge(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("coordinator")
    res = client.put(f"/api/v1/patients/{world.patient_a}/usual-values", json=USUAL)
    assert res.status_code == 200, res.text
    assert res.json()["usual_values"] == {
        **USUAL,
        "discharge_sbp_mmhg": 128.0,
        "discharge_hr_bpm": 64.0,
    }
    assert _usual_row(world.db, world.patient_a) == (128.0, 64.0, 81.5, True, True)
    rows = audit_rows(world.db, "usual_values_set")
    assert rows[0][1] == world.patient_a
    # the page shows them with their labels and units, in French
    page = client.get(f"/patients/{world.patient_a}", headers={"Accept-Language": "fr"})
    assert "Valeurs habituelles à la sortie" in page.text
    assert "128\u00a0mmHg" in page.text
    assert "81,5\u00a0kg" in page.text
    # a PUT replaces them all: what is left out is cleared
    res = client.put(f"/api/v1/patients/{world.patient_a}/usual-values", json={})
    assert res.status_code == 200, res.text
    assert _usual_row(world.db, world.patient_a) == (None, None, None, False, False)
    # another team's patient
    other = client.put(f"/api/v1/patients/{world.patient_b}/usual-values", json=USUAL)
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("change", "english", "french"),
    [
        ({"discharge_sbp_mmhg": 300}, "Usual systolic pressure (mmHg): at most 250", "au plus 250"),
        ({"discharge_sbp_mmhg": 20}, "Usual systolic pressure (mmHg): at least 60", "au moins 60"),
        ({"discharge_hr_bpm": 0}, "Usual heart rate (/min): at least 30", "au moins 30"),
        ({"discharge_hr_bpm": 260}, "Usual heart rate (/min): at most 180", "au plus 180"),
        ({"discharge_weight_kg": 5}, "Weight at discharge (kg): at least 20", "au moins 20"),
        ({"discharge_weight_kg": 900}, "Weight at discharge (kg): at most 350", "au plus 350"),
        (
            {"discharge_weight_kg": "heavy"},
            "Weight at discharge (kg): a number is needed.",
            "un nombre est attendu",
        ),
        ({"beta_blocker": "perhaps"}, "Beta-blocker: yes or no is needed.", "oui ou non"),
    ],
)
def test_implausible_usual_values_are_refused_in_the_readers_language(
    login: Callable[[str], TestClient],
    world: World,
    change: dict[str, object],
    english: str,
    french: str,
) -> None:
    client = login("coordinator")
    url = f"/api/v1/patients/{world.patient_a}/usual-values"
    res = client.put(url, json={**USUAL, **change})
    assert res.status_code == 422, res.text
    assert english in res.json()["detail"]
    res = client.put(url, json={**USUAL, **change}, headers={"Accept-Language": "fr"})
    assert res.status_code == 422
    assert french in res.json()["detail"]
    assert _usual_row(world.db, world.patient_a) == (None, None, None, False, False)
    # at creation too
    res = login("admin").post(
        "/api/v1/patients",
        json={**NEW_PATIENT, "team_id": world.team_a, "usual_values": {**USUAL, **change}},
    )
    assert res.status_code == 422
    assert english in res.json()["detail"]


def test_a_patient_is_created_with_the_usual_values(
    login: Callable[[str], TestClient], world: World
) -> None:
    res = login("admin").post(
        "/api/v1/patients", json={**NEW_PATIENT, "team_id": world.team_a, "usual_values": USUAL}
    )
    assert res.status_code == 201, res.text
    assert _usual_row(world.db, res.json()["patient_id"]) == (128.0, 64.0, 81.5, True, True)
