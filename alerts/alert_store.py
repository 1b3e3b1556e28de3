"""Alerts in the database: reading what is open, applying the lifecycle's actions with an
``alert_events`` row for every transition (who, when, evidence), and the actions people
take live in ``store.alert_actions``, shared with the API. Each change NOTIFYs
``alerts_changed`` at commit so open dashboards update live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.late import LateEpisode
from alerts.lifecycle import (
    Action,
    AutoResolve,
    ConditionCleared,
    ConditionReturned,
    Escalate,
    EvidenceChanged,
    Open,
    OpenAlert,
    RaisePriority,
)
from store.alert_actions import changed as _changed
from store.alert_actions import event as _event
from store.alert_actions import timestamp as _ts

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something people must hear about, after commit: a new, raised or escalated alert."""

    alert_id: int
    patient_id: int
    priority: str
    tier: int
    reason: str


def open_alerts(conn: psycopg.Connection, patient_ids: Sequence[int] | None) -> list[OpenAlert]:
    sql = (
        "SELECT alert_id, patient_id, rule_id, priority, state,"
        " (extract(epoch FROM opened_at) * 1000)::bigint,"
        " (extract(epoch FROM condition_cleared_at) * 1000)::bigint,"
        " escalation_tier, (extract(epoch FROM escalated_at) * 1000)::bigint, late,"
        " evidence->>'also_missing', evidence->>'still_missing',"
        " (evidence->>'confirmation_requested')::boolean"
        " FROM alerts WHERE state <> 'resolved'"
    )
    params: tuple[Any, ...] = ()
    if patient_ids is not None:
        sql += " AND patient_id = ANY(%s)"
        params = (list(patient_ids),)
    return [OpenAlert(*row) for row in conn.execute(sql, params).fetchall()]


def apply(conn: psycopg.Connection, actions: Sequence[Action], now_ms: int) -> list[Notice]:
    """Apply actions in one transaction; returns what to notify once it committed."""
    notices: list[Notice] = []
    with conn.transaction(), conn.cursor() as cur:
        for action in actions:
            notice = _apply_one(cur, action, now_ms)
            if notice is not None:
                notices.append(notice)
    return notices


def _apply_one(cur: psycopg.Cursor, action: Action, now_ms: int) -> Notice | None:
    now = _ts(now_ms)
    if isinstance(action, Open):
        f = action.finding
        onset = _ts(f.onset_ms) if f.onset_ms is not None else now
        cur.execute(
            "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
            " condition_onset_at, evidence) VALUES (%s, %s, %s, %s, 'active', to_timestamp(%s),"
            " to_timestamp(%s), %s)"
            " ON CONFLICT (patient_id, rule_id) WHERE state <> 'resolved' DO NOTHING"
            " RETURNING alert_id",
            (f.patient_id, f.rule_id, f.category, f.priority, now, onset, Jsonb(dict(f.evidence))),
        )
        row = cur.fetchone()
        if row is None:  # another engine opened it a moment ago
            return None
        alert_id = int(row[0])
        _event(cur, alert_id, now_ms, "opened", evidence=dict(f.evidence))
        _changed(cur, alert_id, f.patient_id, "active")
        return Notice(alert_id, f.patient_id, f.priority, 0, "opened")
    a = action.alert
    if isinstance(action, ConditionCleared):
        cur.execute(
            "UPDATE alerts SET condition_cleared_at = to_timestamp(%s), updated_at = now()"
            " WHERE alert_id = %s AND state <> 'resolved'",
            (now, a.alert_id),
        )
        _event(cur, a.alert_id, now_ms, "condition_cleared")
    elif isinstance(action, ConditionReturned):
        cur.execute(
            "UPDATE alerts SET condition_cleared_at = NULL, evidence = %s,"
            " updated_at = now() WHERE alert_id = %s AND state <> 'resolved'",
            (Jsonb(dict(action.finding.evidence)), a.alert_id),
        )
        _event(
            cur, a.alert_id, now_ms, "condition_returned", evidence=dict(action.finding.evidence)
        )
    elif isinstance(action, RaisePriority):
        f = action.finding
        cur.execute(
            "UPDATE alerts SET priority = %s, evidence = %s, updated_at = now()"
            " WHERE alert_id = %s AND state <> 'resolved'",
            (f.priority, Jsonb(dict(f.evidence)), a.alert_id),
        )
        _event(
            cur, a.alert_id, now_ms, f"priority_raised_to_{f.priority}", evidence=dict(f.evidence)
        )
        _changed(cur, a.alert_id, a.patient_id, a.state)
        return Notice(a.alert_id, a.patient_id, f.priority, a.escalation_tier, "priority raised")
    elif isinstance(action, EvidenceChanged):
        # not a transition (no event row): what the open alert says is kept current
        cur.execute(
            "UPDATE alerts SET evidence = %s, updated_at = now()"
            " WHERE alert_id = %s AND state <> 'resolved'",
            (Jsonb(dict(action.finding.evidence)), a.alert_id),
        )
        _changed(cur, a.alert_id, a.patient_id, a.state)
        if action.notify:
            return Notice(a.alert_id, a.patient_id, a.priority, a.escalation_tier, "more missing")
    elif isinstance(action, AutoResolve):
        cur.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = to_timestamp(%s),"
            " resolved_by = %s, resolution_note = %s, updated_at = now()"
            " WHERE alert_id = %s AND state <> 'resolved'",
            (now, SYSTEM, "condition cleared", a.alert_id),
        )
        _event(cur, a.alert_id, now_ms, "auto_resolved")
        _changed(cur, a.alert_id, a.patient_id, "resolved")
    elif isinstance(action, Escalate):
        cur.execute(
            "UPDATE alerts SET escalation_tier = %s, escalated_at = to_timestamp(%s),"
            " updated_at = now() WHERE alert_id = %s AND state = 'active'"
            " AND escalation_tier < %s",
            (action.tier, now, a.alert_id, action.tier),
        )
        if cur.rowcount:
            _event(cur, a.alert_id, now_ms, f"escalated_to_tier_{action.tier}")
            _changed(cur, a.alert_id, a.patient_id, a.state)
            return Notice(a.alert_id, a.patient_id, a.priority, action.tier, "escalated")
    return None


