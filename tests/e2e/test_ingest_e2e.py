"""Ingest as a real process between a real Mosquitto and a real PostgreSQL: every reading
exactly once, kill -9 mid-stream, malformed payloads, a refused topic, a database restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import psycopg

from postop.local_postgres import LocalPostgres
from tests.conftest import Broker
from tests.e2e.conftest import NOW_MS, Kit, count_rows
from tests.mqtt_clients import Publisher, spo2_batch
from tests.stack import ServiceProcess, wait_for

MakeKit = Callable[..., Kit]


def test_every_reading_exactly_once_with_redeliveries(
    db: str, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    kits = [make_kit(f"gw-once-{i}") for i in range(3)]
    expected = 0
    for kit in kits:
        pub = Publisher(kit.gateway_id, kit.password, broker.port)
        mids = []
        for b in range(20):
            payload = spo2_batch(kit.gateway_id, kit.devices[0], b * 250, 250, NOW_MS)
            mids.append(pub.publish(payload))
            if b % 5 == 0:  # a gateway replaying after a lost PUBACK
                mids.append(pub.publish(payload))
        assert all(not rc.is_failure for rc in pub.wait_acks(mids))
        pub.close()
        expected += 20 * 250
    wait_for(lambda: count_rows(db) >= expected, 60, f"{expected} rows")
    time.sleep(1.0)  # anything extra would show up now
    with psycopg.connect(db) as conn:
        per_patient: dict[int, int] = dict(
            conn.execute("SELECT patient_id, count(*) FROM vitals GROUP BY 1").fetchall()
        )
    assert count_rows(db) == expected
    assert per_patient == {k.patient_id: 5000 for k in kits}
    assert count_rows(db, "dead_letters") == 0
    assert ingest.alive()


def test_ingest_killed_mid_stream_loses_and_doubles_nothing(
    db: str, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    kit = make_kit("gw-kill")
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    total = 0
    mids = []
    for b in range(200):
        mids.append(pub.publish(spo2_batch(kit.gateway_id, kit.devices[0], b * 500, 500, NOW_MS)))
        total += 500
    pub.wait_acks(mids)  # the broker holds them all now
    wait_for(lambda: count_rows(db) > 0, 30, "the first committed batch")
    ingest.kill()
    at_kill = count_rows(db)
    assert 0 < at_kill < total, "the kill must land mid-stream for this test to mean anything"
    ingest.start()  # same client id: the broker re-delivers what was never acked
    wait_for(lambda: count_rows(db) >= total, 90, f"{total} rows after restart")
    time.sleep(1.0)
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, metric_id, time)),"
            " min(value), max(value) FROM vitals"
        ).fetchone()
    assert row == (total, total, 95.0, 99.0)
    pub.close()


def test_malformed_payloads_become_dead_letters_and_the_worker_keeps_running(
    db: str, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    kit = make_kit("gw-bad")
    dev = kit.devices[0]
    good = json.loads(spo2_batch(kit.gateway_id, dev, 0, 3, NOW_MS))
    pub = Publisher(kit.gateway_id, kit.password, broker.port)

    def variant(**readings_patch: object) -> bytes:
        doc = json.loads(json.dumps(good))
        doc["readings"][1].update(readings_patch)
        return json.dumps(doc).encode()

    huge = json.loads(spo2_batch(kit.gateway_id, dev, 100, 5001, NOW_MS))
    bad_payloads = {
        "truncated": spo2_batch(kit.gateway_id, dev, 10, 3, NOW_MS)[:-7],
        "wrong type": variant(value="ninety-seven", seq=11),
        "nan": variant(value=float("nan"), seq=12).replace(b"NaN", b"NaN"),
        "unknown metric": variant(metric="mood_level", seq=13),
        "implausible": variant(value=250.0, seq=14),
        "future": variant(time_ms=int(time.time() * 1000) + 86_400_000, seq=15),
        "huge": json.dumps(huge).encode(),
        "not json": b"\xff\xfe binary garbage",
        "wrong gateway": spo2_batch("gw-someone-else", dev, 20, 3, NOW_MS),
        "schema v2": json.dumps({**good, "v": 2}).encode(),
    }
    mids = [pub.publish(p) for p in bad_payloads.values()]
    mids.append(pub.publish(spo2_batch(kit.gateway_id, dev, 1000, 10, NOW_MS)))
    pub.wait_acks(mids)
    # a bad reading costs only itself: its batch's two other readings are kept (the same
    # two in every variant, so stored once), plus the ten of the last, valid batch
    wait_for(lambda: count_rows(db) >= 2 + 10, 30, "the valid readings")
    wait_for(lambda: count_rows(db, "dead_letters") >= 10, 30, "ten dead letters")
    with psycopg.connect(db) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters ORDER BY 1")]
    text = "\n".join(reasons)
    for expected in (
        "not valid JSON",
        "value: Input should be a valid number",
        "value: Input should be a finite number",
        "unknown metric 'mood_level'",
        "implausible spo2_pct 250",
        "in the future",
        "readings: List should have at most 5000 items",
        "payload names gateway 'gw-someone-else'",
        "unsupported schema version 2",
        "the payload is not UTF-8 text",
    ):
        assert expected in text, f"no dead letter says {expected!r}:\n{text}"
    assert len(reasons) == 10
    assert count_rows(db) == 12
    assert ingest.alive()
    pub.close()


def test_broker_refuses_a_gateway_writing_under_another_id(
    db: str, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    mine, theirs = make_kit("gw-mine"), make_kit("gw-theirs")
    pub = Publisher(mine.gateway_id, mine.password, broker.port)
    spoof = spo2_batch(theirs.gateway_id, theirs.devices[0], 0, 5, NOW_MS)
    [rc] = pub.wait_acks([pub.publish(spoof, topic=f"devices/{theirs.gateway_id}/readings")])
    assert rc.is_failure
    assert rc.getName() == "Not authorized"
    pub.close()
    pub = Publisher(mine.gateway_id, mine.password, broker.port)
    pub.wait_acks([pub.publish(spo2_batch(mine.gateway_id, mine.devices[0], 0, 5, NOW_MS))])
    wait_for(lambda: count_rows(db) >= 5, 30, "the legitimate readings")
    time.sleep(0.5)
    with psycopg.connect(db) as conn:
        owners = conn.execute("SELECT DISTINCT device_id FROM vitals").fetchall()
    assert owners == [(mine.devices[0],)]
    assert count_rows(db, "dead_letters") == 0
    pub.close()


def test_database_restart_mid_stream_loses_nothing(
    db: str, pg: LocalPostgres, broker: Broker, make_kit: MakeKit, ingest: ServiceProcess
) -> None:
    kit = make_kit("gw-dbdown")
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    mids = [
        pub.publish(spo2_batch(kit.gateway_id, kit.devices[0], b * 100, 100, NOW_MS))
        for b in range(20)
    ]
    pub.wait_acks(mids)
    wait_for(lambda: count_rows(db) >= 2000, 30, "the first 2000 rows")
    pg.stop("immediate")  # as a crash would
    mids = [
        pub.publish(spo2_batch(kit.gateway_id, kit.devices[0], b * 100, 100, NOW_MS))
        for b in range(20, 60)
    ]
    pub.wait_acks(mids)
    time.sleep(2.0)  # ingest keeps failing to write, and must not ack meanwhile
    pg.start()
    wait_for(lambda: count_rows(db) >= 6000, 60, "6000 rows after the restart")
    time.sleep(1.0)
    assert count_rows(db) == 6000
    assert ingest.alive()
    assert "database unavailable" in ingest.log() or "write failed" in ingest.log()
    pub.close()
