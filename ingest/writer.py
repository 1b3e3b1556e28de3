"""Writing one batch in one transaction: binary COPY into a staging table, then a single
set-based statement that maps devices to patients through the enrollments valid at each
reading's time, inserts what is new (re-deliveries are no-ops) and reports which patients
got new data; readings with no valid enrollment become dead letters in the same
transaction, and the NOTIFY for the alerts engine is delivered at commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

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
    SELECT src.time, e.patient_id, src.device_id, src.metric_id, src.value, src.flags
    FROM src
    JOIN devices d ON d.device_id = src.device_id AND d.gateway_id = src.gateway_id
    JOIN enrollments e ON e.device_id = src.device_id AND e.valid @> src.time
), ins AS (
    INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)
    SELECT time, patient_id, device_id, metric_id, value, flags FROM matched
    ON CONFLICT (device_id, metric_id, time) DO NOTHING
    RETURNING patient_id
)
SELECT patient_id, count(*) FROM ins GROUP BY patient_id
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
), letters AS (
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
)
INSERT INTO dead_letters (topic, gateway_id, seq, reason, payload, payload_sha256)
SELECT topic, gateway_id, seq, reason, payload, sha256(payload) FROM letters
ON CONFLICT (topic, payload_sha256) DO NOTHING
"""

_PROGRESS = """
INSERT INTO gateway_progress (gateway_id, last_seq, last_batch_at)
SELECT gateway_id, max(seq), now() FROM ingest_staging GROUP BY gateway_id
ON CONFLICT (gateway_id) DO UPDATE
SET last_seq = GREATEST(gateway_progress.last_seq, EXCLUDED.last_seq),
    last_batch_at = EXCLUDED.last_batch_at
"""

_DEAD = """
INSERT INTO dead_letters (topic, gateway_id, seq, reason, payload, payload_sha256)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (topic, payload_sha256) DO NOTHING
"""

_STATUS = """
INSERT INTO gateway_status (gateway_id, online, status_at, outbox_depth, reason, updated_at)
VALUES (%s, %s, TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond', %s, %s, now())
ON CONFLICT (gateway_id) DO UPDATE
SET online = EXCLUDED.online, status_at = EXCLUDED.status_at,
    outbox_depth = EXCLUDED.outbox_depth, reason = EXCLUDED.reason, updated_at = now()
WHERE gateway_status.status_at <= EXCLUDED.status_at
"""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    patients: tuple[int, ...]
    dead_letters: int


def prepare(conn: psycopg.Connection) -> None:
    """Once per connection: the session-private staging table."""
    with conn.transaction():
        conn.execute(_STAGING_DDL)


def write_batch(
    conn: psycopg.Connection,
    rows: Sequence[Row],
    dead: Sequence[DeadLetter],
    statuses: Sequence[tuple[str, GatewayStatus]] = (),
) -> WriteResult:
    """Store one batch atomically; the caller acks the MQTT messages only after this."""
    patients: dict[int, int] = {}
    unmatched = 0
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            with cur.copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            for patient_id, n in cur.execute(_INSERT).fetchall():
                patients[int(patient_id)] = int(n)
            cur.execute(_UNMATCHED)
            unmatched = max(cur.rowcount, 0)
            cur.execute(_PROGRESS)
        if dead:
            cur.executemany(
                _DEAD, [(d.topic, d.gateway_id, d.seq, d.reason, d.payload, d.sha256) for d in dead]
            )
        for gateway_id, st in statuses:
            cur.execute(_STATUS, (gateway_id, st.online, st.at_ms, st.outbox_depth, st.reason))
            cur.execute("SELECT pg_notify(%s, %s)", (STATUS_CHANNEL, gateway_id))
        ids = sorted(patients)
        for start in range(0, len(ids), _NOTIFY_MAX_PATIENTS):
            chunk = ids[start : start + _NOTIFY_MAX_PATIENTS]
            cur.execute(
                "SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps({"patients": chunk}))
            )
    return WriteResult(sum(patients.values()), tuple(ids), unmatched + len(dead))
