"""Templated messages from the team to the patient: a clinician picks one of ``KINDS``
(no free text reaches the patient: each kind is worded in the patient's catalog and the
team's), the patient's app shows it on the home screen, and the tap on "I have read
this" records when it was read, which the team sees. The alerts engine writes messages
too: a request to measure again (``vitals.remeasure``) when an alert awaits its
confirmation, with no clinician as sender, marked done when the reading arrived or the
alert closed, and a request to charge a device (``vitals.battery``) when its battery is
low, done once it reports a good level again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from vitals.battery import CHARGE_KINDS
from vitals.remeasure import REQUEST_KINDS

# the order of the team's menu; the keys are migration 0016's CHECK
KINDS = ("measure_temperature", "we_will_call", "please_call_us", "go_to_emergency")
# every kind a patient may receive (migration 0024's CHECK)
ALL_KINDS = tuple(dict.fromkeys(KINDS + REQUEST_KINDS + CHARGE_KINDS))


@dataclass(frozen=True, slots=True)
class PatientMessage:
    message_id: int
    kind: str
    sent_at: datetime
    sent_by: str | None  # None: asked by the alerts engine (to measure again, to charge)
    read_at: datetime | None
    done_at: datetime | None = None  # a request answered by a reading, or moot


def send(conn: psycopg.Connection, patient_id: int, kind: str, clinician_id: int) -> int:
    row = conn.execute(
        "INSERT INTO patient_messages (patient_id, kind, sent_by) VALUES (%s, %s, %s)"
        " RETURNING message_id",
        (patient_id, kind, clinician_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def messages(conn: psycopg.Connection, patient_id: int, limit: int = 50) -> list[PatientMessage]:
    """The patient's messages, newest first."""
    rows = conn.execute(
        # a request whose alert a person resolved is done at once (the engine marks it
        # at its next round)
        "SELECT m.message_id, m.kind, m.sent_at, c.display_name, m.read_at,"
        " COALESCE(m.done_at, a.resolved_at)"
        " FROM patient_messages m LEFT JOIN clinicians c ON c.clinician_id = m.sent_by"
        " LEFT JOIN alerts a ON a.alert_id = m.alert_id"
        " WHERE m.patient_id = %s ORDER BY m.sent_at DESC, m.message_id DESC LIMIT %s",
        (patient_id, limit),
    ).fetchall()
    return [PatientMessage(*r) for r in rows]


def mark_read(
    conn: psycopg.Connection, patient_id: int, message_id: int, credential_id: int
) -> datetime | None:
    """When the message was read (the first time counts); None if it is not this
    patient's."""
    row = conn.execute(
        "UPDATE patient_messages SET read_at = coalesce(read_at, now()),"
        " read_by_credential = coalesce(read_by_credential, %s)"
        " WHERE message_id = %s AND patient_id = %s RETURNING read_at",
        (credential_id, message_id, patient_id),
    ).fetchone()
    return row[0] if row else None
