"""Issue 20, reminders: the alerts engine pushes the patient's phone at the local times
their protocol sets (here 08:00 in New York), once a day each even across a restart, with
a payload that names the reminder and nothing clinical; the push is decrypted at the
local push endpoint, which checks VAPID as a push service does. A morning not measured
becomes the missing-data technical alert only after the reminder and its grace period."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from alerts.context import followed_patients
from alerts.evaluate import evaluate
from alerts.protocol import builtin_protocols
from alerts.reminders import ReminderSender, topic_of
from alerts.source import SqlSource
from alerts.webpush import PushNotifier
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.patient_phone import enroll_phone
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for
from vitals.catalogue import metric

NY = ZoneInfo("America/New_York")
DAY = datetime(2026, 11, 20, tzinfo=NY)  # a Friday; the patient went home 10 days before


def at(hour: int, minute: int = 0, day: datetime = DAY) -> datetime:
    return day.replace(hour=hour, minute=minute).astimezone(UTC)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> int:
        return int(self.now.timestamp() * 1000)


def patient_at_home(conn: psycopg.Connection, key: str) -> int:
    team = ensure_team(conn, "Reminder team")
    pid = ensure_patient(conn, f"R-{key}", team, "es", "America/New_York")
    conn.execute(
        "UPDATE patients SET protocol = 'digestive_surgery', discharged_at = %s"
        " WHERE patient_id = %s",
        (DAY - timedelta(days=10), pid),
    )
    register_gateway(conn, f"gw-rem-{key}")
    for kind in ("bp_cuff", "thermometer"):
        register_device(conn, f"{kind}-rem-{key}", kind, f"gw-rem-{key}")
        enroll(conn, f"{kind}-rem-{key}", pid, DAY - timedelta(days=10))
    return pid


def subscribe(db: str, conn: psycopg.Connection, endpoint: PushEndpoint, pid: int) -> None:
    """The patient's enrolled phone subscribed (its credential made by a real link)."""
    phone = enroll_phone(db, pid)
    sub = endpoint.subscribe(pid)
    conn.execute(
        "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint, p256dh,"
        " auth) VALUES (%s, %s, %s, %s, %s)",
        (pid, phone.credential_id, sub.endpoint, sub.p256dh, sub.auth),
    )


def sender(db: str, pem: str, clock: Clock) -> tuple[ReminderSender, PushNotifier]:
    reminders = ReminderSender(db, builtin_protocols(), None, "/p/", clock)
    pusher = PushNotifier(
        pem,
        "mailto:t@postop.invalid",
        reminders.record,
        base_delay_s=0.05,
        allow_private_endpoints=True,
    )
    reminders.pusher = pusher
    pusher.start()
    return reminders, pusher


def outcomes(conn: psycopg.Connection, pid: int) -> dict[str, str | None]:
    rows = conn.execute(
        "SELECT reminder_id, outcome FROM patient_reminders WHERE patient_id = %s", (pid,)
    ).fetchall()
    return {str(r): o for r, o in rows}


