"""Issue 17, alert quality: when one waking reading is off and the readings that would say
whether it matters are not fresh, the alerts engine asks the patient's phone for a full
set now (a ward's "full set of observations"). A pulse of 93 against a usual 70, with no
temperature since the morning, is how a sepsis looks hours before its fever is measured.
One Web Push (decrypted at the local push endpoint, which checks VAPID as a push service
does) naming only the request kind; no team alert; done once the first metric asked for
is measured, lapsed after the protocol's ``expires_s``; none again within ``every_s``;
none at night, for a pulse that is the patient's usual, when everything is fresh, or
without a phone; pushed again with the same Topic after a crash between claim and push."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import Engine
from alerts.full_set_requests import FullSetRequests
from alerts.phone_requests import PhoneRequests
from alerts.webpush import PushNotifier
from store.provisioning import ensure_patient, ensure_team, register_device, register_gateway
from tests.daytime import daytime_zone
from tests.patient_phone import enroll_phone
from tests.phone_pushes import Clock, pushed_after_restart, requests_engine, subscribe
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for
from vitals.catalogue import metric

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def patient(conn: psycopg.Connection, key: str, hour: int = 10, usual_hr: float = 70) -> int:
    """A cardiac patient home for three days, whose local time is ``hour`` now."""
    pid = ensure_patient(conn, f"FULL-{key}", ensure_team(conn, "Full set team"), "pt")
    conn.execute(
        "UPDATE patients SET protocol = 'cardiac_surgery', discharged_at = %s,"
        " discharge_hr_bpm = %s, time_zone = %s WHERE patient_id = %s",
        (NOW - timedelta(days=3), usual_hr, daytime_zone(NOW, hour), pid),
    )
    register_gateway(conn, "gw-full-set")
    for kind in ("oximeter", "thermometer", "bp-cuff"):
        register_device(conn, f"{kind}-{pid}", kind, "gw-full-set")
    return pid


def reading(conn: psycopg.Connection, pid: int, name: str, at: datetime, value: float) -> None:
    device = {"temp_c": "thermometer", "bp_systolic_mmhg": "bp-cuff"}.get(name, "oximeter")
    conn.execute(
        "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
        " VALUES (%s, %s, %s, %s, %s)",
        (at, pid, f"{device}-{pid}", metric(name).metric_id, value),
    )


def spot_check(conn: psycopg.Connection, pid: int, at: datetime, pulse: float) -> None:
    """An oximeter spot check: SpO2 fresh, the pulse as given."""
    reading(conn, pid, "spo2_pct", at, 96)
    reading(conn, pid, "heart_rate_bpm", at, pulse)


def engine(
    db: str, pem: str, clock: Clock, *, start: bool = True
) -> tuple[Engine, PhoneRequests, PushNotifier]:
    return requests_engine(db, pem, clock, FullSetRequests, start=start)


def requests_of(conn: psycopg.Connection, pid: int) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT m.message_id, m.kind, m.sent_by, mt.name, m.push_outcome, m.done_reason"
        " FROM patient_messages m LEFT JOIN metrics mt USING (metric_id)"
        " WHERE m.patient_id = %s ORDER BY m.message_id",
        (pid,),
    ).fetchall()


def alerts_of(conn: psycopg.Connection, pid: int) -> list[str]:
    rows = conn.execute("SELECT rule_id FROM alerts WHERE patient_id = %s", (pid,)).fetchall()
    return [str(r[0]) for r in rows]


def test_a_pulse_well_above_the_usual_asks_the_phone_for_a_full_set_once(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "pulse")
        subscribe(db, conn, endpoint, pid)
        reading(conn, pid, "temp_c", NOW - timedelta(hours=3), 37.0)  # the morning's
        spot_check(conn, pid, NOW - timedelta(minutes=5), 84)  # 14 over the usual: no
        eng, _, pusher = engine(db, pem, clock)
        try:
            eng.evaluate_once(conn, [pid])
            assert requests_of(conn, pid) == []
            clock.now = NOW + timedelta(minutes=30)
            spot_check(conn, pid, clock.now - timedelta(minutes=2), 93)
            eng.evaluate_once(conn, [pid])
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            [(message_id, kind, sent_by, first, _, done)] = requests_of(conn, pid)
            # the temperature first: no fresh one; the request ends when it comes
            assert (kind, sent_by, first, done) == ("measure_vitals", None, "temp_c", None)
            assert endpoint.received[0].payload == {
                "kind": "full_set",
                "request": "measure_vitals",
                "url": "/p/",
                "tag": f"full_set-{message_id}",
            }
            topic = FullSetRequests.topic_of(int(str(message_id)))
            assert endpoint.received[0].headers["topic"] == topic
            wait_for(lambda: requests_of(conn, pid)[0][4] == "delivered", 10, "the outcome")
            # a request, not an alert: 93/min is no rule's alarm
            assert alerts_of(conn, pid) == []
            # the pulse stays up: still one request
            clock.now = NOW + timedelta(minutes=50)
            spot_check(conn, pid, clock.now - timedelta(minutes=1), 94)
            eng.evaluate_once(conn, [pid])
            # the temperature arrives: done; the rules judge it (38.3: fever)
            clock.now = NOW + timedelta(minutes=60)
            reading(conn, pid, "temp_c", clock.now - timedelta(minutes=1), 38.3)
            eng.evaluate_once(conn, [pid])
            assert [r[5] for r in requests_of(conn, pid)] == ["measured"]
            assert "fever" in alerts_of(conn, pid)
            # two hours later, the pulse still up and no fresh temperature: not within
            # the protocol's every_s (6 h) of the last request
            clock.now = NOW + timedelta(hours=3)
            spot_check(conn, pid, clock.now - timedelta(minutes=1), 94)
            eng.evaluate_once(conn, [pid])
            threading.Event().wait(0.3)
            assert len(requests_of(conn, pid)) == 1
            assert len(endpoint.received) == 1
            # past it: asked again; unanswered, it lapses after expires_s (2 h)
            clock.now = NOW + timedelta(hours=6, minutes=31)
            spot_check(conn, pid, clock.now - timedelta(minutes=1), 94)
            eng.evaluate_once(conn, [pid])
            wait_for(lambda: len(endpoint.received) == 2, 10, "the second push")
            clock.now += timedelta(hours=2)
            eng.evaluate_once(conn, [pid])
            assert [r[5] for r in requests_of(conn, pid)] == ["measured", "expired"]
        finally:
            pusher.stop()


def test_a_pressure_well_below_the_usual_asks_first_for_the_temperature(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "pressure")
        subscribe(db, conn, endpoint, pid)
        conn.execute("UPDATE patients SET discharge_sbp_mmhg = 140 WHERE patient_id = %s", (pid,))
        # 118: 22 under the usual 140, not yet the relative rule's 30
        reading(conn, pid, "bp_systolic_mmhg", NOW - timedelta(minutes=3), 118)
        reading(conn, pid, "heart_rate_bpm", NOW - timedelta(minutes=3), 78)
        eng, _, pusher = engine(db, pem, clock)
        try:
            eng.evaluate_once(conn, [pid])
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            [(_, kind, _, first, _, _)] = requests_of(conn, pid)
            assert (kind, first) == ("measure_vitals", "temp_c")
            assert alerts_of(conn, pid) == []
        finally:
            pusher.stop()


def test_no_full_set_at_night_for_the_usual_pulse_when_fresh_or_without_a_phone(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        asleep = patient(conn, "night", hour=3)
        usual = patient(conn, "usual", usual_hr=88)  # 93 is 5 over their usual
        fresh = patient(conn, "fresh")
        alone = patient(conn, "nophone")
        for pid in (asleep, usual, fresh):
            subscribe(db, conn, endpoint, pid)
        for pid in (asleep, usual, fresh, alone):
            spot_check(conn, pid, NOW - timedelta(minutes=2), 93)
        # everything a full set holds, measured within the hour
        reading(conn, fresh, "temp_c", NOW - timedelta(minutes=20), 36.8)
        reading(conn, fresh, "bp_systolic_mmhg", NOW - timedelta(minutes=20), 131)
        unsubscribed = patient(conn, "nosub")  # a phone that refused notifications
        enroll_phone(db, unsubscribed)
        spot_check(conn, unsubscribed, NOW - timedelta(minutes=2), 93)
        eng, _, pusher = engine(db, pem, clock)
        try:
            eng.evaluate_once(conn, [asleep, usual, fresh, alone, unsubscribed])
            for pid in (asleep, usual, fresh, alone):
                assert requests_of(conn, pid) == [], pid
            # on the home screen only: nothing to push to
            [(_, kind, _, _, outcome, done)] = requests_of(conn, unsubscribed)
            assert (kind, outcome, done) == ("measure_vitals", "no_subscription", None)
            threading.Event().wait(0.3)
            assert endpoint.received == []
        finally:
            pusher.stop()


def test_a_request_claimed_before_a_crash_is_pushed_after_the_restart_with_its_topic(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "crash")
        subscribe(db, conn, push[1], pid)
        spot_check(conn, pid, NOW - timedelta(minutes=2), 93)
        payload = pushed_after_restart(
            db, push, conn, pid, FullSetRequests, clock, lambda: requests_of(conn, pid)
        )
        assert payload["request"] == "measure_vitals"
