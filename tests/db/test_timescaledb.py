"""The TimescaleDB flavour, on a private cluster that preloads the extension: hypertable,
compression, retention and continuous-aggregate policies, and ingest writing into the
hypertable. Skipped where TimescaleDB is not installed (it is in no package registry
reachable from CI; build it locally to run these)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest.writer import prepare, write_batch
from postop.local_postgres import (
    TIMESCALEDB_CONF,
    LocalPostgres,
    find_binaries,
    timescaledb_installed,
)
from postop.ports import free_port
from store.flavour import Flavour, detect
from store.migrate import migrate
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from store.trends import trend
from vitals.catalogue import metric

pytestmark = pytest.mark.skipif(
    not timescaledb_installed(find_binaries()),
    reason="TimescaleDB is not installed for this PostgreSQL",
)


@pytest.fixture(scope="module")
def tsdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("tsdb")
    for folder in (root, *root.parents):
        if folder == Path("/tmp"):
            break
        folder.chmod(0o755)
    server = LocalPostgres(
        root / "pg",
        free_port(),
        fast_unsafe=True,
        extra_conf=TIMESCALEDB_CONF,
    )
    server.ensure_initialised()
    server.start()
    try:
        server.wait_ready()
        yield server.create_database("postop")
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_migrations_use_timescaledb_features(tsdb: str) -> None:
    migrate(tsdb)
    assert migrate(tsdb) == []  # idempotent there too
    with psycopg.connect(tsdb) as conn:
        assert detect(conn) is Flavour.TIMESCALEDB
        hyper = conn.execute(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        ).fetchall()
        jobs = {
            r[0]
            for r in conn.execute("SELECT proc_name FROM timescaledb_information.jobs").fetchall()
        }
        caggs = {
            r[0]
            for r in conn.execute(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            ).fetchall()
        }
        segmentby = conn.execute(
            "SELECT attname FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'vitals' AND segmentby_column_index IS NOT NULL"
            " ORDER BY segmentby_column_index"
        ).fetchall()
    assert ("vitals", True) in hyper
    assert {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} <= jobs
    assert {"vitals_1m", "vitals_1h"} <= caggs
    assert [r[0] for r in segmentby] == ["patient_id", "metric_id"]


def test_ingest_writes_into_the_hypertable_and_aggregates_follow(tsdb: str) -> None:
    migrate(tsdb)
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    with psycopg.connect(tsdb, autocommit=True) as conn:
        patient = ensure_patient(conn, "P-TSDB", ensure_team(conn, "TSDB"))
        register_gateway(conn, "gw-tsdb")
        register_device(conn, "ox-tsdb", "oximeter", "gw-tsdb")
        enroll(conn, "ox-tsdb", patient, t0 - timedelta(days=1))
        prepare(conn)
        rows = [
            (
                "gw-tsdb",
                i,
                "ox-tsdb",
                metric("spo2_pct").metric_id,
                int((t0 + timedelta(seconds=10 * i)).timestamp() * 1000),
                95.0 + i % 3,
                0,
            )
            for i in range(360)
        ]
        assert write_batch(conn, rows, []).inserted == 360
        assert write_batch(conn, rows, []).inserted == 0  # re-delivery into a hypertable
        conn.execute("CALL refresh_continuous_aggregate('vitals_1m', NULL, NULL)")
        per_minute = conn.execute(
            "SELECT count(*), sum(n)::bigint, min(value_min), max(value_max)"
            " FROM vitals_1m WHERE patient_id = %s",
            (patient,),
        ).fetchone()
        chunks = conn.execute("SELECT count(*) FROM show_chunks('vitals')").fetchone()
    assert per_minute == (60, 360, 95.0, 97.0)
    assert chunks is not None
    assert chunks[0] >= 1


def _raw_buckets(
    conn: psycopg.Connection, patient: int, start: datetime, end: datetime, step: timedelta
) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT time_bucket(%s, time), count(value), avg(value), min(value), max(value)"
        " FROM vitals WHERE patient_id = %s AND time >= time_bucket(%s, %s::timestamptz)"
        " AND time < %s GROUP BY 1 ORDER BY 1",
        (step, patient, step, start, end),
    ).fetchall()


def test_minute_aggregates_expire_and_older_charts_come_from_raw_rows(tsdb: str) -> None:
    """vitals_1m has its own retention policy (a continuous aggregate is otherwise kept
    for ever); a minute-resolution chart of a period it no longer holds is read from the
    raw rows, and one across its horizon counts every reading once."""
    migrate(tsdb)
    spo2 = metric("spo2_pct").metric_id
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    windows = [now - timedelta(days=120), now - timedelta(days=90, hours=12)]
    with psycopg.connect(tsdb, autocommit=True) as conn:
        patient = ensure_patient(conn, "P-RETAIN", ensure_team(conn, "TSDB"))
        for start in windows:
            conn.execute(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
                " SELECT %s + i * INTERVAL '1 minute', %s, 'ox-retain', %s, 90 + i %% 7"
                " FROM generate_series(0, 1439) AS i",
                (start, patient, spo2),
            )
            conn.execute(
                "CALL refresh_continuous_aggregate('vitals_1m', %s, %s)",
                (start, start + timedelta(days=1)),
            )
        retention = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT hypertable_name, job_id, config ->> 'drop_after'"
                " FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
            ).fetchall()
        }
        job = retention["vitals_1m"]
        conn.execute("CALL run_job(%s)", (job[0],))
        oldest_kept = conn.execute(
            "SELECT count(*) FROM vitals_1m WHERE patient_id = %s AND bucket < %s",
            (patient, windows[0] + timedelta(days=1)),
        ).fetchone()
        charts = []
        for start in windows:
            end = start + timedelta(days=1)
            plan, buckets = trend(conn, Flavour.TIMESCALEDB, patient, [spo2], start, end)
            step = timedelta(seconds=plan.bucket_s)
            got = [(b.bucket, b.n, b.value_avg, b.value_min, b.value_max) for b in buckets]
            charts.append((plan.source, got, _raw_buckets(conn, patient, start, end, step)))
    assert job[1] == "90 days"
    assert retention["vitals"][1] == "730 days"
    assert "vitals_1h" not in retention  # the hourly summary stays with the record
    assert oldest_kept == (0,)  # the policy dropped the minute buckets of 120 days ago
    for source, got, raw in charts:
        assert source == "vitals_1m"
        assert len(got) == 720
        assert [g[:2] for g in got] == [r[:2] for r in raw]
        assert [v for g in got for v in g[2:]] == pytest.approx([v for r in raw for v in r[2:]])


def test_readings_days_late_reach_the_minute_aggregate(tsdb: str) -> None:
    """A home back online after 10 days replays its outbox: its readings land in buckets
    already materialized, and the minute aggregate's refresh policy must still reach them
    (its window covers 35 days, as the hourly one's)."""
    migrate(tsdb)
    spo2 = metric("spo2_pct").metric_id
    late_at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=10)
    with psycopg.connect(tsdb, autocommit=True) as conn:
        patient = ensure_patient(conn, "P-LATE", ensure_team(conn, "TSDB"))
        refresh_jobs: dict[str, int] = dict(
            conn.execute(
                "SELECT hypertable_name, job_id FROM timescaledb_information.jobs"
                " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
            ).fetchall()
        )
        job = refresh_jobs["vitals_1m"]
        conn.execute("SELECT alter_job(%s, scheduled => false)", (job,))  # runs when we say
        conn.execute("CALL run_job(%s)", (job,))  # the period is materialized, empty
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'ox-late', %s, 91)",
            (late_at, patient, spo2),
        )
        query = "SELECT bucket, n, value_avg FROM vitals_1m WHERE patient_id = %s"
        before = conn.execute(query, (patient,)).fetchall()
        conn.execute("CALL run_job(%s)", (job,))  # what the policy does every minute
        after = conn.execute(query, (patient,)).fetchall()
        conn.execute("SELECT alter_job(%s, scheduled => true)", (job,))
    assert before == []  # invisible until the refresh: the bucket was materialized
    assert after == [(late_at, 1, 91.0)]
