"""A clinician's security keys and passkeys (WebAuthn): the account's security page, and
the REST routes it calls to register a key (options, then the browser's answer), list
them and remove one. A registration's challenge is bound to the session that asked for
it. Every registration, refusal and removal writes an audit row."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api.care_team.pages import render
from api.common import security_keys
from api.common.errors import refuse
from api.common.guards import Conn, Who, audit, signed_in
from api.common.labels import N_
from api.common.schemas import (
    ERRORS,
    SecurityKeyCreate,
    SecurityKeyOptions,
    SecurityKeyOut,
)
from api.common.sessions import COOKIE, Clinician

router = APIRouter(prefix="/api/v1", tags=["security keys"], responses=ERRORS)
pages = APIRouter(include_in_schema=False)
Page = Annotated[Clinician, Depends(signed_in)]
NOT_REGISTERED = N_("The security key could not be registered; try again.")


def relying_party(request: Request) -> security_keys.RelyingParty:
    rp: security_keys.RelyingParty = request.app.state.relying_party
    return rp


def _session_digest(request: Request) -> bytes:
    return security_keys.digest(request.cookies.get(COOKIE, ""))


def _out(key: security_keys.SecurityKey) -> SecurityKeyOut:
    return SecurityKeyOut.model_validate({**asdict(key), "transports": list(key.transports)})


@pages.get("/account/security")
def security_page(request: Request, conn: Conn, who: Page) -> HTMLResponse:
    """The account's second factors: the authenticator app, and the security keys."""
    rp = relying_party(request)
    return render(
        request,
        "security_keys.html",
        {"keys": security_keys.keys_of(conn, who.clinician_id), "rp_id": rp.rp_id},
        who,
    )


@router.get("/security-keys")
def list_keys(conn: Conn, who: Who) -> list[SecurityKeyOut]:
    return [_out(k) for k in security_keys.keys_of(conn, who.clinician_id)]


@router.post("/security-keys/options")
def registration_options(request: Request, conn: Conn, who: Who) -> SecurityKeyOptions:
    """Options for ``navigator.credentials.create``; the challenge waits 3 minutes for
    this session's answer."""
    if len(security_keys.keys_of(conn, who.clinician_id)) >= security_keys.MAX_KEYS:
        raise refuse(409, N_("An account holds at most 10 security keys."))
    options = security_keys.registration_options(
        conn, relying_party(request), who.clinician_id, who.email, _session_digest(request)
    )
    return SecurityKeyOptions(options=options)


@router.post(
    "/security-keys",
    status_code=201,
    responses={400: {"description": "the key's answer does not hold"}},
)
def register_key(body: SecurityKeyCreate, request: Request, conn: Conn, who: Who) -> SecurityKeyOut:
    """The browser's answer to the options: verified (py_webauthn), then kept."""
    try:
        key = security_keys.register(
            conn,
            relying_party(request),
            who.clinician_id,
            _session_digest(request),
            body.credential,
            body.name,
        )
    except security_keys.KeyRefused as refused:
        audit(
            conn, who, "security_key_refused", None, {"step": "register", "reason": refused.reason}
        )
        if refused.reason == "key already registered":
            raise refuse(409, N_("This security key is registered already.")) from None
        if refused.reason == "too many keys":
            raise refuse(409, N_("An account holds at most 10 security keys.")) from None
        raise refuse(400, NOT_REGISTERED) from None
    audit(conn, who, "security_key_registered", None, {"key_id": key.key_id, "name": key.name})
    return _out(key)


@router.delete("/security-keys/{key_id}", status_code=204)
def remove_key(key_id: int, conn: Conn, who: Who) -> Response:
    """Forget one of the account's keys (the authenticator app and recovery codes stay)."""
    name = security_keys.remove(conn, who.clinician_id, key_id)
    if name is None:
        raise refuse(404, N_("No such security key on this account."))
    audit(conn, who, "security_key_removed", None, {"key_id": key_id, "name": name})
    return Response(status_code=204)
