"""The home physicians' questions in the team's worklist: the open ones of the team's
patients (REST and the dashboard's live fragment), a patient's, and the answer, which
the physician then reads on the shared page. Reads and answers are audited."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.care_team.pages import render
from api.common import questions
from api.common.errors import refuse
from api.common.guards import Conn, Who, audit, patient_in_teams, read_patient, signed_in
from api.common.labels import N_
from api.common.schemas import AnswerCreate, Message, QuestionOut
from api.common.sessions import Clinician

router = APIRouter()
Page = Annotated[Clinician, Depends(signed_in)]


def _out(q: questions.Question) -> QuestionOut:
    return QuestionOut.model_validate(asdict(q))


def worklist(conn: Conn, who: Clinician) -> list[questions.Question]:
    """The open questions of the clinician's teams, audited as one read."""
    open_ = questions.open_for_teams(conn, list(who.team_ids))
    audit(
        conn,
        who,
        "questions_read",
        None,
        {"patients": sorted({q.patient_id for q in open_}), "questions": len(open_)},
    )
    return open_


@router.get("/api/v1/questions", tags=["home physicians"])
def open_questions(conn: Conn, who: Who) -> list[QuestionOut]:
    """Unanswered questions and news from home physicians, for the team's patients."""
    return [_out(q) for q in worklist(conn, who)]


@router.get("/api/v1/patients/{patient_id}/questions", tags=["home physicians"])
def patient_questions(patient_id: int, conn: Conn, who: Who) -> list[QuestionOut]:
    """Every question and news about this patient from home physicians, with answers."""
    read_patient(conn, who, patient_id, "questions_read")
    return [_out(q) for q in questions.of_patient(conn, patient_id)]


@router.post(
    "/api/v1/questions/{question_id}/answer",
    tags=["home physicians"],
    responses={409: {"model": Message, "description": "answered already"}},
)
def answer_question(question_id: int, body: AnswerCreate, conn: Conn, who: Who) -> QuestionOut:
    """Answer a home physician; the answer appears on their shared page (no e-mail)."""
    patient_id = questions.patient_of(conn, question_id)
    if patient_id is None:
        raise refuse(404, N_("This question does not exist."))
    patient_in_teams(conn, who, patient_id)
    if not questions.answer(conn, question_id, who.clinician_id, body.answer):
        raise refuse(409, N_("This question was answered already; reload the page."))
    audit(conn, who, "question_answered", patient_id, {"question_id": question_id})
    answered = [q for q in questions.of_patient(conn, patient_id) if q.question_id == question_id]
    return _out(answered[0])


@router.get("/fragments/questions", include_in_schema=False)
def questions_fragment(request: Request, conn: Conn, who: Page) -> HTMLResponse:
    """The dashboard's worklist of open questions, re-read on live events."""
    return render(request, "_questions.html", {"questions": worklist(conn, who)}, who)
