"""The team's side of the patient app: enrollment links (with a printable QR code) made
by any clinician of the patient's team, the phones they bound, and revoking either.
The token appears once, in the answer to the POST; the database keeps its SHA-256."""

from __future__ import annotations

import io
from typing import Any

import psycopg
import segno
from fastapi import APIRouter, Request

from api.common.errors import reader_language, refuse
from api.common.guards import Conn, Who, audit, patient_in_teams, read_patient
from api.common.labels import N_
from api.common.patient_app import (
    create_link,
    patient_language,
    revoke_credential,
    revoke_link,
)
from api.common.patient_messages import KINDS, PatientMessage, messages, send
from api.common.schemas import (
    ERRORS,
    Message,
    PatientApp,
    PatientAppLinkCreated,
    PatientAppLinkOut,
    PatientMessageCreate,
    PatientMessageOut,
    PatientPhoneOut,
)
from vitals.battery import CHARGE_KINDS

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["patient app"])


def _absolute(request: Request, path: str) -> str:
    """The link a phone's camera reads: on the public base URL, else this request's."""
    base = request.app.state.settings.api.public_base_url or str(request.base_url)
    return base.rstrip("/") + path


def _svg(qr: segno.QRCode) -> str:
    """A standalone SVG document (with its namespace, so that it also loads as an image)."""
    out = io.BytesIO()
    qr.save(out, kind="svg", xmldecl=False, scale=5, border=4, dark="#000", light="#fff")
    return out.getvalue().decode()


