"""A patient's requests of access to, or portability of, their record. The law gives the
team 8 days from receipt (Code de la santé publique L1111-7; two months when the
information is more than five years old, which a post-operative follow-up never is), so
``due_on`` is the date received plus 8 days, computed by the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import psycopg

DEADLINE_DAYS = 8
_FRANCE = ZoneInfo("Europe/Paris")


def legal_today(now: datetime | None = None) -> date:
    """Today as the hospital's calendar says (the deadline is a date in France)."""
    return (now or datetime.now(UTC)).astimezone(_FRANCE).date()


@dataclass(frozen=True, slots=True)
class AccessRequest:
    request_id: int
    patient_id: int
    kind: str
    received_on: date
    due_on: date
    note: str | None
    recorded_at: datetime
    recorded_by: str
    fulfilled_at: datetime | None
    fulfilled_by: str | None

    def overdue(self, today: date) -> bool:
        return self.fulfilled_at is None and today > self.due_on


_SELECT = (
    "SELECT r.request_id, r.patient_id, r.kind, r.received_on, r.due_on, r.note,"
    " r.recorded_at, rc.display_name, r.fulfilled_at, fc.display_name"
    " FROM access_requests r JOIN clinicians rc ON rc.clinician_id = r.recorded_by"
    " LEFT JOIN clinicians fc ON fc.clinician_id = r.fulfilled_by"
)


def record_access_request(
    conn: psycopg.Connection,
    patient_id: int,
    kind: str,
    received_on: date,
    by: int,
    note: str | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO access_requests (patient_id, kind, received_on, note, recorded_by)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING request_id",
        (patient_id, kind, received_on, note, by),
    ).fetchone()
    assert row is not None
    return int(row[0])


def fulfil_access_request(conn: psycopg.Connection, request_id: int, by: int) -> bool:
    """Mark a request answered by clinician ``by`` (their clinician_id), now. False when
    there is no such request or it was answered already (answering twice changes
    nothing: the first answer's date is the one the law looks at)."""
    cur = conn.execute(
        "UPDATE access_requests SET fulfilled_at = now(), fulfilled_by = %s"
        " WHERE request_id = %s AND fulfilled_at IS NULL",
        (by, request_id),
    )
    return cur.rowcount == 1


def access_requests(conn: psycopg.Connection, patient_id: int) -> list[AccessRequest]:
    rows = conn.execute(
        _SELECT + " WHERE r.patient_id = %s ORDER BY r.received_on DESC, r.request_id DESC",
        (patient_id,),
    ).fetchall()
    return [AccessRequest(*r) for r in rows]


def open_access_requests(
    conn: psycopg.Connection, patient_ids: list[int]
) -> dict[int, list[AccessRequest]]:
    """The unanswered requests of these patients, the nearest deadline first."""
    rows = conn.execute(
        _SELECT + " WHERE r.patient_id = ANY(%s) AND r.fulfilled_at IS NULL"
        " ORDER BY r.due_on, r.request_id",
        (patient_ids,),
    ).fetchall()
    out: dict[int, list[AccessRequest]] = {}
    for r in rows:
        out.setdefault(int(r[1]), []).append(AccessRequest(*r))
    return out
