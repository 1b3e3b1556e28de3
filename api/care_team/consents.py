"""Consent and patient rights, as the team records them: the patient's decisions on each
notice (monitoring, sharing with a named home physician, transfer outside the EU/EEA),
their withdrawals, and requests of access or portability with their 8-day deadline.
Every read and change is audited. The gates that enrolment and sharing pass through
live here too, so that one place says why a coordinator is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.care_team.pages import Page, render
from api.common.consent_records import consent_records
from api.common.errors import refuse
from api.common.guards import Conn, Who, audit, patient_in_teams, read_patient
from api.common.i18n import SHARE_LANGUAGE_NAMES
from api.common.labels import N_
from api.common.notices import NOTICE_KINDS, NOTICE_LANGUAGES, current_version, notice, versions
from api.common.schemas import (
    AccessRequestCreate,
    AccessRequestOut,
    ConsentCreate,
    ConsentOut,
    ConsentRecorded,
    Consents,
    ConsentWithdraw,
    Message,
    NoticeIndex,
    NoticeOut,
)
from store import consents as store
from store.access_requests import (
    AccessRequest,
    access_requests,
    fulfil_access_request,
    legal_today,
    record_access_request,
)
from store.consents import Monitoring, NewConsent, SharingConsent

router = APIRouter(
    prefix="/api/v1",
    tags=["consent"],
    responses={
        401: {"model": Message, "description": "not signed in"},
        403: {"model": Message, "description": "not allowed for this account"},
        404: {"model": Message, "description": "no such resource"},
    },
)
pages = APIRouter(include_in_schema=False)
FUTURE_TOLERANCE = timedelta(minutes=5)

# -- the gates -------------------------------------------------------------------------


def require_monitoring_consent(conn: psycopg.Connection, patient_id: int) -> None:
    """No device is enrolled without the patient's consent to remote monitoring in force."""
    state = store.monitoring_state(conn, patient_id)
    if state is Monitoring.GIVEN:
        return
    if state is Monitoring.REFUSED:
        raise refuse(
            409,
            N_(
                "The patient refused remote monitoring: no device can be enrolled. If they"
                " change their mind, record their new consent on the patient page first."
            ),
        )
    if state is Monitoring.WITHDRAWN:
        raise refuse(
            409,
            N_(
                "The patient withdrew their consent to remote monitoring: no device can be"
                " enrolled unless they consent again."
            ),
        )
    raise refuse(
        409,
        N_(
            "Record the patient's consent to remote monitoring (patient page, Consent)"
            " before enrolling a device."
        ),
    )


def sharing_consent_for_link(
    conn: psycopg.Connection, patient_id: int, consent_id: int | None
) -> SharingConsent:
    """The sharing consent a new link is made under: the one named, or the only one in
    force. A physician outside the EU/EEA also needs the transfer acknowledged."""
    in_force = store.sharing_consents(conn, patient_id)
    if consent_id is not None:
        chosen = next((c for c in in_force if c.consent_id == consent_id), None)
        if chosen is None:
            raise refuse(
                409,
                N_(
                    "No sharing consent in force names this physician: record the patient's"
                    " consent to share with them first."
                ),
            )
    elif not in_force:
        if store.withdrawn_sharing_exists(conn, patient_id):
            raise refuse(
                409,
                N_(
                    "The patient withdrew their consent to sharing with a home physician: no"
                    " link can be made unless they consent again."
                ),
            )
        raise refuse(
            409,
            N_(
                "The patient has not consented to sharing with a home physician: record"
                " that consent, naming the physician, before making a link."
            ),
        )
    elif len(in_force) > 1:
        raise refuse(
            422,
            N_(
                "The patient consented to sharing with several physicians: choose which"
                " one this link is for."
            ),
        )
    else:
        chosen = in_force[0]
    if not chosen.usable:
        raise refuse(
            409,
            N_(
                "%(name)s practises outside the EU/EEA: record the patient's acknowledgement"
                " of the transfer before making a link."
            ),
            name=chosen.physician_name,
        )
    return chosen


# -- notices ---------------------------------------------------------------------------


def _notice_or_404(kind: str, version: int, language: str) -> NoticeOut:
    found = notice(kind, version, language)
    if found is None:
        raise refuse(404, N_("There is no such notice in this version and language."))
    return NoticeOut(
        kind=found.kind,  # type: ignore[arg-type]
        version=found.version,
        language=found.language,
        direction=found.direction,  # type: ignore[arg-type]
        title=found.title,
        paragraphs=list(found.paragraphs),
    )


