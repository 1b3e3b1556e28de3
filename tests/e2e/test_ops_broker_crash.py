"""A crash of the broker under ``postop up`` (issue 16). Mosquitto killed with -9 sends
no last will: the supervisor starts it again, and the readings the home measured while it
was gone arrive afterwards, once each, from the gateway's outbox. When it cannot come back
(another program took its port), /ready says so, ingest and the alerts engine log it,
and once no reading has arrived for the set time the care team gets the technical alert;
it resolves when readings flow again."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from postop.ports import free_port
from tests.stack import start_up, wait_for

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow

STALE_S = 60


def _start(data_dir: Path, api_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "POSTOP_API__PORT": str(api_port),
        "POSTOP_ALERTS__TICK_S": "2",
        "POSTOP_ALERTS__STALE_DATA_S": str(STALE_S),
        "POSTOP_MQTT__DOWN_LOG_S": "3",
    }
    return start_up(data_dir, log, 1, 0.05, env)


def _listener_pid(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return int(conn.pid) if conn.pid is not None else None
    return None


def _ready(api_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/ready", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _one(conninfo: str, sql: str, *params: object) -> Any:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _outbox_depth(data_dir: Path) -> int:
    (path,) = (data_dir / "gateways").glob("*.sqlite3")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_a_killed_broker_comes_back_and_stale_data_raises_the_alert(workdir: Path) -> None:
    data_dir = workdir / "stack"
    data_dir.mkdir()
    api_port = free_port()
    log = workdir / "up.log"
    proc = _start(data_dir, api_port, log)
    holder: socket.socket | None = None
    try:
        wait_for(lambda: "postop is running" in log.read_text(), 180, "postop up to start")
        ports = json.loads((data_dir / "stack.json").read_text())
        password = (data_dir / "postgres" / "postgres-superuser.secret").read_text().strip()
        conninfo = (
            f"host=127.0.0.1 port={ports['postgres']} dbname=postop user=postgres"
            f" password={password}"
        )
        wait_for(lambda: _ready(api_port) == 200, 60, "the API to be ready")
        # a first reading stored: the pipeline runs (the demo kit sends about one a
        # minute in real time, so waiting for more only adds minutes)
        wait_for(lambda: _one(conninfo, "SELECT count(*) FROM vitals") > 0, 180, "readings")

        # 1. kill -9: the supervisor starts it again
        broker = _listener_pid(ports["mqtt"])
        assert broker is not None
        os.kill(broker, signal.SIGKILL)
        wait_for(lambda: _listener_pid(ports["mqtt"]) not in (None, broker), 30, "a new broker")
        assert "Mosquitto is not running; restarting it" in log.read_text()
        wait_for(lambda: _ready(api_port) == 200, 30, "ready again")

        # 2. killed again and kept from coming back (another program took its port):
        # /ready, ingest and the alerts engine say so; the care team gets the alert
        broker = _listener_pid(ports["mqtt"])
        assert broker is not None
        killed_at = datetime.now(UTC)
        os.kill(broker, signal.SIGKILL)
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wait_for(lambda: _try_bind(holder, ports["mqtt"]), 5, "the broker's port")  # type: ignore[arg-type]
        holder.listen()
        wait_for(lambda: _ready(api_port) == 503, 30, "/ready to say not ready")
        wait_for(
            lambda: "unreachable for" in (data_dir / "logs" / "ingest.log").read_text(),
            60,
            "ingest to say the broker is unreachable",
        )
        wait_for(lambda: _open_system_alerts(conninfo) == 1, STALE_S + 90, "the technical alert")
        alerts_log = (data_dir / "logs" / "alerts.log").read_text()
        assert "unreachable for" in alerts_log
        assert "system alert" in alerts_log

        # 3. the port free again: the supervisor's next try brings the broker back, the
        # readings measured meanwhile arrive from the outbox, once each; the alert resolves
        holder.close()
        holder = None
        back_at = datetime.now(UTC)
        wait_for(lambda: _listener_pid(ports["mqtt"]) is not None, 60, "the broker again")
        wait_for(
            lambda: (
                _one(
                    conninfo,
                    "SELECT count(*) FROM vitals WHERE time > %s AND time < %s",
                    killed_at,
                    back_at,
                )
                > 0
            ),
            120,
            "readings measured during the outage",
        )
        wait_for(lambda: _outbox_depth(data_dir) == 0, 120, "the outbox to drain")
        duplicates = "SELECT count(*) - count(DISTINCT (device_id, metric_id, time)) FROM vitals"
        assert _one(conninfo, duplicates) == 0
        assert _one(conninfo, "SELECT count(*) FROM dead_letters") == 0
        wait_for(lambda: _open_system_alerts(conninfo) == 0, 120, "the alert to resolve")
        wait_for(lambda: _ready(api_port) == 200, 30, "ready again")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert "Traceback" not in log.read_text()
    finally:
        if holder is not None:
            holder.close()
        _kill_stack(proc, data_dir)
        print(log.read_text()[-5000:])
        for name in ("ingest.log", "alerts.log"):
            path = data_dir / "logs" / name
            if path.exists():
                print(f"--- {name} ---\n{path.read_text()[-3000:]}")


def _open_system_alerts(conninfo: str) -> int:
    count = _one(conninfo, "SELECT count(*) FROM system_alerts WHERE resolved_at IS NULL")
    assert isinstance(count, int)
    return count


def _try_bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def _kill_stack(proc: subprocess.Popen[bytes], data_dir: Path) -> None:
    """After a failure: nothing of this stack left running (PostgreSQL is a daemon)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)
    from postop.local_postgres import LocalPostgres

    LocalPostgres(data_dir / "postgres", 0).stop("immediate")


def _count_or_none(conninfo: str) -> int | None:
    try:
        return int(_one(conninfo, "SELECT count(*) FROM vitals"))
    except psycopg.OperationalError:
        return None


def _postmaster(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def test_a_killed_postgres_comes_back_and_readings_resume(workdir: Path) -> None:
    data_dir = workdir / "stack"
    data_dir.mkdir()
    api_port = free_port()
    log = workdir / "up.log"
    proc = _start(data_dir, api_port, log)
    try:
        wait_for(lambda: "postop is running" in log.read_text(), 180, "postop up to start")
        ports = json.loads((data_dir / "stack.json").read_text())
        password = (data_dir / "postgres" / "postgres-superuser.secret").read_text().strip()
        conninfo = (
            f"host=127.0.0.1 port={ports['postgres']} dbname=postop user=postgres"
            f" password={password} connect_timeout=3"
        )
        # the first stored reading (the demo kit sends about one a minute)
        wait_for(lambda: _one(conninfo, "SELECT count(*) FROM vitals") > 0, 180, "readings")
        server = _postmaster(data_dir)
        assert server is not None
        os.kill(server, signal.SIGKILL)
        wait_for(lambda: _postmaster(data_dir) not in (None, server), 60, "a new PostgreSQL")
        assert "PostgreSQL is not running; restarting it" in log.read_text()
        wait_for(lambda: _count_or_none(conninfo) is not None, 60, "it to accept connections")
        before = _count_or_none(conninfo)
        assert before is not None
        wait_for(lambda: (_count_or_none(conninfo) or 0) > before, 120, "new readings")
        wait_for(lambda: _ready(api_port) == 200, 60, "the API ready again")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        _kill_stack(proc, data_dir)
        print(log.read_text()[-5000:])
