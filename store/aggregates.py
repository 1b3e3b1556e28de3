"""Keeping the trend aggregates fresh on either flavour.

With TimescaleDB, continuous-aggregate policies do it and this is a no-op. On plain
PostgreSQL the materialized views are refreshed here; the first refresh populates them
(a view created WITH NO DATA cannot be refreshed CONCURRENTLY). Each refresh records
the moment it started in ``aggregate_refreshes``: trend queries read the view before that
moment and raw rows after it.
"""

from __future__ import annotations

import psycopg

from store.flavour import Flavour, detect

AGGREGATE_VIEWS = ("vitals_1m", "vitals_1h")


def refresh_aggregates(conn: psycopg.Connection) -> None:
    """Refresh the stand-in views; ``conn`` must be in autocommit mode."""
    if detect(conn) is Flavour.TIMESCALEDB:
        return
    for view in AGGREGATE_VIEWS:
        row = conn.execute(
            "SELECT ispopulated FROM pg_matviews WHERE matviewname = %s", (view,)
        ).fetchone()
        concurrently = "CONCURRENTLY " if row and row[0] else ""
        started = conn.execute("SELECT clock_timestamp()").fetchone()
        assert started is not None
        conn.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{view}")
        conn.execute(
            "INSERT INTO aggregate_refreshes (view, refreshed_at) VALUES (%s, %s)"
            " ON CONFLICT (view) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at",
            (view, started[0]),
        )
