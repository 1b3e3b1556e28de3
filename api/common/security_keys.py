"""Clinicians' security keys and passkeys (WebAuthn, through py_webauthn): a second
factor where the browser offers one, beside the TOTP code and the recovery codes.

The library checks the attestation and the assertions (CBOR, COSE keys, signatures,
origin, RP id, challenge); this module keeps what it needs between two requests. A
challenge is bound to what asked for it (the pending sign-in, or the session that
registers a key), lives a few minutes and is deleted at its first use, right or wrong.
A signature counter that does not grow (a cloned key) is refused, by the library and
again by the database update, so two requests with one assertion cannot both pass."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import webauthn
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from vitals.settings import ApiSettings

CHALLENGE_LIFETIME = timedelta(minutes=3)
TIMEOUT_MS = 120_000  # what the browser gives the person to touch their key
MAX_KEYS = 10
_TRANSPORTS = {t.value: t for t in AuthenticatorTransport}


class KeyRefused(Exception):
    """A registration or an assertion that does not hold; ``reason`` goes to the audit
    row (never to the person: they get one plain sentence)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the keys are registered with: the RP id (a domain: the browser refuses an IP
    address) and the origins the pages are served from."""

    rp_id: str
    name: str
    origins: tuple[str, ...]


def relying_party(api: ApiSettings) -> RelyingParty:
    """From the settings: ``webauthn_rp_id`` and ``webauthn_origins``, else the public
    base URL's host and origin, else ``localhost`` on the API's port. A base URL on an IP
    address (``postop up`` announces http://127.0.0.1:8000) cannot hold keys: browsers
    refuse an IP as RP id, so the keys are offered on http://localhost at that port."""
    base = urlsplit(api.public_base_url) if api.public_base_url else None
    host = base.hostname if base and base.hostname else None
    port = (base.port if base else None) or api.port
    if host is not None and _is_ip(host):
        host = None
    rp_id = api.webauthn_rp_id or host or "localhost"
    if api.webauthn_origins:
        origins = tuple(o.rstrip("/") for o in api.webauthn_origins)
    elif base is not None and host is not None:
        origins = (f"{base.scheme}://{base.netloc}",)
    else:
        origins = (f"http://localhost:{port}",)
    return RelyingParty(rp_id, "postop", origins)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class SecurityKey:
    key_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    transports: tuple[str, ...]


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def keys_of(conn: psycopg.Connection, clinician_id: int) -> list[SecurityKey]:
    rows = conn.execute(
        "SELECT key_id, name, created_at, last_used_at, transports FROM"
        " clinician_security_keys WHERE clinician_id = %s ORDER BY created_at, key_id",
        (clinician_id,),
    ).fetchall()
    return [SecurityKey(int(r[0]), r[1], r[2], r[3], tuple(r[4])) for r in rows]


def has_keys(conn: psycopg.Connection, clinician_id: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM clinician_security_keys WHERE clinician_id = %s)",
        (clinician_id,),
    ).fetchone()
    return bool(row and row[0])


def remove(conn: psycopg.Connection, clinician_id: int, key_id: int) -> str | None:
    """The removed key's name; None when the account has no such key."""
    row = conn.execute(
        "DELETE FROM clinician_security_keys WHERE key_id = %s AND clinician_id = %s"
        " RETURNING name",
        (key_id, clinician_id),
    ).fetchone()
    return str(row[0]) if row else None


def _descriptors(
    conn: psycopg.Connection, clinician_id: int
) -> list[PublicKeyCredentialDescriptor]:
    rows = conn.execute(
        "SELECT credential_id, transports FROM clinician_security_keys WHERE clinician_id = %s",
        (clinician_id,),
    ).fetchall()
    return [
        PublicKeyCredentialDescriptor(
            id=bytes(r[0]), transports=[_TRANSPORTS[t] for t in r[1] if t in _TRANSPORTS]
        )
        for r in rows
    ]


def _store_challenge(
    conn: psycopg.Connection, bound: bytes, purpose: str, clinician_id: int, challenge: bytes
) -> None:
    conn.execute("DELETE FROM security_key_challenges WHERE expires_at < now()")
    conn.execute(
        "INSERT INTO security_key_challenges (bound_sha256, purpose, clinician_id, challenge,"
        " expires_at) VALUES (%s, %s, %s, %s, now() + %s) ON CONFLICT (bound_sha256, purpose)"
        " DO UPDATE SET clinician_id = excluded.clinician_id, challenge = excluded.challenge,"
        " expires_at = excluded.expires_at",
        (bound, purpose, clinician_id, challenge, CHALLENGE_LIFETIME),
    )


