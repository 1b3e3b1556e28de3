"""Issue 17 through the real processes: an oximeter's battery level of 12 % published by
the patient's gateway goes through Mosquitto and ingest; ingest's NOTIFY wakes the alerts
engine process (wired as in production by ``alerts.main``), which asks the patient's
phone to charge the oximeter: one push, decrypted by a real push endpoint, naming only
the request kind, and no team battery alert (above the critical 5 %). The charged device's next
report (100 %) ends the request, with no second push."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from alerts.vapid import generate
from tests.conftest import Broker
from tests.e2e.conftest import Kit
from tests.mqtt_clients import Publisher
from tests.phone_pushes import subscribe
from tests.push_endpoint import PushEndpoint, Received
from tests.stack import ServiceProcess, wait_for
from vitals.wire import encode_batch


def _publish(kit: Kit, broker: Broker, seq: int, time_ms: int, pct: float) -> None:
    reading = {
        "seq": seq,
        "device": kit.devices[0],
        "metric": "battery_pct",
        "time_ms": time_ms,
        "value": pct,
        "flags": 0,
    }
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    pub.wait_acks([pub.publish(encode_batch(kit.gateway_id, time_ms, [reading]))])
    pub.close()


def test_a_low_battery_asks_the_patient_s_phone_through_the_whole_pipeline(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],
    ingest: ServiceProcess,
    workdir: Path,
) -> None:
    kit = make_kit("gw-battery", ("oximeter",))
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s",
            (kit.patient_id,),
        )
        subscribe(db, conn, endpoint, kit.patient_id)
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
                "SELECT kind, push_outcome, done_reason FROM patient_messages"
                " WHERE patient_id = %s",
                (kit.patient_id,),
            ).fetchall()

    def team_alerts() -> int:
        with psycopg.connect(db) as conn:
            row = conn.execute(
                "SELECT count(*) FROM alerts WHERE patient_id = %s AND rule_id = 'battery_low'",
                (kit.patient_id,),
            ).fetchone()
            return int(row[0]) if row else 0

    def requests_pushed() -> list[Received]:
        """This kind's pushes only: the engine's own reminders (morning measurements,
        evening questionnaire) go to the same phone when the wall clock reaches them."""
        return [r for r in endpoint.received if r.payload.get("kind") == "battery"]

    try:
        wait_for(lambda: "alerts engine running" in alerts.log(), 30, "the alerts engine")
        time.sleep(1.0)  # its first (tick) round over everyone is done
        _publish(kit, broker, 0, int(time.time() * 1000) - 5000, 12.0)
        wait_for(lambda: len(requests_pushed()) == 1, 15, "the request's push")
        assert requests_pushed()[0].payload["kind"] == "battery"
        assert requests_pushed()[0].payload["request"] == "charge_oximeter"
        wait_for(lambda: request() == [("charge_oximeter", "delivered", None)], 10, "sent")
        assert team_alerts() == 0
        # charged: the oximeter reports a full battery
        _publish(kit, broker, 1, int(time.time() * 1000), 100.0)
        wait_for(lambda: request() == [("charge_oximeter", "delivered", "charged")], 15, "done")
        time.sleep(0.5)
        assert len(requests_pushed()) == 1
    finally:
        alerts.stop()
        endpoint.stop()
        print(f"--- alerts log ---\n{alerts.log()[-3000:]}")
