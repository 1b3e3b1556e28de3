"""Finding 4 of issue 16: 50 payloads of 1.9 MB grew the database by 93 MB, each kept
whole as a dead letter. Now the broker refuses packets beyond what a gateway legitimately
sends, a dead letter keeps only a bounded prefix with the SHA-256 and size of the whole,
and a gateway gets a bounded number of dead letters an hour: the rest is counted."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Broker
from tests.e2e.conftest import Kit, ingest_env, make_kit  # noqa: F401
from tests.mqtt_clients import Publisher
from tests.stack import ServiceProcess, wait_for

BUDGET = 5


@pytest.fixture
def strict_ingest(db: str, broker: Broker, workdir: Path) -> Iterator[ServiceProcess]:
    env = {**ingest_env(db, broker), "POSTOP_INGEST__DEAD_LETTERS_PER_GATEWAY_HOUR": str(BUDGET)}
    proc = ServiceProcess("ingest.main", env, workdir / "ingest").start()
    wait_for(lambda: "subscribed to readings" in proc.log(), 30, "ingest to subscribe")
    yield proc
    proc.stop()
    print(f"--- ingest log (tail) ---\n{proc.log()[-4000:]}")


def _dead_bytes(db: str) -> tuple[int, int]:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(octet_length(payload)), 0) FROM dead_letters"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _junk(n: int, size: int) -> bytes:
    head = json.dumps({"v": 1, "junk": n}).encode()
    return head + b" " * (size - len(head))  # valid JSON, not a batch


def test_oversized_payloads_do_not_fill_the_database(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
    strict_ingest: ServiceProcess,
) -> None:
    kit = make_kit("gw-bloat")
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    try:
        # just under the broker's packet limit: accepted, dead-lettered as a prefix
        big = _junk(0, 1_040_000)
        pub.wait_acks([pub.publish(big)])
        wait_for(lambda: _dead_bytes(db)[0] == 1, 20, "the dead letter")
        # far beyond it (the attack's 1.9 MB): the broker drops the connection instead
        for n in range(1, 4):
            pub.publish(_junk(n, 1_900_000))
        time.sleep(2.0)
    finally:
        pub.close()
    count, stored = _dead_bytes(db)
    assert count == 1
    assert stored <= 4096
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT payload, payload_sha256, payload_size FROM dead_letters"
        ).fetchone()
    assert row is not None
    assert bytes(row[0]) == big[:4096]
    assert bytes(row[1]) == hashlib.sha256(big).digest()
    assert row[2] == len(big)
    assert strict_ingest.alive()


def test_dead_letters_per_gateway_hour_are_bounded_and_the_rest_counted(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
    strict_ingest: ServiceProcess,
) -> None:
    flooder, other = make_kit("gw-flood"), make_kit("gw-calm")
    pub = Publisher(flooder.gateway_id, flooder.password, broker.port)
    calm = Publisher(other.gateway_id, other.password, broker.port)
    try:
        pub.wait_acks([pub.publish(_junk(n, 200)) for n in range(BUDGET + 7)])
        calm.wait_acks([calm.publish(_junk(0, 200))])
        wait_for(lambda: _dropped(db).get(flooder.gateway_id) == 7, 20, "the overflow count")
        wait_for(lambda: _dead_bytes(db)[0] == BUDGET + 1, 20, "the calm home's dead letter")
    finally:
        pub.close()
        calm.close()
    with psycopg.connect(db) as conn:
        per_gateway: dict[str, int] = dict(
            conn.execute("SELECT gateway_id, count(*) FROM dead_letters GROUP BY 1").fetchall()
        )
    assert per_gateway == {flooder.gateway_id: BUDGET, other.gateway_id: 1}
    assert _dropped(db) == {flooder.gateway_id: 7, other.gateway_id: 0}


def _dropped(db: str) -> dict[str, int]:
    with psycopg.connect(db) as conn:
        try:
            rows = conn.execute(
                "SELECT gateway_id, sum(dropped) FROM dead_letter_budget GROUP BY 1"
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
    return {str(g): int(n) for g, n in rows}
