"""ingest's set-based write over a real PostgreSQL: enrollment by time range, pairing with
the publishing gateway, idempotent re-delivery, dead letters and NOTIFY at commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.parse import DeadLetter, Row
from ingest.writer import NOTIFY_CHANNEL, prepare, write_batch
from store.provisioning import (
    end_enrollments,
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from vitals.catalogue import metric

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@pytest.fixture
def kit(db: str) -> dict[str, int]:
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "Cardiac surgery")
        alice = ensure_patient(conn, "P-ALICE", team)
        bob = ensure_patient(conn, "P-BOB", team)
        register_gateway(conn, "gw-a")
        register_gateway(conn, "gw-b")
        register_device(conn, "ox-a", "oximeter", "gw-a")
        register_device(conn, "ox-b", "oximeter", "gw-b")
        # ox-a followed Alice for a day, then was re-issued to Bob
        enroll(conn, "ox-a", alice, T0, T0 + timedelta(days=1))
        enroll(conn, "ox-a", bob, T0 + timedelta(days=1))
        enroll(conn, "ox-b", bob, T0)
    return {"alice": alice, "bob": bob}


def spo2(seq: int, at: datetime, device: str = "ox-a", gw: str = "gw-a") -> Row:
    return (gw, seq, device, metric("spo2_pct").metric_id, ms(at), 97.0, 0)


def test_readings_go_to_the_patient_enrolled_at_their_time(db: str, kit: dict[str, int]) -> None:
    rows = [spo2(1, T0 + timedelta(hours=1)), spo2(2, T0 + timedelta(days=1, hours=1))]
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)
        result = write_batch(conn, rows, [])
        owners = conn.execute("SELECT patient_id FROM vitals ORDER BY time").fetchall()
    assert result.inserted == 2
    assert [r[0] for r in owners] == [kit["alice"], kit["bob"]]
    assert set(result.patients) == {kit["alice"], kit["bob"]}


def test_redelivery_is_harmless(db: str, kit: dict[str, int]) -> None:
    rows = [spo2(i, T0 + timedelta(seconds=i)) for i in range(100)]
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)
        first = write_batch(conn, rows, [])
        again = write_batch(conn, rows[50:] + rows, [])
        count = conn.execute("SELECT count(*) FROM vitals").fetchone()
        progress = conn.execute("SELECT last_seq FROM gateway_progress").fetchone()
    assert (first.inserted, again.inserted) == (100, 0)
    assert count == (100,)
    assert progress == (99,)


def test_unknown_unpaired_and_unenrolled_readings_become_dead_letters(
    db: str, kit: dict[str, int]
) -> None:
    rows = [
        spo2(1, T0 + timedelta(hours=1)),  # fine
        spo2(2, T0 + timedelta(hours=1), device="ox-zz"),  # unknown device
        spo2(3, T0 + timedelta(hours=1), device="ox-b"),  # ox-b belongs to gw-b, sent by gw-a
        spo2(4, T0 - timedelta(days=3)),  # before any enrollment
    ]
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)
        end_enrollments(conn, "ox-b", T0 + timedelta(days=5))
        result = write_batch(conn, rows, [])
        letters = conn.execute("SELECT seq, reason FROM dead_letters ORDER BY seq").fetchall()
        write_batch(conn, rows, [])  # re-delivery leaves no second copy
        total = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert result.inserted == 1
    assert result.dead_letters == 3
    assert letters[0] == (2, "unknown device ox-zz")
    assert letters[1] == (3, "device ox-b is not paired with gateway gw-a")
    assert letters[2][0] == 4
    assert letters[2][1].startswith("device ox-a has no enrollment valid at")
    assert total == (3,)


def test_notify_reaches_listeners_only_at_commit(db: str, kit: dict[str, int]) -> None:
    with (
        psycopg.connect(db, autocommit=True) as listener,
        psycopg.connect(db, autocommit=True) as conn,
    ):
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        prepare(conn)
        write_batch(
            conn,
            [spo2(1, T0 + timedelta(minutes=5))],
            [DeadLetter("devices/gw-a/readings", "gw-a", None, "not valid JSON", b"{")],
        )
        notes = list(listener.notifies(timeout=2, stop_after=1))
    assert len(notes) == 1
    assert json.loads(notes[0].payload) == {"patients": [kit["alice"]]}


def test_a_replayed_message_alone_takes_the_careful_path(db: str, kit: dict[str, int]) -> None:
    """A gateway replays what it sent before its confirmation was lost: only those rows are
    checked against what is stored; the rest of the batch still goes straight in."""
    sent = [spo2(i, T0 + timedelta(seconds=i)) for i in range(100)]
    new = [spo2(i, T0 + timedelta(seconds=i)) for i in range(100, 300)]
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)
        write_batch(conn, sent, [])
        # the replay, a fresh message, and the fresh message again within the same batch
        result = write_batch(conn, sent[60:] + new + new[:50], [])
        count = conn.execute("SELECT count(*), count(DISTINCT time) FROM vitals").fetchone()
        progress = conn.execute("SELECT last_seq FROM gateway_progress").fetchone()
    assert result.inserted == 200
    assert result.careful_rows == 40 + 50
    assert count == (300, 300)
    assert progress == (299,)


def test_two_workers_interleaving_one_gateway_both_go_straight_in(
    db: str, kit: dict[str, int]
) -> None:
    """On the shared subscription a later message of a gateway may commit first, through the
    other worker: the earlier one, now below the gateway's high-water mark, is not a
    replay and must not pay for one. Its real replay still must."""
    early = [spo2(i, T0 + timedelta(seconds=i)) for i in range(100)]
    late = [spo2(i, T0 + timedelta(seconds=i)) for i in range(100, 200)]
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)
        first = write_batch(conn, late, [])
        second = write_batch(conn, early[:50] + early[60:], [])  # two messages
        replay = write_batch(conn, early, [])  # both again, plus the ten never sent
        count = conn.execute("SELECT count(*), count(DISTINCT time) FROM vitals").fetchone()
        progress = conn.execute("SELECT last_seq FROM gateway_progress").fetchone()
    assert (first.inserted, first.careful_rows) == (100, 0)
    assert (second.inserted, second.careful_rows) == (90, 0)
    assert (replay.inserted, replay.careful_rows) == (10, 100)
    assert count == (200, 200)
    assert progress == (199,)


def test_stored_readings_under_new_numbers_are_still_stored_once(
    db: str, kit: dict[str, int]
) -> None:
    """A gateway whose outbox was reset numbers from 0 again, and a device that re-syncs
    its memory sends old readings under new numbers: nothing is lost or doubled."""
    first = [spo2(i, T0 + timedelta(seconds=i)) for i in range(100)]
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)
        write_batch(conn, first, [])
        # renumbered from 0: below the stored high-water mark, but not stored: direct
        renumbered = [spo2(i, T0 + timedelta(seconds=1000 + i)) for i in range(50)]
        reset = write_batch(conn, renumbered, [])
        # old readings re-synced under numbers never seen: the direct COPY meets them
        resync = [spo2(500 + i, T0 + timedelta(seconds=90 + i)) for i in range(20)]
        again = write_batch(conn, resync, [])
        count = conn.execute("SELECT count(*), count(DISTINCT time) FROM vitals").fetchone()
    assert (reset.inserted, reset.careful_rows) == (50, 0)
    assert (again.inserted, again.careful_rows) == (10, 20)
    assert count == (160, 160)


def test_readings_that_arrive_late_mark_their_patient_for_the_alerts_engine(
    db: str, kit: dict[str, int]
) -> None:
    """A patient gets a mark with the time of their earliest late reading (older than a
    minute on arrival), whichever path stored it; fresh readings leave no mark."""
    now = datetime.now(UTC)
    with psycopg.connect(db, autocommit=True) as conn:
        prepare(conn)

        def mark() -> list[tuple[int, datetime]]:
            rows = conn.execute("SELECT patient_id, since FROM late_readings").fetchall()
            return [(int(p), s) for p, s in rows]

        write_batch(
            conn, [spo2(i, now - timedelta(seconds=10 - i), "ox-b", "gw-b") for i in range(5)], []
        )
        assert mark() == []
        two_h = now.replace(microsecond=0) - timedelta(hours=2)
        direct = write_batch(
            conn,
            [spo2(100 + i, two_h + timedelta(seconds=i), "ox-b", "gw-b") for i in range(5)],
            [],
        )
        assert direct.careful_rows == 0
        assert mark() == [(kit["bob"], two_h)]
        # older still, sent with a replay of the batch above: the careful path
        three_h = two_h - timedelta(hours=1)
        older = [spo2(95 + i, three_h + timedelta(seconds=i), "ox-b", "gw-b") for i in range(5)]
        replay = [spo2(100 + i, two_h + timedelta(seconds=i), "ox-b", "gw-b") for i in range(5)]
        careful = write_batch(conn, older + replay, [])
        assert (careful.inserted, careful.careful_rows) == (5, 10)
        write_batch(conn, [spo2(200, two_h + timedelta(hours=1), "ox-b", "gw-b")], [])
        assert mark() == [(kit["bob"], three_h)]  # the earliest stays
        # a re-delivery stores nothing, so it marks nothing
        conn.execute("DELETE FROM late_readings")
        write_batch(conn, [spo2(100, two_h, "ox-b", "gw-b")], [])
        assert mark() == []
