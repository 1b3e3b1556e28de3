"""Binding the patient's phone: ``/p/enroll/{token}`` from the link or QR code the team
printed at discharge. GET only shows a button (a link preview or a scanner that fetches
the URL must not use up a single-use link); POST uses the link and sets the credential
cookie. A link reused, expired, revoked or past the follow-up gets a page in the
patient's language, an unknown one in the browser's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.common.guards import Conn
from api.common.patient_app import CREDENTIAL_VALIDITY, Holder, LinkState, link_state, use_link
from api.common.sessions import secure_cookies
from api.patient.access import COOKIE, COOKIE_PATH, PREFIX, same_origin
from api.patient.screen import help_for
from api.patient.view import NO_STORE, PatientView, browser_view, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

LINK_STATUS = {
    LinkState.UNKNOWN: 404,
    LinkState.USED: 410,
    LinkState.EXPIRED: 410,
    LinkState.REVOKED: 410,
    LinkState.ENDED: 410,
}


def _view(request: Request, holder: Holder | None) -> PatientView:
    if holder is None:
        return browser_view(request)
    return PatientView(request, holder.language, holder.zone, holder.home_country)


def link_refused(
    request: Request, conn: Conn, state: LinkState, holder: Holder | None
) -> HTMLResponse:
    context: dict[str, object] = {"reason": f"link_{state.value}"}
    if holder is not None:  # whom to call for a new link
        context["help"] = help_for(conn, holder.patient_id)
    return render(
        request, "patient/refused.html", _view(request, holder), context, LINK_STATUS[state]
    )


@router.get("/enroll/{token}")
def enroll_page(token: str, request: Request, conn: Conn) -> Response:
    state, holder = link_state(conn, token)
    if state is not LinkState.OK:
        return link_refused(request, conn, state, holder)
    return render(request, "patient/enroll.html", _view(request, holder), {"token": token})


@router.post("/enroll/{token}")
def enroll(token: str, request: Request, conn: Conn) -> Response:
    if not same_origin(request):  # another site must not bind this browser to a patient
        return render(
            request, "patient/refused.html", browser_view(request), {"reason": "other_site"}, 403
        )
    state, holder, _credential_id, secret = use_link(conn, token)
    if state is not LinkState.OK or secret is None:
        return link_refused(request, conn, state, holder)
    response = Response(status_code=303, headers={"Location": f"{PREFIX}/", **NO_STORE})
    response.set_cookie(
        COOKIE,
        secret,
        max_age=int(CREDENTIAL_VALIDITY.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response
