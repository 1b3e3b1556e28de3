"""Files with health data or secrets are created private (issue 16): the gateway's outbox
(SQLite and its -wal/-shm) was created world-readable; now 0600 in a 0700 folder, and an
outbox left readable by an earlier version is tightened when opened. The services run
with umask 077, so what else they create (logs, bonds) is private too."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.outbox import Outbox, OutboxReading
from tests.stack import ROOT


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_outbox_and_its_wal_are_private(workdir: Path) -> None:
    path = workdir / "gw" / "outbox.sqlite3"
    box = Outbox(path)
    box.append([OutboxReading("ox-1", "spo2_pct", 1_800_000_000_000, 97.0, 0)])
    try:
        for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert part.exists(), part
            assert _mode(part) == 0o600, (part, oct(_mode(part)))
        assert _mode(path.parent) == 0o700
    finally:
        box.close()


def test_an_outbox_left_readable_is_tightened(workdir: Path) -> None:
    path = workdir / "outbox.sqlite3"
    Outbox(path).close()
    path.chmod(0o644)
    Outbox(path).close()
    assert _mode(path) == 0o600


def test_services_create_private_files(workdir: Path) -> None:
    """What a service process writes with default modes (a log, a bond file) is private."""
    code = (
        "from vitals.service import run_service\n"
        "from pathlib import Path\n"
        f"run_service(lambda s, stop: Path({str(workdir / 'made.txt')!r}).write_text('x'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert _mode(workdir / "made.txt") == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL changes account only under root")
def test_a_data_folder_postgres_cannot_reach_is_said_in_one_line(workdir: Path) -> None:
    """Under root the server runs as the postgres account, which must traverse every
    folder above the data folder: when it cannot, ``postop up`` says so in one line."""
    closed = workdir / "closed"
    closed.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "postop.cli", "up", "--data-dir", str(closed / "stack")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2  # a problem the user can fix (postop/cli.py clear_failures)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "cannot enter" in lines[0]
    assert str(closed) in lines[0]
