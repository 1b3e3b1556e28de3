"""The patient app's screens under ``/p/``: the home screen, and the refusal page every
patient route answers when the phone is not (or no longer) enrolled."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.common.guards import Conn
from api.patient.access import PREFIX, Patient, PatientRefused, audit_patient
from api.patient.screen import patient_page
from api.patient.view import NO_STORE, T_, PatientView, browser_view, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def refused(request: Request, exc: PatientRefused) -> Response:
    """The answer to ``PatientRefused``: JSON under ``/p/api/``, a page otherwise."""
    view = PatientView(request, exc.language) if exc.language is not None else browser_view(request)
    if request.url.path.startswith(f"{PREFIX}/api/"):
        sentence = view.t(REFUSAL_SENTENCES.get(exc.reason, REFUSAL_SENTENCES["not_enrolled"]))
        return JSONResponse({"detail": sentence}, exc.status, headers=NO_STORE)
    page: HTMLResponse = render(
        request, "patient/refused.html", view, {"reason": exc.reason}, exc.status
    )
    return page


REFUSAL_SENTENCES = {
    "not_enrolled": T_("This phone is not connected to a follow-up."),
    "credential_revoked": T_("Your care team disconnected this phone."),
    "credential_replaced": T_("Another phone was connected to your follow-up since."),
    "credential_expired": T_("This phone's connection has expired."),
    "credential_ended": T_("Your follow-up by the care team has ended."),
    "other_site": T_("This request came from another website and was refused."),
}


@router.get("/")
def home(request: Request, conn: Conn, caller: Patient) -> Response:
    audit_patient(conn, caller, "patient_app_home")
    return patient_page(request, conn, caller, "patient/home.html", nav="home")
