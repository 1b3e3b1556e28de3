"""The clinicians' second factor in tests: every helper that signs in asks this module for
a code, computed with pyotp from the secret enrolled in the database, as the person's
authenticator app would show it.

The server accepts each time step once (a replayed code is refused) and one step of drift
either way. ``code`` gives the code of the step ahead (good for the longest time on a
loaded machine); a test that signs the same account in again within that window would
have to wait for the clock, so ``code`` then moves the account's last used step back, as
if that time had passed (replay itself is tested apart, without it)."""

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
        # the latest step the server accepts (one ahead): the code stays good the
        # longest, however slowly a loaded machine gets the request to the server
        step = totp.timecode(datetime.now(UTC)) + second_factor.DRIFT_STEPS
        row = conn.execute(
            "SELECT totp_last_step FROM clinicians WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
        if row is not None and row[0] is not None and row[0] >= step:
            conn.execute(
                "UPDATE clinicians SET totp_last_step = NULL WHERE lower(email) = lower(%s)",
                (email,),
            )
        return totp.generate_otp(step)
