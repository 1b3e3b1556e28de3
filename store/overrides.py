"""A clinician's per-patient override of a rule parameter: stored and audited in one
transaction (the API sets it, the alerts engine reads it)."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb


def set_override(
    conn: psycopg.Connection,
    patient_id: int,
    rule_id: str,
    param: str,
    value: float,
    actor: str,
    reason: str,
) -> None:
    if not reason.strip():
        raise ValueError("an override needs a reason a colleague can read")
    with conn.transaction():
        old = conn.execute(
            "SELECT value FROM threshold_overrides WHERE patient_id = %s AND rule_id = %s"
            " AND param = %s",
            (patient_id, rule_id, param),
        ).fetchone()
        conn.execute(
            "INSERT INTO threshold_overrides (patient_id, rule_id, param, value, set_by, reason)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (patient_id, rule_id, param)"
            " DO UPDATE SET value = EXCLUDED.value, set_by = EXCLUDED.set_by,"
            " set_at = now(), reason = EXCLUDED.reason",
            (patient_id, rule_id, param, value, actor, reason),
        )
        conn.execute(
            "INSERT INTO audit_log (actor, action, patient_id, detail)"
            " VALUES (%s, 'threshold_override', %s, %s)",
            (
                actor,
                patient_id,
                Jsonb(
                    {
                        "rule_id": rule_id,
                        "param": param,
                        "value": value,
                        "previous": old[0] if old else None,
                        "reason": reason,
                    }
                ),
            ),
        )
