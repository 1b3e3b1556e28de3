"""The whole spine over real processes: simulated device firmware emits GATT bytes, a
gateway process decodes them into its outbox and publishes over a real Mosquitto, an
ingest process stores them in PostgreSQL. Every reading the devices emitted is stored
exactly once, with its value, flags and measured time, and nothing else is."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from firmware_sim.devices import KitSimulator, kit_devices

from gateway.rhythm_buffer import RhythmBuffer
from postop.ports import free_port
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.conftest import Broker
from tests.e2e.test_gateway_e2e import gateway_process, send_frames
from tests.stack import ServiceProcess, wait_for
from vitals.catalogue import BY_NAME
from vitals.flags import ReadingFlag

HOME_TZ = "America/New_York"  # a patient back home abroad: devices keep local time


def test_simulated_kit_to_database_exactly_once(
    db: str, broker: Broker, ingest: ServiceProcess, workdir: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=24)  # a whole day: a night of continuous oximetry included
    kit = KitSimulator("e2e-kit", 7, start, tz=ZoneInfo(HOME_TZ))
    gateway_id = "gw-e2e-kit"
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(conn, "P-E2E", ensure_team(conn, "E2E"), time_zone=HOME_TZ)
        password = register_gateway(conn, gateway_id)
        for device_id, kind in kit_devices("e2e-kit"):
            register_device(conn, device_id, kind, gateway_id)
            enroll(conn, device_id, patient, start - timedelta(days=1))
    broker.add_account(gateway_id, password)

    frames = kit.frames(int(start.timestamp() * 1000), int(now.timestamp() * 1000))
    expected: dict[tuple[str, str, int], tuple[float | None, int]] = {}
    implausible = 0
    rhythm = RhythmBuffer()
    for frame in frames:
        for v in frame.values:
            flags = v.flags if v.timestamped else v.flags | int(ReadingFlag.GATEWAY_TIME)
            t_ms = v.measured_ms if v.timestamped else frame.rx_ms
            if v.value is not None and not BY_NAME[v.metric].is_plausible(v.value):
                implausible += 1
                continue
            expected.setdefault((frame.device_id, v.metric, t_ms), (v.value, flags))
        # the gateway summarises the patch's RR intervals per minute (rhythm readings);
        # the same buffer over the same frames says which (no beats without contact)
        contact = frame.values and not frame.values[0].flags & ReadingFlag.QUESTIONABLE
        if frame.rr_intervals_s and contact:
            rr_ms = tuple(round(rr * 1024) * 1000 / 1024 for rr in frame.rr_intervals_s)
            for r in rhythm.add(frame.device_id, frame.rx_ms, rr_ms):
                expected[(frame.device_id, r.metric, r.time_ms)] = (
                    r.value,
                    int(ReadingFlag.GATEWAY_TIME),
                )
    assert len(expected) > 1000
    assert {m for _, m, _ in expected} >= {
        "spo2_pct",
        "heart_rate_bpm",
        "bp_systolic_mmhg",
        "temp_c",
        "battery_pct",
    }

    link_port = free_port()
    gw = gateway_process(gateway_id, password, broker, workdir / "gw", link_port, HOME_TZ)
    gw.start()
    try:
        send_frames(link_port, [f.line for f in frames])

        def stored() -> int:
            with psycopg.connect(db) as conn:
                row = conn.execute("SELECT count(*) FROM vitals").fetchone()
            return int(row[0]) if row else 0

        wait_for(lambda: stored() >= len(expected), 90, f"{len(expected)} readings")
        with psycopg.connect(db) as conn:
            rows = conn.execute(
                "SELECT v.device_id, m.name, (extract(epoch FROM v.time) * 1000)::bigint,"
                " v.value, v.flags, v.patient_id FROM vitals v JOIN metrics m USING (metric_id)"
            ).fetchall()
            dead = conn.execute("SELECT reason FROM dead_letters").fetchall()
    finally:
        gw.stop()
        print(f"--- gateway log ---\n{gw.log()[-3000:]}")
    got = {(d, m, int(t)): (v, f) for d, m, t, v, f, _ in rows}
    assert len(rows) == len(got) == len(expected)
    assert got.keys() == expected.keys()
    for key, (value, flags) in expected.items():
        got_value, got_flags = got[key]
        assert got_flags == flags, key
        if value is None:
            assert got_value is None, key
        else:
            assert got_value is not None, key
            assert math.isclose(got_value, value), key
    assert {r[5] for r in rows} == {patient}
    assert len(dead) == implausible
    assert all(r[0].startswith("implausible") for r in dead)
