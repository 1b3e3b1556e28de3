"""Issue 17, alert quality: a low battery is first the patient's job. At or below the
battery rule's ``below_pct`` (15 %) the alerts engine asks the patient's phone to charge
the device: one Web Push per low-battery episode of a device (decrypted at the local push
endpoint, which checks VAPID as a push service does) naming only the request kind, and a
message on the home screen; never again within the episode, again with the same Topic
after a restart between claim and push, done once the device reports a level above the
limit again, nothing for a patient without a phone. The team's ``battery_low`` alert still
waits for the critical 5 %."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.battery_requests import BatteryRequests
from alerts.engine import Engine
from alerts.phone_requests import PhoneRequests
from alerts.webpush import PushNotifier
from store.provisioning import ensure_patient, ensure_team, register_device, register_gateway
from tests.patient_phone import enroll_phone
from tests.phone_pushes import Clock, pushed_after_restart, requests_engine, subscribe
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for
from vitals.catalogue import metric

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def patient(conn: psycopg.Connection, key: str) -> int:
    pid = ensure_patient(conn, f"BAT-{key}", ensure_team(conn, "Battery team"), "fr")
    conn.execute(
        "UPDATE patients SET protocol = 'cardiac_surgery', discharged_at = %s"
        " WHERE patient_id = %s",
        (NOW - timedelta(days=3), pid),
    )
    return pid


def device(conn: psycopg.Connection, pid: int, kind: str) -> str:
    register_gateway(conn, "gw-battery")
    device_id = f"{kind}-{pid}"
    register_device(conn, device_id, kind, "gw-battery")
    return device_id


def battery(conn: psycopg.Connection, pid: int, device_id: str, at: datetime, pct: int) -> None:
    conn.execute(
        "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
        " VALUES (%s, %s, %s, %s, %s)",
        (at, pid, device_id, metric("battery_pct").metric_id, pct),
    )


def engine(
    db: str, pem: str, clock: Clock, *, start: bool = True
) -> tuple[Engine, PhoneRequests, PushNotifier]:
    return requests_engine(db, pem, clock, BatteryRequests, start=start)


def requests_of(conn: psycopg.Connection, pid: int) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT message_id, kind, sent_by, device_id, push_outcome, done_reason"
        " FROM patient_messages WHERE patient_id = %s ORDER BY message_id",
        (pid,),
    ).fetchall()


def team_alerts(conn: psycopg.Connection, pid: int) -> list[str]:
    rows = conn.execute(
        "SELECT rule_id FROM alerts WHERE patient_id = %s AND rule_id = 'battery_low'", (pid,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_low_oximeter_asks_the_phone_once_per_episode_and_a_charge_ends_it(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "once")
        subscribe(db, conn, endpoint, pid)
        oximeter = device(conn, pid, "oximeter")
        eng, _notices, pusher = engine(db, pem, clock)
        try:
            battery(conn, pid, oximeter, NOW - timedelta(minutes=2), 16)  # above the limit
            eng.evaluate_once(conn, [pid])
            assert requests_of(conn, pid) == []
            battery(conn, pid, oximeter, NOW - timedelta(seconds=30), 15)  # at the limit
            eng.evaluate_once(conn, [pid])
            wait_for(lambda: len(endpoint.received) == 1, 10, "the push")
            got = endpoint.received[0]
            [(message_id, kind, sent_by, dev, _, done)] = requests_of(conn, pid)
            assert (kind, sent_by, dev, done) == ("charge_oximeter", None, oximeter, None)
            # the request's kind (the device's type), where to go, the tag: no level, no id
            assert got.payload == {
                "kind": "battery",
                "request": "charge_oximeter",
                "url": "/p/",
                "tag": f"battery-{message_id}",
            }
            assert got.headers["topic"] == BatteryRequests.topic_of(int(str(message_id)))
            wait_for(lambda: requests_of(conn, pid)[0][4] == "delivered", 10, "the outcome")
            # the team does not hear of it: the patient can act
            assert team_alerts(conn, pid) == []
            # lower still, the same episode: no second request
            for minutes, pct in ((30, 12), (60, 9)):
                clock.now = NOW + timedelta(minutes=minutes)
                battery(conn, pid, oximeter, clock.now - timedelta(seconds=10), pct)
                eng.evaluate_once(conn, [pid])
                eng.evaluate_once(conn, None)
            threading.Event().wait(0.3)
            assert len(endpoint.received) == 1
            assert len(requests_of(conn, pid)) == 1
            # charged: the device reports a full battery, the request is done
            clock.now = NOW + timedelta(minutes=90)
            battery(conn, pid, oximeter, clock.now - timedelta(seconds=10), 100)
            eng.evaluate_once(conn, [pid])
            assert requests_of(conn, pid)[0][5] == "charged"
            # days later, a new episode: a new request
            clock.now = NOW + timedelta(minutes=120)
            battery(conn, pid, oximeter, clock.now - timedelta(seconds=10), 14)
            eng.evaluate_once(conn, [pid])
            wait_for(lambda: len(endpoint.received) == 2, 10, "the second episode's push")
            assert [r[5] for r in requests_of(conn, pid)] == ["charged", None]
            assert team_alerts(conn, pid) == []
            # the patient did not act: the team hears of it at the critical level
            clock.now = NOW + timedelta(minutes=150)
            battery(conn, pid, oximeter, clock.now - timedelta(seconds=10), 5)
            eng.evaluate_once(conn, [pid])
            assert team_alerts(conn, pid) == ["battery_low"]
            assert len(requests_of(conn, pid)) == 2
        finally:
            pusher.stop()


def test_a_request_claimed_before_a_crash_is_pushed_after_the_restart_with_its_topic(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = patient(conn, "crash")
        subscribe(db, conn, push[1], pid)
        cuff = device(conn, pid, "bp-cuff")
        battery(conn, pid, cuff, NOW - timedelta(seconds=30), 10)
        payload = pushed_after_restart(
            db, push, conn, pid, BatteryRequests, clock, lambda: requests_of(conn, pid)
        )
        assert payload["request"] == "batteries_bp_cuff"


def test_no_request_without_a_phone_nor_for_a_stale_level(
    db: str, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    clock = Clock(NOW)
    with psycopg.connect(db, autocommit=True) as conn:
        alone = patient(conn, "nophone")  # never enrolled a phone
        unsubscribed = patient(conn, "nosub")  # a phone that refused notifications
        enroll_phone(db, unsubscribed)
        stale = patient(conn, "stale")
        subscribe(db, conn, endpoint, stale)
        for pid in (alone, unsubscribed):
            battery(conn, pid, device(conn, pid, "hr-patch"), NOW - timedelta(seconds=30), 11)
        # a level older than the rule's freshness: the device may have been charged since
        battery(conn, stale, device(conn, stale, "scale"), NOW - timedelta(days=3), 11)
        eng, _, pusher = engine(db, pem, clock)
        try:
            eng.evaluate_once(conn, [alone, unsubscribed, stale])
            assert requests_of(conn, alone) == []
            assert requests_of(conn, stale) == []
            # on the home screen only: nothing to push to
            [(_, kind, _, _, outcome, done)] = requests_of(conn, unsubscribed)
            assert (kind, outcome, done) == ("charge_patch", "no_subscription", None)
            threading.Event().wait(0.3)
            assert endpoint.received == []
        finally:
            pusher.stop()
