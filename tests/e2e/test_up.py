"""``postop up`` from an empty folder: private PostgreSQL and Mosquitto, migrations, every
service and simulated patients; readings reach the database; Ctrl-C stops it all
cleanly; a second start finds the same data."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from postop import cli
from postop.ports import free_port
from tests.stack import start_up, wait_for

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow


def _start(data_dir: Path, api_port: int, log: Path) -> subprocess.Popen[bytes]:
    return start_up(data_dir, log, 2, 6, {"POSTOP_API__PORT": str(api_port)})


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
        return dict(json.load(resp))


def _conninfo(data_dir: Path) -> str:
    ports = json.loads((data_dir / "stack.json").read_text())
    password = (data_dir / "postgres" / "postgres-superuser.secret").read_text().strip()
    return (
        f"host=127.0.0.1 port={ports['postgres']} dbname=postop user=postgres password={password}"
    )


def _readings_per_patient(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT p.pseudonym, count(v.*) FROM patients p"
            " LEFT JOIN vitals v USING (patient_id) GROUP BY 1"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def test_up_runs_everything_stops_cleanly_and_keeps_its_data(workdir: Path) -> None:
    data_dir = workdir / "stack"
    data_dir.mkdir()
    api_port = free_port()
    log = workdir / "up.log"
    proc = _start(data_dir, api_port, log)
    try:
        wait_for(lambda: "postop is running" in log.read_text(), 120, "postop up to start")
        assert _get(f"http://127.0.0.1:{api_port}/health") == {"status": "ok"}
        wait_for(
            lambda: _get(f"http://127.0.0.1:{api_port}/ready").get("status") == "ready",
            30,
            "the API to be ready",
        )
        conninfo = _conninfo(data_dir)
        _assert_private(data_dir)
        _demo_login_works(data_dir, api_port, log)
        first_ports = _ports(data_dir)
        wait_for(
            lambda: (
                len(_readings_per_patient(conninfo)) == 2
                and all(n > 50 for n in _readings_per_patient(conninfo).values())
            ),
            120,
            "six hours of readings from both simulated patients",
        )
        # missing-data rules count from the kits' enrolment (issue 19): a fresh stack
        # never tells the team that its demo patients are "missing SpO2"
        with psycopg.connect(conninfo) as conn:
            missing = conn.execute(
                "SELECT count(*) FROM alerts WHERE rule_id IN ('no_spo2', 'no_weight')"
            ).fetchone()
        assert missing == (0,)
        # the demo patients were enrolled under their recorded consents (issue 21), and
        # the retention service ran its first purge at start-up (nothing to purge)
        with psycopg.connect(conninfo) as conn:
            consents = conn.execute(
                "SELECT p.pseudonym, array_agg(c.kind ORDER BY c.kind) FROM patients p"
                " JOIN consents c USING (patient_id) WHERE c.withdrawn_at IS NULL GROUP BY 1"
                " ORDER BY 1"
            ).fetchall()
            wait_for(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM purge_runs WHERE finished_at IS NOT NULL"
                    ).fetchone()
                    == (1,)
                ),
                30,
                "the retention service's first run",
            )
        assert consents == [
            ("DEMO-001", ["monitoring", "sharing", "transfer"]),  # a physician in the US
            ("DEMO-002", ["monitoring", "sharing"]),  # one in Spain
        ]
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0
        text = log.read_text()
        assert "stopped; data kept in" in text
        assert "Traceback" not in text
        assert "alerts engine running" in (data_dir / "logs" / "alerts.log").read_text()
        before = sum(_readings_per_patient_offline(data_dir).values())

        proc = _start(data_dir, api_port, log)
        wait_for(lambda: log.read_text().count("postop is running") == 2, 120, "the restart")
        assert "existing cluster" in log.read_text()
        assert _ports(data_dir) == first_ports  # links and bookmarks keep working
        after = _readings_per_patient(_conninfo(data_dir))
        assert sum(after.values()) >= before
        with psycopg.connect(_conninfo(data_dir)) as conn:
            # a restart neither records the consents again nor purges twice in a day
            assert conn.execute("SELECT count(*) FROM consents").fetchone() == (5,)
            assert conn.execute("SELECT count(*) FROM purge_runs").fetchone() == (1,)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        print(log.read_text()[-5000:])


def _demo_login_works(data_dir: Path, api_port: int, log: Path) -> None:
    """A newcomer signs in as the announcement says: the demo password and the code that
    `postop demo-code` prints (the second factor is needed, and its secret is sealed in
    the database and absent from every log)."""
    assert "postop demo-code" in log.read_text()
    printed = CliRunner().invoke(cli.app, ["demo-code", "--data-dir", str(data_dir)])
    assert printed.exit_code == 0, printed.output
    code = printed.output.split()[0]
    assert len(code) == 6
    assert code.isdigit()
    password = (data_dir / "demo-password.txt").read_text().strip()
    base = f"http://127.0.0.1:{api_port}/api/v1/session"
    body = {"email": "coordination@postop.example", "password": password}
    assert httpx.post(base, json=body).status_code == 401  # no code: no session
    signed = httpx.post(base, json={**body, "code": code})
    assert signed.status_code == 200, signed.text
    secret = (data_dir / "demo-totp-secret.txt").read_text().strip()
    with psycopg.connect(_conninfo(data_dir)) as conn:
        stored = conn.execute(
            "SELECT totp_secret FROM clinicians WHERE email = 'coordination@postop.example'"
        ).fetchone()
    assert stored is not None
    assert stored[0].startswith("fernet:")
    for path in (data_dir / "logs").glob("*.log"):
        assert secret not in path.read_text(errors="replace"), path


def _ports(data_dir: Path) -> dict[str, int]:
    stored = json.loads((data_dir / "stack.json").read_text())
    return {k: stored[k] for k in ("postgres", "mqtt", "api")}


def _assert_private(data_dir: Path) -> None:
    """Nothing in the data folder for other accounts: 0700 (0710 for the PostgreSQL
    account's group, which runs the server when we are root), files 0600."""
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o007 == 0
    files = [
        data_dir / "demo-password.txt",
        data_dir / "demo-totp-secret.txt",
        data_dir / "second-factor.key",
        data_dir / "vapid-private.pem",
        data_dir / "stack.json",
        *(data_dir / "logs").glob("*.log"),
        *(data_dir / "gateways").glob("*.sqlite3*"),
    ]
    assert len(files) > 6
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))


def _readings_per_patient_offline(data_dir: Path) -> dict[str, int]:
    """Count with the stack stopped: start the cluster alone, count, stop it."""
    from postop.local_postgres import LocalPostgres

    ports = json.loads((data_dir / "stack.json").read_text())
    pg = LocalPostgres(data_dir / "postgres", ports["postgres"])
    pg.start()
    try:
        pg.wait_ready()
        return _readings_per_patient(pg.conninfo("postop"))
    finally:
        pg.stop()
        time.sleep(0.5)
