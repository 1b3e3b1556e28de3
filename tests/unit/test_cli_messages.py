"""The command line speaks to the person at the keyboard: a problem they can fix is one
line with the fix (never a traceback), every service's help names the settings it reads,
and ``up`` comes first."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postop.cli import app, clear_failures
from postop.local_mosquitto import MosquittoUnavailable

runner = CliRunner()


def test_up_is_listed_first_and_shows_its_data_dir_default() -> None:
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    commands = [line.split()[1] for line in top.output.splitlines() if line.startswith("│ ")]
    assert commands[commands.index("--help") + 1] == "up"
    up = runner.invoke(app, ["up", "--help"], env={"COLUMNS": "120"})
    assert ".postop" in up.output
    assert "POSTOP_DATA_DIR" in up.output


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        ("ingest", "POSTOP_INGEST__BATCH_MAX_READINGS"),
        ("alerts", "POSTOP_ALERTS__TICK_S"),
        ("api", "POSTOP_API__PORT"),
        ("gateway", "POSTOP_GATEWAY__OUTBOX_PATH"),
    ],
)
def test_each_service_names_its_settings(command: str, setting: str) -> None:
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert setting in res.output
    assert "POSTOP_DATABASE_URL" in res.output


def test_a_bad_setting_is_one_line() -> None:
    res = runner.invoke(app, ["api"], env={"POSTOP_API__PORT": "eighty"})
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0
    assert "POSTOP_API__PORT" in res.output
    assert "Traceback" not in res.output


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL's own account exists only for root")
def test_up_under_a_private_folder_as_root_says_how_to_fix_it(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    res = runner.invoke(app, ["up", "--data-dir", str(private / "stack"), "--patients", "0"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]  # after the stack's own "stopping" lines
    assert last.startswith("postop up: PostgreSQL runs as")
    assert "cannot enter" in last
    assert "POSTOP_DATA_DIR" in last


def test_missing_mosquitto_and_a_taken_port_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import typer

    with pytest.raises(typer.Exit), clear_failures("up"):
        raise MosquittoUnavailable("Mosquitto is not installed: apt-get install mosquitto\nmore")
    with pytest.raises(typer.Exit), clear_failures("api"):
        raise OSError(errno.EADDRINUSE, "Address already in use")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "postop up: Mosquitto is not installed: apt-get install mosquitto"
    assert lines[1].startswith("postop api: a port it needs is taken")
    assert len(lines) == 2
