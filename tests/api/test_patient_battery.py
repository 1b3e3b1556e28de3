"""Issue 17: the request to charge a device that the alerts engine makes when its battery
is low, as the patient reads it: on the home screen in their language (French, Arabic,
right to left), naming the device, without the re-measurement's "after your last
measurement" line; in the push's words the service worker fetches; gone once the device
reports a good level again; on the team's list of messages, sent by the app. In Chromium,
the engine's push (kind "battery") shows on an Arabic-speaking phone in Arabic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from alerts.battery_requests import BatteryRequests
from alerts.protocol import builtin_protocols
from api.app import create_app
from store.provisioning import register_device, register_gateway
from tests.api.conftest import LiveApi, World
from tests.patient_phone import enroll_phone, home_page
from tests.phone_pushes import arabic_phone_shows, asked, pushed_once
from vitals.catalogue import metric
from vitals.settings import Settings

FR = "La batterie de votre oxymètre est faible. Veuillez la recharger aujourd'hui."
AR = "بطارية جهاز قياس الأكسجين منخفضة. يرجى شحنها اليوم."
AR_CUFF = "بطاريات جهاز قياس ضغط الدم منخفضة. يرجى استبدالها اليوم."
AR_WHY = "طلبه التطبيق بعد قياسك الأخير، للتحقق منه."


def low_oximeter(db: str, patient_id: int, language: str, at: datetime, pct: int = 12) -> str:
    """The patient's oximeter reported ``pct`` % at ``at``; returns its id."""
    device_id = f"ox-battery-{patient_id}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = %s, protocol = 'cardiac_surgery' WHERE patient_id = %s",
            (language, patient_id),
        )
        register_gateway(conn, "gw-battery-api")
        register_device(conn, device_id, "oximeter", "gw-battery-api")
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            (at, patient_id, device_id, metric("battery_pct").metric_id, pct),
        )
    return device_id


def ask(db: str, patient_id: int, at: datetime, requests: BatteryRequests | None = None) -> int:
    """The engine's step after a round (no push by default); how many requests it made."""
    return asked(
        db, requests or BatteryRequests(db, builtin_protocols(), None, "/p/"), patient_id, at
    )


def test_the_request_reads_in_french_and_arabic_and_goes_once_charged(
    app_settings: Settings, world: World, login: Callable[[str], TestClient]
) -> None:
    now = datetime.now(UTC)
    fr_device = low_oximeter(world.db, world.patient_a2, "fr", now - timedelta(minutes=1))
    low_oximeter(world.db, world.patient_b, "ar", now - timedelta(minutes=1))
    fr_phone = enroll_phone(world.db, world.patient_a2)
    ar_phone = enroll_phone(world.db, world.patient_b)
    assert ask(world.db, world.patient_a2, now) == 1
    assert ask(world.db, world.patient_b, now) == 1
    assert ask(world.db, world.patient_b, now) == 0  # one request per episode

    fr_page = home_page(app_settings, fr_phone)
    assert FR.replace("'", "&#39;") in fr_page
    assert "après votre dernière mesure" not in fr_page
    ar_page = home_page(app_settings, ar_phone)
    assert '<html lang="ar" dir="rtl">' in ar_page
    assert AR in ar_page
    assert AR_WHY not in ar_page
    # the push's words, as the service worker asks for them
    with TestClient(create_app(app_settings), cookies=ar_phone.cookies) as client:
        texts = client.get("/p/api/reminders/texts").json()
    assert texts["charge_oximeter"] == {"title": texts["default"]["title"], "body": AR}
    assert texts["batteries_bp_cuff"]["body"] == AR_CUFF

    # the team sees it among the patient's messages, sent by the app
    team = login("coordinator")
    listed = team.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert [(m["kind"], m["done_at"]) for m in listed] == [("charge_oximeter", None)]
    assert listed[0]["sent_by"] in (
        "the app, about a low battery",
        "l'application, pour une batterie faible",
    )

    # the patient charged it: the oximeter reports 100 %, the request leaves the screen
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, %s, %s, 100)",
            (
                now + timedelta(hours=2),
                world.patient_a2,
                fr_device,
                metric("battery_pct").metric_id,
            ),
        )
    ask(world.db, world.patient_a2, now + timedelta(hours=2, minutes=1))
    assert FR.replace("'", "&#39;") not in home_page(app_settings, fr_phone)
    listed = team.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert listed[0]["done_at"] is not None


def test_the_engine_s_push_shows_on_an_arabic_phone_in_arabic(
    world: World, browser: Browser, live_api: Callable[[str], LiveApi]
) -> None:
    api = live_api("coordinator")
    now = datetime.now(UTC)
    low_oximeter(world.db, world.patient_b, "ar", now - timedelta(minutes=1))
    enrolled = enroll_phone(world.db, world.patient_b)
    requests = BatteryRequests(world.db, builtin_protocols(), None, "/p/")
    payload = pushed_once(
        world.db, enrolled, requests, lambda: ask(world.db, world.patient_b, now, requests)
    )
    assert payload["kind"] == "battery"
    assert payload["request"] == "charge_oximeter"

    arabic_phone_shows(browser, api.base_url, enrolled, payload, AR, "patient-home-battery-ar.png")


def test_the_request_ends_with_the_follow_up(
    app_settings: Settings, world: World, login: Callable[[str], TestClient]
) -> None:
    """The kit goes back with the end of the follow-up: a device that never reports again
    must not keep asking the patient to charge it."""
    now = datetime.now(UTC)
    low_oximeter(world.db, world.patient_a2, "fr", now - timedelta(minutes=1))
    phone = enroll_phone(world.db, world.patient_a2)
    assert ask(world.db, world.patient_a2, now) == 1
    admin = login("admin")
    res = admin.post(f"/api/v1/patients/{world.patient_a2}/end-follow-up", json={})
    assert res.status_code == 200, res.text
    with psycopg.connect(world.db) as conn:
        rows = conn.execute(
            "SELECT kind, done_reason, done_at IS NOT NULL FROM patient_messages"
            " WHERE patient_id = %s",
            (world.patient_a2,),
        ).fetchall()
    assert rows == [("charge_oximeter", "follow_up_ended", True)]
    assert ask(world.db, world.patient_a2, now + timedelta(minutes=5)) == 0
    # the team's list says it is over (the phone itself is signed out with the follow-up)
    listed = admin.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert [(m["kind"], m["done_at"] is not None) for m in listed] == [("charge_oximeter", True)]
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        assert client.get("/p/").status_code == 403
