"""Issue 16 with provisioning as ``postop up`` runs it: the database is the source of
truth and the broker follows its NOTIFY. A gateway registered now connects at once, under
its own client id only, confined at SUBSCRIBE; a gateway whose credentials are withdrawn
is cut off and cannot come back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from postop.broker_accounts import follow_broker_accounts
from postop.local_mosquitto import LocalMosquitto
from postop.ports import free_port
from store.mqtt_accounts import ACCOUNTS_CHANNEL
from store.provisioning import register_gateway
from tests.security.broker_probe import Probe
from tests.stack import wait_for
from vitals.topics import config_topic


@pytest.fixture
def followed(db: str, workdir: Path) -> Iterator[LocalMosquitto]:
    broker = LocalMosquitto(workdir / "mqtt", free_port())
    broker.write_config([])
    broker.start()
    stop = threading.Event()
    follow_broker_accounts(db, broker, stop)
    yield broker
    stop.set()
    broker.stop()


def _connects(broker: LocalMosquitto, client_id: str, user: str, password: str) -> bool:
    probe = Probe(client_id, user, password, broker.port)
    probe.close()
    return probe.accepted


def test_a_registered_gateway_is_bound_at_once_and_a_withdrawn_one_cut_off(
    db: str, followed: LocalMosquitto
) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        password = register_gateway(conn, "gw-prov-1")
    wait_for(lambda: _connects(followed, "gw-prov-1", "gw-prov-1", password), 10, "the account")
    assert not _connects(followed, "ingest-1", "gw-prov-1", password)
    assert not _connects(followed, "gw-prov-1", "gw-prov-1", "guessed")
    home = Probe("gw-prov-1", "gw-prov-1", password, followed.port)
    try:
        assert home.subscribe("$share/ingest/devices/+/readings").is_failure
        assert not home.subscribe(config_topic("gw-prov-1")).is_failure
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "UPDATE gateways SET mqtt_password_hash = NULL WHERE gateway_id = 'gw-prov-1'"
            )
            conn.execute("SELECT pg_notify(%s, 'gw-prov-1')", (ACCOUNTS_CHANNEL,))
        wait_for(lambda: home.disconnects > 0, 10, "the withdrawn gateway to be cut off")
    finally:
        home.close()
    assert not _connects(followed, "gw-prov-1", "gw-prov-1", password)