def _take_challenge(
    conn: psycopg.Connection, bound: bytes, purpose: str, clinician_id: int
) -> bytes:
    """The waiting challenge, deleted now (single use); KeyRefused when none is."""
    row = conn.execute(
        "DELETE FROM security_key_challenges WHERE bound_sha256 = %s AND purpose = %s"
        " AND clinician_id = %s RETURNING challenge, expires_at > now()",
        (bound, purpose, clinician_id),
    ).fetchone()
    if row is None:
        raise KeyRefused("no challenge waiting")
    if not row[1]:
        raise KeyRefused("challenge expired")
    return bytes(row[0])


# --- registration (a signed-in clinician) ------------------------------------------------


def registration_options(
    conn: psycopg.Connection, rp: RelyingParty, clinician_id: int, email: str, bound: bytes
) -> dict[str, Any]:
    """The options for ``navigator.credentials.create``, as JSON (binary as base64url);
    the account's keys are excluded, so one key is not registered twice."""
    options = webauthn.generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=email,
        user_id=f"clinician:{clinician_id}".encode(),
        user_display_name=email,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(conn, clinician_id),
    )
    _store_challenge(conn, bound, "register", clinician_id, options.challenge)
    parsed: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return parsed


def register(
    conn: psycopg.Connection,
    rp: RelyingParty,
    clinician_id: int,
    bound: bytes,
    credential: dict[str, Any],
    name: str,
) -> SecurityKey:
    """Verify the browser's answer to the registration options and keep the key."""
    challenge = _take_challenge(conn, bound, "register", clinician_id)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
        )
    except Exception as exc:  # the library's errors, and malformed input
        raise KeyRefused(f"registration not verified: {type(exc).__name__}") from None
    count = conn.execute(
        "SELECT count(*) FROM clinician_security_keys WHERE clinician_id = %s", (clinician_id,)
    ).fetchone()
    if count and count[0] >= MAX_KEYS:
        raise KeyRefused("too many keys")
    response = credential.get("response")
    raw = response.get("transports") if isinstance(response, dict) else None
    transports = [t for t in raw or [] if isinstance(t, str) and t in _TRANSPORTS]
    row = conn.execute(
        "INSERT INTO clinician_security_keys (clinician_id, credential_id, public_key,"
        " sign_count, transports, name) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (credential_id) DO NOTHING RETURNING key_id, created_at",
        (
            clinician_id,
            verified.credential_id,
            verified.credential_public_key,
            verified.sign_count,
            transports,
            name.strip(),
        ),
    ).fetchone()
    if row is None:
        raise KeyRefused("key already registered")
    return SecurityKey(int(row[0]), name.strip(), row[1], None, tuple(transports))


# --- sign-in (the password passed, the second factor awaited) ----------------------------


def authentication_options(
    conn: psycopg.Connection, rp: RelyingParty, clinician_id: int, bound: bytes
) -> dict[str, Any]:
    """The options for ``navigator.credentials.get``: the account's keys only."""
    options = webauthn.generate_authentication_options(
        rp_id=rp.rp_id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(conn, clinician_id),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    _store_challenge(conn, bound, "sign_in", clinician_id, options.challenge)
    parsed: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return parsed


@dataclass(frozen=True, slots=True)
class KeyUsed:
    key_id: int
    name: str
    sign_count: int


def authenticate(
    conn: psycopg.Connection,
    rp: RelyingParty,
    clinician_id: int,
    bound: bytes,
    credential: dict[str, Any],
) -> KeyUsed:
    """Verify an assertion of one of the account's keys against the waiting challenge;
    the key's counter and last use are updated. KeyRefused otherwise."""
    challenge = _take_challenge(conn, bound, "sign_in", clinician_id)
    raw_id = credential.get("rawId") if isinstance(credential, dict) else None
    try:
        credential_id = webauthn.base64url_to_bytes(raw_id) if isinstance(raw_id, str) else b""
    except Exception:
        credential_id = b""
    row = conn.execute(
        "SELECT key_id, name, public_key, sign_count FROM clinician_security_keys"
        " WHERE clinician_id = %s AND credential_id = %s",
        (clinician_id, credential_id),
    ).fetchone()
    if row is None:
        raise KeyRefused("not a key of this account")
    key_id, name, public_key, sign_count = int(row[0]), str(row[1]), bytes(row[2]), int(row[3])
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
        )
    except Exception as exc:
        message = str(exc)
        reason = "sign count did not grow" if "sign count" in message else "not verified"
        raise KeyRefused(f"{reason}: {type(exc).__name__}") from None
    # a counter of 0 stays 0 for keys that keep none; otherwise it must grow (atomic: of
    # two requests carrying the same assertion, one passes)
    updated = conn.execute(
        "UPDATE clinician_security_keys SET sign_count = %s, last_used_at = now()"
        " WHERE key_id = %s AND (sign_count < %s OR (sign_count = 0 AND %s = 0))"
        " RETURNING 1",
        (verified.new_sign_count, key_id, verified.new_sign_count, verified.new_sign_count),
    ).fetchone()
    if updated is None:
        raise KeyRefused("sign count did not grow")
    return KeyUsed(key_id, name, verified.new_sign_count)
