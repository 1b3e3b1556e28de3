"""Issue 17 through the real processes: one low spot SpO2 published by the patient's
gateway goes through Mosquitto and ingest; ingest's NOTIFY wakes the alerts engine
process, which opens the low-priority alert awaiting a confirmation and asks the
patient's phone for the re-measurement: one push, decrypted by a real push endpoint,
naming only the request kind. The re-measurement then confirms the alert and ends the
request, with no second push."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from alerts.vapid import generate
from tests.conftest import Broker
from tests.e2e.conftest import Kit
from tests.mqtt_clients import Publisher
from tests.patient_phone import enroll_phone
from tests.push_endpoint import PushEndpoint, Received
from tests.stack import ServiceProcess, wait_for
from vitals.wire import encode_batch


def _publish(kit: Kit, broker: Broker, seq: int, time_ms: int, value: float) -> float:
    reading = {
        "seq": seq,
        "device": kit.devices[0],
        "metric": "spo2_pct",
        "time_ms": time_ms,
        "value": value,
        "flags": 0,
    }
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    published = time.monotonic()
    pub.wait_acks([pub.publish(encode_batch(kit.gateway_id, time_ms, [reading]))])
    pub.close()
    return published


def test_a_low_spot_spo2_asks_the_patient_s_phone_through_the_whole_pipeline(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],
    ingest: ServiceProcess,
    workdir: Path,
) -> None:
    kit = make_kit("gw-remeasure", ("ox",))
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    phone = enroll_phone(db, kit.patient_id)
    sub = endpoint.subscribe(kit.patient_id)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s",
            (kit.patient_id,),
        )
        conn.execute(
            "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint,"
            " p256dh, auth) VALUES (%s, %s, %s, %s, %s)",
            (kit.patient_id, phone.credential_id, sub.endpoint, sub.p256dh, sub.auth),
        )
    alerts = ServiceProcess(
        "alerts.main",
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_ALERTS__VAPID_PRIVATE_KEY": keys.private_pem,
            "POSTOP_ALERTS__PUSH_ALLOW_PRIVATE_ENDPOINTS": "true",  # the local endpoint
            "POSTOP_ALERTS__TICK_S": "3600",  # only ingest's NOTIFY can trigger it in time
        },
        workdir / "alerts",
    ).start()

    def request() -> list[tuple[object, ...]]:
        with psycopg.connect(db) as conn:
            return conn.execute(
                "SELECT m.kind, a.priority, m.push_outcome, m.done_reason FROM patient_messages m"
                " JOIN alerts a USING (alert_id) WHERE m.patient_id = %s",
                (kit.patient_id,),
            ).fetchall()

    def requests_pushed() -> list[Received]:
        """This kind's pushes only: the engine's own reminders (morning measurements,
        evening questionnaire) go to the same phone when the wall clock reaches them."""
        return [r for r in endpoint.received if r.payload.get("kind") == "remeasure"]

    try:
        wait_for(lambda: "alerts engine running" in alerts.log(), 30, "the alerts engine")
        time.sleep(1.0)  # its first (tick) round over everyone is done
        now_ms = int(time.time() * 1000)
        # one spot check, measured 200 s ago (so that its re-measurement can be "now")
        published = _publish(kit, broker, 0, now_ms - 200_000, 87.0)
        wait_for(lambda: len(requests_pushed()) == 1, 15, "the request's push")
        latency_s = time.monotonic() - published
        assert requests_pushed()[0].payload["kind"] == "remeasure"
        assert requests_pushed()[0].payload["request"] == "measure_spo2"
        wait_for(lambda: request() == [("measure_spo2", "low", "delivered", None)], 10, "sent")
        # the patient measures again, over two minutes later (still low): confirmed, done
        _publish(kit, broker, 1, int(time.time() * 1000), 87.5)
        wait_for(
            lambda: request() == [("measure_spo2", "medium", "delivered", "measured")], 15, "done"
        )
        time.sleep(0.5)
        assert len(requests_pushed()) == 1
    finally:
        alerts.stop()
        endpoint.stop()
        print(f"--- alerts log ---\n{alerts.log()[-3000:]}")
    print(f"publish -> request pushed and decrypted: {latency_s:.2f} s")