@router.post("/patients/{patient_id}/patient-app/links", status_code=201)
def post_patient_app_link(
    patient_id: int, request: Request, conn: Conn, who: Who
) -> PatientAppLinkCreated:
    """A one-time enrollment link for the patient's phone, valid 72 hours, with its QR
    code; both appear in this answer only."""
    patient_in_teams(conn, who, patient_id)
    row = conn.execute(
        "SELECT follow_up_ended_at IS NOT NULL FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    if row is not None and row[0]:
        raise refuse(409, N_("This patient's follow-up has ended already."))
    link = create_link(conn, patient_id, who.clinician_id)
    path = f"/p/enroll/{link.token}"
    qr = segno.make(_absolute(request, path), error="m")
    audit(conn, who, "patient_app_link_created", patient_id, {"link_id": link.link_id})
    return PatientAppLinkCreated(
        link_id=link.link_id,
        url=request.app.state.settings.api.link(path),
        qr_svg=_svg(qr),
        expires_at=link.expires_at,
    )


@router.get("/patients/{patient_id}/patient-app")
def get_patient_app(patient_id: int, conn: Conn, who: Who) -> PatientApp:
    read_patient(conn, who, patient_id, "patient_app_read")
    return patient_app_state(conn, patient_id)


def patient_app_state(conn: psycopg.Connection, patient_id: int) -> PatientApp:
    """The patient's enrollment links and phones, newest first."""
    links = conn.execute(
        "SELECT l.link_id, c.display_name, l.created_at, l.expires_at,"
        " CASE WHEN l.used_at IS NOT NULL THEN 'used' WHEN l.revoked_at IS NOT NULL"
        " THEN 'revoked' WHEN l.expires_at <= now() THEN 'expired' ELSE 'active' END,"
        " l.used_at FROM patient_app_links l JOIN clinicians c ON c.clinician_id = l.created_by"
        " WHERE l.patient_id = %s ORDER BY l.created_at DESC, l.link_id DESC",
        (patient_id,),
    ).fetchall()
    phones = conn.execute(
        "SELECT c.credential_id, c.created_at, c.last_seen_at,"
        " CASE WHEN c.revoked_reason = 'team' THEN 'revoked'"
        " WHEN c.revoked_reason IS NOT NULL THEN c.revoked_reason"
        " WHEN p.follow_up_ended_at <= now() THEN 'ended'"
        " WHEN c.expires_at <= now() THEN 'expired' ELSE 'active' END, c.revoked_at"
        " FROM patient_credentials c JOIN patients p USING (patient_id)"
        " WHERE c.patient_id = %s ORDER BY c.created_at DESC, c.credential_id DESC",
        (patient_id,),
    ).fetchall()
    return PatientApp(
        links=[
            PatientAppLinkOut(
                link_id=r[0],
                created_by=r[1],
                created_at=r[2],
                expires_at=r[3],
                state=r[4],
                used_at=r[5],
            )
            for r in links
        ],
        phones=[
            PatientPhoneOut(
                credential_id=r[0], enrolled_at=r[1], last_seen_at=r[2], state=r[3], revoked_at=r[4]
            )
            for r in phones
        ],
    )


def page_context(
    request: Request, conn: psycopg.Connection, patient_id: int, language: str
) -> dict[str, Any]:
    """What the patient page's "patient app" panel shows (the page audits the read).
    The printable enrollment sheet is in the patient's words (the ``patient`` catalog)."""
    catalogs = request.app.state.patient_catalogs
    spoken = patient_language(language)
    patient_catalog = catalogs.get(spoken, catalogs["en"])
    return {
        "patient_app": patient_app_state(conn, patient_id),
        "patient_messages": [_message_out(request, m) for m in messages(conn, patient_id)],
        "message_kinds": [(k, MESSAGE_TEXTS[k]) for k in KINDS],
        "patient_t": patient_catalog.gettext,
        "patient_lang": spoken,
    }


@router.post("/patients/{patient_id}/patient-app/links/{link_id}/revoke")
def post_revoke_patient_app_link(patient_id: int, link_id: int, conn: Conn, who: Who) -> Message:
    """Withdraw an enrollment link not yet used (a phone it bound is revoked apart)."""
    patient_in_teams(conn, who, patient_id)
    if not revoke_link(conn, link_id, patient_id, who.clinician_id):
        raise refuse(404, N_("This link is no longer active."))
    audit(conn, who, "patient_app_link_revoked", patient_id, {"link_id": link_id})
    return Message(detail="revoked")


@router.post("/patients/{patient_id}/patient-app/phones/{credential_id}/revoke")
def post_revoke_patient_phone(patient_id: int, credential_id: int, conn: Conn, who: Who) -> Message:
    """Disconnect the patient's phone at once (lost or shared phone)."""
    patient_in_teams(conn, who, patient_id)
    if not revoke_credential(conn, credential_id, patient_id, who.clinician_id):
        raise refuse(404, N_("This phone is no longer connected."))
    audit(conn, who, "patient_app_phone_revoked", patient_id, {"credential_id": credential_id})
    return Message(detail="revoked")


# the templated messages as the team reads them (the patient's words are in api/patient)
MESSAGE_TEXTS = {
    "measure_temperature": N_("Please measure your temperature now."),
    "we_will_call": N_("We will call you shortly."),
    "please_call_us": N_("Please call us."),
    "go_to_emergency": N_("Please go to the emergency department now."),
    # asked by the alerts engine when a spot reading awaits its confirmation
    "measure_spo2": N_("Please measure your oxygen level (SpO2) now."),
    "measure_pulse": N_("Please measure your pulse now."),
    "measure_blood_pressure": N_("Please measure your blood pressure now."),
    "measure_weight": N_("Please weigh yourself now."),
    # asked by the alerts engine when one reading is off and the others are not fresh
    "measure_vitals": N_(
        "Please take all your measurements now: temperature, blood pressure and oxygen level."
    ),
    # asked by the alerts engine when a device's battery is low
    "charge_oximeter": N_("Please charge the oximeter."),
    "charge_patch": N_("Please charge the heart-rate patch."),
    "batteries_bp_cuff": N_("Please replace the batteries of the blood-pressure cuff."),
    "batteries_thermometer": N_("Please replace the batteries of the thermometer."),
    "batteries_scale": N_("Please replace the batteries of the scale."),
    "batteries_glucose_meter": N_("Please replace the batteries of the glucose meter."),
    "charge_device": N_("Please charge the device or replace its batteries."),
}
# the sender of the requests the alerts engine makes (no clinician)
AUTOMATIC_SENDER = N_("the app, to confirm a measurement")
BATTERY_SENDER = N_("the app, about a low battery")


def _message_out(request: Request, m: PatientMessage) -> PatientMessageOut:
    catalog = request.app.state.catalogs[reader_language(request)]
    return PatientMessageOut(
        message_id=m.message_id,
        kind=m.kind,  # type: ignore[arg-type]
        text=catalog.gettext(MESSAGE_TEXTS[m.kind]),
        sent_at=m.sent_at,
        sent_by=m.sent_by
        if m.sent_by is not None
        else catalog.gettext(BATTERY_SENDER if m.kind in CHARGE_KINDS else AUTOMATIC_SENDER),
        read_at=m.read_at,
        done_at=m.done_at,
    )


@router.post("/patients/{patient_id}/patient-messages", status_code=201)
def post_patient_message(
    patient_id: int, body: PatientMessageCreate, request: Request, conn: Conn, who: Who
) -> PatientMessageOut:
    """Send the patient one of the templated messages; it appears on their app's home
    screen, in their language. Refused when no phone of the patient is connected (the
    message would reach nobody): call them instead."""
    patient_in_teams(conn, who, patient_id)
    row = conn.execute(
        "SELECT p.follow_up_ended_at IS NOT NULL, EXISTS (SELECT 1 FROM patient_credentials c"
        " WHERE c.patient_id = p.patient_id AND c.revoked_at IS NULL AND c.expires_at > now())"
        " FROM patients p WHERE p.patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    if row[0]:
        raise refuse(409, N_("This patient's follow-up has ended already."))
    if not row[1]:
        raise refuse(409, N_("No phone of this patient is connected to the app: call them."))
    message_id = send(conn, patient_id, body.kind, who.clinician_id)
    audit(
        conn, who, "patient_message_sent", patient_id, {"message_id": message_id, "kind": body.kind}
    )
    sent = next(m for m in messages(conn, patient_id) if m.message_id == message_id)
    return _message_out(request, sent)


@router.get("/patients/{patient_id}/patient-messages")
def get_patient_messages(
    patient_id: int, request: Request, conn: Conn, who: Who
) -> list[PatientMessageOut]:
    """The messages sent to the patient, newest first, with when each was read."""
    read_patient(conn, who, patient_id, "patient_messages_read")
    return [_message_out(request, m) for m in messages(conn, patient_id)]
