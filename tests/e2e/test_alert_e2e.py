"""A patient deteriorates: readings published by their gateway go through Mosquitto and
ingest; ingest's NOTIFY wakes the alerts engine process, which opens the alert and pushes
it to the coordinator's browser subscription, decrypted by a real push endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from firmware_sim.devices import DeviceKind, KitSimulator, kit_devices

from alerts.vapid import generate
from postop.ports import free_port
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.conftest import Broker
from tests.e2e.conftest import Kit
from tests.e2e.test_gateway_e2e import gateway_process, send_frames
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
            "POSTOP_ALERTS__PUSH_ALLOW_PRIVATE_ENDPOINTS": "true",  # the local endpoint
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


@dataclass(frozen=True)
class Desaturation:
    """A pulmonary-embolism-like fall of SpO2 from ``onset_ms`` on."""

    onset_ms: int
    drop_pct: float = 15.0

    def delta(self, metric: str, t_ms: int) -> float:
        return -self.drop_pct if metric == "spo2_pct" and t_ms >= self.onset_ms else 0.0


def test_simulated_patient_desaturating_at_night_is_alerted_through_the_whole_pipeline(
    db: str, broker: Broker, ingest: ServiceProcess, workdir: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # a home where it is 3 in the morning now: the oximeter records continuously at night
    offset_h = ((3 - now.hour + 12) % 24) - 12
    home_tz = ZoneInfo(f"Etc/GMT{-offset_h:+d}" if offset_h else "Etc/GMT")
    start = now - timedelta(minutes=40)
    kit = KitSimulator("pe-kit", 5, start, kinds=[DeviceKind.OXIMETER], tz=home_tz)
    kit.patient.add_deviation(Desaturation(int((now - timedelta(minutes=15)).timestamp() * 1000)))
    gateway_id = "gw-pe-kit"
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    sub = endpoint.subscribe(1)
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "PE team")
        patient = ensure_patient(conn, "P-PE", team)
        conn.execute(
            "UPDATE patients SET protocol = 'orthopaedic_surgery' WHERE patient_id = %s", (patient,)
        )
        password = register_gateway(conn, gateway_id)
        for device_id, kind in kit_devices("pe-kit", [DeviceKind.OXIMETER]):
            register_device(conn, device_id, kind, gateway_id)
            enroll(conn, device_id, patient, start - timedelta(days=1))
        conn.execute(
            "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth)"
            " VALUES (%s, 'coordinator', %s, %s, %s)",
            (team, sub.endpoint, sub.p256dh, sub.auth),
        )
    broker.add_account(gateway_id, password)
    alerts = ServiceProcess(
        "alerts.main",
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_ALERTS__VAPID_PRIVATE_KEY": keys.private_pem,
            "POSTOP_ALERTS__PUSH_ALLOW_PRIVATE_ENDPOINTS": "true",  # the local endpoint
        },
        workdir / "alerts",
    ).start()
    link_port = free_port()
    gw = gateway_process(
        gateway_id, password, broker, workdir / "gw", link_port, str(home_tz)
    ).start()
    try:
        wait_for(lambda: "alerts engine running" in alerts.log(), 30, "the alerts engine")
        frames = kit.frames(int(start.timestamp() * 1000), int(now.timestamp() * 1000))
        assert len(frames) > 40, "the oximeter should be recording at night"
        send_frames(link_port, [f.line for f in frames])

        def alert() -> list[tuple[int, str, Any]]:
            with psycopg.connect(db) as conn:
                return [
                    (int(r[0]), str(r[1]), r[2])
                    for r in conn.execute(
                        "SELECT alert_id, priority, condition_onset_at FROM alerts"
                        " WHERE patient_id = %s AND rule_id = 'spo2_critical'",
                        (patient,),
                    )
                ]

        wait_for(lambda: bool(alert()), 60, "the desaturation alert")
        [(alert_id, priority, onset)] = alert()
        wait_for(
            lambda: any(r.payload["tag"] == f"alert-{alert_id}" for r in endpoint.received),
            20,
            "the push",
        )
    finally:
        gw.stop()
        alerts.stop()
        endpoint.stop()
        print(f"--- alerts log ---\n{alerts.log()[-3000:]}")
    assert priority == "high"
    # the alert's onset lies after the scripted onset (the rule needs 3 sustained minutes)
    assert onset >= now - timedelta(minutes=15)
