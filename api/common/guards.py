"""Who may do what: the signed-in clinician from the session cookie, CSRF checks on every
change, roles, and team scoping of patient data, with the audit row that every read of
patient data by a person writes."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg.types.json import Jsonb

from api.common.database import Database
from api.common.errors import refuse
from api.common.labels import N_
from api.common.sessions import COOKIE, Clinician, session_clinician

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(Exception):
    """No valid session: the API answers 401, a page redirects to the login form."""


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_conn(db: Annotated[Database, Depends(get_db)]) -> Iterator[psycopg.Connection]:
    with db.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def signed_in(request: Request, conn: Conn) -> Clinician:
    token = request.cookies.get(COOKIE)
    who = session_clinician(conn, token) if token else None
    if who is None:
        raise NotSignedIn()
    request.state.clinician = who
    return who


def csrf_ok(who: Clinician, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(presented, who.csrf_token)


def api_clinician(request: Request, who: Annotated[Clinician, Depends(signed_in)]) -> Clinician:
    """The clinician behind an API call; changes must carry the session's CSRF token."""
    if request.method not in SAFE_METHODS and not csrf_ok(who, request.headers.get(CSRF_HEADER)):
        raise refuse(403, N_("Your session changed; reload the page and try again."))
    return who


Who = Annotated[Clinician, Depends(api_clinician)]


def require_role(*roles: str) -> Callable[[Clinician], Clinician]:
    def check(who: Who) -> Clinician:
        if who.role not in roles:
            raise refuse(403, N_("Your role does not allow this."))
        return who

    return check


def audit(
    conn: psycopg.Connection,
    who: Clinician,
    action: str,
    patient_id: int | None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, action, patient_id, detail) VALUES (%s, %s, %s, %s)",
        (who.actor, action, patient_id, Jsonb(detail or {})),
    )


def patient_in_teams(conn: psycopg.Connection, who: Clinician, patient_id: int) -> int:
    """The patient's team if this clinician may see them; 404 or 403 otherwise."""
    row = conn.execute(
        "SELECT team_id FROM patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    if row is None:
        raise refuse(404, N_("This patient does not exist."))
    if int(row[0]) not in who.team_ids:
        raise refuse(403, N_("This patient is not followed by your care teams."))
    return int(row[0])


def read_patient(
    conn: psycopg.Connection, who: Clinician, patient_id: int, action: str, **detail: Any
) -> None:
    """Check access to one patient, then audit the read."""
    patient_in_teams(conn, who, patient_id)
    audit(conn, who, action, patient_id, detail or None)


def alert_patient(conn: psycopg.Connection, who: Clinician, alert_id: int) -> int:
    row = conn.execute("SELECT patient_id FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
    if row is None:
        raise refuse(404, N_("This alert does not exist."))
    patient_in_teams(conn, who, int(row[0]))
    return int(row[0])
