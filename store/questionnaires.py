"""Storing and reading the patient's questionnaire answers. A submission is one
transaction: the response, its coded answers, the same answers as ``vitals`` rows (what
the rules and charts read) and the NOTIFY that wakes the alerts engine and the team's
open pages, delivered at commit as ingest's is. A retried submission (same
``submission_id``) changes nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

from vitals.catalogue import BY_NAME
from vitals.questionnaire import Questionnaire

NOTIFY_CHANNEL = "vitals_ingested"  # the channel ingest notifies: the engine listens to it


def app_device_id(patient_id: int) -> str:
    """The ``vitals.device_id`` of a patient's answers (their phone is no enrolled
    device; the id keeps answers apart from any sensor's and from other patients')."""
    return f"patient-app-{patient_id}"


class AnswerError(ValueError):
    """An answer the questionnaire does not allow; ``item_id`` says which."""

    def __init__(self, item_id: str, message: str) -> None:
        super().__init__(message)
        self.item_id = item_id


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: int
    protocol: str
    version: int
    language: str
    answered_at: datetime
    answers: Mapping[str, float]  # item id -> value


def check_answers(questionnaire: Questionnaire, answers: Mapping[str, int]) -> None:
    """Every answered item exists and its value is one the item allows; items may be
    left out (a patient skips what they cannot tell), but not all of them."""
    if not answers:
        raise AnswerError("", "no answer")
    for item_id, value in answers.items():
        try:
            item = questionnaire.item(item_id)
        except KeyError:
            raise AnswerError(item_id, "unknown question") from None
        if value not in item.answer.values():
            raise AnswerError(item_id, "answer out of range")


def record_response(
    conn: psycopg.Connection,
    patient_id: int,
    questionnaire: Questionnaire,
    language: str,
    answers: Mapping[str, int],
    submission_id: UUID,
    answered_at: datetime,
    credential_id: int | None = None,
) -> tuple[int, bool]:
    """Store one submission; returns (response id, whether it is new)."""
    check_answers(questionnaire, answers)
    with conn.transaction(), conn.cursor() as cur:
        row = cur.execute(
            "INSERT INTO questionnaire_responses (patient_id, protocol, version, language,"
            " answered_at, submission_id, credential_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (patient_id, submission_id) DO NOTHING RETURNING response_id",
            (
                patient_id,
                questionnaire.protocol,
                questionnaire.version,
                language,
                answered_at,
                submission_id,
                credential_id,
            ),
        ).fetchone()
        if row is None:
            found = cur.execute(
                "SELECT response_id FROM questionnaire_responses"
                " WHERE patient_id = %s AND submission_id = %s",
                (patient_id, submission_id),
            ).fetchone()
            assert found is not None
            return int(found[0]), False
        response_id = int(row[0])
        items = [(questionnaire.item(i), float(v)) for i, v in answers.items()]
        cur.executemany(
            "INSERT INTO questionnaire_answers (response_id, item_id, metric_id, code_system,"
            " code, value) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (response_id, item.id, BY_NAME[item.metric].metric_id, *item.code, value)
                for item, value in items
            ],
        )
        cur.executemany(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (
                    answered_at,
                    patient_id,
                    app_device_id(patient_id),
                    BY_NAME[item.metric].metric_id,
                    value,
                )
                for item, value in items
            ],
        )
        cur.execute(
            "SELECT pg_notify(%s, %s)",
            (NOTIFY_CHANNEL, json.dumps({"patients": [patient_id], "questionnaire": response_id})),
        )
    return response_id, True


def responses(
    conn: psycopg.Connection, patient_id: int, limit: int = 60, response_id: int | None = None
) -> list[StoredResponse]:
    """The patient's latest responses (or the one ``response_id``), newest first, with
    their answers."""
    rows = conn.execute(
        "SELECT r.response_id, r.protocol, r.version, r.language, r.answered_at,"
        " coalesce(jsonb_object_agg(a.item_id, a.value)"
        " FILTER (WHERE a.item_id IS NOT NULL), '{}'::jsonb)"
        " FROM questionnaire_responses r LEFT JOIN questionnaire_answers a USING (response_id)"
        " WHERE r.patient_id = %s AND (%s::bigint IS NULL OR r.response_id = %s)"
        " GROUP BY r.response_id ORDER BY r.answered_at DESC, r.response_id DESC LIMIT %s",
        (patient_id, response_id, response_id, limit),
    ).fetchall()
    return [
        StoredResponse(
            int(r[0]), r[1], int(r[2]), r[3], r[4], {k: float(v) for k, v in r[5].items()}
        )
        for r in rows
    ]
