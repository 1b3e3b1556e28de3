"""The clinicians' second factor in tests: every helper that signs in asks this module for
a code, computed with pyotp from the secret enrolled in the database, as the person's
authenticator app would show it.

The server accepts each time step once (a replayed code is refused) and one step of drift
either way. A test that signs the same account in more often than that within half a
minute would have to wait for the clock; ``code`` instead moves the account's last used
step back, as if that time had passed (replay itself is tested apart, without it)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pyotp
from pydantic import SecretStr

from api.common import second_factor
from api.common.second_factor import SecretBox

# the API's key in the tests' settings (the encrypted path is the one tested)
TEST_KEY = SecretStr(second_factor.new_key())
BOX = SecretBox(TEST_KEY)
UNSEALED = SecretBox(None)


def secret_of(conn: psycopg.Connection, email: str, box: SecretBox = BOX) -> str:
    """The account's TOTP secret, enrolled now (as if at first sign-in) when it has none."""
    row = conn.execute(
        "SELECT clinician_id, totp_secret, totp_enrolled_at IS NOT NULL FROM clinicians"
        " WHERE lower(email) = lower(%s)",
        (email,),
    ).fetchone()
    assert row is not None, f"no account {email}"
    if row[2]:
        secret = box.open(row[1])
        assert secret is not None, "the account's secret was sealed with another key"
        return secret
    secret = second_factor.new_secret()
    # stored unsealed, so that any test's API opens it whatever key its settings hold
    # (the sealed path: enrolment on the page, test_webapp_second_factor, test_up)
    second_factor.enrol(conn, UNSEALED, int(row[0]), secret, None)
    return secret


def code(db: str, email: str, box: SecretBox = BOX) -> str:
    """A code the server will accept for this account now (enrolling it if needed)."""
    with psycopg.connect(db, autocommit=True) as conn:
        secret = secret_of(conn, email, box)
        totp = pyotp.TOTP(secret)
        now = totp.timecode(datetime.now(UTC))
        # the current step's code stays valid while the server's clock is on this step or
        # the next (a code of the step before would fail when a boundary passes before the
        # server checks it); the account's last used step is moved back, as if the time
        # between two sign-ins had passed
        conn.execute(
            "UPDATE clinicians SET totp_last_step = NULL WHERE lower(email) = lower(%s)"
            " AND totp_last_step >= %s",
            (email, now - second_factor.DRIFT_STEPS - 1),
        )
        return totp.generate_otp(now)


def current_code(secret: str) -> str:
    return pyotp.TOTP(secret).now()
