"""Browser sessions and login throttling, kept in the database so that every API process
shares them. The cookie holds a random token; the table holds only its SHA-256, so a
leaked table opens no session. Each session has its own CSRF token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import psycopg

COOKIE = "postop_session"


@dataclass(frozen=True, slots=True)
class Clinician:
    """The signed-in person, as every request sees them."""

    clinician_id: int
    email: str
    display_name: str
    role: str
    language: str
    time_zone: str
    team_ids: tuple[int, ...]
    csrf_token: str

    @property
    def actor(self) -> str:
        """How this person appears in alert events and the audit log."""
        return f"clinician:{self.clinician_id}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def open_session(conn: psycopg.Connection, clinician_id: int, lifetime: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO web_sessions (token_sha256, clinician_id, csrf_token, expires_at)"
        " VALUES (%s, %s, %s, now() + %s)",
        (_digest(token), clinician_id, secrets.token_urlsafe(24), lifetime),
    )
    conn.execute("DELETE FROM web_sessions WHERE expires_at < now() - interval '1 day'")
    return token


def session_clinician(conn: psycopg.Connection, token: str) -> Clinician | None:
    row = conn.execute(
        "UPDATE web_sessions s SET last_seen_at = now() FROM clinicians c"
        " WHERE s.token_sha256 = %s AND s.expires_at > now() AND c.clinician_id = s.clinician_id"
        " AND c.active"
        " RETURNING c.clinician_id, c.email, c.display_name, c.role, c.language, c.time_zone,"
        " (SELECT coalesce(array_agg(team_id ORDER BY team_id), '{}') FROM clinician_teams t"
        "  WHERE t.clinician_id = c.clinician_id), s.csrf_token",
        (_digest(token),),
    ).fetchone()
    if row is None:
        return None
    return Clinician(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], tuple(int(t) for t in row[6]), row[7]
    )


def close_session(conn: psycopg.Connection, token: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE token_sha256 = %s", (_digest(token),))


@dataclass(frozen=True, slots=True)
class Throttle:
    max_failures: int
    lockout: timedelta

    def keys(self, email: str, client: str) -> list[str]:
        # per account, and (more loosely) per client address, against password spraying
        return [f"account:{email.strip().lower()}", f"client:{client}"]

    def retry_after_s(self, conn: psycopg.Connection, email: str, client: str) -> int:
        """Seconds until another attempt is allowed (0: now)."""
        account, address = self.keys(email, client)
        row = conn.execute(
            "SELECT key, count(*), max(at) FROM login_failures"
            " WHERE key = ANY(%s) AND at > now() - %s GROUP BY key",
            ([account, address], self.lockout),
        ).fetchall()
        wait = 0
        for key, count, last in row:
            limit = self.max_failures if key == account else self.max_failures * 4
            if count >= limit:
                left = conn.execute(
                    "SELECT ceil(extract(epoch FROM (%s::timestamptz + %s - now())))",
                    (last, self.lockout),
                ).fetchone()
                wait = max(wait, int(left[0]) if left else 1, 1)
        return wait

    def failed(self, conn: psycopg.Connection, email: str, client: str) -> None:
        conn.execute(
            "INSERT INTO login_failures (key) SELECT unnest(%s::text[])",
            (self.keys(email, client),),
        )
        conn.execute("DELETE FROM login_failures WHERE at < now() - %s", (self.lockout * 2,))

    def succeeded(self, conn: psycopg.Connection, email: str) -> None:
        conn.execute("DELETE FROM login_failures WHERE key = %s", (self.keys(email, "")[0],))
