"""Writing one batch in one transaction, with the NOTIFY for the alerts engine delivered at
commit.

Fast path (nearly every row): a reading not stored yet (numbered above anything its
gateway has had committed, or in a run of numbers whose first reading is not in ``vitals``),
from a device that has one enrollment covering all its readings' times and is
paired with the gateway that sent it. Those enrollments are locked (FOR SHARE, so an
unenrollment waits for our commit) and the rows go straight into ``vitals`` with binary
COPY inside a savepoint. The other rows (a replay after a lost confirmation, a device not
simply covered), or all of them if that COPY meets a row already stored anyway, take the
careful path: COPY into a staging table, then one set-based statement that maps each
reading through the enrollment valid at its own time, skips what is already stored, and
turns readings with no valid enrollment into dead letters. A reading whose key is stored
with another value or flags always ends on the careful path (the direct COPY meets the
stored row) and is kept there as a conflict row; an identical re-delivery leaves nothing.

Dead letters keep a bounded prefix of their payload (with the SHA-256 and size of the
whole) and at most ``DeadLetterLimits.per_gateway_hour`` a gateway an hour: what comes
beyond is counted in ``dead_letter_budget``, so a flood can neither fill the disk nor go
unnoticed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import errors

from ingest.parse import DeadLetter, Row
from vitals.wire import GatewayStatus

NOTIFY_CHANNEL = "vitals_ingested"
STATUS_CHANNEL = "gateway_status"
_NOTIFY_MAX_PATIENTS = 500  # keeps each NOTIFY payload far below PostgreSQL's 8000 bytes

_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    gateway_id text NOT NULL, seq bigint NOT NULL, device_id text NOT NULL,
    metric_id smallint NOT NULL, time_ms bigint NOT NULL, value double precision,
    flags smallint NOT NULL
) ON COMMIT DELETE ROWS
"""
_COPY = (
    "COPY ingest_staging (gateway_id, seq, device_id, metric_id, time_ms, value, flags)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["text", "int8", "text", "int2", "int8", "float8", "int2"]

_INSERT = """
WITH src AS (
    SELECT s.*, TIMESTAMPTZ 'epoch' + s.time_ms * INTERVAL '1 millisecond' AS time
    FROM ingest_staging s
), matched AS (
    SELECT src.time, e.patient_id, src.device_id, src.metric_id, src.value, src.flags, src.seq
    FROM src
    JOIN devices d ON d.device_id = src.device_id AND d.gateway_id = src.gateway_id
    JOIN enrollments e ON e.device_id = src.device_id AND e.valid @> src.time
    ORDER BY src.seq  -- two values for one key in one batch: the gateway's first one wins
), ins AS (
    INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)
    SELECT time, patient_id, device_id, metric_id, value, flags FROM matched
    ON CONFLICT (device_id, metric_id, time) DO NOTHING
    RETURNING patient_id, time
)
SELECT patient_id, count(*), (extract(epoch FROM min(time)) * 1000)::bigint
FROM ins GROUP BY patient_id
"""

_UNMATCHED = """
WITH src AS (
    SELECT s.*, TIMESTAMPTZ 'epoch' + s.time_ms * INTERVAL '1 millisecond' AS time
    FROM ingest_staging s
), unmatched AS (
    SELECT src.*, d.gateway_id AS paired_gateway
    FROM src LEFT JOIN devices d ON d.device_id = src.device_id
    WHERE d.device_id IS NULL OR d.gateway_id <> src.gateway_id OR NOT EXISTS (
        SELECT 1 FROM enrollments e WHERE e.device_id = src.device_id AND e.valid @> src.time)
)
SELECT 'devices/' || gateway_id || '/readings' AS topic, gateway_id, seq,
    CASE WHEN paired_gateway IS NULL THEN 'unknown device ' || device_id
         WHEN paired_gateway <> gateway_id
             THEN 'device ' || device_id || ' is not paired with gateway ' || gateway_id
         ELSE 'device ' || device_id || ' has no enrollment valid at '
              || to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    END AS reason,
    convert_to(json_build_object('seq', seq, 'device', device_id, 'metric_id', metric_id,
        'time_ms', time_ms, 'value', value, 'flags', flags)::text, 'UTF8') AS payload
FROM unmatched
"""

_CONFLICTS = """
INSERT INTO reading_conflicts
    (gateway_id, seq, device_id, metric_id, time, stored_value, stored_flags, value, flags)
SELECT s.gateway_id, s.seq, s.device_id, s.metric_id, v.time, v.value, v.flags, s.value, s.flags
FROM ingest_staging s
JOIN devices d ON d.device_id = s.device_id AND d.gateway_id = s.gateway_id
JOIN vitals v ON v.device_id = s.device_id AND v.metric_id = s.metric_id
    AND v.time = TIMESTAMPTZ 'epoch' + s.time_ms * INTERVAL '1 millisecond'
WHERE v.value IS DISTINCT FROM s.value OR v.flags <> s.flags
ON CONFLICT DO NOTHING
"""

_COVERING = """
SELECT b.gateway_id, b.device_id, e.patient_id
FROM unnest(%s::text[], %s::text[], %s::int8[], %s::int8[]) AS b(gateway_id, device_id, lo, hi)
JOIN devices d ON d.device_id = b.device_id AND d.gateway_id = b.gateway_id
JOIN enrollments e ON e.device_id = b.device_id AND e.valid @> tstzrange(
    TIMESTAMPTZ 'epoch' + b.lo * INTERVAL '1 millisecond',
    TIMESTAMPTZ 'epoch' + b.hi * INTERVAL '1 millisecond', '[]')
FOR SHARE OF e
"""
_COPY_VITALS = (
    "COPY vitals (time, patient_id, device_id, metric_id, value, flags) FROM STDIN (FORMAT BINARY)"
)
_VITALS_TYPES = ["timestamptz", "int8", "text", "int2", "float8", "int2"]

_PROGRESS = """
INSERT INTO gateway_progress (gateway_id, last_seq, last_batch_at)
VALUES (%s, %s, now())
ON CONFLICT (gateway_id) DO UPDATE
SET last_seq = GREATEST(gateway_progress.last_seq, EXCLUDED.last_seq),
    last_batch_at = EXCLUDED.last_batch_at
"""

_LATE = """
INSERT INTO late_readings (patient_id, since)
SELECT p, TIMESTAMPTZ 'epoch' + t * INTERVAL '1 millisecond'
FROM unnest(%s::bigint[], %s::bigint[]) AS u(p, t)
ON CONFLICT (patient_id) DO UPDATE SET since = LEAST(late_readings.since, EXCLUDED.since)
"""
LATE_AFTER_MS = 60_000  # older than the shortest gap a sustained rule tolerates live

_DEAD = """
INSERT INTO dead_letters (topic, gateway_id, seq, reason, payload, payload_sha256, payload_size)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (topic, payload_sha256) DO NOTHING
"""
_BUDGET_ROW = """
INSERT INTO dead_letter_budget (gateway_id, hour) VALUES (%s, date_trunc('hour', now()))
ON CONFLICT DO NOTHING
"""
_BUDGET_LOCK = """
SELECT stored FROM dead_letter_budget WHERE gateway_id = %s AND hour = date_trunc('hour', now())
FOR UPDATE
"""
_BUDGET_SPEND = """
UPDATE dead_letter_budget SET stored = stored + %s, dropped = dropped + %s
WHERE gateway_id = %s AND hour = date_trunc('hour', now())
"""


@dataclass(frozen=True, slots=True)
class DeadLetterLimits:
    per_gateway_hour: int = 1000
    payload_prefix_bytes: int = 4096


_STATUS = """
INSERT INTO gateway_status (gateway_id, online, status_at, outbox_depth, reason, updated_at)
VALUES (%s, %s, TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond', %s, %s, now())
ON CONFLICT (gateway_id) DO UPDATE
SET online = EXCLUDED.online, status_at = EXCLUDED.status_at,
    outbox_depth = EXCLUDED.outbox_depth, reason = EXCLUDED.reason, updated_at = now()
WHERE gateway_status.status_at <= EXCLUDED.status_at
"""

# a gateway reports only on the devices registered to it; the newest report wins
_DEVICE_INFO = """
INSERT INTO device_info (device_id, gateway_id, manufacturer, model, serial,
                         firmware_revision, battery_pct, clock_skew_s, last_seen, reported_at)
SELECT d.device_id, d.gateway_id, %s, %s, %s, %s, %s, %s,
       TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond',
       TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond'
FROM devices d WHERE d.device_id = %s AND d.gateway_id = %s
ON CONFLICT (device_id) DO UPDATE
SET gateway_id = EXCLUDED.gateway_id,
    manufacturer = coalesce(EXCLUDED.manufacturer, device_info.manufacturer),
    model = coalesce(EXCLUDED.model, device_info.model),
    serial = coalesce(EXCLUDED.serial, device_info.serial),
    firmware_revision = coalesce(EXCLUDED.firmware_revision, device_info.firmware_revision),
    battery_pct = coalesce(EXCLUDED.battery_pct, device_info.battery_pct),
    clock_skew_s = coalesce(EXCLUDED.clock_skew_s, device_info.clock_skew_s),
    last_seen = greatest(EXCLUDED.last_seen, device_info.last_seen),
    reported_at = EXCLUDED.reported_at, updated_at = now()
WHERE device_info.reported_at <= EXCLUDED.reported_at
"""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    patients: tuple[int, ...]
    dead_letters: int
    careful_rows: int = 0  # rows that went through staging (replays, odd enrollments)
    conflicts: int = 0  # stored keys that arrived again with another value or flags
    dead_dropped: int = 0  # dead letters beyond their gateway's hourly bound: counted only


def prepare(conn: psycopg.Connection) -> None:
    """Once per connection: the session-private staging table."""
    with conn.transaction():
        conn.execute(_STAGING_DDL)


_STORED_SEQ = "SELECT gateway_id, last_seq FROM gateway_progress WHERE gateway_id = ANY(%s)"

_STORED_ROWS = """
SELECT p.i FROM unnest(%s::text[], %s::int2[], %s::int8[]) WITH ORDINALITY AS p(dev, metric, t, i)
WHERE EXISTS (
    SELECT 1 FROM vitals v WHERE v.device_id = p.dev AND v.metric_id = p.metric
    AND v.time = TIMESTAMPTZ 'epoch' + p.t * INTERVAL '1 millisecond')
"""

Span = list[int]  # [first time_ms, last time_ms, readings] of one (gateway, device)


@dataclass(frozen=True, slots=True)
class _Plan:
    fresh: list[Row]  # not stored yet, as far as we can tell: direct COPY candidates
    replayed: list[Row]  # stored already, or repeated in this batch: the careful path
    spans: dict[tuple[str, str], Span]  # of the fresh rows
    last_seq: dict[str, int]


def _plan(cur: psycopg.Cursor, rows: Sequence[Row]) -> _Plan:
    """Find the replays, so that one replayed message no longer sends its whole batch down
    the careful path. A gateway numbers its readings in order, so a reading above the
    highest number committed for its gateway is new. One at or below it is either a replay
    or a neighbour that another worker on the shared subscription committed first; such
    readings come in runs of consecutive numbers (a message), and the first reading of
    each run, looked up in ``vitals``, tells which. A wrong guess costs only speed: a
    direct COPY that meets a stored row falls back to the careful path for the batch."""
    gateways = sorted({r[0] for r in rows})
    stored_high: dict[str, int] = dict(cur.execute(_STORED_SEQ, (gateways,)).fetchall())
    batch_high: dict[str, int] = {}
    fresh: list[Row] = []
    replayed: list[Row] = []
    runs: list[list[Row]] = []  # consecutive readings at or below the stored high
    spans: dict[tuple[str, str], Span] = {}
    for row in rows:
        gw, seq = row[0], row[1]
        if seq <= batch_high.get(gw, -1):
            replayed.append(row)  # repeated or out of order within this batch
        elif seq <= stored_high.get(gw, -1):
            last = runs[-1][-1] if runs else None
            if last is not None and last[0] == gw and last[1] == seq - 1:
                runs[-1].append(row)
            else:
                runs.append([row])
        else:
            batch_high[gw] = seq
            fresh.append(row)
            _widen(spans, row)
    if runs:
        firsts = [run[0] for run in runs]
        cur.execute(
            _STORED_ROWS,
            ([r[2] for r in firsts], [r[3] for r in firsts], [r[4] for r in firsts]),
        )
        seen = {int(i) - 1 for (i,) in cur.fetchall()}
        for n, run in enumerate(runs):
            if n in seen:
                replayed.extend(run)
            else:
                fresh.extend(run)
                for row in run:
                    _widen(spans, row)
    # sorted: two workers upsert the same gateways' progress in one order, never deadlock
    return _Plan(fresh, replayed, spans, dict(sorted(batch_high.items())))


def _widen(spans: dict[tuple[str, str], Span], row: Row) -> None:
    key, t = (row[0], row[2]), row[4]
    span = spans.get(key)
    if span is None:
        spans[key] = [t, t, 1]
    else:
        if t < span[0]:
            span[0] = t
        elif t > span[1]:
            span[1] = t
        span[2] += 1


def _covering(
    cur: psycopg.Cursor, spans: dict[tuple[str, str], Span]
) -> dict[tuple[str, str], int]:
    """(gateway, device) -> patient for devices whose one enrollment covers all their rows."""
    keys = list(spans)
    cur.execute(
        _COVERING,
        (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [spans[k][0] for k in keys],
            [spans[k][1] for k in keys],
        ),
    )
    return {(gw, dev): int(patient) for gw, dev, patient in cur.fetchall()}


def _copy_direct(
    conn: psycopg.Connection,
    cur: psycopg.Cursor,
    rows: Sequence[Row],
    owners: dict[tuple[str, str], int],
) -> bool:
    """COPY straight into vitals; False if a row was already there (nothing written)."""
    try:
        with conn.transaction(), cur.copy(_COPY_VITALS) as copy:
            copy.set_types(_VITALS_TYPES)
            write, at = copy.write_row, datetime.fromtimestamp
            for gw, _seq, dev, metric_id, time_ms, value, flags in rows:
                write((at(time_ms / 1000, UTC), owners[(gw, dev)], dev, metric_id, value, flags))
    except errors.UniqueViolation:
        return False
    return True


def _careful(
    cur: psycopg.Cursor, rows: Sequence[Row], earliest: dict[int, int]
) -> tuple[Counter[int], list[DeadLetter], int]:
    """Per-reading mapping, de-duplication, conflicts and dead letters; returns (per
    patient, dead letters, conflicts) and lowers ``earliest`` (patient -> first stored
    reading's time) to what it stored."""
    with cur.copy(_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        for row in rows:
            copy.write_row(row)
    per_patient: Counter[int] = Counter()
    for patient_id, n, first_ms in cur.execute(_INSERT).fetchall():
        per_patient[int(patient_id)] += int(n)
        _lower(earliest, int(patient_id), int(first_ms))
    cur.execute(_CONFLICTS)
    conflicts = max(cur.rowcount, 0)
    dead = [
        DeadLetter(topic, gateway_id, int(seq), reason, bytes(payload))
        for topic, gateway_id, seq, reason, payload in cur.execute(_UNMATCHED).fetchall()
    ]
    return per_patient, dead, conflicts


def _store_dead(
    cur: psycopg.Cursor, letters: Sequence[DeadLetter], limits: DeadLetterLimits
) -> tuple[int, int]:
    """Within each gateway's hourly bound, each letter with a bounded prefix of its
    payload; returns (kept, dropped). Gateways in sorted order: two workers lock the same
    budget rows in one order, never deadlock."""
    by_gateway: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_gateway.setdefault(letter.gateway_id or "", []).append(letter)
    kept: list[DeadLetter] = []
    dropped = 0
    for gateway_id in sorted(by_gateway):
        mine = by_gateway[gateway_id]
        cur.execute(_BUDGET_ROW, (gateway_id,))
        row = cur.execute(_BUDGET_LOCK, (gateway_id,)).fetchone()
        used = int(row[0]) if row else 0
        room = max(limits.per_gateway_hour - used, 0)
        kept += mine[:room]
        dropped += max(len(mine) - room, 0)
        cur.execute(_BUDGET_SPEND, (min(room, len(mine)), max(len(mine) - room, 0), gateway_id))
    prefix = limits.payload_prefix_bytes
    cur.executemany(
        _DEAD,
        [
            (
                d.topic,
                d.gateway_id,
                d.seq,
                d.reason,
                d.payload if d.whole else d.payload[:prefix],
                d.sha256,
                len(d.payload),
            )
            for d in kept
        ],
    )
    return len(kept), dropped


def _lower(earliest: dict[int, int], patient_id: int, t_ms: int) -> None:
    if t_ms < earliest.get(patient_id, t_ms + 1):
        earliest[patient_id] = t_ms


def write_batch(
    conn: psycopg.Connection,
    rows: Sequence[Row],
    dead: Sequence[DeadLetter],
    statuses: Sequence[tuple[str, GatewayStatus]] = (),
    limits: DeadLetterLimits = DeadLetterLimits(),
) -> WriteResult:
    """Store one batch atomically; the caller acks the MQTT messages only after this."""
    patients: Counter[int] = Counter()
    earliest: dict[int, int] = {}  # patient -> time of the first reading stored for them
    letters = list(dead)
    conflicts = kept = dropped = 0
    rest: list[Row] = []
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            plan = _plan(cur, rows)
            owners = _covering(cur, plan.spans) if plan.spans else {}
            simple = [r for r in plan.fresh if (r[0], r[2]) in owners]
            if len(simple) == len(plan.fresh):
                rest = plan.replayed
            else:
                rest = [r for r in plan.fresh if (r[0], r[2]) not in owners] + plan.replayed
            if simple and _copy_direct(conn, cur, simple, owners):
                for key, patient in owners.items():
                    patients[patient] += plan.spans[key][2]
                    _lower(earliest, patient, plan.spans[key][0])
            elif simple:  # stored after all (re-synced under new numbers): all the careful way
                rest = list(rows)
            if rest:
                careful, unmatched, conflicts = _careful(cur, rest, earliest)
                patients += careful
                letters += unmatched
            cur.executemany(_PROGRESS, list(plan.last_seq.items()))
            late_before_ms = int(time.time() * 1000) - LATE_AFTER_MS
            late = sorted((p, t) for p, t in earliest.items() if t < late_before_ms)
            if late:  # for the alerts engine: episodes that may have ended meanwhile
                cur.execute(_LATE, ([p for p, _ in late], [t for _, t in late]))
        if letters:
            kept, dropped = _store_dead(cur, letters, limits)
        for gateway_id, st in statuses:
            cur.execute(_STATUS, (gateway_id, st.online, st.at_ms, st.outbox_depth, st.reason))
            for info in st.devices or ():
                cur.execute(
                    _DEVICE_INFO,
                    (
                        info.manufacturer,
                        info.model,
                        info.serial,
                        info.firmware_revision,
                        info.battery_pct,
                        info.clock_skew_s,
                        info.last_seen_ms,
                        st.at_ms,
                        info.device,
                        gateway_id,
                    ),
                )
            cur.execute("SELECT pg_notify(%s, %s)", (STATUS_CHANNEL, gateway_id))
        ids = sorted(patients)
        for start in range(0, len(ids), _NOTIFY_MAX_PATIENTS):
            chunk = ids[start : start + _NOTIFY_MAX_PATIENTS]
            cur.execute(
                "SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps({"patients": chunk}))
            )
    return WriteResult(sum(patients.values()), tuple(ids), kept, len(rest), conflicts, dropped)
