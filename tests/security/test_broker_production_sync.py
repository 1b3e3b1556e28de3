"""The production path of deploy/BROKER.md with the real commands: ``postop broker
passwd`` and ``postop broker dynsec`` render the files a Mosquitto starts with; after a
registration, ``postop broker sync`` (control topic, admin account) then the password
file and a SIGHUP let the new gateway in, bound to its client id."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from postop.cli import app
from postop.local_mosquitto import find_dynsec_plugin, find_mosquitto, shipped_file
from postop.ports import free_port, wait_port
from store.provisioning import register_gateway
from tests.security.broker_probe import Probe
from tests.stack import wait_for

ADMIN = "admin-test-secret"


def _connects(port: int, client_id: str, user: str, password: str) -> bool:
    probe = Probe(client_id, user, password, port)
    probe.close()
    return probe.accepted


def test_rendered_files_then_sync_and_reload(
    db: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTOP_DATABASE_URL", db)
    monkeypatch.setenv("POSTOP_BROKER__ADMIN_PASSWORD", ADMIN)
    monkeypatch.setenv("POSTOP_BROKER__INGEST_PASSWORDS", '{"ingest-1": "ingest-secret"}')
    with psycopg.connect(db, autocommit=True) as conn:
        first = register_gateway(conn, "gw-prod-1")
    runner = CliRunner()
    passwd, dynsec = workdir / "passwd", workdir / "dynamic-security.json"
    for args in (["broker", "passwd", str(passwd)], ["broker", "dynsec", str(dynsec)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                shipped_file("broker.conf"),
                f"listener {port} 127.0.0.1",
                f"password_file {passwd}",
                f"plugin {find_dynsec_plugin()}",
                f"plugin_opt_config_file {dynsec}",
                f"persistence_location {workdir}/",
                *(["user root"] if os.geteuid() == 0 else []),
            ]
        )
        + "\n"
    )
    broker = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port, 10)
        assert _connects(port, "gw-prod-1", "gw-prod-1", first)
        assert not _connects(port, "ingest-1", "gw-prod-1", first)
        assert _connects(port, "ingest-1", "ingest-1", "ingest-secret")
        with psycopg.connect(db, autocommit=True) as conn:
            second = register_gateway(conn, "gw-prod-2")
        monkeypatch.setenv("POSTOP_MQTT__PORT", str(port))
        result = runner.invoke(app, ["broker", "sync"])
        assert result.exit_code == 0, result.output
        assert "1 added" in result.output
        assert runner.invoke(app, ["broker", "passwd", str(passwd)]).exit_code == 0
        broker.send_signal(signal.SIGHUP)
        wait_for(lambda: _connects(port, "gw-prod-2", "gw-prod-2", second), 10, "the new one")
        assert not _connects(port, "gw-prod-1", "gw-prod-2", second)
    finally:
        broker.terminate()
        broker.wait(10)