# locks taken in patient order, as ingest's upsert takes them: no deadlock between the two
_CLAIM_LATE = """
DELETE FROM late_readings WHERE patient_id IN (
    SELECT patient_id FROM late_readings ORDER BY patient_id FOR UPDATE)
RETURNING patient_id, (extract(epoch FROM since) * 1000)::bigint
"""
_ANY_LATE = "SELECT EXISTS (SELECT 1 FROM late_readings)"

# Not when the team has already had an alert of this rule for this patient over the
# episode's time: one still open, or one whose span (onset to resolution) overlaps it.
_OPEN_LATE = """
INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at, condition_onset_at,
                    condition_cleared_at, late, evidence)
SELECT %(patient)s, %(rule)s, 'clinical', %(priority)s, 'active', to_timestamp(%(now)s),
       to_timestamp(%(onset)s), to_timestamp(%(ended)s), true, %(evidence)s
WHERE NOT EXISTS (
    SELECT 1 FROM alerts a WHERE a.patient_id = %(patient)s AND a.rule_id = %(rule)s
    AND (a.state <> 'resolved' OR (
        COALESCE(a.condition_onset_at, a.opened_at) <= to_timestamp(%(ended)s)
        AND a.resolved_at >= to_timestamp(%(onset)s))))
ON CONFLICT (patient_id, rule_id) WHERE state <> 'resolved' DO NOTHING
RETURNING alert_id
"""

# The same run seen again further along (its readings came in several batches): the open
# late alert of that run takes the later end and the evidence of the whole run.
_EXTEND_LATE = """
UPDATE alerts SET condition_cleared_at = to_timestamp(%(ended)s), evidence = %(evidence)s,
                  updated_at = now()
WHERE patient_id = %(patient)s AND rule_id = %(rule)s AND late AND state <> 'resolved'
  AND condition_onset_at = to_timestamp(%(onset)s)
  AND condition_cleared_at < to_timestamp(%(ended)s)
"""


def any_late(conn: psycopg.Connection) -> bool:
    """Whether some readings arrived late and are not examined yet."""
    row = conn.execute(_ANY_LATE).fetchone()
    return bool(row and row[0])


def claim_late(cur: psycopg.Cursor) -> dict[int, int]:
    """Take every late mark (patient -> earliest late reading, ms); inside the transaction
    that opens the alerts, so a crash leaves the marks for the next round."""
    cur.execute(_CLAIM_LATE)
    return {int(p): int(t) for p, t in cur.fetchall()}


def open_late(cur: psycopg.Cursor, episodes: Sequence[LateEpisode], now_ms: int) -> list[Notice]:
    """An alert per episode nobody has been alerted to; returns what to notify."""
    notices: list[Notice] = []
    for e in episodes:
        params = {
            "patient": e.patient_id,
            "rule": e.rule_id,
            "priority": e.priority,
            "now": _ts(now_ms),
            "onset": _ts(e.onset_ms),
            "ended": _ts(e.ended_ms),
            "evidence": Jsonb(dict(e.evidence)),
        }
        cur.execute(_OPEN_LATE, params)
        row = cur.fetchone()
        if row is None:
            cur.execute(_EXTEND_LATE, params)
            continue
        alert_id = int(row[0])
        _event(cur, alert_id, now_ms, "opened_late", evidence=dict(e.evidence))
        _changed(cur, alert_id, e.patient_id, "active")
        notices.append(Notice(alert_id, e.patient_id, e.priority, 0, "opened"))
    return notices
