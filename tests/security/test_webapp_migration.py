"""Issue 16, what the attacker left in the database before the fixes: year-9999 dates
that made pages fail (and stopped the next ``postop up``), and a device of team A
enrolled on team B's patient. Migration 0011 is applied again over such rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from store.migrate import migrate
from tests.security.webapp_world import Clients, World, app_settings, clients, world

__all__ = ["app_settings", "clients", "world"]


def _as_before_0011(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE patients DROP CONSTRAINT patients_dates_plausible")
    conn.execute("ALTER TABLE enrollments DROP CONSTRAINT enrollments_end_plausible")
    conn.execute("DROP TRIGGER enrollments_in_device_team ON enrollments")
    conn.execute("DROP TRIGGER gateways_team_fixed ON gateways")
    conn.execute("DELETE FROM schema_migrations WHERE version = 11")


def test_impossible_dates_left_behind_are_repaired_and_audited(
    world: World, clients: Clients
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        _as_before_0011(conn)
        conn.execute(
            "UPDATE patients SET discharged_at = '9999-12-31T23:00:00Z' WHERE patient_id = %s",
            (world.patient_a,),
        )
        conn.execute(
            "UPDATE enrollments SET valid = tstzrange(lower(valid), '9999-12-31', '[)')"
            " WHERE device_id = 'ox-a-001'"
        )
    admin = clients.signed_in(world.emails["admin"])  # Europe/Paris: year 10000 there
    assert admin.get(f"/patients/{world.patient_a}").status_code == 500  # what it did
    migrate(world.db)
    page = admin.get(f"/patients/{world.patient_a}")
    assert page.status_code == 200
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT p.discharged_at, upper_inf(e.valid) FROM patients p"
            " JOIN enrollments e USING (patient_id) WHERE p.patient_id = %s",
            (world.patient_a,),
        ).fetchone()
        assert row == (None, True)
        audit = conn.execute(
            "SELECT detail->>'value' FROM audit_log WHERE action = 'impossible_date_cleared'"
        ).fetchall()
        assert audit == [("9999-12-31 23:00:00+00",)]
        # and no path writes such a date again
        try:
            conn.execute(
                "UPDATE patients SET discharged_at = '9999-01-01' WHERE patient_id = %s",
                (world.patient_a,),
            )
        except psycopg.errors.CheckViolation:
            pass
        else:
            raise AssertionError("a year-9999 discharge was stored")


def test_a_gateway_enrolled_across_teams_is_left_without_a_team(world: World) -> None:
    """Which team owns it is for a person to decide: until then no admin provisions it."""
    with psycopg.connect(world.db, autocommit=True) as conn:
        _as_before_0011(conn)
        conn.execute("UPDATE gateways SET team_id = NULL")
        conn.execute(
            "INSERT INTO enrollments (device_id, patient_id, valid)"
            " VALUES ('ox-a-001', %s, tstzrange(%s, %s, '[)'))",
            (
                world.patient_b,
                datetime.now(UTC) - timedelta(days=30),
                datetime.now(UTC) - timedelta(days=20),
            ),
        )
    migrate(world.db)
    with psycopg.connect(world.db) as conn:
        row = conn.execute("SELECT team_id FROM gateways WHERE gateway_id = 'gw-a-001'").fetchone()
    assert row == (None,)
