"""The patient's data export (right of access and portability, Code de la santé publique
L1111-7): a complete FHIR R4 Bundle (the Patient, Devices, every reading as its own
Observation, clinical alerts as DetectedIssue with what the team did, device and
connection problems as Flag, the discharge information, the team's notes, and consents
and questionnaire answers once those tables exist) and a readable PDF in the patient's
language. The team makes it; the caller audits it; an open access request is marked
fulfilled.

Tables of sibling features are read only when present (``to_regclass``), so this module
works before and after they land. KEEP IN STEP with their migration:
``questionnaire_answers`` is read by column names guessed below (``_pick``); a renamed
column degrades to an empty field, never an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from api.common import documents, fhir_export, patient_data
from api.common.consent_records import consent_records
from api.common.documents import Edition
from api.common.monitoring_report import DocumentTools
from api.common.pdf import page_css, render_pdf
from api.common.schemas import ConsentOut
from api.common.share_links import SHARE_LANGUAGES, default_units
from api.common.share_text import (
    CONSENT_DECISIONS,
    CONSENT_KINDS,
    DEVICE_KINDS,
    METRICS,
    OTHER_DEVICE,
    OTHER_RULE,
    PRIORITIES,
    RULES,
)
from store.access_requests import fulfil_access_request, open_access_requests
from store.flavour import Flavour

ANSWERS = "questionnaire_answers"


def make_export(
    conn: psycopg.Connection,
    flavour: Flavour,
    tools: DocumentTools,
    patient_id: int,
    clinician_id: int,
    actor: str,
) -> tuple[int, int, bool]:
    """Make and store the export; (document id, Bundle entries, access request fulfilled)."""
    start, end = _span(conn, patient_id)
    bundle = fhir_export.bundle(conn, flavour, patient_id, start, end, complete=True)
    row = conn.execute(
        "SELECT pseudonym, language, time_zone, home_country FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    pseudonym, language, zone, country = row
    ref = f"Patient/{pseudonym}"
    consents = consent_records(conn, patient_id).records
    answers = _rows(conn, ANSWERS, patient_id)
    extra = (
        _notes(conn, patient_id, ref, pseudonym)
        + [_consent(c, ref, pseudonym) for c in consents]
        + [_answer(a, ref, pseudonym) for a in answers]
    )
    bundle["entry"] += [
        {"fullUrl": f"urn:postop:{e['resourceType']}/{e['id']}", "resource": e} for e in extra
    ]
    language = language if language in SHARE_LANGUAGES else "fr"
    reader = tools.reader(language, country, default_units(country), zone)
    title = reader.t("Copy of the patient's data")
    team = conn.execute(
        "SELECT t.name FROM care_teams t JOIN patients p USING (team_id) WHERE p.patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert team is not None
    html = tools.templates.get_template("documents/export.html").render(
        t=reader.t,
        r=reader,
        lang=reader.language,
        dir=reader.direction,
        css=page_css(reader.language, f"{team[0]} — {title}", reader.t("Page")),
        title=title,
        patient=patient_data.patient(conn, patient_id),
        discharge=_discharge(conn, patient_id),
        start=start,
        end=end,
        made_at=datetime.now(UTC),
        zone=zone,
        pseudonym=pseudonym,
        daily=_daily(conn, patient_id, zone),
        alerts=list(reversed(patient_data.alerts(conn, patient_id, 100_000))),
        notes=list(reversed(patient_data.notes(conn, patient_id))),
        consents=consents,
        consent_kinds=CONSENT_KINDS,
        consent_decisions=CONSENT_DECISIONS,
        answers=answers,
        rules=RULES,
        other_rule=OTHER_RULE,
        metrics=METRICS,
        priorities=PRIORITIES,
        device_kinds=DEVICE_KINDS,
        other_device=OTHER_DEVICE,
        entries=len(bundle["entry"]),
    )
    edition = Edition(language, render_pdf(html), bundle)
    with conn.transaction():
        document_id = documents.store_export(conn, patient_id, edition, start, end, actor)
        fulfilled = _fulfil_access_requests(conn, patient_id, clinician_id)
    return document_id, len(bundle["entry"]), fulfilled


def _span(conn: psycopg.Connection, patient_id: int) -> tuple[datetime, datetime]:
    """From the patient's first trace to the last: every reading falls inside."""
    row = conn.execute(
        "SELECT least(p.created_at, p.discharged_at,"
        " (SELECT min(lower(valid)) FROM enrollments WHERE patient_id = p.patient_id),"
        " (SELECT min(time) FROM vitals WHERE patient_id = p.patient_id),"
        " (SELECT min(opened_at) FROM alerts WHERE patient_id = p.patient_id)),"
        " greatest(now(), (SELECT max(time) FROM vitals WHERE patient_id = p.patient_id))"
        " FROM patients p WHERE p.patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    return row[0], row[1] + timedelta(microseconds=1)


def _discharge(conn: psycopg.Connection, patient_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT discharge_instructions, medications FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    return {"instructions": row[0], "medications": row[1]}


def _daily(conn: psycopg.Connection, patient_id: int, zone: str) -> list[tuple[Any, ...]]:
    """(day, metric, readings, min, mean, max) at the patient's home, for every metric
    a person reads (device battery and rhythm analysis stay in the FHIR file)."""
    return conn.execute(
        "SELECT (v.time AT TIME ZONE %s)::date, m.name, count(v.value), min(v.value),"
        " avg(v.value), max(v.value) FROM vitals v JOIN metrics m USING (metric_id)"
        " WHERE v.patient_id = %s AND m.name = ANY(%s) GROUP BY 1, 2 ORDER BY 1, 2",
        (zone, patient_id, list(METRICS)),
    ).fetchall()


def _notes(
    conn: psycopg.Connection, patient_id: int, ref: str, pseudonym: str
) -> list[dict[str, Any]]:
    """The team's notes, each as a Communication from the team about the patient."""
    return [
        {
            "resourceType": "Communication",
            "id": f"{pseudonym}-note-{n.note_id}",
            "status": "completed",
            "category": [{"text": "care team note"}],
            "subject": {"reference": ref},
            "sent": fhir_export._iso(n.at),
            "sender": {"display": n.author},
            "payload": [{"contentString": n.body}],
        }
        for n in patient_data.notes(conn, patient_id)
    ]


def _exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _rows(conn: psycopg.Connection, table: str, patient_id: int) -> list[dict[str, Any]]:
    """Every row of a sibling feature's table for this patient, as JSON objects (none
    while the table does not exist)."""
    if not _exists(conn, table):
        return []
    query = sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE t.patient_id = %s").format(
        sql.Identifier(table)
    )
    return [dict(r[0]) for r in conn.execute(query, (patient_id,))]


def _pick(row: dict[str, Any], *names: str) -> Any:
    return next((row[n] for n in names if row.get(n) is not None), None)


def _consent(c: ConsentOut, ref: str, pseudonym: str) -> dict[str, Any]:
    """A consent record as a FHIR Consent: the notice's version and language as the policy
    rule, the named physician as the recipient of a sharing consent."""
    refused = c.decision == "refused"
    scope = "treatment" if c.kind == "monitoring" else "patient-privacy"
    rule = f"notice {c.kind} v{c.notice_version} ({c.notice_language})"
    provision: dict[str, Any] = {"type": "deny" if refused else "permit"}
    if c.physician_name:
        provision["actor"] = [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {"display": c.physician_name},
            }
        ]
    return {
        "resourceType": "Consent",
        "id": f"{pseudonym}-consent-{c.consent_id}",
        "status": "inactive" if c.withdrawn_at else ("rejected" if refused else "active"),
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": ref},
        "dateTime": c.decided_at.isoformat(),
        "policyRule": {
            "text": rule + (f"; withdrawn {c.withdrawn_at.isoformat()}" if c.withdrawn_at else "")
        },
        "provision": provision,
    }


def _answer(row: dict[str, Any], ref: str, pseudonym: str) -> dict[str, Any]:
    """A questionnaire's answers as a QuestionnaireResponse, one item per answer."""
    answers = _pick(row, "answers", "answer", "body")
    if not isinstance(answers, dict):
        answers = {k: v for k, v in row.items() if k not in ("patient_id",) and v is not None}
    when = _pick(row, "answered_at", "submitted_at", "created_at", "at")
    rid = _pick(row, "answer_id", "response_id", "id")
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"{pseudonym}-answers-{rid}",
        "status": "completed",
        "subject": {"reference": ref},
        **({"authored": str(when)} if when else {}),
        "item": [
            {"linkId": str(k), "answer": [_answer_value(v)]} for k, v in sorted(answers.items())
        ],
    }


def _answer_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": str(value)}


def _fulfil_access_requests(conn: psycopg.Connection, patient_id: int, clinician_id: int) -> bool:
    """Mark the patient's open requests of access and portability answered by this export
    (its audit row says which document answered them)."""
    waiting = open_access_requests(conn, [patient_id]).get(patient_id, [])
    return any([fulfil_access_request(conn, r.request_id, clinician_id) for r in waiting])
