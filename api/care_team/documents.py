"""``/api/v1/patients/{id}/...`` for the patient's documents: the end-of-monitoring report
(made when the follow-up ends; the team can make it available again), the patient's data
export, the list of documents and their downloads. Every one audited."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.care_team import patient_export
from api.common import documents, monitoring_report
from api.common.database import Database
from api.common.documents import StoredDocument
from api.common.errors import refuse
from api.common.guards import Conn, Who, audit, get_db, patient_in_teams, read_patient
from api.common.labels import N_
from api.common.monitoring_report import DocumentTools
from api.common.pdf import PdfUnavailable
from api.common.schemas import DocumentOut, ExportOut, Message
from api.common.sessions import Clinician

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/v1",
    tags=["documents"],
    responses={
        401: {"model": Message, "description": "not signed in"},
        403: {"model": Message, "description": "not allowed for this account"},
        404: {"model": Message, "description": "no such patient or document"},
    },
)
NO_STORE = {"Cache-Control": "no-store, private"}
UNAVAILABLE = N_("Documents cannot be made on this server: %(reason)s")


def _out(patient_id: int, d: StoredDocument) -> DocumentOut:
    base = f"/api/v1/patients/{patient_id}/documents/{d.document_id}"
    return DocumentOut(
        document_id=d.document_id,
        kind=d.kind,  # type: ignore[arg-type]
        language=d.language,
        period_start=d.period_start,
        period_end=d.period_end,
        created_at=d.created_at,
        created_by=d.created_by,
        current=d.replaced_at is None,
        pdf_bytes=d.pdf_bytes,
        pdf_url=base + "/pdf",
        fhir_url=base + "/fhir",
    )


def make_reports_after_end(request: Request, conn: Conn, who: Clinician, patient_id: int) -> None:
    """Right after a follow-up ends (its own transaction committed): the report. A machine
    that cannot make PDFs still ends the follow-up; the team makes the report later."""
    try:
        ids = monitoring_report.make_reports(
            conn,
            request.app.state.db.flavour(conn),
            request.app.state.documents,
            patient_id,
            who.actor,
        )
    except PdfUnavailable as exc:
        log.error("end-of-monitoring report not made: %s", exc)
        return
    except Exception as exc:  # the follow-up has ended (committed): answer so
        log.error(
            "end-of-monitoring report of patient %s not made (%s); the team can make it"
            " again from the patient page",
            patient_id,
            type(exc).__name__,
        )
        return
    audit(conn, who, "report_made", patient_id, {"document_ids": ids, "reason": "follow_up_ended"})


@router.get("/patients/{patient_id}/documents")
def get_documents(patient_id: int, conn: Conn, who: Who) -> list[DocumentOut]:
    """The patient's reports (every edition, the current ones marked) and exports."""
    read_patient(conn, who, patient_id, "documents_read")
    return [_out(patient_id, d) for d in documents.listed(conn, patient_id)]


@router.post(
    "/patients/{patient_id}/end-of-monitoring-report",
    status_code=201,
    responses={409: {"model": Message, "description": "the follow-up goes on"}},
)
def post_report(
    patient_id: int,
    request: Request,
    conn: Conn,
    who: Who,
    db: Annotated[Database, Depends(get_db)],
) -> list[DocumentOut]:
    """Make the end-of-monitoring report again (French, the home physician's language,
    English) from the record as it is now, and make it the one the home physician
    downloads; the previous editions stay listed, marked replaced."""
    patient_in_teams(conn, who, patient_id)
    if monitoring_report.period(conn, patient_id) is None:
        raise refuse(409, N_("The report is made when the follow-up ends; it has not ended."))
    tools: DocumentTools = request.app.state.documents
    try:
        ids = monitoring_report.make_reports(conn, db.flavour(conn), tools, patient_id, who.actor)
    except PdfUnavailable as exc:
        raise refuse(503, UNAVAILABLE, reason=str(exc)) from None
    audit(conn, who, "report_made", patient_id, {"document_ids": ids, "reason": "sent_again"})
    return [_out(patient_id, d) for d in documents.listed(conn, patient_id) if d.document_id in ids]


@router.post("/patients/{patient_id}/export", status_code=201)
def post_export(
    patient_id: int,
    request: Request,
    conn: Conn,
    who: Who,
    db: Annotated[Database, Depends(get_db)],
) -> ExportOut:
    """The patient's data, complete (right of access and portability, L1111-7): a FHIR R4
    Bundle with every reading and a readable PDF in the patient's language. An open
    access request of the patient is marked fulfilled."""
    patient_in_teams(conn, who, patient_id)
    tools: DocumentTools = request.app.state.documents
    try:
        document_id, entries, fulfilled = patient_export.make_export(
            conn,
            db.flavour(conn),
            tools,
            patient_export.Answers(
                request.app.state.questionnaires, request.app.state.questionnaire_catalogs
            ),
            patient_id,
            who.clinician_id,
            who.actor,
        )
    except PdfUnavailable as exc:
        raise refuse(503, UNAVAILABLE, reason=str(exc)) from None
    audit(
        conn,
        who,
        "patient_export",
        patient_id,
        {"document_id": document_id, "entries": entries, "access_request_fulfilled": fulfilled},
    )
    made = next(d for d in documents.listed(conn, patient_id) if d.document_id == document_id)
    return ExportOut(
        document=_out(patient_id, made), resources=entries, access_request_fulfilled=fulfilled
    )


def _download(
    conn: psycopg.Connection,
    who: Clinician,
    patient_id: int,
    document_id: int,
    fmt: str,
    body: bytes | None,
    media_type: str,
    suffix: str,
) -> Response:
    """One stored document as a file: the same refusal and the same audit whatever its form."""
    if body is None:
        raise refuse(404, N_("This document does not exist."))
    audit(conn, who, "document_downloaded", patient_id, {"document_id": document_id, "as": fmt})
    return Response(
        body,
        media_type=media_type,
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="{document_id}{suffix}"',
        },
    )


@router.get(
    "/patients/{patient_id}/documents/{document_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the PDF"}},
)
def get_document_pdf(patient_id: int, document_id: int, conn: Conn, who: Who) -> Response:
    patient_in_teams(conn, who, patient_id)
    body = documents.pdf(conn, patient_id, document_id)
    return _download(conn, who, patient_id, document_id, "pdf", body, "application/pdf", ".pdf")


@router.get(
    "/patients/{patient_id}/documents/{document_id}/fhir",
    response_class=JSONResponse,
    responses={200: {"content": {"application/fhir+json": {}}, "description": "FHIR R4"}},
)
def get_document_fhir(patient_id: int, document_id: int, conn: Conn, who: Who) -> Response:
    patient_in_teams(conn, who, patient_id)
    bundle = documents.fhir(conn, patient_id, document_id)
    body = None if bundle is None else json.dumps(bundle, ensure_ascii=False).encode()
    return _download(
        conn, who, patient_id, document_id, "fhir", body, "application/fhir+json", ".fhir.json"
    )
