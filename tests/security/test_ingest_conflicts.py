"""Finding 5 of issue 16: a second reading with the same device, metric and measured time
but another value vanished silently (the unique key made it a no-op). It is now kept as a
conflict row with both values, the first committed value staying in ``vitals``; an
identical re-delivery still leaves nothing, and nothing is doubled. Both write paths:
a conflicting reading under new sequence numbers first tries the direct COPY (which meets
the stored row and falls back), a replayed number goes the careful way at once."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from tests.conftest import Broker
from tests.e2e.conftest import NOW_MS, Kit, count_rows, ingest, make_kit  # noqa: F401
from tests.mqtt_clients import Publisher
from tests.stack import ServiceProcess, wait_for
from vitals.wire import encode_batch


def _batch(kit: Kit, readings: list[tuple[int, int, float]]) -> bytes:
    """(seq, second, SpO2) readings of the kit's oximeter."""
    return encode_batch(
        kit.gateway_id,
        NOW_MS,
        [
            {
                "seq": seq,
                "device": kit.devices[0],
                "metric": "spo2_pct",
                "time_ms": NOW_MS + second * 1000,
                "value": value,
                "flags": 0,
            }
            for seq, second, value in readings
        ],
    )


def _conflicts(db: str) -> list[tuple[int, float, float]]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT seq, stored_value, value FROM reading_conflicts ORDER BY seq"
        ).fetchall()
    return [(int(s), float(a), float(b)) for s, a, b in rows]


def _values(db: str) -> dict[int, float]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT (extract(epoch FROM time) * 1000)::bigint, value FROM vitals"
        ).fetchall()
    return {int((t - NOW_MS) / 1000): float(v) for t, v in rows}


def _send(pub: Publisher, payload: bytes) -> None:
    pub.wait_acks([pub.publish(payload)])


def test_a_different_value_for_a_stored_reading_is_recorded_never_dropped_silently(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
    ingest: ServiceProcess,  # noqa: F811
) -> None:
    kit = make_kit("gw-conflict")
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    try:
        first = _batch(kit, [(s, s, 95.0) for s in range(10)])
        _send(pub, first)
        wait_for(lambda: count_rows(db) == 10, 20, "the first readings")
        _send(pub, first)  # an identical re-delivery: a silent no-op
        # new numbers, times already stored, other values: the direct COPY's way
        again = _batch(kit, [(10, 0, 88.0), (11, 1, 95.0), (12, 2, 87.0)])
        _send(pub, again)
        wait_for(lambda: len(_conflicts(db)) >= 2, 20, "the conflicts of the new numbers")
        _send(pub, again)  # the conflicting message re-delivered: nothing more
        # a replayed number (at or below what is committed) with another value: careful path
        _send(pub, _batch(kit, [(5, 5, 80.0), (6, 6, 95.0)]))
        # two values for one time within one message, neither stored yet
        _send(pub, _batch(kit, [(13, 20, 97.0), (14, 20, 70.0)]))
        wait_for(lambda: len(_conflicts(db)) >= 4, 20, "every conflict")
        time.sleep(1.0)  # anything doubled would show now
    finally:
        pub.close()
    assert _conflicts(db) == [(5, 95.0, 80.0), (10, 95.0, 88.0), (12, 95.0, 87.0), (14, 97.0, 70.0)]
    assert count_rows(db) == 11  # nothing doubled, nothing overwritten
    values = _values(db)
    assert values[0] == values[2] == values[5] == 95.0
    assert values[20] == 97.0
    assert count_rows(db, "dead_letters") == 0
