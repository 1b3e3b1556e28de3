"""An admin's colleagues: the accounts of the admin's care teams, listed on the
administration page, and the reset of a colleague's second factor when their phone is
lost (at night, nobody with a shell is around to run ``postop second-factor-reset``).

Only a colleague who shares one of the admin's teams can be reset; another team's account
is answered like an unknown one. An admin cannot reset their own factor this way (their
recovery codes are for that, and a stolen session must not be enough to strip the
account's second factor). The reset, its sessions' end and its audit row are one
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from api.common import second_factor
from api.common.errors import refuse
from api.common.guards import audit
from api.common.labels import N_
from api.common.sessions import Clinician

_COLUMNS = (
    "SELECT c.clinician_id, c.display_name, c.email, c.role, c.totp_enrolled_at"
    " FROM clinicians c WHERE c.active AND EXISTS (SELECT 1 FROM clinician_teams t"
    " WHERE t.clinician_id = c.clinician_id AND t.team_id = ANY(%s))"
)


@dataclass(frozen=True, slots=True)
class Colleague:
    clinician_id: int
    display_name: str
    email: str
    role: str
    second_factor_since: datetime | None  # None: enrols at next sign-in


def _of(row: tuple[Any, ...]) -> Colleague:
    return Colleague(int(row[0]), row[1], row[2], row[3], row[4])


def team_members(conn: psycopg.Connection, who: Clinician) -> list[Colleague]:
    """The active accounts of the admin's teams (the admin included), by name."""
    rows = conn.execute(
        _COLUMNS + " ORDER BY lower(c.display_name), c.clinician_id", (list(who.team_ids),)
    ).fetchall()
    return [_of(r) for r in rows]


def colleague(
    conn: psycopg.Connection, who: Clinician, clinician_id: int, lock: bool = False
) -> Colleague:
    """A colleague whose second factor this admin may reset; 403 for the admin's own
    account, 404 for an account outside the admin's teams (or none)."""
    if clinician_id == who.clinician_id:
        raise refuse(
            403,
            N_(
                "You cannot reset your own second factor: sign in with one of your recovery"
                " codes, or ask another administrator of your team."
            ),
        )
    row = conn.execute(
        _COLUMNS + " AND c.clinician_id = %s" + (" FOR UPDATE OF c" if lock else ""),
        (list(who.team_ids), clinician_id),
    ).fetchone()
    if row is None:
        raise refuse(404, N_("No colleague with this account in your care teams."))
    return _of(row)


def reset_second_factor(
    conn: psycopg.Connection, who: Clinician, clinician_id: int
) -> tuple[Colleague, second_factor.Forgotten]:
    """Forget the colleague's TOTP secret, recovery codes and security keys, end their
    sessions, and write who reset whom (the audit row's time says when)."""
    with conn.transaction():
        target = colleague(conn, who, clinician_id, lock=True)
        forgotten = second_factor.reset(conn, clinician_id)
        audit(
            conn,
            who,
            "second_factor_reset",
            None,
            {
                "clinician_id": clinician_id,
                "sessions_closed": forgotten.sessions_closed,
                "recovery_codes_cleared": forgotten.recovery_codes_cleared,
                "security_keys_removed": forgotten.security_keys_removed,
                "push_subscriptions_removed": forgotten.push_subscriptions_removed,
            },
        )
    return target, forgotten
