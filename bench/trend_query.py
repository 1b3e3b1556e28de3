"""Trend query latency: one patient with 30 days of SpO2 at 1 Hz (2.6 million rows, plus
nine other patients at one reading a minute), asked for the whole 30 days as a chart
series (the planner picks 1-hour buckets from the ``vitals_1h`` aggregate, 720 points),
against the same bucketing computed from raw rows in the same run. Measured at the query
(``store.trends.trend``) and through the HTTP endpoint (signed in, audited, JSON).

Run: ``uv run python -m bench.trend_query [--timescaledb]``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.common.passwords import hash_password
from bench.private_services import private_services
from store.aggregates import refresh_aggregates
from store.clinicians import create_clinician
from store.flavour import detect
from store.migrate import migrate
from store.provisioning import ensure_patient, ensure_team
from store.trends import RAW_BUCKETS_SQL, plan, trend
from vitals.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DAYS = 30
SPO2 = 2


@dataclass(frozen=True)
class Timing:
    what: str
    runs: int
    p50_ms: float
    p95_ms: float
    points: int


def _load(conn: psycopg.Connection, patient: int, others: list[int], end: datetime) -> int:
    rng = np.random.default_rng(3)
    start = end - timedelta(days=DAYS)
    seconds = DAYS * 86_400
    rows = 0
    with conn.cursor().copy(
        "COPY vitals (time, patient_id, device_id, metric_id, value, flags) FROM STDIN"
    ) as copy:
        values = np.clip(96 + np.cumsum(rng.normal(0, 0.02, seconds)) % 4 - 2, 80, 100)
        for s in range(seconds):
            copy.write_row((start + timedelta(seconds=s), patient, "ox-bench", SPO2, values[s], 0))
        rows += seconds
        for other in others:
            for m in range(DAYS * 1440):
                copy.write_row((start + timedelta(minutes=m), other, f"ox-{other}", SPO2, 95.0, 0))
            rows += DAYS * 1440
    return rows


def _timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _summary(what: str, samples: list[float], points: int) -> Timing:
    q = statistics.quantiles(samples, n=20)
    return Timing(what, len(samples), statistics.median(samples), q[18], points)


def main(runs: int = 60, timescaledb: bool = False) -> None:
    with private_services("postop-bench-trend-", timescaledb=timescaledb) as (_t, pg, _b, _p):
        db = pg.create_database("postop")
        migrate(db)
        end = datetime.now(UTC).replace(microsecond=0)
        with psycopg.connect(db, autocommit=True) as conn:
            flavour = detect(conn)
            team = ensure_team(conn, "bench")
            patient = ensure_patient(conn, "BENCH-001", team)
            others = [ensure_patient(conn, f"BENCH-{n:03d}", team) for n in range(2, 11)]
            create_clinician(
                conn,
                "bench@postop.example",
                "Bench",
                "physician",
                hash_password("bench password 123"),
                [team],
            )
            t0 = time.perf_counter()
            rows = _load(conn, patient, others, end - timedelta(minutes=5))
            load_s = time.perf_counter() - t0
            conn.execute("ANALYZE vitals")
            if flavour.value == "timescaledb":
                for view in ("vitals_1m", "vitals_1h"):
                    conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
            else:
                refresh_aggregates(conn)
            # the last five minutes arrive after the refresh: read from raw rows
            with conn.cursor().copy(
                "COPY vitals (time, patient_id, device_id, metric_id, value, flags) FROM STDIN"
            ) as copy:
                for s in range(300):
                    copy.write_row(
                        (end - timedelta(seconds=300 - s), patient, "ox-bench", SPO2, 94.0, 0)
                    )
            start = end - timedelta(days=DAYS)
            p = plan(start, end, 1000)
            step = timedelta(seconds=p.bucket_s)

            def aggregated() -> int:
                return len(trend(conn, flavour, patient, [SPO2], start, end, 1000)[1])

            def raw() -> int:
                params = {
                    "step": step,
                    "patient": patient,
                    "metrics": [SPO2],
                    "start": start,
                    "end": end,
                }
                return len(conn.execute(RAW_BUCKETS_SQL, params).fetchall())

            points = aggregated()
            assert abs(raw() - points) <= 1, "both queries must bucket the same rows"
            timings = [
                _summary(f"aggregate ({p.source})", _timed(aggregated, runs), points),
                _summary("raw rows", _timed(raw, max(10, runs // 4)), raw()),
            ]
        settings = Settings(database_url=SecretStr(db))
        with TestClient(create_app(settings)) as client:
            res = client.post(
                "/api/v1/session",
                json={"email": "bench@postop.example", "password": "bench password 123"},
            )
            res.raise_for_status()
            url = f"/api/v1/patients/{patient}/trends?metric=spo2_pct&range=30d"
            http_points = len(client.get(url).json()["series"][0]["points"])
            timings.append(
                _summary(
                    "HTTP GET /trends (30d)", _timed(lambda: client.get(url), runs), http_points
                )
            )
    agg, rawt, http = timings
    print(
        f"{rows:,} rows loaded in {load_s:.1f} s ({flavour.value}); "
        f"{p.bucket_s} s buckets from {p.source}"
    )
    print(f"{'query':<28} {'runs':>5} {'p50 ms':>8} {'p95 ms':>8} {'points':>7}")
    for t in timings:
        print(f"{t.what:<28} {t.runs:>5} {t.p50_ms:>8.1f} {t.p95_ms:>8.1f} {t.points:>7}")
    print(
        f"raw / aggregate at p95: {rawt.p95_ms / agg.p95_ms:.0f}x;"
        f" HTTP p95 {http.p95_ms:.1f} ms (target < 100 ms)"
    )
    out = ROOT / "bench" / "results" / f"trend_query_{flavour.value}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "trend_query",
                "at": datetime.now(UTC).isoformat(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "flavour": flavour.value,
                "rows": rows,
                "bucket_s": p.bucket_s,
                "source": p.source,
                "timings": [asdict(t) for t in timings],
                "raw_over_aggregate_p95": rawt.p95_ms / agg.p95_ms,
            },
            indent=2,
        )
    )
    print(f"written to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--timescaledb", action="store_true")
    args = parser.parse_args()
    main(args.runs, args.timescaledb)
