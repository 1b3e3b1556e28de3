"""Clinician accounts and their care teams (used by the API's administration, ``postop
clinician add`` and ``postop up``'s demo account). Passwords arrive already hashed."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg


class DuplicateAccountError(ValueError):
    """An account with this e-mail address exists already."""


def create_clinician(
    conn: psycopg.Connection,
    email: str,
    display_name: str,
    role: str,
    password_hash: str,
    team_ids: Sequence[int],
    language: str = "fr",
    time_zone: str = "Europe/Paris",
) -> int:
    with conn.transaction():
        try:
            row = conn.execute(
                "INSERT INTO clinicians (email, display_name, role, password_hash, language,"
                " time_zone) VALUES (%s, %s, %s, %s, %s, %s) RETURNING clinician_id",
                (email.strip(), display_name.strip(), role, password_hash, language, time_zone),
            ).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateAccountError(f"an account for {email} exists already") from exc
        assert row is not None
        clinician_id = int(row[0])
        for team_id in team_ids:
            conn.execute(
                "INSERT INTO clinician_teams (clinician_id, team_id) VALUES (%s, %s)",
                (clinician_id, team_id),
            )
    return clinician_id


def set_password_hash(conn: psycopg.Connection, email: str, password_hash: str) -> bool:
    cur = conn.execute(
        "UPDATE clinicians SET password_hash = %s WHERE lower(email) = lower(%s)",
        (password_hash, email),
    )
    return cur.rowcount == 1