@router.get("/notices")
def get_notices(_who: Who) -> list[NoticeIndex]:
    """The notices a patient can be shown: each kind's versions and languages."""
    return [
        NoticeIndex(
            kind=kind,  # type: ignore[arg-type]
            current_version=current_version(kind),
            versions=list(versions(kind)),
            languages=list(NOTICE_LANGUAGES),
        )
        for kind in NOTICE_KINDS
    ]


@router.get("/notices/{kind}/{version}/{language}")
def get_notice(kind: str, version: int, language: str, _who: Who) -> NoticeOut:
    return _notice_or_404(kind, version, language)


@pages.get("/notices/{kind}/{version}/{language}")
def notice_page(
    kind: str, version: int, language: str, request: Request, who: Page
) -> HTMLResponse:
    """A notice to read to (or with) the patient, in their language, from the team's app."""
    text = _notice_or_404(kind, version, language)
    return render(
        request, "notice.html", {"notice": text, "notice_languages": SHARE_LANGUAGE_NAMES}, who
    )


# -- consents --------------------------------------------------------------------------


def _one(conn: psycopg.Connection, patient_id: int, consent_id: int) -> ConsentOut:
    return next(r for r in consent_records(conn, patient_id).records if r.consent_id == consent_id)


def _check_new(conn: psycopg.Connection, patient_id: int, body: ConsentCreate) -> None:
    if notice(body.kind, body.notice_version, body.notice_language) is None:
        raise refuse(
            422,
            N_("There is no notice version %(version)s in this language for this consent."),
            version=body.notice_version,
        )
    if body.decision == "refused" and body.kind != "monitoring":
        raise refuse(
            422,
            N_(
                "Only remote monitoring is recorded as a refusal; when the patient does not"
                " agree to the others, record nothing."
            ),
        )
    if body.decided_at is not None and body.decided_at > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise refuse(422, N_("The patient's decision cannot be dated in the future."))
    if (body.kind == "sharing") != (body.physician is not None):
        raise refuse(
            422,
            N_("A sharing consent names the home physician; the other consents name none."),
        )
    if (body.kind == "transfer") != (body.sharing_consent_id is not None):
        raise refuse(
            422,
            N_("A transfer acknowledgement names the sharing consent (physician) it covers."),
        )
    if body.kind == "transfer":
        sharing = next(
            (
                c
                for c in store.sharing_consents(conn, patient_id)
                if c.consent_id == body.sharing_consent_id
            ),
            None,
        )
        if sharing is None:
            raise refuse(
                409,
                N_(
                    "No sharing consent in force names this physician: record the patient's"
                    " consent to share with them first."
                ),
            )
        if not sharing.needs_transfer:
            raise refuse(
                422,
                N_(
                    "This physician practises in the EU/EEA: no transfer acknowledgement is needed."
                ),
            )


@router.get("/patients/{patient_id}/consents")
def get_consents(patient_id: int, conn: Conn, who: Who) -> Consents:
    """Every consent record of the patient, newest first, and the monitoring state."""
    read_patient(conn, who, patient_id, "consents_read")
    return consent_records(conn, patient_id)


