"""What the patient's phone was asked, beside the alert on the team's pages: a nurse at
night reads whether the patient was asked to measure again, when, whether the push
reached the phone and whether the new reading came, or that no phone is enrolled (call
the patient); for a missing measurement, when the morning reminder reached the phone.
The requests and reminders are made by the alerts engine's own code, pushed to the local
VAPID-checking push endpoint; the page and the alert's API read them under their audit
rows. In Chromium, in French and English (screenshots in /tmp/asked-*.png)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from psycopg.types.json import Jsonb

from alerts.context import followed_patients
from alerts.evaluate import evaluate
from alerts.protocol import builtin_protocols
from alerts.remeasure import RemeasureRequests
from alerts.reminders import ReminderSender
from alerts.source import SqlSource
from alerts.vapid import VapidKeys, generate
from alerts.webpush import PushNotifier
from api.common.i18n import Clock, viewer_locale
from store.provisioning import enroll, ensure_patient, register_device, register_gateway
from tests.api.conftest import LiveApi, World, audit_rows
from tests.api.test_patient_remeasure import ask, awaiting_confirmation
from tests.browser import visible_raw
from tests.patient_phone import enroll_phone
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for
from vitals.catalogue import metric

MADRID = ZoneInfo("Europe/Madrid")
DAY = datetime(2026, 11, 20, tzinfo=MADRID)  # the morning whose reminder went unanswered


@pytest.fixture
def keys() -> VapidKeys:
    return generate()


@pytest.fixture
def endpoint(keys: VapidKeys) -> Iterator[PushEndpoint]:
    push = PushEndpoint(keys.public_key_b64url).start()
    yield push
    push.stop()


def subscribed_phone(db: str, endpoint: PushEndpoint, patient_id: int) -> None:
    """An enrolled phone (a real enrollment link) that turned notifications on."""
    phone = enroll_phone(db, patient_id)
    sub = endpoint.subscribe(patient_id)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint,"
            " p256dh, auth) VALUES (%s, %s, %s, %s, %s)",
            (patient_id, phone.credential_id, sub.endpoint, sub.p256dh, sub.auth),
        )


def ask_and_push(db: str, keys: VapidKeys, patient_id: int, now: datetime) -> None:
    """The engine's step after a round, with its own push sender; returns once the push
    outcome is recorded."""
    requests = RemeasureRequests(db, builtin_protocols(), None, "/p/")
    pusher = PushNotifier(
        keys.private_pem, "mailto:t@postop.invalid", requests.record,
        allow_private_endpoints=True,
    )  # fmt: skip
    requests.pusher = pusher
    pusher.start()
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            assert len(requests(conn, [patient_id], int(now.timestamp() * 1000))) == 1

            def settled() -> bool:
                row = conn.execute(
                    "SELECT push_outcome FROM patient_messages WHERE patient_id = %s",
                    (patient_id,),
                ).fetchone()
                return row is not None and row[0] is not None

            wait_for(settled, 10, "the request's push outcome")
    finally:
        pusher.stop()


def missed_morning(db: str, keys: VapidKeys, endpoint: PushEndpoint, team_id: int) -> int:
    """A patient at home in Madrid whose 08:00 reminder reached the phone and who did not
    measure: the engine's ``no_bp`` finding at 11:01 opened as its alert store does."""
    with psycopg.connect(db, autocommit=True) as conn:
        pid = ensure_patient(conn, "PA-REMINDED", team_id, "fr", "Europe/Madrid")
        conn.execute(
            "UPDATE patients SET protocol = 'digestive_surgery', discharged_at = %s"
            " WHERE patient_id = %s",
            (DAY - timedelta(days=10), pid),
        )
        register_gateway(conn, "gw-asked")
        for kind in ("bp_cuff", "thermometer"):
            register_device(conn, f"{kind}-asked", kind, "gw-asked")
            enroll(conn, f"{kind}-asked", pid, DAY - timedelta(days=10))
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'bp_cuff-asked', %s, 131)",
            (
                DAY.replace(hour=7, minute=30) - timedelta(days=1),
                pid,
                metric("bp_systolic_mmhg").metric_id,
            ),
        )
    subscribed_phone(db, endpoint, pid)
    now_ms = [int(DAY.replace(hour=8).timestamp() * 1000)]
    reminders = ReminderSender(db, builtin_protocols(), None, "/p/", lambda: now_ms[0])
    pusher = PushNotifier(
        keys.private_pem, "mailto:t@postop.invalid", reminders.record,
        allow_private_endpoints=True,
    )  # fmt: skip
    reminders.pusher = pusher
    pusher.start()
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            claimed = reminders.once(conn)
            assert [c.reminder_id for c in claimed if c.patient_id == pid] == ["morning_vitals"]

            def delivered() -> bool:
                row = conn.execute(
                    "SELECT outcome FROM patient_reminders WHERE patient_id = %s", (pid,)
                ).fetchone()
                return row is not None and row[0] == "delivered"

            wait_for(delivered, 10, "the reminder's push")
    finally:
        pusher.stop()
    at = DAY.replace(hour=11, minute=1)
    with psycopg.connect(db, autocommit=True) as conn:
        found = evaluate(
            SqlSource(conn), followed_patients(conn, [pid]), builtin_protocols(),
            int(at.timestamp() * 1000),
        )  # fmt: skip
        no_bp = next(f for f in found if f.rule_id == "no_bp" and f.firing)
        conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
            " condition_onset_at, evidence) VALUES (%s, 'no_bp', 'technical', 'low', 'active',"
            " %s, %s, %s)",
            (pid, at, at - timedelta(hours=3), Jsonb(dict(no_bp.evidence))),
        )
    return pid


