"""Session-wide private PostgreSQL and Mosquitto; a fresh migrated database per test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from postop.local_mosquitto import LocalMosquitto
from postop.local_postgres import LocalPostgres
from postop.ports import free_port
from store.broker_acl import gateway_account, ingest_account, observer_account
from store.migrate import migrate
from store.mqtt_accounts import hash_password

TEMPLATE_DB = "postop_template"
INGEST_PASSWORD = "ingest-test-password"
OBSERVER_PASSWORD = "observer-test-password"
# every ingest worker has its own account, bound to the client id of the same name
INGEST_ACCOUNTS = ("ingest-1", "ingest-2", "ingest-3")


def _private_dir(prefix: str) -> Path:
    # world-traversable so that PostgreSQL can run as its own account when we are root
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    root = _private_dir("postop-test-pg-")
    server = LocalPostgres(root, free_port(), fast_unsafe=True)
    server.ensure_initialised()
    server.start()
    server.wait_ready()
    server.create_database(TEMPLATE_DB)
    migrate(server.conninfo(TEMPLATE_DB))
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db(pg: LocalPostgres) -> Iterator[str]:
    """Conninfo of a fresh database cloned from the migrated template."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = pg.create_database(name, template=TEMPLATE_DB)
    yield conninfo
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Broker:
    server: LocalMosquitto

    @property
    def port(self) -> int:
        return self.server.port

    def add_account(self, name: str, password: str) -> None:
        """A gateway account, as provisioning makes it (own topics, own client id)."""
        self.server.add_account(gateway_account(name, hash_password(password)))


@pytest.fixture(scope="session")
def broker_session() -> Iterator[Broker]:
    root = _private_dir("postop-test-mqtt-")
    server = LocalMosquitto(root, free_port())
    ingest_hash = hash_password(INGEST_PASSWORD)
    server.write_config(
        [
            *(ingest_account(name, ingest_hash) for name in INGEST_ACCOUNTS),
            # plus a read-everything account for tests that watch the wire
            observer_account("observer", hash_password(OBSERVER_PASSWORD)),
        ]
    )
    server.start()
    try:
        yield Broker(server)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def broker(broker_session: Broker) -> Broker:
    if not broker_session.server.is_running():  # a previous test stopped it
        broker_session.server.start()
    return broker_session


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = _private_dir("postop-test-work-")
    yield path
    shutil.rmtree(path, ignore_errors=True)
