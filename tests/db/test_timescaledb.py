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
