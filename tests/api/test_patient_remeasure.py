"""Issue 17: the request to measure again that the alerts engine makes when one spot
reading awaits its confirmation, as the patient reads it: on the home screen in their
language (French, Arabic), in the push's words the service worker fetches, gone once the
measurement came or the alert was resolved; and on the team's list of messages, sent by
the app, not a clinician. In Chromium, the engine's push shows on an Arabic-speaking
phone in Arabic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from psycopg.types.json import Jsonb

from alerts.protocol import builtin_protocols
from alerts.remeasure import RemeasureRequests
from api.app import create_app
from tests.api.conftest import LiveApi, World
from tests.patient_phone import enroll_phone, home_page
from tests.phone_pushes import arabic_phone_shows, asked, pushed_once
from vitals.catalogue import metric
from vitals.settings import Settings

FR = "Veuillez mesurer votre taux d'oxygène (SpO2) maintenant avec votre oxymètre."
AR = "يرجى قياس مستوى الأكسجين (SpO2) الآن بجهاز قياس الأكسجين."
AR_WHY = "طلبه التطبيق بعد قياسك الأخير، للتحقق منه."


def awaiting_confirmation(db: str, patient_id: int, language: str, at: datetime) -> None:
    """A spot SpO2 of 87 % opened ``spo2_spot_low`` as the engine does: low priority,
    awaiting a confirmation measurement."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = %s, protocol = 'cardiac_surgery' WHERE patient_id = %s",
            (language, patient_id),
        )
        conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
            " condition_onset_at, evidence) VALUES (%s, 'spo2_spot_low', 'clinical', 'low',"
            " 'active', %s, %s, %s)",
            (
                patient_id,
                at,
                at - timedelta(seconds=30),
                Jsonb({"value": 87.0, "threshold": 90.0, "confirmation_requested": True}),
            ),
        )


def ask(db: str, patient_id: int, at: datetime, requests: RemeasureRequests | None = None) -> int:
    """The engine's step after a round (no push by default); how many requests it made."""
    return asked(
        db, requests or RemeasureRequests(db, builtin_protocols(), None, "/p/"), patient_id, at
    )


def test_the_request_reads_in_french_and_arabic_and_goes_once_measured(
    app_settings: Settings, world: World, login: Callable[[str], TestClient]
) -> None:
    now = datetime.now(UTC)
    for pid, language in ((world.patient_a2, "fr"), (world.patient_b, "ar")):
        awaiting_confirmation(world.db, pid, language, now)
    fr_phone = enroll_phone(world.db, world.patient_a2)
    ar_phone = enroll_phone(world.db, world.patient_b)
    assert ask(world.db, world.patient_a2, now) == 1
    assert ask(world.db, world.patient_b, now) == 1
    assert ask(world.db, world.patient_b, now) == 0  # one request per alert

    fr_page = home_page(app_settings, fr_phone)
    assert FR.replace("'", "&#39;") in fr_page
    assert "Demandé par l&#39;application après votre dernière mesure" in fr_page
    ar_page = home_page(app_settings, ar_phone)
    assert '<html lang="ar" dir="rtl">' in ar_page
    assert AR in ar_page
    assert AR_WHY in ar_page
    # the push's words, as the service worker asks for them
    with TestClient(create_app(app_settings), cookies=ar_phone.cookies) as client:
        texts = client.get("/p/api/reminders/texts").json()
    assert texts["measure_spo2"] == {"title": texts["default"]["title"], "body": AR}
    assert texts["measure_blood_pressure"]["body"] == "يرجى قياس ضغط الدم الآن."

    # the team sees it among the patient's messages, sent by the app
    team = login("coordinator")
    listed = team.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert [(m["kind"], m["done_at"]) for m in listed] == [("measure_spo2", None)]
    assert listed[0]["sent_by"] in (
        "the app, to confirm a measurement",
        "l'application, pour confirmer une mesure",
    )

    # the patient measured again three minutes later: the request leaves the home screen
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'ox-remeasure', %s, 95)",
            (now + timedelta(minutes=3), world.patient_a2, metric("spo2_pct").metric_id),
        )
    ask(world.db, world.patient_a2, now + timedelta(minutes=4))
    fr_page = home_page(app_settings, fr_phone)
    assert FR.replace("'", "&#39;") not in fr_page
    listed = team.get(f"/api/v1/patients/{world.patient_a2}/patient-messages").json()
    assert listed[0]["done_at"] is not None

    # a clinician resolves the other patient's alert: the request goes at once
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = now(), resolved_by = 'test'"
            " WHERE patient_id = %s AND rule_id = 'spo2_spot_low'",
            (world.patient_b,),
        )
    assert AR not in home_page(app_settings, ar_phone)


def test_the_engine_s_push_shows_on_an_arabic_phone_in_arabic(
    world: World, browser: Browser, live_api: Callable[[str], LiveApi]
) -> None:
    api = live_api("coordinator")
    now = datetime.now(UTC)
    awaiting_confirmation(world.db, world.patient_b, "ar", now)
    enrolled = enroll_phone(world.db, world.patient_b)
    requests = RemeasureRequests(world.db, builtin_protocols(), None, "/p/")
    payload = pushed_once(
        world.db, enrolled, requests, lambda: ask(world.db, world.patient_b, now, requests)
    )
    assert payload["kind"] == "remeasure"
    assert payload["request"] == "measure_spo2"

    arabic_phone_shows(
        browser, api.base_url, enrolled, payload, AR, "patient-home-remeasure-ar.png"
    )
