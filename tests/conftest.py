"""Session-wide private PostgreSQL and Mosquitto; a fresh migrated database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher, profiles
from playwright.sync_api import Browser

from alerts.vapid import generate
from api.common import passwords
from postop.local_mosquitto import LocalMosquitto
from postop.local_postgres import (
    TIMESCALEDB_CONF,
    LocalPostgres,
    find_binaries,
    timescaledb_installed,
)
from postop.ports import free_port
from store.broker_acl import gateway_account, ingest_account, observer_account
from store.flavour import Flavour, detect
from store.migrate import migrate
from store.mqtt_accounts import hash_password
from tests.browser import chromium
from tests.push_endpoint import PushEndpoint

# the shared checks of the end-to-end suites say what differed when they fail
pytest.register_assert_rewrite("tests.e2e.ble_support")

TEMPLATE_DB = "postop_template"
# set to 1 to run the session cluster (and so the db, api and e2e suites) on TimescaleDB
TIMESCALEDB_SWITCH = "POSTOP_TEST_TIMESCALEDB"
INGEST_PASSWORD = "ingest-test-password"
OBSERVER_PASSWORD = "observer-test-password"
# every ingest worker has its own account, bound to the client id of the same name
INGEST_ACCOUNTS = ("ingest-1", "ingest-2", "ingest-3")


def _private_dir(prefix: str) -> Path:
    # world-traversable so that PostgreSQL can run as its own account when we are root
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def requested_flavour() -> Flavour:
    """The flavour the session cluster runs, from ``POSTOP_TEST_TIMESCALEDB`` (unset: plain)."""
    value = os.environ.get(TIMESCALEDB_SWITCH, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return Flavour.POSTGRES
    if value in ("1", "true", "yes", "on"):
        return Flavour.TIMESCALEDB
    pytest.exit(f"{TIMESCALEDB_SWITCH}={value!r}: use 1 (TimescaleDB) or 0", returncode=4)


def _seal_template(server: LocalPostgres, flavour: Flavour) -> None:
    """Keep every session out of the template, or CREATE DATABASE ... TEMPLATE fails.

    With TimescaleDB a scheduler stays connected to each database that has the extension,
    and TimescaleDB itself restarts the template's scheduler on every CREATE DATABASE ...
    TEMPLATE of a database that allows connections (it would race with the copy). So: stop
    the scheduler that CREATE EXTENSION started (this waits until it and its jobs have
    exited), then forbid connections; the launcher skips such databases. The clones allow
    connections again and ``db`` starts their scheduler.
    """
    if flavour is Flavour.TIMESCALEDB:
        with psycopg.connect(server.conninfo(TEMPLATE_DB), autocommit=True) as conn:
            conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(
            f'ALTER DATABASE "{TEMPLATE_DB}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false'
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked ``slow`` (minutes each) first, each in its own order: the parallel
    run hands whole files to its workers in this order (``--no-loadscope-reorder``), and
    a run whose last file takes three minutes ends three minutes after the others."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): a worker per CPU, at most four. Each worker starts
    its own PostgreSQL, Mosquitto and browsers, and the end-to-end tests start services
    of their own: beyond four, a run waits on the machine, not on the tests. Files are
    kept whole on one worker (``--dist loadfile``: module fixtures are set up once);
    ``-n 0`` runs in this process alone."""
    return max(1, min(os.cpu_count() or 1, 4))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for a test module; each test opens its own pages (a context
    of their own: cookies and storage are not shared between tests)."""
    with chromium() as b:
        yield b


@pytest.fixture
def push() -> Iterator[tuple[str, PushEndpoint]]:
    """A VAPID key pair's private half (PEM) and a local push endpoint that checks VAPID
    with the public half and decrypts what it receives, as a push service would."""
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    yield keys.private_pem, endpoint
    endpoint.stop()


@pytest.fixture(scope="session", autouse=True)
def _cheap_argon2() -> Iterator[None]:
    """argon2id with argon2-cffi's test profile in this process: the same hash and verify
    code without its deliberate work (a signed-in client hashed 10 recovery codes and
    checked a password, 2-3 s a test). Services the tests start as processes keep the
    production parameters; argon2 reads them from each hash, so either verifies."""
    production = passwords._HASHER
    passwords._HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    passwords._HASHER = production


@pytest.fixture(scope="session")
def pg_flavour() -> Flavour:
    return requested_flavour()


@pytest.fixture(scope="session")
def pg(pg_flavour: Flavour) -> Iterator[LocalPostgres]:
    binaries = find_binaries()
    timescaledb = pg_flavour is Flavour.TIMESCALEDB
    if timescaledb and not timescaledb_installed(binaries):
        pytest.exit(
            f"{TIMESCALEDB_SWITCH}=1 but TimescaleDB is not installed for the PostgreSQL in "
            f"{binaries.bindir} ({binaries.origin}): build and install it for that server, "
            f"or unset {TIMESCALEDB_SWITCH} to run on plain PostgreSQL",
            returncode=4,
        )
    root = _private_dir("postop-test-pg-")
    server = LocalPostgres(
        root,
        free_port(),
        fast_unsafe=True,
        binaries=binaries,
        extra_conf=TIMESCALEDB_CONF if timescaledb else (),
    )
    try:
        server.ensure_initialised()
        server.start()
        server.wait_ready()
        server.create_database(TEMPLATE_DB)
        migrate(server.conninfo(TEMPLATE_DB))
        with psycopg.connect(server.conninfo(TEMPLATE_DB)) as conn:
            migrated = detect(conn)
        if migrated is not pg_flavour:
            pytest.exit(f"the test template was migrated {migrated}, not {pg_flavour}", 4)
        _seal_template(server, pg_flavour)
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


class _Clones:
    """Fresh clones of the template, each made while the test before it runs: a CREATE
    DATABASE ... TEMPLATE takes about half a second, most of a short test's set-up. A
    clone made ahead that failed (a test stopped the server meanwhile) is made again."""

    def __init__(self, server: LocalPostgres) -> None:
        self._server = server
        self._maker = ThreadPoolExecutor(1, thread_name_prefix="template-clone")
        self._ahead: Future[str] | None = None

    def _make(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._server.create_database(name, template=TEMPLATE_DB)
        return name

    def take(self) -> str:
        ahead, self._ahead = self._ahead, None
        try:
            name = ahead.result() if ahead is not None else self._make()
        except psycopg.Error:
            name = self._make()
        self._ahead = self._maker.submit(self._make)
        return name

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
        self._maker.shutdown(wait=True)


@pytest.fixture(scope="session")
def _clones(pg: LocalPostgres) -> Iterator[_Clones]:
    clones = _Clones(pg)
    yield clones
    clones.close()


@pytest.fixture
def db(pg: LocalPostgres, pg_flavour: Flavour, _clones: _Clones) -> Iterator[str]:
    """Conninfo of a fresh database cloned from the migrated template."""
    name = _clones.take()
    conninfo = pg.conninfo(name)
    if pg_flavour is Flavour.TIMESCALEDB:
        # policies (aggregate refresh, compression, retention) run from now on, as in
        # production, without waiting for the launcher's next poll of new databases
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT _timescaledb_functions.start_background_workers()")
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
