"""What an admin does: create a patient, register a gateway (its MQTT password is shown
once and stored hashed; the broker's password file follows through a NOTIFY) or a
device, enroll and unenroll devices over a time range, end a follow-up, create accounts.
Every action writes an audit row in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from api.care_team.consents import require_monitoring_consent
from api.common.errors import refuse
from api.common.guards import audit
from api.common.labels import N_
from api.common.passwords import hash_password
from api.common.schemas import (
    ClinicianCreate,
    DeviceCreate,
    EnrollmentCreate,
    EnrollmentOut,
    GatewayCreate,
    GatewayCredentials,
    PatientCreate,
    UsualValues,
)
from api.common.sessions import Clinician
from store.alert_actions import changed, event, timestamp
from store.clinicians import DuplicateAccountError, create_clinician
from store.gateway_configs import mark_changed
from store.provisioning import enroll, register_gateway


def _team_of_admin(who: Clinician, team_id: int) -> None:
    if team_id not in who.team_ids:
        raise refuse(403, N_("You are not a member of this care team."))


def create_patient(conn: psycopg.Connection, who: Clinician, body: PatientCreate) -> int:
    _team_of_admin(who, body.team_id)
    known = conn.execute(
        "SELECT 1 FROM protocol_params WHERE protocol = %s LIMIT 1", (body.protocol,)
    ).fetchone()
    if known is None:
        raise refuse(422, N_("Unknown protocol: the alerts engine has not published it."))
    with conn.transaction():
        try:
            row = conn.execute(
                "INSERT INTO patients (pseudonym, team_id, language, time_zone, home_country,"
                " procedure, surgery_date, discharged_at, protocol, home_physician_name,"
                " home_physician_email, home_physician_phone, discharge_sbp_mmhg,"
                " discharge_hr_bpm, discharge_weight_kg, beta_blocker, sleep_apnoea)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " RETURNING patient_id",
                (
                    body.pseudonym,
                    body.team_id,
                    body.language,
                    body.time_zone,
                    body.home_country,
                    body.procedure,
                    body.surgery_date,
                    body.discharged_at,
                    body.protocol,
                    body.home_physician.name,
                    body.home_physician.email,
                    body.home_physician.phone,
                    *_usual_row(body.usual_values),
                ),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise refuse(
                409, N_("The pseudonym %(pseudonym)s is taken."), pseudonym=body.pseudonym
            ) from None
        assert row is not None
        audit(conn, who, "patient_created", int(row[0]), {"pseudonym": body.pseudonym})
    return int(row[0])


def _usual_row(v: UsualValues) -> tuple[float | None, float | None, float | None, bool, bool]:
    return (
        v.discharge_sbp_mmhg,
        v.discharge_hr_bpm,
        v.discharge_weight_kg,
        v.beta_blocker,
        v.sleep_apnoea,
    )


def set_usual_values(
    conn: psycopg.Connection, who: Clinician, patient_id: int, body: UsualValues
) -> None:
    """Replace the patient's discharge values the rules judge against; the audit row
    keeps what was entered (clinical parameters, no identity)."""
    with conn.transaction():
        conn.execute(
            "UPDATE patients SET discharge_sbp_mmhg = %s, discharge_hr_bpm = %s,"
            " discharge_weight_kg = %s, beta_blocker = %s, sleep_apnoea = %s"
            " WHERE patient_id = %s",
            (*_usual_row(body), patient_id),
        )
        audit(conn, who, "usual_values_set", patient_id, body.model_dump())


def _gateway_team(who: Clinician, team_id: int | None) -> int:
    """The team a new gateway joins: the one named, or the admin's only team."""
    if team_id is not None:
        _team_of_admin(who, team_id)
        return team_id
    if len(who.team_ids) != 1:
        raise refuse(422, N_("You are in several care teams: choose the gateway's team."))
    return who.team_ids[0]


def create_gateway(
    conn: psycopg.Connection, who: Clinician, body: GatewayCreate
) -> GatewayCredentials:
    team_id = _gateway_team(who, body.team_id)
    with conn.transaction():
        exists = conn.execute(
            "SELECT 1 FROM gateways WHERE gateway_id = %s FOR UPDATE", (body.gateway_id,)
        ).fetchone()
        if exists is not None:
            # ids are global (they are MQTT usernames); whose it is stays unsaid
            raise refuse(409, N_("The gateway id %(gateway)s is taken."), gateway=body.gateway_id)
        password = register_gateway(conn, body.gateway_id, team_id)
        audit(
            conn,
            who,
            "gateway_registered",
            None,
            {"gateway_id": body.gateway_id, "team_id": team_id},
        )
    return GatewayCredentials(
        gateway_id=body.gateway_id, mqtt_username=body.gateway_id, mqtt_password=password
    )


