"""The home physician's questions (or news: a new treatment, a consultation) to the care
team, sent from the shared page, and the team's answers. Asked by the physician, answered
by the team: both audiences use this room. Plain text, stored as typed and always shown
escaped; a resent form (same ``request_key``) is stored once; every change tells the
open dashboards (``questions_changed``, read by the live updates)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

KINDS = ("question", "news")
MAX_CHARS = 2000
ANSWER_MAX_CHARS = 4000
# per link: a physician writes a few messages, not a stream
PER_HOUR = 5
PER_DAY = 20
CHANNEL = "questions_changed"


@dataclass(frozen=True, slots=True)
class Question:
    question_id: int
    patient_id: int
    pseudonym: str
    kind: str
    body: str
    asked_at: datetime
    physician: str | None  # the link's recipient, as the team named them
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None  # the clinician's name


_SELECT = (
    "SELECT q.question_id, q.patient_id, p.pseudonym, q.kind, q.body, q.asked_at,"
    " l.recipient, q.answer, q.answered_at, c.display_name"
    " FROM physician_questions q JOIN patients p USING (patient_id)"
    " JOIN share_links l USING (link_id)"
    " LEFT JOIN clinicians c ON c.clinician_id = q.answered_by"
)


def _rows(conn: psycopg.Connection, where: str, params: tuple[object, ...]) -> list[Question]:
    rows = conn.execute(f"{_SELECT} WHERE {where} ORDER BY q.asked_at DESC", params).fetchall()
    return [Question(*r) for r in rows]


def _notify(conn: psycopg.Connection, patient_id: int, question_id: int) -> None:
    payload = json.dumps({"patient_id": patient_id, "question_id": question_id})
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def recent_count(conn: psycopg.Connection, link_id: int, within: timedelta) -> int:
    row = conn.execute(
        "SELECT count(*) FROM physician_questions WHERE link_id = %s AND asked_at > now() - %s",
        (link_id, within),
    ).fetchone()
    return int(row[0]) if row else 0


def ask(
    conn: psycopg.Connection,
    link_id: int,
    patient_id: int,
    kind: str,
    body: str,
    request_key: str,
) -> tuple[int, bool]:
    """Store the message; (its id, whether it is new: False for a resent form)."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO physician_questions (patient_id, link_id, kind, body, request_key)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (link_id, request_key) DO NOTHING"
            " RETURNING question_id",
            (patient_id, link_id, kind, body, request_key),
        ).fetchone()
        if row is None:
            same = conn.execute(
                "SELECT question_id FROM physician_questions WHERE link_id = %s"
                " AND request_key = %s",
                (link_id, request_key),
            ).fetchone()
            assert same is not None
            return int(same[0]), False
        _notify(conn, patient_id, int(row[0]))
    return int(row[0]), True


def of_link(conn: psycopg.Connection, link_id: int) -> list[Question]:
    """What this link's physician sent, newest first (another link's physician sees
    none of it)."""
    return _rows(conn, "q.link_id = %s", (link_id,))


def of_patient(conn: psycopg.Connection, patient_id: int) -> list[Question]:
    return _rows(conn, "q.patient_id = %s", (patient_id,))


def open_for_teams(conn: psycopg.Connection, team_ids: list[int]) -> list[Question]:
    """Unanswered messages about the teams' patients, newest first."""
    return _rows(conn, "q.answered_at IS NULL AND p.team_id = ANY(%s)", (team_ids,))


def patient_of(conn: psycopg.Connection, question_id: int) -> int | None:
    row = conn.execute(
        "SELECT patient_id FROM physician_questions WHERE question_id = %s", (question_id,)
    ).fetchone()
    return int(row[0]) if row else None


def answer(conn: psycopg.Connection, question_id: int, clinician_id: int, text: str) -> bool:
    """Record the team's answer; False when it was answered already (the first answer
    stays: the physician may have read it)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE physician_questions SET answer = %s, answered_at = now(), answered_by = %s"
            " WHERE question_id = %s AND answered_at IS NULL RETURNING patient_id",
            (text, clinician_id, question_id),
        ).fetchone()
        if row is None:
            return False
        _notify(conn, int(row[0]), question_id)
    return True
