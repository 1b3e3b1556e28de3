"""A questionnaire answer over the real database: stored once with its codes (a retried
submission changes nothing), the NOTIFY reaches a listener after the commit only, and the
alerts engine's round over the real rows opens the pain alert with its evidence."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.alert_store import Notice
from alerts.engine import VITALS_CHANNEL, Engine
from alerts.protocol import builtin_protocols
from store.provisioning import ensure_patient, ensure_team
from store.questionnaires import AnswerError, app_device_id, record_response, responses
from vitals.questionnaire import LOCAL_SYSTEM, LOINC_SYSTEM, load_questionnaires


def _patient(conn: psycopg.Connection, name: str) -> int:
    patient = ensure_patient(conn, name, ensure_team(conn, f"Team {name}"))
    conn.execute(
        "UPDATE patients SET protocol = 'digestive_surgery', discharged_at = now() - interval"
        " '3 days' WHERE patient_id = %s",
        (patient,),
    )
    return patient


def test_answers_are_stored_once_with_their_codes_and_notified(db: str) -> None:
    q = load_questionnaires()["digestive_surgery"]
    now = datetime.now(UTC)
    submission = uuid.uuid4()
    with (
        psycopg.connect(db, autocommit=True) as conn,
        psycopg.connect(db, autocommit=True) as listener,
    ):
        patient = _patient(conn, "P-QUEST-STORE")
        listener.execute(f"LISTEN {VITALS_CHANNEL}")
        answers = {"pain_rest": 3, "pain_movement": 5, "bowel": 1, "wound_redness": 0}
        rid, new = record_response(conn, patient, q, "ar", answers, submission, now)
        assert new
        again, new_again = record_response(conn, patient, q, "ar", answers, submission, now)
        assert (again, new_again) == (rid, False)
        notes = list(listener.notifies(timeout=2.0, stop_after=1))
        assert json.loads(notes[0].payload) == {"patients": [patient], "questionnaire": rid}
        coded = conn.execute(
            "SELECT item_id, code_system, code, value FROM questionnaire_answers"
            " WHERE response_id = %s ORDER BY item_id",
            (rid,),
        ).fetchall()
        assert coded == [
            ("bowel", LOCAL_SYSTEM, "bowel_grade", 1.0),
            ("pain_movement", LOCAL_SYSTEM, "pain_movement_score", 5.0),
            ("pain_rest", LOINC_SYSTEM, "72514-3", 3.0),
            ("wound_redness", LOCAL_SYSTEM, "wound_redness", 0.0),
        ]
        rows = conn.execute(
            "SELECT count(*) FROM vitals WHERE patient_id = %s AND device_id = %s",
            (patient, app_device_id(patient)),
        ).fetchone()
        assert rows == (4,)
        [stored] = responses(conn, patient)
        assert stored.language == "ar"
        assert dict(stored.answers) == {k: float(v) for k, v in answers.items()}


def test_an_answer_the_question_does_not_allow_stores_nothing(db: str) -> None:
    q = load_questionnaires()["digestive_surgery"]
    with psycopg.connect(db, autocommit=True) as conn:
        patient = _patient(conn, "P-QUEST-BAD")
        for answers, item in (({"pain_rest": 11}, "pain_rest"), ({"x_unknown": 1}, "x_unknown")):
            with pytest.raises(AnswerError) as err:
                record_response(conn, patient, q, "fr", answers, uuid.uuid4(), datetime.now(UTC))
            assert err.value.item_id == item
        assert conn.execute("SELECT count(*) FROM questionnaire_responses").fetchone() == (0,)


def test_a_pain_answer_over_the_threshold_opens_an_alert(db: str) -> None:
    q = load_questionnaires()["digestive_surgery"]
    notices: list[Notice] = []
    engine = Engine(db, builtin_protocols(), lambda _c, n: notices.extend(n))
    with psycopg.connect(db, autocommit=True) as conn:
        patient = _patient(conn, "P-QUEST-PAIN")
        yesterday = datetime.now(UTC) - timedelta(hours=24)
        record_response(conn, patient, q, "fr", {"pain_rest": 3}, uuid.uuid4(), yesterday)
        engine.evaluate_once(conn, [patient])
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
        answers = {"pain_rest": 8, "pain_movement": 9, "wound_redness": 0}
        record_response(conn, patient, q, "fr", answers, uuid.uuid4(), datetime.now(UTC))
        engine.evaluate_once(conn, [patient])
        opened: dict[str, object] = dict(
            conn.execute(
                "SELECT rule_id, evidence FROM alerts WHERE patient_id = %s AND state = 'active'",
                (patient,),
            ).fetchall()
        )
        assert opened["pain_high"] == {"value": 8.0, "threshold": 7.0}  # at rest
        assert opened["pain_rising"] == {"value": 8.0, "rise": 5.0}  # at rest, 3 -> 8
        assert {n.reason for n in notices} == {"opened"}