def clock_of(db: str, email: str) -> Clock:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT language, time_zone FROM clinicians WHERE email = %s", (email,)
        ).fetchone()
    assert row is not None
    return Clock(row[0], row[1], viewer_locale(row[0], row[1], "en"))


def asked_text(page_html: str, alert_id: int) -> str:
    """The words of the alert's re-measurement block, as a reader sees them."""
    item = page_html.split(f'id="alert-{alert_id}"', 1)[1].split("</li>", 1)[0]
    block = item.split('class="patient-asked', 1)[1].split("</div>", 1)[0]
    words = html.unescape(re.sub(r"<[^>]+>", " ", block.split(">", 1)[1]))
    return re.sub(r"[ \t\r\n]+", " ", words).strip()  # no-break spaces stay


def brief(team: TestClient, patient_id: int) -> str:
    """The dashboard row's line under the patient's alert badge."""
    rows = team.get("/fragments/dashboard-rows").text
    row = rows.split(f'data-patient-id="{patient_id}"', 1)[1].split("</tr>", 1)[0]
    line = row.split('class="asked-brief', 1)[1].split(">", 1)[1].split("</span>", 1)[0]
    return html.unescape(line)


def alert_of(db: str, patient_id: int, rule_id: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT alert_id FROM alerts WHERE patient_id = %s AND rule_id = %s",
            (patient_id, rule_id),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_alert_says_asked_then_answered_or_no_phone(
    world: World,
    login: Callable[[str], TestClient],
    keys: VapidKeys,
    endpoint: PushEndpoint,
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE clinicians SET language = 'en' WHERE email = %s", (world.emails["coordinator"],)
        )
    now = datetime.now(UTC).replace(microsecond=0)
    awaiting_confirmation(world.db, world.patient_a2, "es", now)
    alert_id = alert_of(world.db, world.patient_a2, "spo2_spot_low")
    team = login("coordinator")
    clock = clock_of(world.db, world.emails["coordinator"])
    page = f"/patients/{world.patient_a2}"

    # no phone: the engine asked nothing, the page says whom to call
    said = asked_text(team.get(page).text, alert_id)
    assert said == (
        "The patient was not asked to measure again: no phone is enrolled. Call the patient."
    )
    assert brief(team, world.patient_a2) == "no phone enrolled: call the patient"

    # a phone with notifications on: the engine asks, the push reaches it
    subscribed_phone(world.db, endpoint, world.patient_a2)
    ask_and_push(world.db, keys, world.patient_a2, now)
    assert len(endpoint.received) == 1
    said = asked_text(team.get(page).text, alert_id)
    assert said == (
        f"Patient asked to measure again at {clock.at(now)} (sent to the phone)."
        " Not measured again yet."
    )
    assert brief(team, world.patient_a2) == f"asked at {clock.at(now)}; not measured again yet"

    # the patient measured again 11 minutes later
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'ox-remeasure', %s, 95)",
            (now + timedelta(minutes=11), world.patient_a2, metric("spo2_pct").metric_id),
        )
    body = team.get(page).text
    said = asked_text(body, alert_id)
    assert said == (
        f"Patient asked to measure again at {clock.at(now)} (sent to the phone)."
        f" Measured again at {clock.at(now + timedelta(minutes=11))}: 95\u00a0%."
    )
    assert "measure_spo2" not in body
    assert brief(team, world.patient_a2) == (
        f"measured again at {clock.at(now + timedelta(minutes=11))}"
    )
    assert visible_raw(said) == set()

    # the alert's API says the same, under the alert's audit row
    got = team.get(f"/api/v1/alerts/{alert_id}").json()["patient_asked"]
    assert (got["kind"], got["delivery"]) == ("remeasure", "delivered")
    assert datetime.fromisoformat(got["asked_at"]) == now
    assert datetime.fromisoformat(got["answered_at"]) == now + timedelta(minutes=11)
    assert got["answer"] == [{"metric": "spo2_pct", "value": 95.0}]
    assert [r[1] for r in audit_rows(world.db, "alert_read")][-1] == world.patient_a2
    assert world.patient_a2 in [r[1] for r in audit_rows(world.db, "patient_read")]