def create_device(conn: psycopg.Connection, who: Clinician, body: DeviceCreate) -> None:
    """Register a device; one with a Bluetooth address joins its gateway's configuration
    (marked pending in this transaction, published after the commit: the caller wakes
    the publisher)."""
    with conn.transaction():
        gw = conn.execute(
            "SELECT 1 FROM gateways WHERE gateway_id = %s AND team_id = ANY(%s)",
            (body.gateway_id, list(who.team_ids)),
        ).fetchone()
        if gw is None:  # unknown, or another team's: the same answer
            raise refuse(
                404,
                N_("No gateway %(gateway)s in your care teams: register the gateway first."),
                gateway=body.gateway_id,
            )
        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO devices (device_id, kind, gateway_id, ble_address)"
                    " VALUES (%s, %s, %s, %s)",
                    (body.device_id, body.kind, body.gateway_id, body.ble_address),
                )
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "devices_ble_address":
                raise refuse(
                    409,
                    N_("The Bluetooth address %(address)s is already another device's."),
                    address=body.ble_address,
                ) from None
            raise refuse(
                409, N_("The device id %(device)s is taken."), device=body.device_id
            ) from None
        if body.ble_address is not None:
            mark_changed(conn, body.gateway_id)
        audit(conn, who, "device_registered", None, body.model_dump())


def create_enrollment(
    conn: psycopg.Connection, who: Clinician, patient_id: int, body: EnrollmentCreate
) -> EnrollmentOut:
    """Enroll one of the patient's team's devices. Another team's device, or a clash
    with another team's enrollment, gets the answer of an unknown device."""
    start = body.start or datetime.now(UTC)
    if body.end is not None and body.end <= start:
        raise refuse(422, N_("An enrollment must end after it starts."))
    not_found = refuse(
        404,
        N_("No device %(device)s in this patient's care team: register the device first."),
        device=body.device_id,
    )
    with conn.transaction():
        # the consent is read under the patient's row lock: a withdrawal recorded at the
        # same moment waits for this enrolment, then ends it
        conn.execute("SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,))
        require_monitoring_consent(conn, patient_id)
        dev = conn.execute(
            "SELECT d.kind, d.gateway_id FROM devices d JOIN gateways g USING (gateway_id)"
            " JOIN patients p ON p.team_id = g.team_id"
            " WHERE d.device_id = %s AND p.patient_id = %s AND g.team_id = ANY(%s)",
            (body.device_id, patient_id, list(who.team_ids)),
        ).fetchone()
        if dev is None:
            raise not_found
        try:
            with conn.transaction():
                enrollment_id = enroll(conn, body.device_id, patient_id, start, body.end)
        except psycopg.errors.ExclusionViolation:
            if _clashes_outside(conn, who, body.device_id, start, body.end):
                raise not_found from None
            raise refuse(
                409,
                N_(
                    "Device %(device)s is already enrolled for part of that time;"
                    " end its other enrollment first."
                ),
                device=body.device_id,
            ) from None
        except psycopg.errors.CheckViolation:  # the database's own team check
            raise not_found from None
        audit(
            conn,
            who,
            "device_enrolled",
            patient_id,
            {
                "device_id": body.device_id,
                "start": start.isoformat(),
                "end": body.end.isoformat() if body.end else None,
            },
        )
    return EnrollmentOut(
        enrollment_id=enrollment_id,
        device_id=body.device_id,
        kind=dev[0],
        gateway_id=dev[1],
        start=start,
        end=body.end,
    )


def _clashes_outside(
    conn: psycopg.Connection,
    who: Clinician,
    device_id: str,
    start: datetime,
    end: datetime | None,
) -> bool:
    """Whether an overlapping enrollment is of a patient outside this admin's teams."""
    row = conn.execute(
        "SELECT 1 FROM enrollments e JOIN patients p USING (patient_id)"
        " WHERE e.device_id = %s AND e.valid && tstzrange(%s, %s, '[)')"
        " AND NOT (p.team_id = ANY(%s)) LIMIT 1",
        (device_id, start, end, list(who.team_ids)),
    ).fetchone()
    return row is not None


def end_enrollment(
    conn: psycopg.Connection, who: Clinician, patient_id: int, enrollment_id: int, at: datetime
) -> None:
    with conn.transaction():
        row = conn.execute(
            "UPDATE enrollments SET valid = tstzrange(lower(valid), %s, '[)')"
            " WHERE enrollment_id = %s AND patient_id = %s AND lower(valid) < %s"
            " AND (upper_inf(valid) OR upper(valid) > %s) RETURNING device_id",
            (at, enrollment_id, patient_id, at, at),
        ).fetchone()
        if row is None:
            raise refuse(
                409 if _enrollment_exists(conn, patient_id, enrollment_id) else 404,
                N_(
                    "This enrollment cannot end then: it has ended already, starts later,"
                    " or is not this patient's."
                ),
            )
        audit(
            conn,
            who,
            "device_unenrolled",
            patient_id,
            {"enrollment_id": enrollment_id, "device_id": row[0], "at": at.isoformat()},
        )


def _enrollment_exists(conn: psycopg.Connection, patient_id: int, enrollment_id: int) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM enrollments WHERE enrollment_id = %s AND patient_id = %s",
            (enrollment_id, patient_id),
        ).fetchone()
        is not None
    )


