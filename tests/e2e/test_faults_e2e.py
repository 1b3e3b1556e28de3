"""Faults from the homes, through real processes: one device flooding malformed payloads
while other homes keep flowing, and devices whose clocks are wrong. Exact counts: every
good reading once, a dead letter for each bad payload or reading, ingest still running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from tests.conftest import Broker
from tests.e2e.conftest import ENROLLED_FROM, NOW_MS, Kit, count_rows
from tests.mqtt_clients import Publisher, spo2_batch
from tests.stack import ServiceProcess, wait_for
from vitals.wire import encode_batch

MakeKit = Callable[..., Kit]


def test_a_flood_of_malformed_payloads_does_not_hold_up_other_homes(
    db: str, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    flooder = make_kit("gw-flood")
    good = [make_kit(f"gw-calm-{i}") for i in range(3)]
    bad_count = 3000

    def flood() -> None:
        pub = Publisher(flooder.gateway_id, flooder.password, broker.port)
        mids = []
        for i in range(bad_count):
            # each one different, so each is its own dead letter
            mids.append(
                pub.publish(b'{"v": 1, "gateway": "gw-flood", "readings": [' + str(i).encode())
            )
        pub.wait_acks(mids, 120)
        pub.close()

    flooding = threading.Thread(target=flood)
    flooding.start()
    started = time.monotonic()
    for kit in good:
        pub = Publisher(kit.gateway_id, kit.password, broker.port)
        mids = [
            pub.publish(spo2_batch(kit.gateway_id, kit.devices[0], b * 200, 200, NOW_MS))
            for b in range(10)
        ]
        pub.wait_acks(mids)
        pub.close()
    expected = len(good) * 10 * 200
    wait_for(lambda: count_rows(db) >= expected, 90, f"{expected} good rows during the flood")
    good_done_s = time.monotonic() - started
    flooding.join(180)
    # the default bound keeps 1000 dead letters a gateway an hour and counts the rest
    wait_for(lambda: _letters_and_dropped(db) >= bad_count, 120, f"{bad_count} dead letters")
    time.sleep(1.0)
    with psycopg.connect(db) as conn:
        per_patient: dict[int, int] = dict(
            conn.execute("SELECT patient_id, count(*) FROM vitals GROUP BY 1").fetchall()
        )
        reasons = conn.execute(
            "SELECT gateway_id, count(*), min(reason) FROM dead_letters GROUP BY 1"
        ).fetchall()
    assert per_patient == {k.patient_id: 2000 for k in good}
    assert reasons == [("gw-flood", 1000, reasons[0][2])]
    assert _letters_and_dropped(db) == bad_count
    assert "not valid JSON" in reasons[0][2]
    assert ingest.alive()
    print(f"good homes fully stored {good_done_s:.1f} s after the flood began")


def _letters_and_dropped(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM dead_letters)"
            " + (SELECT coalesce(sum(dropped), 0) FROM dead_letter_budget)"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_device_clock_skew(
    db: str, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    """Slightly fast (stored), an hour fast (future: dead letters), set to 2019 (before
    any enrollment: dead letters), and the same home's correct readings (stored)."""
    kit = make_kit("gw-skew")
    dev = kit.devices[0]
    now_ms = int(time.time() * 1000)
    y2019_ms = int(datetime(2019, 6, 1, tzinfo=UTC).timestamp() * 1000)
    assert y2019_ms < ENROLLED_FROM.timestamp() * 1000

    def readings(first_seq: int, t0_ms: int, n: int) -> list[dict[str, object]]:
        return [
            {
                "seq": first_seq + i,
                "device": dev,
                "metric": "spo2_pct",
                "time_ms": t0_ms + i * 1000,
                "value": 96.0,
                "flags": 0,
            }
            for i in range(n)
        ]

    batches = {
        "correct": readings(0, now_ms - 600_000, 50),
        "two minutes fast": readings(100, now_ms + 120_000, 50),
        "an hour fast": readings(200, now_ms + 3_600_000, 50),
        "back in 2019": readings(300, y2019_ms, 50),
    }
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    pub.wait_acks([pub.publish(encode_batch(kit.gateway_id, now_ms, r)) for r in batches.values()])
    pub.close()
    wait_for(lambda: count_rows(db, "dead_letters") >= 100, 30, "100 dead letters")
    wait_for(lambda: count_rows(db) >= 100, 30, "100 stored readings")
    time.sleep(1.0)
    with psycopg.connect(db) as conn:
        stored = conn.execute("SELECT min(time), max(time), count(*) FROM vitals").fetchone()
        dead = conn.execute(
            "SELECT count(*) FILTER (WHERE reason LIKE '%%in the future%%'),"
            " count(*) FILTER (WHERE reason LIKE '%%enrol%%'), count(*) FROM dead_letters"
        ).fetchone()
    assert stored is not None
    assert stored[2] == 100
    assert int(stored[0].timestamp() * 1000) == now_ms - 600_000
    assert int(stored[1].timestamp() * 1000) == now_ms + 120_000 + 49_000
    assert dead == (50, 50, 100)
