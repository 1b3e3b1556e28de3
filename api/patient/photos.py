"""Wound photos from the patient's phone: the screen (the camera opens from a file input
with ``capture``) and the upload, read as a raw body of at most the configured size
(``POSTOP_API__PHOTO_MAX_BYTES``; a longer body is refused while it arrives, never
buffered whole), checked and re-encoded by ``photo_intake`` before anything is stored.
A refusal is one sentence in the patient's language and stores nothing. The photo's
bytes are never logged."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.common import wound_photos
from api.common.database import Database
from api.common.guards import Conn
from api.patient.access import PREFIX, Patient, PatientCaller, audit_patient, patient_caller
from api.patient.photo_intake import (
    TOO_LARGE,
    PhotoLimits,
    PhotoRefused,
    clean_photo,
)
from api.patient.screen import caller_view, patient_page
from api.patient.view import NO_STORE, T_

router = APIRouter(prefix=PREFIX, include_in_schema=False)

SENT = T_("Photo sent to your care team.")


def limits_of(request: Request) -> PhotoLimits:
    api = request.app.state.settings.api
    return PhotoLimits(api.photo_max_bytes, api.photo_max_pixels, api.photo_max_side_px)


@router.get("/photos")
def photos_page(request: Request, conn: Conn, caller: Patient) -> Response:
    audit_patient(conn, caller, "patient_app_photos")
    sent = wound_photos.photos_of(conn, caller.patient_id)
    return patient_page(
        request,
        conn,
        caller,
        "patient/photos.html",
        {"sent": sent},
        nav="photos",
    )


async def _body_within(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or None as soon as it runs past ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/api/photos", status_code=201)
async def post_photo(request: Request) -> Response:
    """The photo as the request body (the file as the camera gave it). The phone is
    checked first, with a connection held only for that: a slow upload from a phone on
    a weak network must not hold one of the pool's connections."""
    limits = limits_of(request)
    db: Database = request.app.state.db

    def identify() -> PatientCaller:
        with db.connection() as conn:
            return patient_caller(request, conn)

    caller = await anyio.to_thread.run_sync(identify)

    def refusal(problem: PhotoRefused) -> JSONResponse:
        with db.connection() as conn:
            sentence = caller_view(request, conn, caller).t(problem.message, **problem.values)
        return JSONResponse({"detail": sentence}, problem.status, headers=NO_STORE)

    data = await _body_within(request, limits.max_bytes)
    problem: PhotoRefused | None = None
    if data is None:
        problem = PhotoRefused(413, TOO_LARGE, megabytes=f"{limits.max_bytes / 1_000_000:g}")
    else:
        try:
            photo = await anyio.to_thread.run_sync(clean_photo, data, limits)
        except PhotoRefused as refused:
            problem = refused
    if problem is not None:
        return await anyio.to_thread.run_sync(refusal, problem)

    def store() -> dict[str, object]:
        with db.connection() as conn:
            photo_id = wound_photos.store_photo(
                conn, caller.patient_id, photo.jpeg, photo.width_px, photo.height_px
            )
            audit_patient(conn, caller, "wound_photo_sent", {"photo_id": photo_id})
            return {"photo_id": photo_id, "detail": caller_view(request, conn, caller).t(SENT)}

    return JSONResponse(await anyio.to_thread.run_sync(store), 201, headers=NO_STORE)
