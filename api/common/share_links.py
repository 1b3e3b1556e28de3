"""Shared links for a patient's home physician: made by a clinician of the patient's team
(token of 256 random bits shown once, only its SHA-256 stored), with an expiry, an
optional 6-digit second code (argon2-hashed, locked after a few wrong attempts), revocable
at any time. Resolving a token says exactly what state the link is in, so that the page
can tell the physician what happened without revealing anything about the patient."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import psycopg
from psycopg.types.json import Jsonb

from api.common.passwords import hash_code, verify_code

CODE_MAX_FAILURES = 5
SHARE_SESSION = timedelta(hours=12)
SHARE_LANGUAGES = ("fr", "en", "es", "it", "de", "pt", "ar", "zh")
# countries whose physicians read °F and lb
US_UNITS_COUNTRIES = frozenset({"US", "LR", "MM"})


class LinkState(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    LOCKED = "locked"
    NEEDS_CODE = "needs_code"


@dataclass(frozen=True, slots=True)
class Link:
    link_id: int
    patient_id: int
    language: str
    units: str
    expires_at: datetime
    has_code: bool
    team_id: int


@dataclass(frozen=True, slots=True)
class NewLink:
    link_id: int
    token: str
    code: str | None


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_link(
    conn: psycopg.Connection,
    patient_id: int,
    clinician_id: int,
    language: str,
    units: str,
    valid_for: timedelta,
    with_code: bool,
    recipient: str | None,
) -> NewLink:
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(1_000_000):06d}" if with_code else None
    row = conn.execute(
        "INSERT INTO share_links (patient_id, token_sha256, language, units, recipient,"
        " created_by, expires_at, code_hash) VALUES (%s, %s, %s, %s, %s, %s, now() + %s, %s)"
        " RETURNING link_id",
        (
            patient_id,
            digest(token),
            language,
            units,
            recipient,
            clinician_id,
            valid_for,
            hash_code(code) if code else None,
        ),
    ).fetchone()
    assert row is not None
    return NewLink(int(row[0]), token, code)


def resolve(
    conn: psycopg.Connection, token: str, session_token: str | None
) -> tuple[LinkState, Link | None]:
    """The link behind a token and whether it may be shown now to this browser."""
    row = conn.execute(
        "SELECT l.link_id, l.patient_id, l.language, l.units, l.expires_at,"
        " l.code_hash IS NOT NULL, p.team_id, l.revoked_at IS NOT NULL,"
        " l.expires_at <= now(), l.locked_at IS NOT NULL"
        " FROM share_links l JOIN patients p USING (patient_id) WHERE l.token_sha256 = %s",
        (digest(token),),
    ).fetchone()
    if row is None:
        return LinkState.UNKNOWN, None
    link = Link(*row[:7])
    if row[7]:
        return LinkState.REVOKED, link
    if row[8]:
        return LinkState.EXPIRED, link
    if row[9]:
        return LinkState.LOCKED, link
    if link.has_code and not _session_ok(conn, link.link_id, session_token):
        return LinkState.NEEDS_CODE, link
    return LinkState.OK, link


def _session_ok(conn: psycopg.Connection, link_id: int, session_token: str | None) -> bool:
    if not session_token:
        return False
    row = conn.execute(
        "SELECT 1 FROM share_sessions WHERE token_sha256 = %s AND link_id = %s"
        " AND expires_at > now()",
        (digest(session_token), link_id),
    ).fetchone()
    return row is not None


def check_code(conn: psycopg.Connection, link: Link, code: str) -> tuple[LinkState, str | None]:
    """OK with a new browser session token, NEEDS_CODE after a wrong code, LOCKED once
    the attempts are used up (the team must make a new link)."""
    with conn.transaction():
        row = conn.execute(
            "SELECT code_hash, code_failures, locked_at IS NOT NULL FROM share_links"
            " WHERE link_id = %s FOR UPDATE",
            (link.link_id,),
        ).fetchone()
        assert row is not None
        if row[2]:
            return LinkState.LOCKED, None
        right = verify_code(row[0], code.strip())
        if not right:
            failures = int(row[1]) + 1
            conn.execute(
                "UPDATE share_links SET code_failures = %s,"
                " locked_at = CASE WHEN %s >= %s THEN now() END WHERE link_id = %s",
                (failures, failures, CODE_MAX_FAILURES, link.link_id),
            )
            return (
                LinkState.LOCKED if failures >= CODE_MAX_FAILURES else LinkState.NEEDS_CODE
            ), None
        session = secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO share_sessions (token_sha256, link_id, expires_at)"
            " VALUES (%s, %s, least(now() + %s, (SELECT expires_at FROM share_links"
            " WHERE link_id = %s)))",
            (digest(session), link.link_id, SHARE_SESSION, link.link_id),
        )
        conn.execute("UPDATE share_links SET code_failures = 0 WHERE link_id = %s", (link.link_id,))
    return LinkState.OK, session


def record_use(
    conn: psycopg.Connection, link: Link, action: str, address: str, shown: list[str]
) -> None:
    """Audit one use: which link, when, from which address, what was shown."""
    conn.execute(
        "UPDATE share_links SET last_used_at = now(), uses = uses + 1 WHERE link_id = %s",
        (link.link_id,),
    )
    conn.execute(
        "INSERT INTO audit_log (actor, action, patient_id, detail) VALUES (%s, %s, %s, %s)",
        (
            f"share_link:{link.link_id}",
            action,
            link.patient_id,
            Jsonb({"address": address, "shown": shown}),
        ),
    )


def revoke(conn: psycopg.Connection, link_id: int, patient_id: int, clinician_id: int) -> bool:
    cur = conn.execute(
        "UPDATE share_links SET revoked_at = now(), revoked_by = %s"
        " WHERE link_id = %s AND patient_id = %s AND revoked_at IS NULL",
        (clinician_id, link_id, patient_id),
    )
    return cur.rowcount == 1


def default_units(home_country: str | None) -> str:
    return "us" if home_country in US_UNITS_COUNTRIES else "metric"
