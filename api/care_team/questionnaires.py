"""The patient's questionnaire answers for the care team: the coded answers over REST,
and each response as an item of the patient page's timeline, which the page fetches as a
fragment when the live events say a new one arrived (no reload). Every read is audited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.care_team.pages import Page, render
from api.common.errors import refuse
from api.common.guards import Conn, Who, read_patient
from api.common.labels import N_
from api.common.questionnaires import ResponseView, reader_gettext, response_views, view_of
from api.common.schemas import ERRORS, QuestionnaireAnswerOut, QuestionnaireResponseOut
from store.questionnaires import responses

api_router = APIRouter(prefix="/api/v1", responses=ERRORS)
page_router = APIRouter(include_in_schema=False)


@api_router.get("/patients/{patient_id}/questionnaires", tags=["patients"])
def get_questionnaires(
    patient_id: int, request: Request, conn: Conn, who: Who
) -> list[QuestionnaireResponseOut]:
    """The patient's latest questionnaire responses, newest first: each answer with its
    code (LOINC where one exists) and its words in the reader's language."""
    read_patient(conn, who, patient_id, "questionnaires_read")
    views = response_views(
        conn, patient_id, request.app.state.questionnaires, reader_gettext(request, who.language)
    )
    return [_out(v) for v in views]


def _out(view: ResponseView) -> QuestionnaireResponseOut:
    return QuestionnaireResponseOut(
        response_id=view.response_id,
        answered_at=view.answered_at,
        language=view.language,
        answers=[
            QuestionnaireAnswerOut(
                item_id=line.item_id,
                question=line.question,
                answer=line.answer,
                value=line.value,
                code_system=line.code_system,
                code=line.code,
                notable=line.notable,
            )
            for line in view.lines
        ],
    )


@page_router.get("/patients/{patient_id}/fragments/questionnaire/{response_id}")
def questionnaire_item(
    patient_id: int, response_id: int, request: Request, conn: Conn, who: Page
) -> HTMLResponse:
    """One response as the timeline shows it (the page inserts it on a live event)."""
    read_patient(conn, who, patient_id, "questionnaires_read", response=response_id)
    found = responses(conn, patient_id, 1, response_id)
    if not found:
        raise refuse(404, N_("This questionnaire response does not exist."))
    view = view_of(
        found[0],
        request.app.state.questionnaires.get(found[0].protocol),
        reader_gettext(request, who.language),
    )
    zone = conn.execute(
        "SELECT time_zone FROM patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    context = {"response": view, "patient_zone": zone[0] if zone else "Europe/Paris"}
    return render(request, "_questionnaire_item.html", context, who)
