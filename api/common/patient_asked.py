"""What the patient's phone was asked for an alert, as the care team reads it beside the
alert: the re-measurement request the alerts engine makes when a single abnormal spot
reading awaits its confirmation (``alerts.remeasure``), and the reminder a missing
measurement followed (``alerts.reminders``). A nurse at night decides from it whether to
wait for the patient's new reading or to call. Read under the caller's audit row (the
patient page's, the alert's)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from api.common.schemas import AskedReading, PatientAskedOut

# the readings shown as the answer to a blood pressure request (one cuff measurement)
_BP = ("bp_systolic_mmhg", "bp_diastolic_mmhg")
# a reminder row belongs to the alert whose evidence names its due time (the engine
# computes it with the patient's current UTC offset: a DST change moves it by an hour)
_REMINDER_SLACK = timedelta(minutes=90)

_REQUESTS = """
SELECT m.alert_id, m.sent_at, m.push_outcome, mt.name, r.time
FROM patient_messages m JOIN metrics mt ON mt.metric_id = m.metric_id
LEFT JOIN LATERAL (
    SELECT v.time FROM vitals v WHERE v.patient_id = m.patient_id
      AND v.metric_id = m.metric_id AND v.time >= m.measure_after AND v.value IS NOT NULL
    ORDER BY v.time LIMIT 1) r ON true
WHERE m.patient_id = %s AND m.alert_id = ANY(%s)
"""

_READING = """
SELECT mt.name, v.value FROM vitals v JOIN metrics mt USING (metric_id)
WHERE v.patient_id = %s AND v.time = %s AND mt.name = ANY(%s) AND v.value IS NOT NULL
"""

_REMINDER = """
SELECT claimed_at, outcome FROM patient_reminders
WHERE patient_id = %s AND due_at BETWEEN %s AND %s
ORDER BY abs(extract(epoch FROM due_at - %s)), reminder_id LIMIT 1
"""

_PHONE = (
    "SELECT EXISTS (SELECT 1 FROM patient_credentials WHERE patient_id = %s"
    " AND revoked_at IS NULL AND expires_at > now())"
)


def _awaits_confirmation(alert: dict[str, Any]) -> bool:
    return alert["evidence"].get("confirmation_requested") is True


def _reminder_due(alert: dict[str, Any]) -> datetime | None:
    evidence = alert["evidence"]
    due_ms = evidence.get("reminder_due_ms")
    if evidence.get("reminder_missed") is not True or not isinstance(due_ms, int | float):
        return None
    if not math.isfinite(due_ms) or not 0 < due_ms < 10**14:
        return None
    return datetime.fromtimestamp(due_ms / 1000, UTC)


def of_alerts(
    conn: psycopg.Connection, patient_id: int, alerts: Sequence[dict[str, Any]]
) -> dict[int, PatientAskedOut]:
    """alert_id -> what the phone was asked, for the alerts it concerns. ``alerts`` are
    rows with ``alert_id``, ``state``, ``evidence``, ``condition_cleared_at``."""
    asked = [a for a in alerts if _awaits_confirmation(a)]
    reminded = [(a, due) for a in alerts if (due := _reminder_due(a)) is not None]
    if not asked and not reminded:
        return {}
    out: dict[int, PatientAskedOut] = {}
    for alert_id, sent_at, outcome, metric, answered_at in conn.execute(
        _REQUESTS, (patient_id, [a["alert_id"] for a in asked])
    ).fetchall():
        answer: list[AskedReading] = []
        if answered_at is not None:
            names = list(_BP) if metric in _BP or metric == "bp_mean_mmhg" else [metric]
            values: dict[str, float] = {
                str(n): float(v)
                for n, v in conn.execute(_READING, (patient_id, answered_at, names)).fetchall()
            }
            answer = [AskedReading(metric=n, value=values[n]) for n in names if n in values]
            if not answer:  # a lone mean pressure: show what was asked for
                answer = [
                    AskedReading(metric=n, value=v)
                    for n, v in conn.execute(
                        _READING, (patient_id, answered_at, [metric])
                    ).fetchall()
                ]
        out[int(alert_id)] = PatientAskedOut(
            kind="remeasure",
            metric=metric,
            asked_at=sent_at,
            delivery=outcome or "sending",
            answered_at=answered_at,
            answer=answer,
        )
    phone: bool | None = None

    def has_phone() -> bool:
        nonlocal phone
        if phone is None:
            row = conn.execute(_PHONE, (patient_id,)).fetchone()
            phone = bool(row and row[0])
        return phone

    for a in asked:
        # no request: the engine asks only while a phone is enrolled; for a closed alert
        # the past is not known well enough to say why
        if a["alert_id"] in out or a["state"] == "resolved" or a["condition_cleared_at"]:
            continue
        out[a["alert_id"]] = PatientAskedOut(
            kind="remeasure",
            asked_at=None,
            delivery="not_recorded" if has_phone() else "no_phone",
        )
    for a, due in reminded:
        if a["alert_id"] in out:
            continue
        row = conn.execute(
            _REMINDER, (patient_id, due - _REMINDER_SLACK, due + _REMINDER_SLACK, due)
        ).fetchone()
        if row is not None:
            out[a["alert_id"]] = PatientAskedOut(
                kind="reminder", asked_at=row[0], delivery=row[1] or "sending"
            )
        elif a["state"] != "resolved":
            out[a["alert_id"]] = PatientAskedOut(
                kind="reminder",
                asked_at=None,
                delivery="not_recorded" if has_phone() else "no_phone",
            )
    return out
