"""Browser sessions and login throttling, kept in the database so that every API process
shares them. The cookie holds a random token; the table holds only its SHA-256, so a
leaked table opens no session. Each session has its own CSRF token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from fastapi import Request

from vitals.settings import Settings

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
    """The session's clinician. A session counts only when opened under the account's
    current second factor: one opened by a sign-in that raced a reset of the factor (its
    code checked just before the reset, its session written just after) opens nothing."""
    row = conn.execute(
        "UPDATE web_sessions s SET last_seen_at = now() FROM clinicians c"
        " WHERE s.token_sha256 = %s AND s.expires_at > now() AND c.clinician_id = s.clinician_id"
        " AND c.active AND s.created_at >= c.totp_enrolled_at"
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
    """Sign-in attempts counted in the database *before* the password is checked, so
    that parallel attempts cannot all pass: first per (account, address), then per
    account (attempts from many addresses) and per address (password spraying; a much
    higher ceiling, since a hospital's proxy puts many people behind one address). An
    attempt refused at the first step counts nowhere else: one address cannot lock an
    account for everyone. A success clears the account's counters and refunds the
    address's."""

    per_account_address: int
    per_account: int
    per_address: int
    lockout: timedelta

    def _bump(self, conn: psycopg.Connection, limits: dict[str, int]) -> bool:
        """Count one attempt under each key, atomically; whether all stay within limits."""
        rows = conn.execute(
            "INSERT INTO login_attempts AS a (key, attempts, last_at)"
            " SELECT k, 1, now() FROM unnest(%s::text[]) AS k ORDER BY k"
            " ON CONFLICT (key) DO UPDATE SET last_at = now(), attempts ="
            " CASE WHEN a.last_at < now() - %s THEN 1 ELSE a.attempts + 1 END"
            " RETURNING key, attempts",
            (list(limits), self.lockout),
        ).fetchall()
        return all(int(n) <= limits[key] for key, n in rows)

    @staticmethod
    def _keys(email: str, client: str) -> tuple[str, str, str]:
        account = email.strip().lower()
        return f"account:{account}", f"pair:{client} {account}", f"address:{client}"

    def attempt(self, conn: psycopg.Connection, email: str, client: str) -> int:
        """Count this attempt; seconds to wait (0: check the password now)."""
        account, pair, address = self._keys(email, client)
        allowed = self._bump(conn, {pair: self.per_account_address}) and self._bump(
            conn, {account: self.per_account, address: self.per_address}
        )
        conn.execute("DELETE FROM login_attempts WHERE last_at < now() - %s", (self.lockout,))
        return 0 if allowed else max(1, int(self.lockout.total_seconds()))

    def succeeded(self, conn: psycopg.Connection, email: str, client: str) -> None:
        account, pair, address = self._keys(email, client)
        conn.execute("DELETE FROM login_attempts WHERE key = ANY(%s)", ([account, pair],))
        conn.execute(
            "UPDATE login_attempts SET attempts = greatest(attempts - 1, 0) WHERE key = %s",
            (address,),
        )


def client_address(request: Request) -> str:
    """The socket peer, or the client a trusted proxy names: forwarded headers are read
    only from ``api.trusted_proxies`` (uvicorn's proxy middleware, see ``api.main``)."""
    return request.client.host if request.client else "unknown"


def secure_cookies(request: Request) -> bool:
    """Every cookie of the app is Secure on TLS, or always with ``api.secure_cookies``
    (behind a TLS-terminating proxy the app sees http)."""
    settings: Settings = request.app.state.settings
    return settings.api.secure_cookies or request.url.scheme == "https"
