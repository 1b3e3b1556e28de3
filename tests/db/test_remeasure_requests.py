"""Issue 17, alert quality: a single abnormal spot reading opens a low-priority alert that
awaits a confirming re-measurement, and the alerts engine asks the patient's phone for it:
one Web Push per alert (decrypted at the local push endpoint, which checks VAPID as a push
service does) naming only the request kind, and a message on the patient app's home
screen; never again on the next round, again with the same Topic after a restart between
claim and push, done once the re-measurement arrives, nothing for a patient without a
phone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import Engine
from alerts.phone_requests import PhoneRequests
from alerts.remeasure import RemeasureRequests
from alerts.webpush import PushNotifier
from store.provisioning import ensure_patient, ensure_team
from tests.patient_phone import enroll_phone
from tests.phone_pushes import Clock, pushed_after_restart, requests_engine, subscribe
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for
from vitals.catalogue import metric

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def patient(conn: psycopg.Connection, key: str) -> int:
    pid = ensure_patient(conn, f"RM-{key}", ensure_team(conn, "Remeasure team"), "fr")
    conn.execute(
        "UPDATE patients SET protocol = 'cardiac_surgery', discharged_at = %s"
        " WHERE patient_id = %s",
        (NOW - timedelta(days=3), pid),
    )
    return pid


def spot(conn: psycopg.Connection, pid: int, at: datetime, name: str, value: float) -> None:
    conn.execute(
        "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
        " VALUES (%s, %s, %s, %s, %s)",
        (at, pid, f"dev-rm-{pid}", metric(name).metric_id, value),
    )


def engine(
    db: str, pem: str, clock: Clock, *, start: bool = True
) -> tuple[Engine, PhoneRequests, PushNotifier]:
    return requests_engine(db, pem, clock, RemeasureRequests, start=start)


def requests_of(conn: psycopg.Connection, pid: int) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT m.message_id, m.kind, m.sent_by, a.rule_id, m.push_outcome, m.done_reason"
        " FROM patient_messages m JOIN alerts a USING (alert_id) WHERE m.patient_id = %s",
        (pid,),
    ).fetchall()


def alert_of(conn: psycopg.Connection, pid: int, rule: str) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT priority, evidence ->> 'confirmation_requested' FROM alerts"
        " WHERE patient_id = %s AND rule_id = %s AND state <> 'resolved'",
        (pid, rule),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_low_spot_spo2_asks_the_phone_once_and_the_confirmation_ends_it(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "once")
        subscribe(db, conn, endpoint, pid)
        eng, _requests, pusher = engine(db, pem, clock)
        try:
            spot(conn, pid, NOW - timedelta(seconds=30), "spo2_pct", 87.0)  # below 90
            eng.evaluate_once(conn, [pid])
            assert alert_of(conn, pid, "spo2_spot_low") == ("low", "true")
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            got = endpoint.received[0]
            [(message_id, kind, sent_by, rule, _, done)] = requests_of(conn, pid)
            assert (kind, sent_by, rule, done) == ("measure_spo2", None, "spo2_spot_low", None)
            # the request's kind, where to go, the notification's tag: nothing clinical
            assert got.payload == {
                "kind": "remeasure",
                "request": "measure_spo2",
                "url": "/p/",
                "tag": f"remeasure-{message_id}",
            }
            assert got.headers["topic"] == RemeasureRequests.topic_of(int(str(message_id)))
            wait_for(
                lambda: requests_of(conn, pid)[0][4] == "delivered", 10, "the outcome recorded"
            )
            # the next ticks: the same alert, no second request
            for minutes in (1, 2):
                clock.now = NOW + timedelta(minutes=minutes)
                eng.evaluate_once(conn, [pid])
                eng.evaluate_once(conn, None)
            threading.Event().wait(0.3)
            assert len(endpoint.received) == 1
            assert len(requests_of(conn, pid)) == 1
            # the patient measures again 3 minutes later, still low: confirmed, and done
            spot(conn, pid, NOW + timedelta(minutes=3), "spo2_pct", 87.0)
            clock.now = NOW + timedelta(minutes=3, seconds=20)
            eng.evaluate_once(conn, [pid])
            assert alert_of(conn, pid, "spo2_spot_low") == ("medium", "false")
            assert requests_of(conn, pid)[0][5] == "measured"
            threading.Event().wait(0.3)
            assert len(endpoint.received) == 1
        finally:
            pusher.stop()


def test_a_request_claimed_before_a_crash_is_pushed_after_the_restart_with_its_topic(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "crash")
        subscribe(db, conn, push[1], pid)
        spot(conn, pid, NOW - timedelta(seconds=30), "temp_c", 38.6)  # fever, one reading
        payload = pushed_after_restart(
            db, push, conn, pid, RemeasureRequests, clock, lambda: requests_of(conn, pid)
        )
        assert payload["request"] == "measure_temperature"


def test_no_request_without_a_phone_and_a_normal_recheck_ends_one(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        alone = patient(conn, "nophone")  # never enrolled a phone
        unsubscribed = patient(conn, "nosub")  # a phone that refused notifications
        enroll_phone(db, unsubscribed)
        for pid in (alone, unsubscribed):
            spot(conn, pid, NOW - timedelta(seconds=30), "bp_systolic_mmhg", 84.0)
        eng, _, pusher = engine(db, pem, clock)
        try:
            eng.evaluate_once(conn, [alone, unsubscribed])
            assert alert_of(conn, alone, "sbp_low") == ("low", "true")
            assert requests_of(conn, alone) == []
            # on the home screen only: nothing to push to
            [(_, kind, _, rule, outcome, done)] = requests_of(conn, unsubscribed)
            assert (kind, rule, outcome, done) == (
                "measure_blood_pressure",
                "sbp_low",
                "no_subscription",
                None,
            )
            # a normal pressure a minute later clears the condition: the request is moot
            spot(conn, unsubscribed, NOW + timedelta(seconds=30), "bp_systolic_mmhg", 118.0)
            clock.now = NOW + timedelta(minutes=1)
            eng.evaluate_once(conn, [alone, unsubscribed])
            assert requests_of(conn, unsubscribed)[0][5] == "alert_closed"
            threading.Event().wait(0.3)
            assert endpoint.received == []
        finally:
            pusher.stop()


def test_no_request_when_the_remeasurement_came_with_the_spot_reading(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "both")
        subscribe(db, conn, endpoint, pid)
        # the home was offline: both readings arrive in one batch, the second confirming
        spot(conn, pid, NOW - timedelta(minutes=5), "spo2_pct", 87.0)
        spot(conn, pid, NOW - timedelta(minutes=2), "spo2_pct", 87.0)
        eng, _, pusher = engine(db, pem, clock)
        try:
            eng.evaluate_once(conn, [pid])
            assert alert_of(conn, pid, "spo2_spot_low") == ("medium", "false")
            assert requests_of(conn, pid) == []
            threading.Event().wait(0.3)
            assert endpoint.received == []
        finally:
            pusher.stop()


def test_one_fever_reading_opening_two_rules_asks_the_patient_once(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    """38.6 °C opens ``fever`` and ``low_grade_fever`` (both await a confirmation): one
    request to the phone, for the earliest alert; the re-measurement confirms both."""
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "twice")
        subscribe(db, conn, endpoint, pid)
        eng, _requests, pusher = engine(db, pem, clock)
        try:
            spot(conn, pid, NOW - timedelta(seconds=30), "temp_c", 38.6)
            eng.evaluate_once(conn, [pid])
            assert alert_of(conn, pid, "fever") == ("low", "true")
            assert alert_of(conn, pid, "low_grade_fever") == ("low", "true")
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            clock.now = NOW + timedelta(minutes=1)
            eng.evaluate_once(conn, [pid])
            threading.Event().wait(0.3)
            [(_, kind, _, rule, _, done)] = requests_of(conn, pid)
            assert (kind, rule, done) == ("measure_temperature", "fever", None)
            assert len(endpoint.received) == 1
            spot(conn, pid, NOW + timedelta(minutes=3), "temp_c", 38.5)
            clock.now = NOW + timedelta(minutes=3, seconds=20)
            eng.evaluate_once(conn, [pid])
            assert alert_of(conn, pid, "fever") == ("medium", "false")
            assert alert_of(conn, pid, "low_grade_fever") == ("low", "false")
            assert [r[5] for r in requests_of(conn, pid)] == ["measured"]
        finally:
            pusher.stop()