def test_a_missed_morning_says_when_the_reminder_reached_the_phone(
    world: World,
    login: Callable[[str], TestClient],
    keys: VapidKeys,
    endpoint: PushEndpoint,
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE clinicians SET language = 'en' WHERE email = %s", (world.emails["coordinator"],)
        )
    pid = missed_morning(world.db, keys, endpoint, world.team_a)
    alert_id = alert_of(world.db, pid, "no_bp")
    clock = clock_of(world.db, world.emails["coordinator"])
    said = asked_text(login("coordinator").get(f"/patients/{pid}").text, alert_id)
    assert said == (
        f"The reminder to measure was sent to the phone at {clock.at(DAY.replace(hour=8))}."
    )


def low_pressure_awaiting_confirmation(db: str, patient_id: int, at: datetime) -> None:
    """A spot systolic pressure of 84 mmHg opened ``sbp_low`` awaiting its confirmation."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s", (patient_id,)
        )
        conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
            " condition_onset_at, evidence) VALUES (%s, 'sbp_low', 'clinical', 'medium',"
            " 'active', %s, %s, %s)",
            (
                patient_id,
                at,
                at - timedelta(seconds=30),
                Jsonb({"value": 84.0, "threshold": 90.0, "confirmation_requested": True}),
            ),
        )


def test_the_team_reads_it_in_chromium_in_french_and_english(
    world: World,
    browser: Browser,
    live_api: Callable[[str], LiveApi],
    keys: VapidKeys,
    endpoint: PushEndpoint,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    asked_at = now - timedelta(minutes=20)
    # one patient asked and not answered yet, one with no phone, one who missed a morning
    low_pressure_awaiting_confirmation(world.db, world.patient_a2, asked_at)
    subscribed_phone(world.db, endpoint, world.patient_a2)
    ask_and_push(world.db, keys, world.patient_a2, asked_at)
    awaiting_confirmation(world.db, world.patient_a, "en", now)  # patient A has no phone
    reminded = missed_morning(world.db, keys, endpoint, world.team_a)
    expected = {
        "fr": {
            "waiting": (
                "Le patient a été invité à refaire la mesure",
                "Pas encore de nouvelle mesure.",
            ),
            "answered": ("Nouvelle mesure le", "112/70\u00a0mmHg"),
            "no-phone": ("aucun téléphone n\u2019est enregistré. Appelez le patient.",),
            "reminder": ("Le rappel de mesure a été envoyé au téléphone le",),
        },
        "en": {
            "waiting": ("Patient asked to measure again at", "Not measured again yet."),
            "answered": ("Measured again at", "112/70\u00a0mmHg"),
            "no-phone": ("no phone is enrolled. Call the patient.",),
            "reminder": ("The reminder to measure was sent to the phone at",),
        },
    }

    dashboard = {
        "fr": ["aucun téléphone enregistré : appelez le patient", "nouvelle mesure demandée le"],
        "en": ["no phone enrolled: call the patient", "asked at"],
    }

    def look(language: str, shots: dict[str, int]) -> None:
        with psycopg.connect(world.db, autocommit=True) as conn:
            conn.execute(
                "UPDATE clinicians SET language = %s WHERE email = %s",
                (language, world.emails["coordinator"]),
            )
        api = live_api("coordinator")
        context = browser.new_context(
            locale="fr-FR" if language == "fr" else "en-GB", viewport={"width": 1000, "height": 800}
        )
        context.add_cookies(
            [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
        )
        page = context.new_page()
        page.goto(f"{api.base_url}/")
        table = page.locator("table", has=page.locator(".asked-brief")).first
        for words in dashboard[language]:
            assert words in table.inner_text(), (language, words)
        table.screenshot(path=f"/tmp/asked-dashboard-{next(iter(shots))}-{language}.png")
        for name, pid in shots.items():
            page.goto(f"{api.base_url}/patients/{pid}")
            item = page.locator(".alert-item", has=page.locator(".patient-asked")).first
            text = item.locator(".patient-asked").inner_text()
            for words in expected[language][name]:
                assert words in text, (name, language, text)
            assert visible_raw(text) == set()
            item.screenshot(path=f"/tmp/asked-{name}-{language}.png")
        context.close()

    for language in ("fr", "en"):
        look(
            language,
            {"waiting": world.patient_a2, "no-phone": world.patient_a, "reminder": reminded},
        )
    # the patient measured again eleven minutes after the request: 112/70
    with psycopg.connect(world.db, autocommit=True) as conn:
        for name, value in (("bp_systolic_mmhg", 112), ("bp_diastolic_mmhg", 70)):
            conn.execute(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
                " VALUES (%s, %s, 'cuff-remeasure', %s, %s)",
                (asked_at + timedelta(minutes=11), world.patient_a2, metric(name).metric_id, value),
            )
    dashboard = {"fr": ["nouvelle mesure le"], "en": ["measured again at"]}
    for language in ("fr", "en"):
        look(language, {"answered": world.patient_a2})


def test_notifications_off_and_a_request_closed_with_its_alert(
    world: World, login: Callable[[str], TestClient]
) -> None:
    """A phone enrolled but with notifications off: the engine asks in the app only; the
    team resolves the alert before the patient measured."""
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE clinicians SET language = 'en' WHERE email = %s",
            (world.emails["coordinator"],),
        )
    now = datetime.now(UTC).replace(microsecond=0)
    awaiting_confirmation(world.db, world.patient_a2, "es", now)
    enroll_phone(world.db, world.patient_a2)
    assert ask(world.db, world.patient_a2, now) == 1
    alert_id = alert_of(world.db, world.patient_a2, "spo2_spot_low")
    team = login("coordinator")
    at = clock_of(world.db, world.emails["coordinator"]).at(now)
    page = f"/patients/{world.patient_a2}"
    assert asked_text(team.get(page).text, alert_id) == (
        f"Patient asked to measure again at {at} in the app only: notifications are off on"
        " the phone. Not measured again yet. Call the patient if it matters now."
    )
    resolved = team.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "called, fine"})
    assert resolved.status_code == 200
    assert resolved.json()["patient_asked"]["delivery"] == "no_subscription"
    assert asked_text(team.get(page).text, alert_id) == (
        f"Patient asked to measure again at {at} in the app only: notifications are off on"
        " the phone. No new measurement came before the alert closed."
    )
