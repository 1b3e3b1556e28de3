"""Clinicians' second factor: TOTP (RFC 6238, through pyotp) with one-time recovery codes.

The secret is stored encrypted (Fernet) with ``api.second_factor_key`` when one is set, so
that a copy of the database alone gives no code; without a key it is stored as is (the API
warns at start-up). It never reaches a log. A code is accepted once: the last time step
used is kept, and only a later step passes (one step of drift either way is allowed).
Recovery codes are argon2id hashes like the passwords, each usable once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from api.common.passwords import hash_code, verify_code

ISSUER = "postop"
DRIFT_STEPS = 1  # a code of the step before or after is still accepted
RECOVERY_CODES = 10
CHALLENGE_LIFETIME = timedelta(minutes=5)
CHALLENGE_MAX_FAILURES = 5
_PLAIN, _SEALED = "plain:", "fernet:"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or typed


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals and opens TOTP secrets with the configured key (none: stored as is)."""

    key: SecretStr | None

    def check(self) -> None:
        """Raise ValueError when the key is not a Fernet key."""
        if self.key is not None:
            Fernet(self.key.get_secret_value().encode())

    def seal(self, secret: str) -> str:
        if self.key is None:
            return _PLAIN + secret
        return _SEALED + Fernet(self.key.get_secret_value().encode()).encrypt(
            secret.encode()
        ).decode("ascii")

    def open(self, stored: str) -> str | None:
        if stored.startswith(_PLAIN):
            return stored[len(_PLAIN) :]
        if stored.startswith(_SEALED) and self.key is not None:
            try:
                return (
                    Fernet(self.key.get_secret_value().encode())
                    .decrypt(stored[len(_SEALED) :].encode())
                    .decode()
                )
            except InvalidToken:
                return None
        return None


def new_key() -> str:
    """A key for ``POSTOP_API__SECOND_FACTOR_KEY``."""
    return Fernet.generate_key().decode("ascii")


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg_data_uri(uri: str) -> str:
    """The otpauth URI as a QR code, an SVG data URI (the pages' CSP allows data: images)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def matching_step(secret: str, code: str, at: datetime | None = None) -> int | None:
    """The time step whose code this is, within the allowed drift; None otherwise."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(at or datetime.now(UTC))
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def enrolled_secret(conn: psycopg.Connection, box: SecretBox, clinician_id: int) -> str | None:
    row = conn.execute(
        "SELECT totp_secret FROM clinicians WHERE clinician_id = %s AND totp_enrolled_at"
        " IS NOT NULL",
        (clinician_id,),
    ).fetchone()
    return box.open(row[0]) if row and row[0] else None


def use_totp(conn: psycopg.Connection, box: SecretBox, clinician_id: int, code: str) -> bool:
    """Whether this code is right and was never used (atomic: of two requests carrying
    the same code, one passes)."""
    secret = enrolled_secret(conn, box, clinician_id)
    if secret is None:
        return False
    step = matching_step(secret, code)
    if step is None:
        return False
    row = conn.execute(
        "UPDATE clinicians SET totp_last_step = %s WHERE clinician_id = %s"
        " AND (totp_last_step IS NULL OR totp_last_step < %s) RETURNING 1",
        (step, clinician_id, step),
    ).fetchone()
    return row is not None


