"""Signing in: the password, then the second factor (a security key, a TOTP code or a
recovery code). Every
attempt, password or code, is counted by the throttle per account and per client
address before it is checked; constant work whether or not the account exists; argon2
hashes upgraded when the library's parameters move on; the session cookie (HttpOnly,
SameSite=Lax, Secure on TLS) only once both factors passed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from fastapi import Request, Response
from psycopg.types.json import Jsonb

from api.common import second_factor, security_keys
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

KEY_REFUSED = N_("The security key was not accepted; try again, or enter a code.")


def throttle_of(settings: Settings) -> Throttle:
    return Throttle(
        per_account_address=settings.api.login_max_failures,
        per_account=settings.api.login_max_failures_account,
        per_address=settings.api.login_max_failures_address,
        lockout=timedelta(seconds=settings.api.login_lockout_s),
    )


def secret_box(request: Request) -> second_factor.SecretBox:
    settings: Settings = request.app.state.settings
    return second_factor.SecretBox(settings.api.second_factor_key)


def _count_attempt(request: Request, conn: psycopg.Connection, email: str) -> None:
    """Count one attempt (password or code); 429 when the account or address is over."""
    wait_s = throttle_of(request.app.state.settings).attempt(conn, email, client_address(request))
    if wait_s:
        refusal = refuse(
            429,
            N_("Too many failed sign-ins; try again in %(minutes)s min."),
            minutes=max(1, wait_s // 60),
        )
        refusal.headers = {"Retry-After": str(wait_s)}
        raise refusal


@dataclass(frozen=True, slots=True)
class PasswordPassed:
    clinician_id: int
    email: str
    enrolled: bool  # the account has its second factor


def check_password(
    request: Request, conn: psycopg.Connection, email: str, password: str
) -> PasswordPassed:
    """The first factor; 401 or 429 with a plain reason otherwise. The attempt is counted
    before the password is checked; the counters are cleared only after the second
    factor (wrong codes count as failed sign-ins)."""
    _count_attempt(request, conn, email)
    row = conn.execute(
        "SELECT clinician_id, password_hash, email, totp_enrolled_at IS NOT NULL"
        " FROM clinicians WHERE lower(email) = lower(%s) AND active",
        (email.strip(),),
    ).fetchone()
    if not verify_password(row[1] if row else None, password) or row is None:
        raise refuse(401, N_("Wrong e-mail address or password."))
    if needs_rehash(row[1]):
        set_password_hash(conn, email, hash_password(password))
    return PasswordPassed(int(row[0]), row[2], bool(row[3]))


def check_code(
    request: Request,
    conn: psycopg.Connection,
    passed: PasswordPassed,
    code: str,
    counted: bool = False,
) -> str:
    """The second factor of an enrolled account: ``"totp"`` or ``"recovery"`` (a
    recovery code is used up); 401 or 429 otherwise. Counted like a password, unless
    the same request already counted its password (``counted``: the REST sign-in)."""
    if not counted:
        _count_attempt(request, conn, passed.email)
    if second_factor.use_totp(conn, secret_box(request), passed.clinician_id, code):
        return "totp"
    if second_factor.use_recovery_code(conn, passed.clinician_id, code):
        return "recovery"
    raise refuse(401, N_("Wrong or already used code."))


def check_security_key(
    request: Request,
    conn: psycopg.Connection,
    passed: PasswordPassed,
    bound: bytes,
    credential: dict[str, Any],
) -> security_keys.KeyUsed:
    """The second factor as a security key's assertion (against the challenge of this
    pending sign-in); counted like a code; 401 or 429 otherwise. Both outcomes audited."""
    _count_attempt(request, conn, passed.email)
    rp: security_keys.RelyingParty = request.app.state.relying_party
    try:
        used = security_keys.authenticate(conn, rp, passed.clinician_id, bound, credential)
    except security_keys.KeyRefused as refused:
        audit_factor(
            conn,
            passed.clinician_id,
            "security_key_refused",
            {"step": "sign_in", "reason": refused.reason},
        )
        raise refuse(401, KEY_REFUSED) from None
    audit_factor(
        conn,
        passed.clinician_id,
        "security_key_used",
        {"key_id": used.key_id, "name": used.name, "sign_count": used.sign_count},
    )
    return used


def audit_factor(
    conn: psycopg.Connection, clinician_id: int, action: str, detail: dict[str, Any]
) -> None:
    """An audit row of the sign-in, before any session exists (the actor as sessions
    name it)."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, patient_id, detail) VALUES (%s, %s, NULL, %s)",
        (f"clinician:{clinician_id}", action, Jsonb(detail)),
    )


def check_enrolment_code(
    request: Request, conn: psycopg.Connection, passed: PasswordPassed, secret: str, code: str
) -> list[str]:
    """The first code of a secret being enrolled: stores the secret and returns the
    recovery codes to show once; 401 or 429 otherwise."""
    _count_attempt(request, conn, passed.email)
    step = second_factor.matching_step(secret, code)
    if step is None:
        raise refuse(401, N_("Wrong or already used code."))
    return second_factor.enrol(conn, secret_box(request), passed.clinician_id, secret, step)


def open_signed_in(
    request: Request, conn: psycopg.Connection, passed: PasswordPassed, how: str
) -> tuple[str, Clinician]:
    """Both factors passed: clear the account's failures, open the session, audit it."""
    settings: Settings = request.app.state.settings
    throttle_of(settings).succeeded(conn, passed.email, client_address(request))
    token = open_session(conn, passed.clinician_id, timedelta(hours=settings.api.session_hours))
    who = session_clinician(conn, token)
    assert who is not None
    if how in ("enrolled", "recovery"):  # worth a line in the access log (keys have theirs)
        remaining = conn.execute(
            "SELECT count(*) FROM clinician_recovery_codes WHERE clinician_id = %s"
            " AND used_at IS NULL",
            (passed.clinician_id,),
        ).fetchone()
        conn.execute(
            "INSERT INTO audit_log (actor, action, patient_id, detail)"
            " VALUES (%s, %s, NULL, jsonb_build_object('recovery_codes_left', %s::int))",
            (
                who.actor,
                "second_factor_enrolled" if how == "enrolled" else "recovery_code_used",
                int(remaining[0]) if remaining else 0,
            ),
        )
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
