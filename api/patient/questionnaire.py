"""The daily questionnaire on the patient's phone: one question per block, big touch
targets, in the patient's language (the ``questionnaire`` catalog; right to left in
Arabic). The form posts without any script (``/p/questionnaire``); an app can post JSON
(``/p/api/questionnaire``). Both store through ``store.questionnaires`` (the response,
its coded answers, the readings the alert rules judge, the NOTIFY that wakes the engine
and the team's open pages), once per ``submission_id`` whatever the retries."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.common.guards import Conn
from api.common.questionnaires import reader_gettext
from api.patient.access import PREFIX, Patient, PatientCaller, audit_patient
from api.patient.screen import patient_page
from api.patient.view import NO_STORE
from store.questionnaires import AnswerError, record_response, responses
from vitals.questionnaire import Questionnaire

router = APIRouter(prefix=PREFIX, include_in_schema=False)
RTL = frozenset({"ar"})


class QuestionnaireSubmission(BaseModel):
    """What the phone sends: the answers by question id, and an id it chose for this
    submission (a retry after a lost answer sends the same one)."""

    model_config = ConfigDict(extra="forbid")

    submission_id: uuid.UUID
    answers: Annotated[dict[str, int], Field(max_length=40)]


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _questionnaire(request: Request, conn: Conn, caller: PatientCaller) -> Questionnaire | None:
    row = conn.execute(
        "SELECT protocol FROM patients WHERE patient_id = %s", (caller.patient_id,)
    ).fetchone()
    found: Mapping[str, Questionnaire] = request.app.state.questionnaires
    return found.get(row[0]) if row else None


def _store(
    request: Request,
    conn: Conn,
    caller: PatientCaller,
    questionnaire: Questionnaire,
    answers: Mapping[str, int],
    submission_id: uuid.UUID,
) -> int:
    try:
        rid, new = record_response(
            conn,
            caller.patient_id,
            questionnaire,
            caller.language,
            answers,
            submission_id,
            datetime.now(UTC),
            caller.credential_id,
        )
    except AnswerError as exc:
        if not exc.item_id:
            raise _Refused("Please answer at least one question.") from None
        if exc.args[0] == "unknown question":
            raise _Refused("This question is not part of your questionnaire.") from None
        raise _Refused("This answer is not one of the choices of this question.") from None
    if new:
        audit_patient(conn, caller, "questionnaire_answered", {"response": rid})
    return rid


def _page(
    request: Request,
    conn: Conn,
    caller: PatientCaller,
    questionnaire: Questionnaire | None,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    q: Callable[[str], str] = reader_gettext(request, caller.language)
    last = responses(conn, caller.patient_id, 1)
    return patient_page(
        request,
        conn,
        caller,
        "patient/questionnaire.html",
        {
            "q": q,
            "questionnaire": questionnaire,
            "submission_id": uuid.uuid4(),
            "last": last[0] if last else None,
            **context,
        },
        nav="questionnaire",
        status_code=status_code,
    )


@router.get("/questionnaire")
def questionnaire_page(request: Request, conn: Conn, caller: Patient) -> Response:
    audit_patient(conn, caller, "questionnaire_read")
    return _page(request, conn, caller, _questionnaire(request, conn, caller), {})


@router.post("/questionnaire")
async def questionnaire_form(request: Request, conn: Conn, caller: Patient) -> Response:
    """The form, posted without script: answers as ``<item id>=<value>`` fields."""
    questionnaire = _questionnaire(request, conn, caller)
    form = await request.form()
    chosen: dict[str, int] = {}
    error: str | None = None
    try:
        submission = uuid.UUID(str(form.get("submission_id", "")))
    except ValueError:
        submission, error = uuid.uuid4(), "Please answer at least one question."
    for key, value in form.multi_items():
        if key == "submission_id":
            continue
        try:
            chosen[key] = int(str(value))
        except ValueError:
            error = "This answer is not one of the choices of this question."
    if questionnaire is None:
        return _page(request, conn, caller, None, {}, 404)
    if error is None:
        try:
            _store(request, conn, caller, questionnaire, chosen, submission)
        except _Refused as exc:
            error = exc.message
    if error is not None:
        context = {"error": error, "chosen": chosen}
        return _page(request, conn, caller, questionnaire, context, 422)
    return _page(request, conn, caller, questionnaire, {"sent": True})


@router.post("/api/questionnaire")
def questionnaire_json(
    body: QuestionnaireSubmission, request: Request, conn: Conn, caller: Patient
) -> Response:
    """For an app that sends JSON; answers ``{"response_id"}`` or ``{"detail"}``."""
    q = reader_gettext(request, caller.language)
    questionnaire = _questionnaire(request, conn, caller)
    if questionnaire is None:
        detail = q("No questionnaire is planned for your follow-up.")
        return JSONResponse({"detail": detail}, 404, headers=NO_STORE)
    try:
        rid = _store(request, conn, caller, questionnaire, body.answers, body.submission_id)
    except _Refused as exc:
        return JSONResponse({"detail": q(exc.message)}, 422, headers=NO_STORE)
    return JSONResponse({"response_id": rid}, 201, headers=NO_STORE)
