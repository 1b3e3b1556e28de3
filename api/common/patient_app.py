"""The patient app's credentials, shared by the team (who makes enrollment links and
revokes phones) and the patient (whose phone uses them).

An enrollment link is a random token (256 bits, only its SHA-256 stored) that works once,
within ``LINK_VALIDITY``, until revoked. Using it binds the phone: a new random token,
kept in an HttpOnly cookie and hashed in the database, which the team may revoke, which
the next enrolment of the same patient replaces (a lost phone loses its access when the
new one is enrolled), and which ends with the follow-up or after ``CREDENTIAL_VALIDITY``.
Resolving a token says exactly what state it is in, so that the page can tell the patient
what happened."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import psycopg

LINK_VALIDITY = timedelta(hours=72)
CREDENTIAL_VALIDITY = timedelta(days=120)
PATIENT_LANGUAGES = ("fr", "en", "es", "it", "de", "pt", "ar", "zh")
FALLBACK_LANGUAGE = "en"  # for a patient whose language the app does not speak


class LinkState(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ENDED = "ended"  # the follow-up is over


class CredentialState(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    REPLACED = "replaced"
    EXPIRED = "expired"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Holder:
    """Whose link or credential a token is (known even when it no longer works, so that
    the refusal speaks the patient's language)."""

    patient_id: int
    team_id: int
    language: str
    zone: str
    home_country: str | None


@dataclass(frozen=True, slots=True)
class NewLink:
    link_id: int
    token: str
    expires_at: datetime


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def patient_language(language: str | None) -> str:
    """The patient's language if the app speaks it, else English."""
    tag = (language or "").lower().replace("_", "-").split("-")[0]
    return tag if tag in PATIENT_LANGUAGES else FALLBACK_LANGUAGE


_HOLDER = (
    "p.patient_id, p.team_id, p.language, p.time_zone, p.home_country,"
    " p.follow_up_ended_at IS NOT NULL AND p.follow_up_ended_at <= now()"
)


def _holder(row: tuple[object, ...]) -> Holder:
    return Holder(
        int(row[0]),  # type: ignore[call-overload]
        int(row[1]),  # type: ignore[call-overload]
        patient_language(str(row[2])),
        str(row[3]),
        row[4] if isinstance(row[4], str) else None,
    )


def create_link(conn: psycopg.Connection, patient_id: int, clinician_id: int) -> NewLink:
    token = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO patient_app_links (patient_id, token_sha256, created_by, expires_at)"
        " VALUES (%s, %s, %s, now() + %s) RETURNING link_id, expires_at",
        (patient_id, digest(token), clinician_id, LINK_VALIDITY),
    ).fetchone()
    assert row is not None
    return NewLink(int(row[0]), token, row[1])


def link_state(conn: psycopg.Connection, token: str) -> tuple[LinkState, Holder | None]:
    """What a link token is now, without using it."""
    row = conn.execute(
        f"SELECT {_HOLDER}, l.revoked_at IS NOT NULL, l.used_at IS NOT NULL,"
        " l.expires_at <= now() FROM patient_app_links l JOIN patients p USING (patient_id)"
        " WHERE l.token_sha256 = %s",
        (digest(token),),
    ).fetchone()
    if row is None:
        return LinkState.UNKNOWN, None
    holder = _holder(row)
    if row[5]:
        return LinkState.ENDED, holder
    if row[6]:
        return LinkState.REVOKED, holder
    if row[7]:
        return LinkState.USED, holder
    if row[8]:
        return LinkState.EXPIRED, holder
    return LinkState.OK, holder


def use_link(
    conn: psycopg.Connection, token: str
) -> tuple[LinkState, Holder | None, int | None, str | None]:
    """Bind a phone: mark the link used (once, even under parallel requests), replace
    the patient's other credentials and make a new one. Returns the state, the holder,
    the credential id and the cookie token (the last two only when OK)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE patient_app_links l SET used_at = now() FROM patients p"
            " WHERE l.token_sha256 = %s AND p.patient_id = l.patient_id AND l.used_at IS NULL"
            " AND l.revoked_at IS NULL AND l.expires_at > now()"
            " AND (p.follow_up_ended_at IS NULL OR p.follow_up_ended_at > now())"
            f" RETURNING {_HOLDER}, l.link_id",
            (digest(token),),
        ).fetchone()
        if row is None:
            state, holder = link_state(conn, token)
            # a link that was fine a moment ago was used by the parallel request
            return (LinkState.USED if state is LinkState.OK else state), holder, None, None
        holder = _holder(row)
        conn.execute(
            "UPDATE patient_credentials SET revoked_at = now(), revoked_reason = 'replaced'"
            " WHERE patient_id = %s AND revoked_at IS NULL",
            (holder.patient_id,),
        )
        secret = secrets.token_urlsafe(32)
        made = conn.execute(
            "INSERT INTO patient_credentials (patient_id, link_id, token_sha256, expires_at)"
            " VALUES (%s, %s, %s, now() + %s) RETURNING credential_id",
            (holder.patient_id, int(row[6]), digest(secret), CREDENTIAL_VALIDITY),
        ).fetchone()
        assert made is not None
    return LinkState.OK, holder, int(made[0]), secret


def credential_state(
    conn: psycopg.Connection, token: str
) -> tuple[CredentialState, Holder | None, int | None]:
    """The phone behind a cookie token, and whether it may be served now (then its
    ``last_seen_at`` moves, at most once a minute)."""
    row = conn.execute(
        f"SELECT {_HOLDER}, c.credential_id, c.revoked_reason, c.expires_at <= now()"
        " FROM patient_credentials c JOIN patients p USING (patient_id)"
        " WHERE c.token_sha256 = %s",
        (digest(token),),
    ).fetchone()
    if row is None:
        return CredentialState.UNKNOWN, None, None
    holder = _holder(row)
    credential_id = int(row[6])
    if row[5]:
        return CredentialState.ENDED, holder, credential_id
    if row[7] == "replaced":
        return CredentialState.REPLACED, holder, credential_id
    if row[7] is not None:
        return CredentialState.REVOKED, holder, credential_id
    if row[8]:
        return CredentialState.EXPIRED, holder, credential_id
    conn.execute(
        "UPDATE patient_credentials SET last_seen_at = now() WHERE credential_id = %s"
        " AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute')",
        (credential_id,),
    )
    return CredentialState.OK, holder, credential_id


def revoke_link(conn: psycopg.Connection, link_id: int, patient_id: int, clinician_id: int) -> bool:
    cur = conn.execute(
        "UPDATE patient_app_links SET revoked_at = now(), revoked_by = %s"
        " WHERE link_id = %s AND patient_id = %s AND revoked_at IS NULL AND used_at IS NULL",
        (clinician_id, link_id, patient_id),
    )
    return cur.rowcount == 1


def revoke_credential(
    conn: psycopg.Connection, credential_id: int, patient_id: int, clinician_id: int
) -> bool:
    cur = conn.execute(
        "UPDATE patient_credentials SET revoked_at = now(), revoked_reason = 'team',"
        " revoked_by = %s WHERE credential_id = %s AND patient_id = %s AND revoked_at IS NULL",
        (clinician_id, credential_id, patient_id),
    )
    return cur.rowcount == 1
