"""Clinician passwords: argon2id through argon2-cffi, with the library's current
parameters; hashes made with older parameters are upgraded at the next login."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# verified against when the account does not exist, so that timing does not tell
_DUMMY = _HASHER.hash("postop: no such account")

MIN_LENGTH = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(encoded or _DUMMY, password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    return _HASHER.check_needs_rehash(encoded)


def hash_code(code: str) -> str:
    """A short second code (a share link's 6 digits): argon2id too, guarded by the lockout
    after a few wrong attempts rather than by its length."""
    return _HASHER.hash(code)


def verify_code(encoded: str, code: str) -> bool:
    try:
        return _HASHER.verify(encoded, code)
    except (VerificationError, InvalidHashError):
        return False
