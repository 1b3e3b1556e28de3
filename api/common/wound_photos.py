"""Wound photos as the database keeps them (re-encoded JPEG, see
``api.patient.photo_intake``): stored by the patient app, read by the care team, and by
the home physician only once the team shared one. Storing one tells open team pages at
commit (``patient_reported``), so the photo appears within seconds without a reload.
Never logged: neither the bytes nor anything derived from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg

CHANNEL = "patient_reported"


@dataclass(frozen=True)
class WoundPhoto:
    photo_id: int
    patient_id: int
    taken_at: datetime
    width_px: int
    height_px: int
    shared_with_physician: bool


def store_photo(
    conn: psycopg.Connection, patient_id: int, jpeg: bytes, width_px: int, height_px: int
) -> int:
    """The photo stored, and open team pages told at commit; returns its id."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO wound_photos (patient_id, media_type, width_px, height_px, image)"
            " VALUES (%s, 'image/jpeg', %s, %s, %s) RETURNING photo_id",
            (patient_id, width_px, height_px, jpeg),
        ).fetchone()
        assert row is not None
        conn.execute(
            "SELECT pg_notify(%s, %s)",
            (CHANNEL, json.dumps({"patient_id": patient_id, "what": "wound_photo"})),
        )
    return int(row[0])


def photos_of(
    conn: psycopg.Connection, patient_id: int, *, shared_only: bool = False
) -> list[WoundPhoto]:
    """The patient's photos, newest first (only those shared with the physician)."""
    rows = conn.execute(
        "SELECT photo_id, patient_id, taken_at, width_px, height_px, shared_with_physician"
        " FROM wound_photos WHERE patient_id = %s AND (shared_with_physician OR NOT %s)"
        " ORDER BY taken_at DESC, photo_id DESC",
        (patient_id, shared_only),
    ).fetchall()
    return [WoundPhoto(int(r[0]), int(r[1]), r[2], int(r[3]), int(r[4]), bool(r[5])) for r in rows]


def photo_image(
    conn: psycopg.Connection, patient_id: int, photo_id: int, *, shared_only: bool = False
) -> bytes | None:
    """The JPEG of one of this patient's photos; None when it is not theirs (or not
    shared, for the physician)."""
    row = conn.execute(
        "SELECT image FROM wound_photos WHERE photo_id = %s AND patient_id = %s"
        " AND (shared_with_physician OR NOT %s)",
        (photo_id, patient_id, shared_only),
    ).fetchone()
    return bytes(row[0]) if row is not None else None


def set_shared(
    conn: psycopg.Connection, patient_id: int, photo_id: int, shared: bool, actor: str
) -> bool:
    """Share a photo with the home physician (or stop); False when it is not theirs."""
    row = conn.execute(
        "UPDATE wound_photos SET shared_with_physician = %s,"
        " shared_by = CASE WHEN %s THEN %s END, shared_at = CASE WHEN %s THEN now() END"
        " WHERE photo_id = %s AND patient_id = %s RETURNING photo_id",
        (shared, shared, actor, shared, photo_id, patient_id),
    ).fetchone()
    return row is not None


def shared_images(
    conn: psycopg.Connection, patient_id: int, limit: int = 6
) -> list[tuple[WoundPhoto, bytes]]:
    """The latest photos the team shared with the home physician, with their JPEG (the
    shared page embeds them: no URL of an image that a link's token would open)."""
    rows = conn.execute(
        "SELECT photo_id, patient_id, taken_at, width_px, height_px, shared_with_physician,"
        " image FROM wound_photos WHERE patient_id = %s AND shared_with_physician"
        " ORDER BY taken_at DESC, photo_id DESC LIMIT %s",
        (patient_id, limit),
    ).fetchall()
    return [
        (WoundPhoto(int(r[0]), int(r[1]), r[2], int(r[3]), int(r[4]), bool(r[5])), bytes(r[6]))
        for r in rows
    ]
