"""Finding 3 of issue 16: a gateway status stamped in year 2100 pinned ``gateway_status``
(later statuses were older, so never applied) and silenced the gateway-offline rule."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from tests.conftest import Broker
from tests.e2e.conftest import Kit, ingest, make_kit  # noqa: F401  (fixtures)
from tests.mqtt_clients import Publisher
from tests.stack import ServiceProcess, wait_for
from vitals.topics import status_topic
from vitals.wire import GatewayStatus, encode_status

YEAR_2100_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _status(db: str, gateway_id: str) -> tuple[bool, datetime] | None:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT online, status_at FROM gateway_status WHERE gateway_id = %s", (gateway_id,)
        ).fetchone()
    return None if row is None else (bool(row[0]), row[1])


def test_a_status_from_the_future_is_refused_and_does_not_pin_the_gateway(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
    ingest: ServiceProcess,  # noqa: F811
) -> None:
    kit = make_kit("gw-future")
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    try:
        topic = status_topic(kit.gateway_id)
        forged = GatewayStatus(v=1, online=True, at_ms=YEAR_2100_MS)
        mid = pub.client.publish(topic, encode_status(forged), qos=1, retain=True).mid
        pub.wait_acks([mid])
        wait_for(
            lambda: (
                _dead_letters(db, kit.gateway_id) > 0 or _status(db, kit.gateway_id) is not None
            ),
            20,
            "ingest to consume the forged status",
        )
        # the home really goes offline now: this must be what the database says
        real = GatewayStatus(v=1, online=False, at_ms=int(time.time() * 1000))
        mid = pub.client.publish(topic, encode_status(real), qos=1, retain=True).mid
        pub.wait_acks([mid])
        wait_for(lambda: _status(db, kit.gateway_id) is not None, 20, "the real status")
        time.sleep(0.5)
    finally:
        pub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # unretain
        pub.close()
    status = _status(db, kit.gateway_id)
    assert status is not None
    online, status_at = status
    assert online is False
    assert status_at.year < 2100
    assert _dead_letters(db, kit.gateway_id) == 1  # the forged one, with its reason


def _dead_letters(db: str, gateway_id: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE gateway_id = %s AND reason LIKE %s",
            (gateway_id, "%future%"),
        ).fetchone()
    assert row is not None
    return int(row[0])
