"""Creating the reference rows a kit needs before its readings can be stored: care team,
patient (pseudonymised), gateway with its MQTT password, sensors, enrollments.

Used by ``postop up`` (demo patients), the tests and, later, the API's administration.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from store.mqtt_accounts import new_secret, set_gateway_password


def ensure_team(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "INSERT INTO care_teams (name) VALUES (%s) ON CONFLICT (name) DO UPDATE"
        " SET name = EXCLUDED.name RETURNING team_id",
        (name,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def ensure_patient(
    conn: psycopg.Connection,
    pseudonym: str,
    team_id: int,
    language: str = "fr",
    time_zone: str = "Europe/Paris",
) -> int:
    row = conn.execute(
        "INSERT INTO patients (pseudonym, team_id, language, time_zone) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (pseudonym) DO UPDATE SET pseudonym = EXCLUDED.pseudonym"
        " RETURNING patient_id",
        (pseudonym, team_id, language, time_zone),
    ).fetchone()
    assert row is not None
    return int(row[0])


class OtherTeamsKitError(Exception):
    """The gateway or device belongs to another care team than the one asking."""


def register_gateway(conn: psycopg.Connection, gateway_id: str, team_id: int | None = None) -> str:
    """Create or re-key a gateway of ``team_id``; returns its new MQTT password (shown
    once, stored hashed). A gateway of another team is refused (``OtherTeamsKitError``);
    ``team_id`` None (operators' tools, tests) leaves the gateway's team as it is."""
    if team_id is not None:
        row = conn.execute(
            "SELECT team_id FROM gateways WHERE gateway_id = %s", (gateway_id,)
        ).fetchone()
        if row is not None and row[0] is not None and int(row[0]) != team_id:
            raise OtherTeamsKitError(gateway_id)
    password = new_secret()
    set_gateway_password(conn, gateway_id, password)
    if team_id is not None:
        conn.execute(
            "UPDATE gateways SET team_id = %s WHERE gateway_id = %s AND team_id IS NULL",
            (team_id, gateway_id),
        )
    return password


def register_device(
    conn: psycopg.Connection,
    device_id: str,
    kind: str,
    gateway_id: str,
    ble_address: str | None = None,
) -> None:
    """Register (or move) a device; ``ble_address`` (``AA:BB:...``) for one the gateway
    pairs with over Bluetooth (kept when registered again without one)."""
    conn.execute(
        "INSERT INTO devices (device_id, kind, gateway_id, ble_address) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind,"
        " gateway_id = EXCLUDED.gateway_id,"
        " ble_address = coalesce(EXCLUDED.ble_address, devices.ble_address)",
        (device_id, kind, gateway_id, ble_address.upper() if ble_address else None),
    )


def enroll(
    conn: psycopg.Connection,
    device_id: str,
    patient_id: int,
    start: datetime,
    end: datetime | None = None,
) -> int:
    """Attribute a sensor's readings in [start, end) to a patient (end None: open-ended)."""
    row = conn.execute(
        "INSERT INTO enrollments (device_id, patient_id, valid)"
        " VALUES (%s, %s, tstzrange(%s, %s, '[)')) RETURNING enrollment_id",
        (device_id, patient_id, start, end),
    ).fetchone()
    assert row is not None
    return int(row[0])


def end_enrollments(conn: psycopg.Connection, device_id: str, at: datetime) -> int:
    """Close the device's open enrollment at ``at`` (unenroll)."""
    cur = conn.execute(
        "UPDATE enrollments SET valid = tstzrange(lower(valid), %s, '[)')"
        " WHERE device_id = %s AND upper_inf(valid) AND lower(valid) < %s",
        (at, device_id, at),
    )
    return cur.rowcount
