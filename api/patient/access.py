"""Who is calling the patient app: the phone bound by an enrollment link, from its
credential cookie. Every patient route depends on ``patient_caller``; anything else is
refused with a page (or, under ``/p/api/``, a JSON sentence) in the patient's language
when the credential is known, the browser's otherwise.

The cookie is HttpOnly, SameSite=Lax (a tap on a link in a text message must still open
the app), Secure on TLS, and scoped to ``/p``: every patient route lives under it. A
change (any method but GET/HEAD/OPTIONS) whose ``Origin`` names another site is refused,
so no other site can act for the patient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import psycopg
from fastapi import Depends, Request
from psycopg.types.json import Jsonb

from api.common.guards import SAFE_METHODS, Conn
from api.common.patient_app import CredentialState, credential_state

COOKIE = "postop_patient"
COOKIE_PATH = "/p"
PREFIX = "/p"


@dataclass(frozen=True, slots=True)
class PatientCaller:
    """The enrolled phone of one patient, as every patient route sees it."""

    patient_id: int
    credential_id: int
    language: str  # one of PATIENT_LANGUAGES
    zone: str  # the patient's IANA time zone

    @property
    def actor(self) -> str:
        """How the patient appears in the audit log (one phone: one credential)."""
        return f"patient_app:{self.credential_id}"


class PatientRefused(Exception):
    """No usable credential: answered by ``api.patient.pages.refused`` with a page in
    ``language`` (None: the browser's) or a JSON sentence under ``/p/api/``."""

    def __init__(
        self, status: int, reason: str, language: str | None, patient_id: int | None = None
    ) -> None:
        super().__init__(reason)
        self.status, self.reason, self.language = status, reason, language
        self.patient_id = patient_id  # known: the page shows whom to call


def same_origin(request: Request) -> bool:
    """Whether a browser sent this from the app's own pages: its ``Sec-Fetch-Site``, else
    its ``Origin`` (the patient pages' referrer policy, same-origin, lets browsers send
    it; "null" is another site's). A client that sends neither is no browser."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def patient_caller(request: Request, conn: Conn) -> PatientCaller:
    """The enrolled phone behind this request; ``PatientRefused`` otherwise."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise PatientRefused(401, "not_enrolled", None)
    state, holder, credential_id = credential_state(conn, token)
    if state is CredentialState.UNKNOWN or holder is None or credential_id is None:
        raise PatientRefused(401, "not_enrolled", None)
    if state is not CredentialState.OK:
        raise PatientRefused(403, f"credential_{state.value}", holder.language, holder.patient_id)
    if request.method not in SAFE_METHODS and not same_origin(request):
        raise PatientRefused(403, "other_site", holder.language, holder.patient_id)
    caller = PatientCaller(holder.patient_id, credential_id, holder.language, holder.zone)
    request.state.patient = caller
    return caller


Patient = Annotated[PatientCaller, Depends(patient_caller)]


def audit_patient(
    conn: psycopg.Connection,
    caller: PatientCaller,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row for a read (or change) by the patient of their own data."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, patient_id, detail) VALUES (%s, %s, %s, %s)",
        (caller.actor, action, caller.patient_id, Jsonb(detail or {})),
    )
