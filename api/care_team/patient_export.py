"""The patient's data export (right of access and portability, Code de la santé publique
L1111-7): a complete FHIR R4 Bundle (the Patient, Devices, every reading as its own
Observation, clinical alerts as DetectedIssue with what the team did, device and
connection problems as Flag, the discharge information, the team's notes, and consents
and questionnaire answers once those tables exist) and a readable PDF in the patient's
language. The team makes it; the caller audits it; an open access request is marked
fulfilled.

Tables of sibling features are read only when present (``to_regclass``), so this module
consents and questionnaire answers come from their own modules' readers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from babel.support import NullTranslations

from api.common import documents, fhir_export, patient_data
from api.common.consent_records import consent_records
from api.common.documents import Edition
from api.common.monitoring_report import DocumentTools
from api.common.pdf import page_css, render_pdf
from api.common.questionnaires import ResponseView, response_views
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
from vitals.questionnaire import Questionnaire


@dataclass(frozen=True, slots=True)
class Answers:
    """The questionnaires and their catalogs, to write the patient's answers in their words."""

    questionnaires: Mapping[str, Questionnaire]
    catalogs: Mapping[str, NullTranslations]


def make_export(
    conn: psycopg.Connection,
    flavour: Flavour,
    tools: DocumentTools,
    reported: Answers,
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
    extra = _notes(conn, patient_id, ref, pseudonym) + [
        _consent(c, ref, pseudonym) for c in consents
    ]
    bundle["entry"] += [
        {"fullUrl": f"urn:postop:{e['resourceType']}/{e['id']}", "resource": e} for e in extra
    ]
    language = language if language in SHARE_LANGUAGES else "fr"
    words = reported.catalogs.get(language, reported.catalogs["en"]).gettext
    answers = response_views(conn, patient_id, reported.questionnaires, words, 100_000)
    bundle["entry"] += [
        {"fullUrl": f"urn:postop:QuestionnaireResponse/{r['id']}", "resource": r}
        for r in (_answer(a, ref, pseudonym) for a in answers)
    ]
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


def _answer(view: ResponseView, ref: str, pseudonym: str) -> dict[str, Any]:
    """One questionnaire response as a QuestionnaireResponse: each answer under the
    question's words in the patient's language, its value as stored (scores, grades)."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"{pseudonym}-answers-{view.response_id}",
        "status": "completed",
        "subject": {"reference": ref},
        "authored": view.answered_at.isoformat(),
        "item": [
            {
                "linkId": line.item_id,
                "text": line.question,
                "answer": [
                    {"valueInteger": int(line.value)}
                    if float(line.value).is_integer()
                    else {"valueDecimal": line.value}
                ],
            }
            for line in view.lines
        ],
    }


def _fulfil_access_requests(conn: psycopg.Connection, patient_id: int, clinician_id: int) -> bool:
    """Mark the patient's open requests of access and portability answered by this export
    (its audit row says which document answered them)."""
    waiting = open_access_requests(conn, [patient_id]).get(patient_id, [])
    return any([fulfil_access_request(conn, r.request_id, clinician_id) for r in waiting])
