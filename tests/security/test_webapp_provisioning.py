"""Issue 16, cross-team provisioning: an admin of team B enrolled team A's device on B's
patient and registered a device on A's gateway, so that A's home readings landed in B's
record. Gateways and devices belong to a team; another team's kit answers like an
unknown one, conflicts included."""

from __future__ import annotations

import psycopg
import pytest

from store.provisioning import enroll
from tests.security.webapp_world import (
    Clients,
    World,
    add_clinician,
    app_settings,
    clients,
    world,
)

__all__ = ["app_settings", "clients", "world"]

B_ADMIN = "admin-b@hopital.example"


def _enrollments_of(db: str, patient_id: int) -> list[str]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT device_id FROM enrollments WHERE patient_id = %s", (patient_id,)
        ).fetchall()
    return [r[0] for r in rows]


def test_another_teams_device_cannot_be_enrolled_and_answers_like_an_unknown_one(
    world: World, clients: Clients
) -> None:
    add_clinician(world.db, B_ADMIN, "admin", [world.team_b])
    team_a = clients.signed_in(world.emails["admin"])
    attacker = clients.signed_in(B_ADMIN)
    # team A's kit, not enrolled yet
    assert team_a.post("/api/v1/gateways", json={"gateway_id": "gw-a-777"}).status_code == 201
    device = {"device_id": "cuff-a-777", "kind": "bp_cuff", "gateway_id": "gw-a-777"}
    assert team_a.post("/api/v1/devices", json=device).status_code == 201

    url = f"/api/v1/patients/{world.patient_b}/enrollments"
    unknown = attacker.post(url, json={"device_id": "cuff-zz-000"})
    assert unknown.status_code == 404
    free = attacker.post(url, json={"device_id": "cuff-a-777"})
    # A's device enrolled open-ended on A's patient: the clash must not say so either
    busy = attacker.post(url, json={"device_id": "ox-a-001"})
    for res, device_id in ((free, "cuff-a-777"), (busy, "ox-a-001")):
        assert res.status_code == 404, res.text
        assert res.json()["detail"] == unknown.json()["detail"].replace("cuff-zz-000", device_id)
    assert _enrollments_of(world.db, world.patient_b) == []
    # the team that owns the device still can
    own = team_a.post(
        f"/api/v1/patients/{world.patient_a2}/enrollments", json={"device_id": "cuff-a-777"}
    )
    assert own.status_code == 201, own.text


def test_no_device_on_another_teams_gateway(world: World, clients: Clients) -> None:
    add_clinician(world.db, B_ADMIN, "admin", [world.team_b])
    attacker = clients.signed_in(B_ADMIN)
    unknown = attacker.post(
        "/api/v1/devices",
        json={"device_id": "ox-b-666", "kind": "pulse_oximeter", "gateway_id": "gw-zz-000"},
    )
    planted = attacker.post(
        "/api/v1/devices",
        json={"device_id": "ox-b-666", "kind": "pulse_oximeter", "gateway_id": "gw-a-001"},
    )
    assert unknown.status_code == 404
    assert planted.status_code == 404, planted.text
    assert planted.json()["detail"] == unknown.json()["detail"].replace("gw-zz-000", "gw-a-001")
    with psycopg.connect(world.db) as conn:
        assert conn.execute("SELECT 1 FROM devices WHERE device_id = 'ox-b-666'").fetchone() is None
    # nor can B re-key A's gateway (its MQTT password) by registering the same id
    again = attacker.post("/api/v1/gateways", json={"gateway_id": "gw-a-001"})
    assert again.status_code == 409
    assert "team" not in again.json()["detail"]


def test_gateways_belong_to_the_registering_team(world: World, clients: Clients) -> None:
    add_clinician(world.db, B_ADMIN, "admin", [world.team_b])
    attacker = clients.signed_in(B_ADMIN)
    assert attacker.post("/api/v1/gateways", json={"gateway_id": "gw-b-001"}).status_code == 201
    with psycopg.connect(world.db) as conn:
        row = conn.execute("SELECT team_id FROM gateways WHERE gateway_id = 'gw-b-001'").fetchone()
    assert row == (world.team_b,)
    # an admin of B cannot register a gateway for team A
    res = attacker.post(
        "/api/v1/gateways", json={"gateway_id": "gw-b-002", "team_id": world.team_a}
    )
    assert res.status_code == 403


def test_the_database_refuses_a_cross_team_enrollment_whatever_the_path(world: World) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE enrollments SET valid = tstzrange(lower(valid), now(), '[)')"
            " WHERE device_id = 'ox-a-001'"
        )
        from datetime import UTC, datetime

        with pytest.raises(psycopg.errors.CheckViolation):
            enroll(conn, "ox-a-001", world.patient_b, datetime.now(UTC))
        # nor can the device move to a gateway of B while enrolled on A's patient
        conn.execute(
            "INSERT INTO gateways (gateway_id, team_id) VALUES ('gw-b-009', %s)", (world.team_b,)
        )
        conn.execute(
            "INSERT INTO enrollments (device_id, patient_id, valid) VALUES"
            " ('ox-a-001', %s, tstzrange(now(), NULL, '[)'))",
            (world.patient_a,),
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE devices SET gateway_id = 'gw-b-009' WHERE device_id = 'ox-a-001'")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "UPDATE gateways SET team_id = %s WHERE gateway_id = 'gw-a-001'", (world.team_b,)
            )
