"""A patient's consent records as the team (and the patient's export) reads them: every
record newest first, each marked in force or not, and the monitoring state."""

from __future__ import annotations

import psycopg

from api.common.schemas import ConsentOut, Consents
from store import consents as store
from store.consents import in_eea

_CONSENTS = """
SELECT c.consent_id, c.kind, c.decision, c.notice_version, c.notice_language, c.decided_at,
       c.recorded_at, r.display_name, c.physician_name, c.physician_email,
       c.physician_country, c.sharing_consent_id, c.withdrawn_at, w.display_name,
       c.withdrawal_note
FROM consents c JOIN clinicians r ON r.clinician_id = c.recorded_by
LEFT JOIN clinicians w ON w.clinician_id = c.withdrawn_by
WHERE c.patient_id = %s
ORDER BY c.decided_at DESC, c.consent_id DESC
"""


def consent_records(conn: psycopg.Connection, patient_id: int) -> Consents:
    rows = conn.execute(_CONSENTS, (patient_id,)).fetchall()
    latest_monitoring = next((r[0] for r in rows if r[1] == "monitoring"), None)
    sharing_alive = {r[0] for r in rows if r[1] == "sharing" and r[12] is None}
    records = []
    for r in rows:
        alive = r[2] == "given" and r[12] is None
        if r[1] == "monitoring":
            alive = alive and r[0] == latest_monitoring
        if r[1] == "transfer":  # no effect once the sharing it covers is withdrawn
            alive = alive and r[11] in sharing_alive
        records.append(
            ConsentOut(
                consent_id=r[0],
                kind=r[1],
                decision=r[2],
                notice_version=r[3],
                notice_language=r[4],
                decided_at=r[5],
                recorded_at=r[6],
                recorded_by=r[7],
                physician_name=r[8],
                physician_email=r[9],
                physician_country=r[10],
                physician_in_eea=in_eea(r[10]) if r[10] else None,
                sharing_consent_id=r[11],
                withdrawn_at=r[12],
                withdrawn_by=r[13],
                withdrawal_note=r[14],
                in_force=alive,
            )
        )
    return Consents(
        patient_id=patient_id,
        monitoring=store.monitoring_state(conn, patient_id).value,
        records=records,
    )