def test_the_morning_reminder_reaches_the_phone_at_8_local_once(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(at(7, 59))
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient_at_home(conn, "once")
        subscribe(db, conn, endpoint, pid)
        reminders, pusher = sender(db, pem, clock)
        try:
            assert reminders.once(conn) == []  # 07:59 in New York: not yet
            clock.now = at(8, 0)
            claimed = reminders.once(conn)
            assert [(c.reminder_id, c.due_at) for c in claimed] == [("morning_vitals", at(8))]
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            wait_for(lambda: outcomes(conn, pid) == {"morning_vitals": "delivered"}, 10, "the push")
            got = endpoint.received[0]
            # the reminder's name, where to go, the notification's tag: nothing clinical
            assert got.payload == {
                "kind": "reminder",
                "reminder": "morning_vitals",
                "url": "/p/",
                "tag": "reminder-morning_vitals-2026-11-20",
            }
            assert got.headers["topic"] == topic_of((pid, "morning_vitals", DAY.date()))
            assert got.headers["urgency"] == "normal"
            clock.now = at(8, 1)
            assert reminders.once(conn) == []  # the same day: never again
        finally:
            pusher.stop()
        # a restarted engine (a new sender) does not send it again either
        clock.now = at(8, 30)
        again, pusher2 = sender(db, pem, clock)
        try:
            assert again.once(conn) == []
            threading.Event().wait(0.3)
            assert len(endpoint.received) == 1
            # the evening questionnaire at 19:00 local is the next one
            clock.now = at(19, 0, DAY)
            assert [c.reminder_id for c in again.once(conn)] == ["evening_questionnaire"]
            wait_for(lambda: len(endpoint.received) == 2, 10, "the push")
            assert endpoint.received[1].payload["reminder"] == "evening_questionnaire"
        finally:
            pusher2.stop()


def test_a_reminder_claimed_by_an_engine_that_crashed_is_sent_after_the_restart(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(at(8, 3))
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient_at_home(conn, "crash")
        subscribe(db, conn, endpoint, pid)
        # claimed (committed) at 08:00, then the process died before the push settled
        conn.execute(
            "INSERT INTO patient_reminders (patient_id, reminder_id, local_date, due_at,"
            " claimed_at) VALUES (%s, 'morning_vitals', %s, %s, %s)",
            (pid, DAY.date(), at(8), at(8)),
        )
        reminders, pusher = sender(db, pem, clock)
        try:
            assert reminders.once(conn) == []  # nothing new to claim...
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")  # ...but it is sent
            wait_for(lambda: outcomes(conn, pid) == {"morning_vitals": "delivered"}, 10, "the push")
            assert endpoint.received[0].payload["tag"] == "reminder-morning_vitals-2026-11-20"
            clock.now = at(8, 4)
            reminders.once(conn)
            threading.Event().wait(0.3)
            assert len(endpoint.received) == 1
        finally:
            pusher.stop()


def test_no_reminder_when_the_patient_measured_already_or_it_is_too_late(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(at(8, 0))
    with psycopg.connect(db, autocommit=True) as conn:
        early = patient_at_home(conn, "early")
        subscribe(db, conn, endpoint, early)
        for name, value in (("bp_systolic_mmhg", 128.0), ("temp_c", 36.8)):
            device = "bp_cuff-rem-early" if name.startswith("bp") else "thermometer-rem-early"
            conn.execute(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
                " VALUES (%s, %s, %s, %s, %s)",
                (at(7, 10), early, device, metric(name).metric_id, value),
            )
        reminders, pusher = sender(db, pem, clock)
        try:
            assert reminders.once(conn) == []
            assert outcomes(conn, early) == {"morning_vitals": "already_done"}
            # an engine down all morning does not remind at 10:30 (2 h late at most)
            late = patient_at_home(conn, "late")
            subscribe(db, conn, endpoint, late)
            clock.now = at(10, 30)
            assert reminders.once(conn) == []
            threading.Event().wait(0.3)
            assert endpoint.received == []
        finally:
            pusher.stop()


def test_a_patient_with_a_scale_is_asked_for_the_morning_weight_at_7_30(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    """The weight rules compare one morning's weight with another's: a patient whose kit
    has a scale is reminded to weigh at 07:30 local, unless weighed since 04:30; a
    patient without a scale never is (the other tests' patients)."""
    pem, endpoint = push
    clock = Clock(at(7, 29))
    with psycopg.connect(db, autocommit=True) as conn:
        pids = {}
        for key in ("scale", "weighed", "noscale"):
            pids[key] = patient_at_home(conn, key)
            subscribe(db, conn, endpoint, pids[key])
            if key != "noscale":
                register_device(conn, f"scale-rem-{key}", "scale", f"gw-rem-{key}")
                enroll(conn, f"scale-rem-{key}", pids[key], DAY - timedelta(days=10))
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            (at(6, 40), pids["weighed"], "scale-rem-weighed", metric("weight_kg").metric_id, 71.2),
        )
        reminders, pusher = sender(db, pem, clock)
        try:
            assert reminders.once(conn) == []  # 07:29 in New York: not yet
            clock.now = at(7, 30)
            claimed = reminders.once(conn)
            assert [(c.patient_id, c.reminder_id, c.due_at) for c in claimed] == [
                (pids["scale"], "morning_weight", at(7, 30))
            ]
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            assert endpoint.received[0].payload["reminder"] == "morning_weight"
            assert outcomes(conn, pids["weighed"]) == {"morning_weight": "already_done"}
            assert outcomes(conn, pids["noscale"]) == {}
        finally:
            pusher.stop()


def _no_bp(db: str, pid: int, now: datetime) -> bool:
    with psycopg.connect(db, autocommit=True) as conn:
        ctx = followed_patients(conn, [pid])
        found = evaluate(SqlSource(conn), ctx, builtin_protocols(), int(now.timestamp() * 1000))
    return next(f for f in found if f.rule_id == "no_bp").firing


def test_a_missed_morning_becomes_the_missing_data_alert_after_the_grace(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient_at_home(conn, "missed")
        # last blood pressure the day before at 07:30: silent 16 h by 23:30, yet the rule
        # waits for this morning's reminder (08:00) and its 3 h of grace
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'bp_cuff-rem-missed', %s, 131)",
            (at(7, 30, DAY - timedelta(days=1)), pid, metric("bp_systolic_mmhg").metric_id),
        )
    assert not _no_bp(db, pid, at(6, 0))  # yesterday's reminder was answered
    assert not _no_bp(db, pid, at(10, 59))  # still within the grace
    assert _no_bp(db, pid, at(11, 1))  # the reminder went unanswered: the team hears
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'bp_cuff-rem-missed', %s, 127)",
            (at(11, 20), pid, metric("bp_systolic_mmhg").metric_id),
        )
    assert not _no_bp(db, pid, at(11, 30))  # measured: the condition clears


