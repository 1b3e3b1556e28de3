"""What people do to an alert (acknowledge, resolve with a note), and the two writes every
transition makes: an ``alert_events`` row (who, when, evidence) and a NOTIFY on
``alerts_changed`` delivered at commit, which open dashboards turn into a live update.
Shared by the alerts engine and the API.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

CHANNEL = "alerts_changed"


def timestamp(ms: int) -> str:
    """Milliseconds since the epoch as the text ``to_timestamp`` takes."""
    return f"{ms / 1000:.3f}"


def event(
    cur: psycopg.Cursor,
    alert_id: int,
    now_ms: int,
    transition: str,
    actor: str = "system",
    note: str | None = None,
    evidence: Any = None,
) -> None:
    cur.execute(
        "INSERT INTO alert_events (alert_id, at, transition, actor, note, evidence)"
        " VALUES (%s, to_timestamp(%s), %s, %s, %s, %s)",
        (
            alert_id,
            timestamp(now_ms),
            transition,
            actor,
            note,
            Jsonb(evidence) if evidence is not None else None,
        ),
    )


def changed(cur: psycopg.Cursor, alert_id: int, patient_id: int, state: str) -> None:
    cur.execute(
        "SELECT pg_notify(%s, %s)",
        (CHANNEL, json.dumps({"alert_id": alert_id, "patient_id": patient_id, "state": state})),
    )


class AlertStateError(ValueError):
    """An action a person asked for that the alert's state does not allow."""


def acknowledge(conn: psycopg.Connection, alert_id: int, actor: str, now_ms: int) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = to_timestamp(%s),"
            " acknowledged_by = %s, updated_at = now()"
            " WHERE alert_id = %s AND state = 'active' RETURNING patient_id",
            (timestamp(now_ms), actor, alert_id),
        )
        row = cur.fetchone()
        if row is None:
            raise AlertStateError(f"alert {alert_id} is not waiting for acknowledgement")
        event(cur, alert_id, now_ms, "acknowledged", actor)
        changed(cur, alert_id, int(row[0]), "acknowledged")


def resolve(conn: psycopg.Connection, alert_id: int, actor: str, note: str, now_ms: int) -> None:
    if not note.strip():
        raise AlertStateError("resolving an alert needs a note saying what was done")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = to_timestamp(%s),"
            " resolved_by = %s, resolution_note = %s, updated_at = now()"
            " WHERE alert_id = %s AND state <> 'resolved' RETURNING patient_id",
            (timestamp(now_ms), actor, note, alert_id),
        )
        row = cur.fetchone()
        if row is None:
            raise AlertStateError(f"alert {alert_id} is already resolved or does not exist")
        event(cur, alert_id, now_ms, "resolved", actor, note)
        changed(cur, alert_id, int(row[0]), "resolved")
