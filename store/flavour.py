"""The one place that decides between TimescaleDB and plain PostgreSQL.

TimescaleDB is used when the extension is installed and preloaded on the server; a
database keeps the flavour it was first migrated with (recorded in ``schema_migrations``),
so a server that later gains or loses the extension never gets a half-converted schema.
"""

from __future__ import annotations

from enum import StrEnum

import psycopg


class Flavour(StrEnum):
    POSTGRES = "postgres"
    TIMESCALEDB = "timescaledb"


def server_supports_timescaledb(conn: psycopg.Connection) -> bool:
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        return False
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    preload = str(row[0]) if row else ""
    return "timescaledb" in [lib.strip() for lib in preload.split(",")]


def recorded_flavour(conn: psycopg.Connection) -> Flavour | None:
    exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if exists is None or exists[0] is None:
        return None
    row = conn.execute("SELECT flavour FROM schema_migrations ORDER BY version LIMIT 1").fetchone()
    return Flavour(row[0]) if row else None


def detect(conn: psycopg.Connection) -> Flavour:
    """The flavour this database uses (or will use once migrated)."""
    recorded = recorded_flavour(conn)
    if recorded is not None:
        return recorded
    return Flavour.TIMESCALEDB if server_supports_timescaledb(conn) else Flavour.POSTGRES
