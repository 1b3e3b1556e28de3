"""The patient app's screens under ``/p/``: the home screen (the team's messages), and
the refusal page every patient route answers when the phone is not (or no longer)
enrolled, with whom to call when the patient is known."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.common.database import Database
from api.common.guards import Conn
from api.common.patient_app import credential_state
from api.patient.access import COOKIE, PREFIX, Patient, PatientRefused, audit_patient
from api.patient.messages import TEXTS, for_home
from api.patient.screen import help_for, patient_page
from api.patient.view import NO_STORE, T_, PatientView, browser_view, render
from vitals.battery import CHARGE_KINDS

router = APIRouter(prefix=PREFIX, include_in_schema=False)

REFUSAL_SENTENCES = {
    "not_enrolled": T_("This phone is not connected to a follow-up."),
    "credential_revoked": T_("Your care team disconnected this phone."),
    "credential_replaced": T_("Another phone was connected to your follow-up since."),
    "credential_expired": T_("This phone's connection has expired."),
    "credential_ended": T_("Your follow-up by the care team has ended."),
    "other_site": T_("This request came from another website and was refused."),
}


def refused(request: Request, exc: PatientRefused) -> Response:
    """The answer to ``PatientRefused``: JSON under ``/p/api/``, a page otherwise (with
    the team's phone and the emergency number when the patient is known)."""
    view = PatientView(request, exc.language) if exc.language is not None else browser_view(request)
    if request.url.path.startswith(f"{PREFIX}/api/"):
        sentence = view.t(REFUSAL_SENTENCES.get(exc.reason, REFUSAL_SENTENCES["not_enrolled"]))
        return JSONResponse({"detail": sentence}, exc.status, headers=NO_STORE)
    context: dict[str, object] = {"reason": exc.reason}
    if exc.patient_id is not None:
        db: Database = request.app.state.db
        with db.connection() as conn:
            context["help"] = help_for(conn, exc.patient_id)
    return render(request, "patient/refused.html", view, context, exc.status)


HTTP_SENTENCES = {
    404: T_("This page does not exist."),
    405: T_("This action is not possible here."),
    422: T_("Some of the values sent are not valid."),
}
OTHER_ERROR = T_("The request was refused.")


def is_patient_path(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(f"{PREFIX}/")


def _known_view(request: Request) -> PatientView:
    """The patient's language when this phone is enrolled (the route may not have asked
    who is calling: an unknown path), else the browser's."""
    caller = getattr(request.state, "patient", None)
    if caller is not None:
        return PatientView(request, caller.language, caller.zone)
    token = request.cookies.get(COOKIE)
    if token:
        db: Database = request.app.state.db
        with db.connection() as conn:
            _state, holder, _id = credential_state(conn, token)
        if holder is not None:
            return PatientView(request, holder.language, holder.zone)
    return browser_view(request)


def http_error(request: Request, status: int, headers: Mapping[str, str] | None = None) -> Response:
    """Any other error under ``/p/``, in the patient's language when the phone is known
    (else the browser's): a sentence under ``/p/api/``, a page otherwise."""
    view = _known_view(request)
    sentence = view.t(HTTP_SENTENCES.get(status, OTHER_ERROR))
    extra = {**NO_STORE, **(headers or {})}
    if request.url.path.startswith(f"{PREFIX}/api/"):
        return JSONResponse({"detail": sentence}, status, headers=extra)
    page = render(
        request, "patient/refused.html", view, {"reason": "error", "sentence": sentence}, status
    )
    page.headers.update(extra)
    return page


@router.get("/")
def home(request: Request, conn: Conn, caller: Patient) -> Response:
    messages = for_home(conn, caller.patient_id)
    audit_patient(conn, caller, "patient_app_home", {"messages": [m.message_id for m in messages]})
    return patient_page(
        request,
        conn,
        caller,
        "patient/home.html",
        {"messages": messages, "message_texts": TEXTS, "charge_kinds": CHARGE_KINDS},
        nav="home",
    )
