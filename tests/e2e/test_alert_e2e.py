"""A patient deteriorates: readings published by their gateway go through Mosquitto and
ingest; ingest's NOTIFY wakes the alerts engine process, which opens the alert and pushes
it to the coordinator's browser subscription, decrypted by a real push endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from alerts.vapid import generate
from tests.conftest import Broker
from tests.e2e.conftest import Kit
from tests.mqtt_clients import Publisher
from tests.push_endpoint import PushEndpoint
from tests.stack import ServiceProcess, wait_for
from vitals.wire import encode_batch


def test_desaturation_becomes_an_alert_and_a_push(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],
    ingest: ServiceProcess,
    workdir: Path,
) -> None:
    kit = make_kit("gw-alert", ("ox",))
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    sub = endpoint.subscribe(1)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s",
            (kit.patient_id,),
        )
        conn.execute(
            "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth)"
            " SELECT team_id, 'coordinator', %s, %s, %s FROM patients"
            " WHERE patient_id = %s",
            (sub.endpoint, sub.p256dh, sub.auth, kit.patient_id),
        )
    alerts = ServiceProcess(
        "alerts.main",
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_ALERTS__VAPID_PRIVATE_KEY": keys.private_pem,
            "POSTOP_ALERTS__TICK_S": "3600",  # only ingest's NOTIFY can trigger it in time
        },
        workdir / "alerts",
    ).start()
    try:
        wait_for(lambda: "alerts engine running" in alerts.log(), 30, "the alerts engine")
        time.sleep(1.0)  # its first (tick) round over everyone is done
        now_ms = int(time.time() * 1000)
        readings = [
            {
                "seq": i,
                "device": kit.devices[0],
                "metric": "spo2_pct",
                "time_ms": now_ms - (12 - i) * 30_000,
                "value": 85.0,
                "flags": 0,
            }
            for i in range(12)
        ]  # six minutes below 88%
        pub = Publisher(kit.gateway_id, kit.password, broker.port)
        published = time.monotonic()
        pub.wait_acks([pub.publish(encode_batch(kit.gateway_id, now_ms, readings))])
        pub.close()

        def opened() -> list[tuple[int, str]]:
            with psycopg.connect(db) as conn:
                return [
                    (int(r[0]), str(r[1]))
                    for r in conn.execute(
                        "SELECT alert_id, priority FROM alerts WHERE rule_id = 'spo2_critical'"
                    )
                ]

        wait_for(lambda: bool(opened()), 15, "the alert")
        latency_s = time.monotonic() - published
        wait_for(
            lambda: any(r.payload["tag"] == f"alert-{opened()[0][0]}" for r in endpoint.received),
            15,
            "the push",
        )
    finally:
        alerts.stop()
        endpoint.stop()
        print(f"--- alerts log ---\n{alerts.log()[-3000:]}")
    [(alert_id, priority)] = opened()
    assert priority == "high"
    push = next(r for r in endpoint.received if r.payload["tag"] == f"alert-{alert_id}")
    assert json.dumps(push.payload).find("85") == -1  # no clinical detail in the push
    print(f"publish -> alert committed: {latency_s:.2f} s")
