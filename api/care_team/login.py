"""Signing in: throttled per account and per client address, constant work whether or
not the account exists, argon2 hashes upgraded when the library's parameters move on,
and the session cookie (HttpOnly, SameSite=Lax, Secure on TLS)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from fastapi import Request, Response

from api.common.errors import refuse
from api.common.labels import N_
from api.common.passwords import hash_password, needs_rehash, verify_password
from api.common.sessions import (
    COOKIE,
    Clinician,
    Throttle,
    client_address,
    open_session,
    secure_cookies,
    session_clinician,
)
from store.clinicians import set_password_hash
from vitals.settings import Settings


def throttle_of(settings: Settings) -> Throttle:
    return Throttle(
        per_account_address=settings.api.login_max_failures,
        per_account=settings.api.login_max_failures_account,
        per_address=settings.api.login_max_failures_address,
        lockout=timedelta(seconds=settings.api.login_lockout_s),
    )


def log_in(
    request: Request, conn: psycopg.Connection, email: str, password: str
) -> tuple[str, Clinician]:
    """A new session token and its clinician; 401 or 429 with a plain reason otherwise.
    The attempt is counted before the password is checked."""
    settings: Settings = request.app.state.settings
    throttle = throttle_of(settings)
    address = client_address(request)
    wait_s = throttle.attempt(conn, email, address)
    if wait_s:
        refusal = refuse(
            429,
            N_("Too many failed sign-ins; try again in %(minutes)s min."),
            minutes=max(1, wait_s // 60),
        )
        refusal.headers = {"Retry-After": str(wait_s)}
        raise refusal
    row = conn.execute(
        "SELECT clinician_id, password_hash FROM clinicians"
        " WHERE lower(email) = lower(%s) AND active",
        (email.strip(),),
    ).fetchone()
    if not verify_password(row[1] if row else None, password) or row is None:
        raise refuse(401, N_("Wrong e-mail address or password."))
    throttle.succeeded(conn, email, address)
    if needs_rehash(row[1]):
        set_password_hash(conn, email, hash_password(password))
    token = open_session(conn, int(row[0]), timedelta(hours=settings.api.session_hours))
    who = session_clinician(conn, token)
    assert who is not None
    return token, who


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings: Settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.api.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
