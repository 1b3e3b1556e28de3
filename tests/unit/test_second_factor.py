"""The second factor's pieces without a database: sealing the TOTP secret, the time
steps a code is accepted for (RFC 6238 test vector included), the recovery codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
from pydantic import SecretStr

from api.common import second_factor as factor


def test_a_sealed_secret_opens_only_with_its_key() -> None:
    box = factor.SecretBox(SecretStr(factor.new_key()))
    secret = factor.new_secret()
    sealed = box.seal(secret)
    assert sealed.startswith("fernet:")
    assert secret not in sealed
    assert box.open(sealed) == secret
    assert factor.SecretBox(SecretStr(factor.new_key())).open(sealed) is None
    assert factor.SecretBox(None).open(sealed) is None
    # without a key (a warning at start-up) the secret is stored as is, and still opens
    plain = factor.SecretBox(None).seal(secret)
    assert plain == f"plain:{secret}"
    assert box.open(plain) == secret


def test_rfc_6238_vector_and_one_step_of_drift() -> None:
    # RFC 6238 appendix B: the ASCII key "12345678901234567890", SHA-1, at 59 s: 94287082
    # (8 digits); its last 6 digits are the 6-digit code
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    at = datetime.fromtimestamp(59, UTC)
    assert pyotp.TOTP(secret, digits=8).at(at) == "94287082"
    assert factor.matching_step(secret, "287082", at) == 1
    now = datetime(2026, 11, 30, 9, 0, 10, tzinfo=UTC)
    totp = pyotp.TOTP(secret)
    for offset_s, accepted in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        code = totp.at(now + timedelta(seconds=offset_s))
        step = factor.matching_step(secret, code, now)
        assert (step is not None) is accepted, offset_s
    assert factor.matching_step(secret, "12 34 5a", now) is None
    assert factor.matching_step(secret, "", now) is None


def test_recovery_codes_are_distinct_and_readable() -> None:
    codes = factor.new_recovery_codes()
    assert len(set(codes)) == factor.RECOVERY_CODES
    for code in codes:
        assert len(code) == 11
        assert code[5] == "-"
        assert not set(code) & set("01ilo")  # nothing to misread
