"""The care team's view of a patient's wound photos: the list, each image (every view
audited; served only to a signed-in clinician of the patient's team, never cached, never
through a URL that carries a credential), and sharing one with the home physician."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.common import wound_photos
from api.common.errors import refuse
from api.common.guards import Conn, Who, audit, patient_in_teams, read_patient
from api.common.labels import N_
from api.common.schemas import ERRORS, WoundPhotoOut, WoundPhotoSharing

router = APIRouter(prefix="/api/v1", tags=["wound photos"], responses=ERRORS)

NOT_FOUND = N_("This photo does not exist.")
PRIVATE = {"Cache-Control": "no-store", "Content-Disposition": "inline"}


def photo_out(photo: wound_photos.WoundPhoto) -> WoundPhotoOut:
    return WoundPhotoOut(
        photo_id=photo.photo_id,
        taken_at=photo.taken_at,
        width_px=photo.width_px,
        height_px=photo.height_px,
        shared_with_physician=photo.shared_with_physician,
        image_url=f"/api/v1/patients/{photo.patient_id}/wound-photos/{photo.photo_id}/image",
    )


@router.get("/patients/{patient_id}/wound-photos")
def get_wound_photos(
    patient_id: int, conn: Conn, who: Who, response: Response
) -> list[WoundPhotoOut]:
    """The patient's wound photos, newest first (the records; each image is audited
    when it is viewed)."""
    read_patient(conn, who, patient_id, "wound_photos_read")
    response.headers["Cache-Control"] = "no-store"
    return [photo_out(p) for p in wound_photos.photos_of(conn, patient_id)]


@router.get(
    "/patients/{patient_id}/wound-photos/{photo_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the re-encoded photo"}},
)
def get_wound_photo_image(patient_id: int, photo_id: int, conn: Conn, who: Who) -> Response:
    """One photo (JPEG, no metadata); each view writes an audit row."""
    patient_in_teams(conn, who, patient_id)
    image = wound_photos.photo_image(conn, patient_id, photo_id)
    if image is None:
        raise refuse(404, NOT_FOUND)
    audit(conn, who, "wound_photo_viewed", patient_id, {"photo_id": photo_id})
    return Response(image, media_type="image/jpeg", headers=PRIVATE)


@router.put("/patients/{patient_id}/wound-photos/{photo_id}/sharing")
def put_wound_photo_sharing(
    patient_id: int, photo_id: int, body: WoundPhotoSharing, conn: Conn, who: Who
) -> WoundPhotoOut:
    """Show this photo to the home physician on the shared page, or stop (audited)."""
    patient_in_teams(conn, who, patient_id)
    with conn.transaction():
        if not wound_photos.set_shared(
            conn, patient_id, photo_id, body.shared_with_physician, who.actor
        ):
            raise refuse(404, NOT_FOUND)
        action = "wound_photo_shared" if body.shared_with_physician else "wound_photo_unshared"
        audit(conn, who, action, patient_id, {"photo_id": photo_id})
    return next(
        photo_out(p) for p in wound_photos.photos_of(conn, patient_id) if p.photo_id == photo_id
    )
