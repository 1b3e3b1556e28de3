"""Migrations over a real PostgreSQL: idempotent, flavour recorded, catalogue synced, the
time_bucket stand-in and the aggregate views behave like TimescaleDB's."""

from __future__ import annotations

import psycopg
import pytest

from store.aggregates import refresh_aggregates
from store.flavour import Flavour, detect
from store.migrate import migrate, migrations_for
from vitals.catalogue import CATALOGUE


def test_migrate_twice_applies_nothing_the_second_time(db: str, pg_flavour: Flavour) -> None:
    assert migrate(db) == []  # the template was migrated already
    with psycopg.connect(db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        flavours = {r[0] for r in conn.execute("SELECT flavour FROM schema_migrations")}
        assert versions == [m.version for m in migrations_for(pg_flavour)]
        assert flavours == {pg_flavour.value}
        assert detect(conn) is pg_flavour


def test_fresh_database_is_migrated_from_scratch(pg) -> None:  # type: ignore[no-untyped-def]
    conninfo = pg.create_database("fresh_migrate_check")
    applied = migrate(conninfo)
    assert [m.name for m in applied][:3] == ["core", "vitals", "aggregates"]
    with psycopg.connect(conninfo) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM metrics")}
        assert names == {m.name for m in CATALOGUE}
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute("DROP DATABASE fresh_migrate_check WITH (FORCE)")


def test_time_bucket_matches_timescaledb_origin(db: str) -> None:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT time_bucket(INTERVAL '1 week', TIMESTAMPTZ '2026-11-22 13:00+00'),"
            " time_bucket(INTERVAL '15 minutes', TIMESTAMPTZ '2026-11-22 13:14:59+00')"
        ).fetchone()
    assert row is not None
    # TimescaleDB buckets weeks from Monday 2000-01-03: 2026-11-22 is a Sunday
    assert row[0].isoformat() == "2026-11-16T00:00:00+00:00"
    assert row[1].isoformat() == "2026-11-22T13:00:00+00:00"


def test_aggregates_refresh_on_plain_postgres(db: str, pg_flavour: Flavour) -> None:
    if pg_flavour is Flavour.TIMESCALEDB:
        pytest.skip("plain-PostgreSQL stand-in views (TimescaleDB's: test_timescaledb.py)")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " SELECT TIMESTAMPTZ '2026-11-22 10:00+00' + i * INTERVAL '10 seconds', 1, 'ox-1', 2,"
            " 90 + i % 10 FROM generate_series(0, 359) AS i"
        )
        refresh_aggregates(conn)  # first refresh populates
        refresh_aggregates(conn)  # later ones are CONCURRENTLY
        minutes = conn.execute("SELECT count(*), sum(n) FROM vitals_1m").fetchone()
        hours = conn.execute("SELECT bucket, n, value_min, value_max FROM vitals_1h").fetchall()
    assert minutes == (60, 360)
    assert len(hours) == 1
    assert hours[0][1:] == (360, 90, 99)
