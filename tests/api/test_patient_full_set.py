"""Issue 17: the request for a full set of measurements that the alerts engine makes when
one waking reading is off and the others are not fresh, as the patient reads it: on the
home screen in their language (Portuguese, Arabic), in the push's words the service
worker fetches, gone once the first measurement asked for came; and on the team's list
of messages, sent by the app. In Chromium, the engine's push shows on an Arabic-speaking
phone in Arabic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from alerts.full_set_requests import FullSetRequests
from alerts.protocol import builtin_protocols
from api.app import create_app
from tests.api.conftest import LiveApi, World
from tests.daytime import daytime_zone
from tests.patient_phone import enroll_phone, home_page
from tests.phone_pushes import arabic_phone_shows, asked, pushed_once
from vitals.catalogue import metric
from vitals.settings import Settings

PT = (
    "Por favor, faça agora todas as suas medições, uma após a outra: temperatura,"
    " pressão arterial e nível de oxigénio."
)
AR = "يُرجى إجراء جميع قياساتك الآن، واحدًا تلو الآخر: الحرارة وضغط الدم ومستوى الأكسجين."


def pulse_off(db: str, patient_id: int, language: str, at: datetime) -> None:
    """A cardiac patient in their late morning, usual pulse 70, whose oximeter spot check
    just read 93/min; nothing else measured today."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = %s, protocol = 'cardiac_surgery',"
            " discharged_at = %s, discharge_hr_bpm = 70, time_zone = %s WHERE patient_id = %s",
            (language, at - timedelta(days=3), daytime_zone(at, 11), patient_id),
        )
        for name, value in (("heart_rate_bpm", 93.0), ("spo2_pct", 96.0)):
            conn.execute(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
                " VALUES (%s, %s, %s, %s, %s)",
                (
                    at - timedelta(minutes=2),
                    patient_id,
                    f"ox-{patient_id}",
                    metric(name).metric_id,
                    value,
                ),
            )


def ask(db: str, patient_id: int, at: datetime, requests: FullSetRequests | None = None) -> int:
    """The engine's step after a round (no push by default); how many requests it made."""
    return asked(
        db, requests or FullSetRequests(db, builtin_protocols(), None, "/p/"), patient_id, at
    )


def test_the_full_set_reads_in_portuguese_and_arabic_and_goes_once_measured(
    app_settings: Settings, world: World, login: Callable[[str], TestClient]
) -> None:
    now = datetime.now(UTC)
    for pid, language in ((world.patient_a2, "pt"), (world.patient_b, "ar")):
        pulse_off(world.db, pid, language, now)
    pt_phone = enroll_phone(world.db, world.patient_a2)
    ar_phone = enroll_phone(world.db, world.patient_b)
    assert ask(world.db, world.patient_a2, now) == 1
    assert ask(world.db, world.patient_b, now) == 1
    assert ask(world.db, world.patient_b, now) == 0  # one open at a time

    assert PT in home_page(app_settings, pt_phone)
    ar_page = home_page(app_settings, ar_phone)
    assert '<html lang="ar" dir="rtl">' in ar_page
    assert AR in ar_page
    with TestClient(create_app(app_settings), cookies=ar_phone.cookies) as client:
        texts = client.get("/p/api/reminders/texts").json()
    assert texts["measure_vitals"] == {"title": texts["default"]["title"], "body": AR}

    # the team sees it among the patient's messages, sent by the app, in its words
    team = login("coordinator")
    listed = team.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert [(m["kind"], m["done_at"]) for m in listed] == [("measure_vitals", None)]
    assert listed[0]["sent_by"] in (
        "the app, to confirm a measurement",
        "l'application, pour confirmer une mesure",
    )

    # the temperature (the first asked for) came: the request leaves the home screen
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'th-full-set', %s, 37.9)",
            (now + timedelta(minutes=6), world.patient_a2, metric("temp_c").metric_id),
        )
    ask(world.db, world.patient_a2, now + timedelta(minutes=7))
    assert PT not in home_page(app_settings, pt_phone)
    listed = team.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert listed[0]["done_at"] is not None


def test_the_engine_s_full_set_push_shows_on_an_arabic_phone_in_arabic(
    world: World, browser: Browser, live_api: Callable[[str], LiveApi]
) -> None:
    api = live_api("coordinator")
    now = datetime.now(UTC)
    pulse_off(world.db, world.patient_b, "ar", now)
    enrolled = enroll_phone(world.db, world.patient_b)
    requests = FullSetRequests(world.db, builtin_protocols(), None, "/p/")
    payload = pushed_once(
        world.db, enrolled, requests, lambda: ask(world.db, world.patient_b, now, requests)
    )
    assert payload["kind"] == "full_set"
    assert payload["request"] == "measure_vitals"
    arabic_phone_shows(browser, api.base_url, enrolled, payload, AR, "patient-home-full-set-ar.png")
