"""The team's side of the patient app: enrollment links (with a printable QR code) made
by any clinician of the patient's team, the phones they bound, and revoking either.
The token appears once, in the answer to the POST; the database keeps its SHA-256."""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request

from api.care_team.rest import ERRORS
from api.common.errors import refuse
from api.common.guards import Conn, Who, audit, patient_in_teams, read_patient
from api.common.labels import N_
from api.common.patient_app import create_link, revoke_credential, revoke_link
from api.common.schemas import (
    Message,
    PatientApp,
    PatientAppLinkCreated,
    PatientAppLinkOut,
    PatientPhoneOut,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["patient app"])


def _absolute(request: Request, path: str) -> str:
    """The link a phone's camera reads: on the public base URL, else this request's."""
    base = request.app.state.settings.api.public_base_url or str(request.base_url)
    return base.rstrip("/") + path


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
        qr_svg=qr.svg_inline(scale=5, border=4, dark="#000", light="#fff"),
        expires_at=link.expires_at,
    )


@router.get("/patients/{patient_id}/patient-app")
def get_patient_app(patient_id: int, conn: Conn, who: Who) -> PatientApp:
    read_patient(conn, who, patient_id, "patient_app_read")
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
