"""TLS between a gateway and the broker, and the listener refusing what is not TLS or
not a known account."""

from __future__ import annotations

import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from postop.local_mosquitto import LocalMosquitto
from postop.ports import free_port
from store.broker_acl import gateway_account, ingest_account
from store.mqtt_accounts import hash_password
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.conftest import INGEST_PASSWORD
from tests.e2e.conftest import ENROLLED_FROM, NOW_MS
from tests.stack import ServiceProcess, wait_for
from tests.tls_certs import make_tls
from vitals.link import entry_frame


@pytest.fixture
def tls_broker(workdir: Path) -> Iterator[LocalMosquitto]:
    tls = make_tls(workdir / "certs")
    server = LocalMosquitto(workdir / "mqtt-tls", free_port(), tls=tls)
    server.write_config()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir / "mqtt-tls", ignore_errors=True)


def _connects(port: int, user: str, password: str, ca: Path | None) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    result: list[bool] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(not rc.is_failure)
    try:
        client.connect("127.0.0.1", port, keepalive=5)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        wait_for(lambda: bool(result), 5, "an answer")
    except AssertionError:
        return False
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


def test_gateway_uploads_over_tls_and_plain_or_unknown_clients_are_refused(
    db: str, tls_broker: LocalMosquitto, workdir: Path
) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(conn, "P-TLS", ensure_team(conn, "TLS"))
        password = register_gateway(conn, "gw-tls")
        register_device(conn, "patch-tls", "hr-patch", "gw-tls")
        enroll(conn, "patch-tls", patient, ENROLLED_FROM)
    tls_broker.apply_accounts(  # over the TLS listener, as the admin account
        [
            ingest_account("ingest-tls", hash_password(INGEST_PASSWORD)),
            gateway_account("gw-tls", hash_password(password)),
        ]
    )
    assert tls_broker.tls is not None
    ca = tls_broker.tls.ca_file

    assert _connects(tls_broker.port, "gw-tls", password, ca)
    assert not _connects(tls_broker.port, "gw-tls", "wrong-password", ca)
    assert not _connects(tls_broker.port, "gw-tls", password, None)  # plain MQTT

    tls_env = {"POSTOP_MQTT__PORT": str(tls_broker.port), "POSTOP_MQTT__TLS_CA_FILE": str(ca)}
    ingest = ServiceProcess(
        "ingest.main",
        {
            **tls_env,
            "POSTOP_DATABASE_URL": db,
            "POSTOP_MQTT__USERNAME": "ingest-tls",
            "POSTOP_MQTT__PASSWORD": INGEST_PASSWORD,
            "POSTOP_INGEST__CLIENT_ID": "ingest-tls",
        },
        workdir / "ingest",
    ).start()
    link_port = free_port()
    gateway = ServiceProcess(
        "gateway.main",
        {
            **tls_env,
            "POSTOP_MQTT__USERNAME": "gw-tls",
            "POSTOP_MQTT__PASSWORD": password,
            "POSTOP_GATEWAY__GATEWAY_ID": "gw-tls",
            "POSTOP_GATEWAY__LINK_PORT": str(link_port),
            "POSTOP_GATEWAY__OUTBOX_PATH": str(workdir / "gw" / "outbox.sqlite3"),
        },
        workdir / "gw",
    ).start()
    try:
        wait_for(lambda: "subscribed to readings" in ingest.log(), 30, "ingest over TLS")
        wait_for(lambda: _open(link_port), 30, "the gateway's local link")
        with socket.create_connection(("127.0.0.1", link_port)) as sock:
            sock.sendall(
                b"".join(
                    entry_frame("patch-tls", "heart_rate_bpm", 72 + i, NOW_MS + i * 1000)
                    for i in range(50)
                )
            )

        def stored() -> int:
            with psycopg.connect(db) as conn:
                row = conn.execute("SELECT count(*) FROM vitals").fetchone()
            return int(row[0]) if row else 0

        wait_for(lambda: stored() == 50, 30, "50 readings over TLS")
    finally:
        gateway.stop()
        ingest.stop()
        print(gateway.log()[-2000:], ingest.log()[-2000:])


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