@router.post(
    "/patients/{patient_id}/consents",
    status_code=201,
    responses={
        409: {"model": Message, "description": "the sharing consent it covers is not in force"},
        422: {"model": Message, "description": "no such notice, or an inconsistent record"},
    },
)
def post_consent(patient_id: int, body: ConsentCreate, conn: Conn, who: Who) -> ConsentRecorded:
    """Record the patient's decision (any clinician of the team). A refusal of monitoring
    ends the patient's enrolments at once."""
    patient_in_teams(conn, who, patient_id)
    now = datetime.now(UTC)
    with conn.transaction():
        conn.execute("SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,))
        _check_new(conn, patient_id, body)
        physician = body.physician
        consent_id, ended = store.record(
            conn,
            patient_id,
            NewConsent(
                kind=body.kind,
                decision=body.decision,
                notice_version=body.notice_version,
                notice_language=body.notice_language,
                decided_at=body.decided_at or now,
                physician_name=physician.name if physician else None,
                physician_email=str(physician.email) if physician and physician.email else None,
                physician_country=physician.country if physician else None,
                sharing_consent_id=body.sharing_consent_id,
            ),
            who.clinician_id,
            now,
        )
        audit(
            conn,
            who,
            "consent_recorded",
            patient_id,
            {
                "consent_id": consent_id,
                "kind": body.kind,
                "decision": body.decision,
                "notice": f"{body.kind}/v{body.notice_version}/{body.notice_language}",
                "enrollments_ended": ended,
            },
        )
    return ConsentRecorded(
        consent=_one(conn, patient_id, consent_id), enrollments_ended=ended, links_revoked=[]
    )


@router.post(
    "/patients/{patient_id}/consents/{consent_id}/withdraw",
    responses={409: {"model": Message, "description": "not in force"}},
)
def post_withdraw(
    patient_id: int, consent_id: int, body: ConsentWithdraw, conn: Conn, who: Who
) -> ConsentRecorded:
    """Record the patient's withdrawal: monitoring ends the enrolments, sharing (or the
    transfer a physician outside the EU/EEA needs) revokes that physician's links, at
    once and in the same transaction."""
    patient_in_teams(conn, who, patient_id)
    now = datetime.now(UTC)
    with conn.transaction():
        conn.execute("SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,))
        exists = conn.execute(
            "SELECT 1 FROM consents WHERE consent_id = %s AND patient_id = %s",
            (consent_id, patient_id),
        ).fetchone()
        if exists is None:
            raise refuse(404, N_("This consent record does not exist."))
        done = store.withdraw(conn, patient_id, consent_id, who.clinician_id, now, body.note)
        if done is None:
            raise refuse(
                409,
                N_("This consent is not in force: it was withdrawn already, or it is a refusal."),
            )
        audit(
            conn,
            who,
            "consent_withdrawn",
            patient_id,
            {
                "consent_id": consent_id,
                "kind": done.kind,
                "enrollments_ended": done.enrolments_ended,
                "links_revoked": done.links_revoked,
            },
        )
    return ConsentRecorded(
        consent=_one(conn, patient_id, consent_id),
        enrollments_ended=done.enrolments_ended,
        links_revoked=done.links_revoked,
    )


# -- access and portability requests ---------------------------------------------------


def request_out(r: AccessRequest, today: datetime) -> AccessRequestOut:
    return AccessRequestOut(
        request_id=r.request_id,
        kind=r.kind,  # type: ignore[arg-type]
        received_on=r.received_on,
        due_on=r.due_on,
        overdue=r.overdue(legal_today(today)),
        note=r.note,
        recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
        fulfilled_at=r.fulfilled_at,
        fulfilled_by=r.fulfilled_by,
    )


@router.get("/patients/{patient_id}/access-requests")
def get_access_requests(patient_id: int, conn: Conn, who: Who) -> list[AccessRequestOut]:
    read_patient(conn, who, patient_id, "access_requests_read")
    now = datetime.now(UTC)
    return [request_out(r, now) for r in access_requests(conn, patient_id)]


@router.post("/patients/{patient_id}/access-requests", status_code=201)
def post_access_request(
    patient_id: int, body: AccessRequestCreate, conn: Conn, who: Who
) -> AccessRequestOut:
    """Record a patient's request of access or portability, received on a given day; the
    answer is due 8 days later (CSP L1111-7)."""
    patient_in_teams(conn, who, patient_id)
    if body.received_on > datetime.now(UTC).date() + timedelta(days=1):
        raise refuse(422, N_("A request cannot be received in the future."))
    with conn.transaction():
        request_id = record_access_request(
            conn, patient_id, body.kind, body.received_on, who.clinician_id, body.note
        )
        audit(
            conn,
            who,
            "access_request_recorded",
            patient_id,
            {"request_id": request_id, "kind": body.kind, "received_on": str(body.received_on)},
        )
    now = datetime.now(UTC)
    return next(
        request_out(r, now) for r in access_requests(conn, patient_id) if r.request_id == request_id
    )


@router.post(
    "/patients/{patient_id}/access-requests/{request_id}/fulfil",
    responses={409: {"model": Message, "description": "answered already"}},
)
def post_fulfil(patient_id: int, request_id: int, conn: Conn, who: Who) -> AccessRequestOut:
    """Mark the request answered (the export itself is made elsewhere and audited there)."""
    patient_in_teams(conn, who, patient_id)
    now = datetime.now(UTC)
    with conn.transaction():
        found = next(
            (r for r in access_requests(conn, patient_id) if r.request_id == request_id), None
        )
        if found is None:
            raise refuse(404, N_("This request does not exist."))
        if not fulfil_access_request(conn, request_id, who.clinician_id):
            raise refuse(409, N_("This request was answered already."))
        audit(conn, who, "access_request_fulfilled", patient_id, {"request_id": request_id})
    return next(
        request_out(r, now) for r in access_requests(conn, patient_id) if r.request_id == request_id
    )