def test_a_phone_replaced_by_another_hears_no_more_reminders(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(at(8, 0))
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient_at_home(conn, "lost")
        subscribe(db, conn, endpoint, pid)
        enroll_phone(db, pid)  # the phone was lost: a new one enrolled, not subscribed yet
        reminders, pusher = sender(db, pem, clock)
        try:
            assert reminders.once(conn) == []
            threading.Event().wait(0.3)
            assert endpoint.received == []
        finally:
            pusher.stop()


def _missing_rules(db: str, pid: int, now: datetime) -> dict[str, tuple[bool, dict[str, object]]]:
    with psycopg.connect(db, autocommit=True) as conn:
        ctx = followed_patients(conn, [pid])
        found = evaluate(SqlSource(conn), ctx, builtin_protocols(), int(now.timestamp() * 1000))
    return {f.rule_id: (f.firing, dict(f.evidence)) for f in found if f.rule_id.startswith("no_")}


def test_one_missed_reminder_is_one_alert_naming_every_missing_measurement(db: str) -> None:
    """The morning reminder asks for a blood pressure and a temperature: a morning with
    neither is one alert for the team (naming both), not two; once the pressure comes,
    the temperature still missing is its own alert."""
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient_at_home(conn, "both")
        for name, device, value in (
            ("bp_systolic_mmhg", "bp_cuff-rem-both", 131.0),
            ("temp_c", "thermometer-rem-both", 36.8),
        ):
            conn.execute(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
                " VALUES (%s, %s, %s, %s, %s)",
                (at(7, 30, DAY - timedelta(days=1)), pid, device, metric(name).metric_id, value),
            )
    found = _missing_rules(db, pid, at(11, 1))
    assert found["no_bp"][0] is True
    assert found["no_bp"][1]["also_missing"] == "temp_c"
    assert found["no_temp"][0] is False
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'bp_cuff-rem-both', %s, 127)",
            (at(11, 20), pid, metric("bp_systolic_mmhg").metric_id),
        )
    found = _missing_rules(db, pid, at(11, 30))
    assert found["no_bp"][0] is False
    assert found["no_temp"][0] is True
    assert "also_missing" not in found["no_temp"][1]


def test_a_metric_missing_later_joins_the_open_alert_and_keeps_it_open(db: str) -> None:
    """One missing-data alert per patient: the pressure forgotten on Friday opens
    ``no_bp``; on Saturday neither measurement came, and the same alert names the
    temperature too (its evidence updated, no second alert). Once the pressure comes but
    not the temperature, the alert stays open and firing, naming the temperature still
    missing: it neither resolves nor hands over to a new ``no_temp`` alert."""
    from alerts.engine import Engine

    clock = Clock(at(11, 1))
    engine = Engine(db, builtin_protocols(), lambda _c, _n: None, clock_ms=clock)
    saturday = DAY + timedelta(days=1)

    def vital(conn: psycopg.Connection, name: str, device: str, when: datetime, v: float) -> None:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            (when, pid, device, metric(name).metric_id, v),
        )

    def missing_alerts(conn: psycopg.Connection) -> list[tuple[str, bool, object, object]]:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT rule_id, condition_cleared_at IS NULL, evidence->>'also_missing',"
                " evidence->>'still_missing'"
                " FROM alerts WHERE patient_id = %s AND kind = 'technical' ORDER BY alert_id",
                (pid,),
            )
        ]

    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient_at_home(conn, "join")
        vital(conn, "bp_systolic_mmhg", "bp_cuff-rem-join", at(7, 30, DAY - timedelta(days=1)), 131)
        vital(conn, "temp_c", "thermometer-rem-join", at(7, 30, DAY - timedelta(days=1)), 36.8)
        vital(conn, "temp_c", "thermometer-rem-join", at(7, 30), 36.7)  # no pressure Friday
        engine.evaluate_once(conn, [pid])
        assert missing_alerts(conn) == [("no_bp", True, None, None)]
        clock.now = at(11, 1, saturday)  # nothing measured on Saturday morning
        engine.evaluate_once(conn, [pid])
        assert missing_alerts(conn) == [("no_bp", True, "temp_c", None)]
        vital(conn, "bp_systolic_mmhg", "bp_cuff-rem-join", at(11, 20, saturday), 127)
        for minutes in (30, 90, 150):
            clock.now = at(11, 30, saturday) + timedelta(minutes=minutes - 30)
            engine.evaluate_once(conn, [pid])
            assert missing_alerts(conn) == [("no_bp", True, None, "temp_c")]
        vital(conn, "temp_c", "thermometer-rem-join", at(14, 10, saturday), 36.9)
        clock.now = at(14, 15, saturday)
        engine.evaluate_once(conn, [pid])
        assert missing_alerts(conn) == [("no_bp", False, None, "temp_c")]  # cleared, one alert
