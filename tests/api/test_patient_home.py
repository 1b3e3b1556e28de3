"""The patient app's screens over a real database: the home screen in the patient's
language with "what to do now" (the team's hours and phone, the emergency number of the
home country), the team's templated messages and when they were read, the PWA files,
and errors under /p/ in the patient's language."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import World, audit_rows
from tests.patient_phone import enroll_phone
from vitals.settings import Settings


@pytest.fixture
def coordinator(login: Callable[[str], TestClient]) -> TestClient:
    return login("coordinator")


def set_home(db: str, patient_id: int, language: str, country: str | None, zone: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = %s, home_country = %s, time_zone = %s"
            " WHERE patient_id = %s",
            (language, country, zone, patient_id),
        )


def set_contact(db: str, team_id: int, phone: str | None, hours: str | None) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE care_teams SET contact_phone = %s, contact_hours = %s WHERE team_id = %s",
            (phone, hours, team_id),
        )


def test_home_speaks_the_patients_language_with_what_to_do_now(
    app_settings: Settings, world: World
) -> None:
    set_home(world.db, world.patient_a2, "ar", "MA", "Africa/Casablanca")
    set_contact(world.db, world.team_a, "+33 1 40 00 00 00", "lun-ven 8h-18h")
    phone = enroll_phone(world.db, world.patient_a2)
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        page = client.get("/p/")
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "ماذا تفعل الآن" in page.text  # what to do now
    assert 'href="tel:15"' in page.text  # Morocco's civil protection
    assert "141" in page.text  # and its SAMU
    assert 'href="tel:+33140000000"' in page.text
    assert "lun-ven 8h-18h" in page.text
    assert "لا توجد رسائل من فريق الرعاية" in page.text  # honest empty state
    assert "PA-002" not in page.text  # no identifier of ours on the patient's screen


@pytest.mark.parametrize(
    ("language", "country", "number", "words"),
    [
        ("fr", "FR", "15", "Que faire maintenant"),
        ("en", "US", "911", "What to do now"),
        ("en", "GB", "999", "What to do now"),
        ("pt", "BR", "192", "O que fazer agora"),
        ("zh", "CN", "120", "现在该怎么做"),
        ("ar", "SA", "997", "ماذا تفعل الآن"),
        ("de", "DE", "112", "Was jetzt tun"),
        ("it", "IT", "112", "Cosa fare ora"),
        ("es", "ES", "112", "Qué hacer ahora"),
    ],
)
def test_emergency_number_follows_the_home_country(
    app_settings: Settings, world: World, language: str, country: str, number: str, words: str
) -> None:
    set_home(world.db, world.patient_b, language, country, "UTC")
    phone = enroll_phone(world.db, world.patient_b)
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        page = client.get("/p/")
    assert page.status_code == 200
    assert f'href="tel:{number}"' in page.text
    assert words in page.text


def test_unknown_country_gets_no_guessed_number(app_settings: Settings, world: World) -> None:
    set_home(world.db, world.patient_b, "en", "ZZ", "UTC")
    set_contact(world.db, world.team_b, None, None)
    phone = enroll_phone(world.db, world.patient_b)
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        page = client.get("/p/")
    assert "Call your local emergency number now" in page.text
    assert 'href="tel:' not in page.text
    assert "Your care team has not given a phone number yet" in page.text


def test_team_message_is_read_and_the_team_sees_when(
    coordinator: TestClient,
    login: Callable[[str], TestClient],
    app_settings: Settings,
    world: World,
) -> None:
    url = f"/api/v1/patients/{world.patient_a2}/patient-messages"
    # no phone yet: the message would reach nobody
    res = coordinator.post(url, json={"kind": "please_call_us"})
    assert res.status_code == 409
    assert "call them" in res.json()["detail"]
    set_home(world.db, world.patient_a2, "es", "ES", "Europe/Madrid")
    phone = enroll_phone(world.db, world.patient_a2)
    # no free text reaches the patient
    res = coordinator.post(url, json={"kind": "free", "text": "hello"})
    assert res.status_code == 422
    sent = coordinator.post(url, json={"kind": "go_to_emergency"})
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["read_at"] is None
    assert message["text"] == "Please go to the emergency department now."
    assert login("other").get(url).status_code == 403
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        home = client.get("/p/")
        assert "Acuda ahora a urgencias." in home.text
        assert 'href="tel:112"' in home.text
        assert "He leído este mensaje" in home.text
        read = client.post(f"/p/api/messages/{message['message_id']}/read")
        assert read.status_code == 200, read.text
        first = read.json()["read_at"]
        # the first tap counts
        assert (
            client.post(f"/p/api/messages/{message['message_id']}/read").json()["read_at"] == first
        )
        # another patient's message, or none: a sentence in the patient's language
        missing = client.post("/p/api/messages/999999/read")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Este mensaje no existe."}
        assert "Leído el" in client.get("/p/").text
    listed = coordinator.get(url).json()
    assert listed[0]["read_at"] is not None
    assert (
        audit_rows(world.db, "patient_message_read")[0][0] == f"patient_app:{phone.credential_id}"
    )
    # the team's page shows when it was read, in French for this coordinator
    page = coordinator.get(f"/patients/{world.patient_a2}", headers={"Accept": "text/html"})
    assert "Rendez-vous aux urgences maintenant." in page.text
    assert "pas encore lu" not in page.text
    assert "Le patient (application patient)" in page.text  # the access log names the patient


def test_another_patients_message_cannot_be_marked(
    coordinator: TestClient, app_settings: Settings, world: World
) -> None:
    enroll_phone(world.db, world.patient_a2)
    sent = coordinator.post(
        f"/api/v1/patients/{world.patient_a2}/patient-messages", json={"kind": "we_will_call"}
    ).json()
    other = enroll_phone(world.db, world.patient_b)
    with TestClient(create_app(app_settings), cookies=other.cookies) as client:
        res = client.post(f"/p/api/messages/{sent['message_id']}/read")
        assert res.status_code == 404
        assert res.json() == {"detail": "Questo messaggio non esiste."}
        # from another site: refused before anything is written
        res = client.post(
            f"/p/api/messages/{sent['message_id']}/read", headers={"Origin": "https://evil.example"}
        )
        assert res.status_code == 403
    with TestClient(create_app(app_settings)) as anonymous:
        res = anonymous.post(f"/p/api/messages/{sent['message_id']}/read")
        assert res.status_code == 401
        assert "detail" in res.json()
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT read_at FROM patient_messages WHERE message_id = %s", (sent["message_id"],)
        ).fetchone()
    assert row == (None,)


def test_the_app_is_installable_with_its_own_worker(app_settings: Settings, world: World) -> None:
    with TestClient(create_app(app_settings)) as client:
        manifest = client.get("/p/manifest.webmanifest?lang=ar")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        body = json.loads(manifest.text)
        assert body["name"] == "متابعتي"
        assert body["dir"] == "rtl"
        assert body["scope"] == "/p/"
        assert body["start_url"] == "/p/"
        assert body["display"] == "standalone"
        assert {i["sizes"] for i in body["icons"]} >= {"192x192", "512x512"}
        for size in (192, 512):
            icon = client.get(f"/p/icon-{size}.png")
            assert icon.status_code == 200
            assert icon.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert client.get("/p/icon-77.png").status_code == 404
        worker = client.get("/p/sw.js")
        assert worker.headers["service-worker-allowed"] == "/p/"
        assert "caches" in worker.text
        assert client.get("/p/offline").status_code == 401  # the patient's own screen


def test_errors_under_p_speak_the_patients_language(app_settings: Settings, world: World) -> None:
    phone = enroll_phone(world.db, world.patient_b)  # Italian
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        res = client.get("/p/api/nothing-here")
        assert res.status_code == 404
        assert res.json()["detail"] == "Questa pagina non esiste."
        res = client.get("/p/nothing-here", headers={"Accept-Language": "de"})
        assert res.status_code == 404
        assert "Questa pagina non esiste." in res.text  # the patient's, not the browser's
        res = client.post("/p/api/messages/not-a-number/read")
        assert res.status_code == 422
        assert res.json()["detail"] == "Alcuni dei valori inviati non sono validi."
    with TestClient(create_app(app_settings)) as stranger:
        res = stranger.get("/p/nothing-here", headers={"Accept-Language": "de"})
        assert res.status_code == 404
        assert "Diese Seite existiert nicht." in res.text  # nobody known: the browser's
