"""Stored documents of a patient (migration 0020): end-of-monitoring reports, one per
language, and the patient's data exports, each as a PDF and its FHIR form. Callers check
access and write the audit row; this module only keeps and finds them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

REPORT = "end_of_monitoring"
EXPORT = "patient_export"


@dataclass(frozen=True, slots=True)
class Edition:
    """One document before it is stored."""

    language: str
    pdf: bytes
    fhir: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    document_id: int
    kind: str
    language: str
    period_start: datetime
    period_end: datetime
    created_at: datetime
    created_by: str  # the clinician's name
    replaced_at: datetime | None
    pdf_bytes: int


# who made it, by name (the actor as the audit log writes it otherwise)
_COLUMNS = (
    "document_id, kind, language, period_start, period_end, created_at,"
    " coalesce((SELECT c.display_name FROM clinicians c"
    " WHERE 'clinician:' || c.clinician_id = created_by), created_by),"
    " replaced_at, octet_length(pdf)"
)


def _insert(
    conn: psycopg.Connection,
    patient_id: int,
    kind: str,
    edition: Edition,
    start: datetime,
    end: datetime,
    actor: str,
) -> int:
    row = conn.execute(
        "INSERT INTO patient_documents (patient_id, kind, language, period_start, period_end,"
        " created_by, pdf, pdf_sha256, fhir_json_gz) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING document_id",
        (
            patient_id,
            kind,
            edition.language,
            start,
            end,
            actor,
            edition.pdf,
            hashlib.sha256(edition.pdf).digest(),
            gzip.compress(json.dumps(edition.fhir, separators=(",", ":")).encode()),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def store_reports(
    conn: psycopg.Connection,
    patient_id: int,
    editions: list[Edition],
    start: datetime,
    end: datetime,
    actor: str,
) -> list[int]:
    """The new editions of the report become the current ones, the previous ones are
    marked replaced: all or nothing, so a crash leaves the old set, never a mix or two."""
    with conn.transaction():
        # one writer at a time per patient (two "send again" at once make one set each,
        # in turn, never two current editions)
        conn.execute("SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,))
        conn.execute(
            "UPDATE patient_documents SET replaced_at = now() WHERE patient_id = %s"
            " AND kind = %s AND replaced_at IS NULL",
            (patient_id, REPORT),
        )
        return [_insert(conn, patient_id, REPORT, e, start, end, actor) for e in editions]


def store_export(
    conn: psycopg.Connection,
    patient_id: int,
    edition: Edition,
    start: datetime,
    end: datetime,
    actor: str,
) -> int:
    return _insert(conn, patient_id, EXPORT, edition, start, end, actor)


def listed(conn: psycopg.Connection, patient_id: int) -> list[StoredDocument]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM patient_documents WHERE patient_id = %s"
        " ORDER BY created_at DESC, document_id",
        (patient_id,),
    ).fetchall()
    return [StoredDocument(*r) for r in rows]


def current_reports(conn: psycopg.Connection, patient_id: int) -> list[StoredDocument]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM patient_documents WHERE patient_id = %s AND kind = %s"
        " AND replaced_at IS NULL ORDER BY document_id",
        (patient_id, REPORT),
    ).fetchall()
    return [StoredDocument(*r) for r in rows]


def pdf(conn: psycopg.Connection, patient_id: int, document_id: int) -> bytes | None:
    row = conn.execute(
        "SELECT pdf FROM patient_documents WHERE patient_id = %s AND document_id = %s",
        (patient_id, document_id),
    ).fetchone()
    return bytes(row[0]) if row else None


def fhir(conn: psycopg.Connection, patient_id: int, document_id: int) -> dict[str, Any] | None:
    """The FHIR form; a report's DocumentReference carries its PDF inline (base64), so the
    file stands alone in the physician's software."""
    row = conn.execute(
        "SELECT kind, fhir_json_gz, pdf FROM patient_documents"
        " WHERE patient_id = %s AND document_id = %s",
        (patient_id, document_id),
    ).fetchone()
    if row is None:
        return None
    body: dict[str, Any] = json.loads(gzip.decompress(row[1]))
    if row[0] == REPORT:
        body["content"][0]["attachment"]["data"] = base64.b64encode(bytes(row[2])).decode()
    return body