def _normalised_recovery(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def new_recovery_codes() -> list[str]:
    """Ten codes of 10 characters (about 49 bits each), shown as xxxxx-xxxxx."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def use_recovery_code(conn: psycopg.Connection, clinician_id: int, code: str) -> bool:
    """Whether this is one of the account's unused recovery codes; it is used up now."""
    given = _normalised_recovery(code)
    if len(given) != 10:
        return False
    rows = conn.execute(
        "SELECT code_id, code_hash FROM clinician_recovery_codes"
        " WHERE clinician_id = %s AND used_at IS NULL",
        (clinician_id,),
    ).fetchall()
    for code_id, code_hash in rows:
        if verify_code(code_hash, given):
            done = conn.execute(
                "UPDATE clinician_recovery_codes SET used_at = now()"
                " WHERE code_id = %s AND used_at IS NULL",
                (code_id,),
            )
            return done.rowcount == 1
    return False


def enrol(
    conn: psycopg.Connection, box: SecretBox, clinician_id: int, secret: str, step: int | None
) -> list[str]:
    """Store the account's secret (``step``: the one its first code used, so that code
    cannot be replayed) and fresh recovery codes, which are returned to be shown once."""
    codes = new_recovery_codes()
    with conn.transaction():
        conn.execute(
            "UPDATE clinicians SET totp_secret = %s, totp_enrolled_at = now(),"
            " totp_last_step = %s WHERE clinician_id = %s",
            (box.seal(secret), step, clinician_id),
        )
        conn.execute(
            "DELETE FROM clinician_recovery_codes WHERE clinician_id = %s", (clinician_id,)
        )
        for code in codes:
            conn.execute(
                "INSERT INTO clinician_recovery_codes (clinician_id, code_hash) VALUES (%s, %s)",
                (clinician_id, hash_code(_normalised_recovery(code))),
            )
    return codes


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What a reset took away, for its audit row."""

    sessions_closed: int
    recovery_codes_cleared: int
    security_keys_removed: int
    push_subscriptions_removed: int


def forget_webauthn_credentials(conn: psycopg.Connection, clinician_id: int) -> int:
    """Remove the account's security keys and passkeys (WebAuthn); how many. Every reset
    (the administration page, ``postop second-factor-reset``) forgets them too: a key may
    have been lost with the phone."""
    return conn.execute(
        "DELETE FROM clinician_security_keys WHERE clinician_id = %s", (clinician_id,)
    ).rowcount


def reset(conn: psycopg.Connection, clinician_id: int) -> Forgotten:
    """Forget the account's second factor (a lost phone): it enrols again at next sign-in,
    and its open sessions, pending sign-ins and alert notifications end (the phone may be
    in someone else's hands; notifications outlive a sign-out, so they go too)."""
    with conn.transaction():
        sessions = conn.execute(
            "DELETE FROM web_sessions WHERE clinician_id = %s", (clinician_id,)
        ).rowcount
        conn.execute("DELETE FROM login_challenges WHERE clinician_id = %s", (clinician_id,))
        conn.execute(
            "UPDATE clinicians SET totp_secret = NULL, totp_enrolled_at = NULL,"
            " totp_last_step = NULL WHERE clinician_id = %s",
            (clinician_id,),
        )
        codes = conn.execute(
            "DELETE FROM clinician_recovery_codes WHERE clinician_id = %s AND used_at IS NULL",
            (clinician_id,),
        ).rowcount
        conn.execute(
            "DELETE FROM clinician_recovery_codes WHERE clinician_id = %s", (clinician_id,)
        )
        pushes = conn.execute(
            "DELETE FROM push_subscriptions WHERE clinician_id = %s", (clinician_id,)
        ).rowcount
        keys = forget_webauthn_credentials(conn, clinician_id)
    return Forgotten(sessions, codes, keys, pushes)


# --- the sign-in waiting for its second factor -------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    clinician_id: int
    email: str
    enrol_secret: str | None  # the secret being enrolled, None when the account has one


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def open_challenge(
    conn: psycopg.Connection, box: SecretBox, clinician_id: int, enrol_secret: str | None
) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute("DELETE FROM login_challenges WHERE expires_at < now()")
    conn.execute(
        "INSERT INTO login_challenges (token_sha256, clinician_id, enrol_secret, expires_at)"
        " VALUES (%s, %s, %s, now() + %s)",
        (
            _digest(token),
            clinician_id,
            box.seal(enrol_secret) if enrol_secret else None,
            CHALLENGE_LIFETIME,
        ),
    )
    return token


def find_challenge(conn: psycopg.Connection, box: SecretBox, token: str) -> Challenge | None:
    row = conn.execute(
        "SELECT c.clinician_id, c.email, l.enrol_secret FROM login_challenges l"
        " JOIN clinicians c USING (clinician_id)"
        " WHERE l.token_sha256 = %s AND l.expires_at > now() AND c.active"
        " AND l.failures < %s",
        (_digest(token), CHALLENGE_MAX_FAILURES),
    ).fetchone()
    if row is None:
        return None
    secret = box.open(row[2]) if row[2] else None
    return Challenge(int(row[0]), row[1], secret)


def challenge_failed(conn: psycopg.Connection, token: str) -> None:
    conn.execute(
        "UPDATE login_challenges SET failures = failures + 1 WHERE token_sha256 = %s",
        (_digest(token),),
    )


def close_challenge(conn: psycopg.Connection, token: str) -> None:
    conn.execute("DELETE FROM login_challenges WHERE token_sha256 = %s", (_digest(token),))
