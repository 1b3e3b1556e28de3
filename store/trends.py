"""Trend series for charts: one patient, some metrics, a time range, at most about
``max_points`` buckets per metric, read from the coarsest source that still gives that
many points (1-hour or 1-minute aggregates, raw rows for short spans).

With TimescaleDB the continuous aggregates are real-time (see migration 0006). On plain
PostgreSQL the stand-in views are read up to their last refresh and raw rows after it,
so a chart never misses the last minute of data. An aggregate with a retention policy
(``vitals_1m``, migration 0012) no longer holds the buckets older than the policy's
horizon: those are read from raw rows, kept longer, so a chart of an older period at
minute resolution is as complete as a recent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from store.flavour import Flavour

# bucket widths a chart may use, in seconds: whole minutes or hours from an aggregate
BUCKET_STEPS_S = (
    1,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)


@dataclass(frozen=True, slots=True)
class TrendBucket:
    metric_id: int
    bucket: datetime
    n: int
    value_avg: float | None
    value_min: float | None
    value_max: float | None


@dataclass(frozen=True, slots=True)
class TrendPlan:
    bucket_s: int
    source: str  # "vitals", "vitals_1m" or "vitals_1h"


def plan(start: datetime, end: datetime, max_points: int) -> TrendPlan:
    """The smallest bucket that keeps the series within ``max_points`` per metric."""
    span_s = max((end - start).total_seconds(), 1.0)
    step = next((s for s in BUCKET_STEPS_S if span_s / s <= max_points), BUCKET_STEPS_S[-1])
    if step % 3600 == 0:
        return TrendPlan(step, "vitals_1h")
    if step % 60 == 0:
        return TrendPlan(step, "vitals_1m")
    return TrendPlan(step, "vitals")


RAW_BUCKETS_SQL = """
SELECT metric_id, time_bucket(%(step)s, time) AS b, count(value)::bigint,
       avg(value), min(value), max(value)
FROM vitals
WHERE patient_id = %(patient)s AND metric_id = ANY(%(metrics)s)
  AND time >= %(start)s AND time < %(end)s
GROUP BY 1, 2 ORDER BY 1, 2
"""

# {src} is one of two fixed view names chosen by plan(), never user input. The view gives
# [floor, watermark); raw rows give what is older than the view keeps and what is newer
# than it has aggregated. Both instants are aligned on the view's buckets.
_AGGREGATED = """
WITH parts AS (
    SELECT metric_id, time, (value IS NOT NULL)::int AS n, value AS s, value AS lo, value AS hi
    FROM vitals
    WHERE patient_id = %(patient)s AND metric_id = ANY(%(metrics)s)
      AND time >= %(start)s AND time < least(%(end)s, %(floor)s::timestamptz)
    UNION ALL
    SELECT metric_id, bucket, n, value_avg * n, value_min, value_max
    FROM {src}
    WHERE patient_id = %(patient)s AND metric_id = ANY(%(metrics)s)
      AND bucket >= greatest(%(start)s, %(floor)s::timestamptz)
      AND bucket < least(%(end)s, %(watermark)s::timestamptz)
    UNION ALL
    SELECT metric_id, time, (value IS NOT NULL)::int, value, value, value
    FROM vitals
    WHERE patient_id = %(patient)s AND metric_id = ANY(%(metrics)s)
      AND time >= greatest(%(start)s, %(floor)s::timestamptz, %(watermark)s::timestamptz)
      AND time < %(end)s
)
SELECT metric_id, time_bucket(%(step)s, time) AS b, sum(n)::bigint,
       sum(s) / nullif(sum(n), 0), min(lo), max(hi)
FROM parts GROUP BY 1, 2 ORDER BY 1, 2
"""

# the retention horizon of a continuous aggregate, from its policy (none: kept for ever);
# TimescaleDB lists a continuous aggregate's policies under the view's name
_RETENTION_FLOOR = """
SELECT time_bucket(%s::interval, now() - (config ->> 'drop_after')::interval)
FROM timescaledb_information.jobs
WHERE hypertable_name = %s AND proc_name = 'policy_retention'
"""


def _bucket_width(source: str) -> str:
    return "1 hour" if source == "vitals_1h" else "1 minute"


def _floor(conn: psycopg.Connection, flavour: Flavour, source: str) -> datetime | str:
    """The view holds every bucket from this instant on; older ones may have been dropped
    by its retention policy and are read from raw rows."""
    if flavour is not Flavour.TIMESCALEDB:
        return "-infinity"  # the stand-in views are recomputed whole, never purged
    row = conn.execute(_RETENTION_FLOOR, (_bucket_width(source), source)).fetchone()
    return row[0] if row is not None and row[0] is not None else "-infinity"


def _watermark(conn: psycopg.Connection, flavour: Flavour, source: str) -> datetime | str | None:
    """Aggregated data is complete before this instant (aligned on the view's buckets);
    None when the view was never refreshed (a plain-PostgreSQL view then has no data)."""
    if flavour is Flavour.TIMESCALEDB:
        return "infinity"  # real-time aggregates already union the fresh rows
    row = conn.execute(
        "SELECT time_bucket(%s::interval, refreshed_at) FROM aggregate_refreshes WHERE view = %s",
        (_bucket_width(source), source),
    ).fetchone()
    return row[0] if row else None


def trend(
    conn: psycopg.Connection,
    flavour: Flavour,
    patient_id: int,
    metric_ids: Sequence[int],
    start: datetime,
    end: datetime,
    max_points: int = 1000,
) -> tuple[TrendPlan, list[TrendBucket]]:
    """Buckets in [start, end), ``start`` aligned down to the bucket width."""
    p = plan(start, end, max_points)
    step = timedelta(seconds=p.bucket_s)
    params = {
        "step": step,
        "patient": patient_id,
        "metrics": list(metric_ids),
        "end": end,
    }
    aligned = conn.execute("SELECT time_bucket(%s, %s::timestamptz)", (step, start)).fetchone()
    assert aligned is not None
    params["start"] = aligned[0]
    watermark = None if p.source == "vitals" else _watermark(conn, flavour, p.source)
    if watermark is None:
        rows = conn.execute(RAW_BUCKETS_SQL, params).fetchall()
    else:
        params["watermark"] = watermark
        params["floor"] = _floor(conn, flavour, p.source)
        rows = conn.execute(_AGGREGATED.format(src=p.source), params).fetchall()
    return p, [TrendBucket(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5]) for r in rows]