def end_follow_up(
    conn: psycopg.Connection, who: Clinician, patient_id: int, at: datetime, note: str | None
) -> None:
    """End the follow-up: the patient's open enrollments close at ``at``, the alerts engine
    stops evaluating them, its open requests to the phone are done, and every open alert
    is resolved by this person with an event saying the follow-up ended (nobody watches a
    patient who has left the programme, so an alert left open would only keep them on the
    dashboard)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE patients SET follow_up_ended_at = %s WHERE patient_id = %s"
            " AND follow_up_ended_at IS NULL RETURNING patient_id",
            (at, patient_id),
        ).fetchone()
        if row is None:
            raise refuse(409, N_("This patient's follow-up has ended already."))
        conn.execute(
            "UPDATE enrollments SET valid = tstzrange(lower(valid), %s, '[)')"
            " WHERE patient_id = %s AND lower(valid) < %s"
            " AND (upper_inf(valid) OR upper(valid) > %s)",
            (at, patient_id, at, at),
        )
        # the engine's requests to the phone end with it (a returned kit never reports
        # the good level that would close a battery request)
        conn.execute(
            "UPDATE patient_messages SET done_at = %s, done_reason = 'follow_up_ended'"
            " WHERE patient_id = %s AND sent_by IS NULL AND done_at IS NULL",
            (at, patient_id),
        )
        if note:
            conn.execute(
                "INSERT INTO clinician_notes (patient_id, clinician_id, body) VALUES (%s, %s, %s)",
                (patient_id, who.clinician_id, note),
            )
        closed = _close_alerts(conn, who, patient_id, note)
        detail = {"at": at.isoformat(), "alerts_closed": closed}
        audit(conn, who, "follow_up_ended", patient_id, detail)


def _close_alerts(
    conn: psycopg.Connection, who: Clinician, patient_id: int, note: str | None
) -> list[int]:
    # the transition says why (translated on the page); the note is the admin's own words
    reason = note
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    with conn.cursor() as cur:
        rows = cur.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = to_timestamp(%s),"
            " resolved_by = %s, resolution_note = %s, updated_at = now()"
            " WHERE patient_id = %s AND state <> 'resolved' RETURNING alert_id",
            (timestamp(now_ms), who.actor, reason, patient_id),
        ).fetchall()
        for (alert_id,) in rows:
            event(cur, alert_id, now_ms, "follow_up_ended", who.actor, reason)
            changed(cur, alert_id, patient_id, "resolved")
    return [int(r[0]) for r in rows]


def create_account(conn: psycopg.Connection, who: Clinician, body: ClinicianCreate) -> int:
    for team in body.team_ids:
        _team_of_admin(who, team)
    try:
        clinician_id = create_clinician(
            conn,
            str(body.email),
            body.display_name,
            body.role,
            hash_password(body.password),
            body.team_ids,
            body.language,
            body.time_zone,
        )
    except DuplicateAccountError as exc:
        raise refuse(409, N_("An account with this e-mail address exists already.")) from exc
    audit(conn, who, "clinician_created", None, {"clinician_id": clinician_id, "role": body.role})
    return clinician_id
