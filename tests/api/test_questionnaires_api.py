"""The patient's answers as the team and the home physician read them, over a real
database: the coded answers over REST in the reader's language (audited, team-scoped),
the response on the patient page's timeline and as the fragment the live page fetches,
the pain on the charts' list, the shared page in the physician's language, and the
phone's post judged by the alerts engine over the real database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from alerts.engine import Engine
from alerts.protocol import builtin_protocols
from api.app import create_app
from store.questionnaires import record_response
from tests.api.conftest import World, audit_rows
from tests.api.test_share import make_link
from tests.patient_phone import enroll_phone
from vitals.questionnaire import load_questionnaires
from vitals.settings import Settings

ANSWERS = {"pain_rest": 8, "pain_movement": 9, "wound_redness": 1, "fever_chills": 0, "bowel": 2}


def _answer(world: World, patient_id: int, language: str = "ar") -> int:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET protocol = 'digestive_surgery' WHERE patient_id = %s",
            (patient_id,),
        )
        q = load_questionnaires()["digestive_surgery"]
        at = datetime.now(UTC) - timedelta(minutes=5)
        rid, _ = record_response(conn, patient_id, q, language, ANSWERS, uuid.uuid4(), at)
    return rid


def test_the_team_reads_the_coded_answers_in_its_language(
    login: Callable[[str], TestClient], world: World
) -> None:
    rid = _answer(world, world.patient_a)
    coordinator = login("coordinator")  # French account
    res = coordinator.get(
        f"/api/v1/patients/{world.patient_a}/questionnaires",
        headers={"Accept-Language": "fr"},
    )
    assert res.status_code == 200, res.text
    [response] = res.json()
    assert (response["response_id"], response["language"]) == (rid, "ar")
    by_item = {a["item_id"]: a for a in response["answers"]}
    assert by_item["pain_rest"]["code"] == "72514-3"
    assert by_item["pain_rest"]["code_system"] == "http://loinc.org"
    assert by_item["pain_rest"]["answer"] == "8/10"
    assert by_item["bowel"]["answer"] == "Ni gaz ni selles"
    assert by_item["wound_redness"]["question"].startswith("La peau autour de votre cicatrice")
    assert by_item["wound_redness"]["notable"] is True
    assert by_item["fever_chills"]["notable"] is False
    # the questionnaire's order, not the submission's
    assert [a["item_id"] for a in response["answers"]][:3] == [
        "pain_rest",
        "pain_movement",
        "bowel",
    ]
    assert audit_rows(world.db, "questionnaires_read")[-1][1] == world.patient_a
    other = login("other")
    assert other.get(f"/api/v1/patients/{world.patient_a}/questionnaires").status_code == 403


def test_the_response_is_on_the_timeline_and_served_as_a_fragment(
    login: Callable[[str], TestClient], world: World
) -> None:
    rid = _answer(world, world.patient_a)
    physician = login("physician")  # English account
    page = physician.get(f"/patients/{world.patient_a}")
    assert page.status_code == 200
    assert f'id="response-{rid}"' in page.text
    assert "Questionnaire answered by the patient" in page.text
    assert "Neither gas nor stools" in page.text
    assert "pain_score,pain_movement_score" in page.text  # charted
    assert 'data-metric="wound_redness"' not in page.text  # not a "latest value"
    fragment = physician.get(f"/patients/{world.patient_a}/fragments/questionnaire/{rid}")
    assert fragment.status_code == 200
    assert fragment.text.strip().startswith(f'<li class="questionnaire-item" id="response-{rid}"')
    assert "Is the skin around your wound red" in fragment.text
    missing = physician.get(f"/patients/{world.patient_a}/fragments/questionnaire/{rid + 999}")
    assert missing.status_code == 404
    other = login("other")
    assert (
        other.get(f"/patients/{world.patient_a}/fragments/questionnaire/{rid}").status_code == 403
    )


def test_the_home_physician_reads_the_answers_in_their_language(
    login: Callable[[str], TestClient], anonymous: TestClient, world: World
) -> None:
    _answer(world, world.patient_a)
    physician = login("physician")
    for lang, heading, answer in (
        ("zh", "患者报告的情况", "既没有排气也没有排便"),
        ("de", "Was der Patient gemeldet hat", "Weder Winde noch Stuhlgang"),
        ("ar", "ما أبلغ عنه المريض", "لا غازات ولا براز"),
    ):
        link = make_link(physician, world.patient_a, language=lang)
        page = anonymous.get(link["url"])
        assert page.status_code == 200, page.text
        assert heading in page.text
        assert answer in page.text
    detail = audit_rows(world.db, "share_view")[-1][2]
    assert isinstance(detail, dict)
    assert "questionnaires" in detail["shown"]


def test_a_pain_answer_sent_from_the_phone_opens_an_alert(
    app_settings: Settings, world: World
) -> None:
    """The phone's JSON post, stored once whatever the retries, refused in the patient's
    language when an answer is not allowed, and judged by the alerts engine's round over
    the real database: pain at rest 9/10 opens the pain alert."""
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = 'ar', protocol = 'orthopaedic_surgery'"
            " WHERE patient_id = %s",
            (world.patient_a2,),
        )
    phone = enroll_phone(world.db, world.patient_a2)
    with TestClient(create_app(app_settings), cookies=phone.cookies) as client:
        bad = client.post(
            "/p/api/questionnaire",
            json={"submission_id": str(uuid.uuid4()), "answers": {"pain_rest": 12}},
        )
        assert bad.status_code == 422
        assert bad.json() == {"detail": "هذه الإجابة ليست من خيارات هذا السؤال."}
        unknown = client.post(
            "/p/api/questionnaire",
            json={"submission_id": str(uuid.uuid4()), "answers": {"bowel": 0}},
        )
        assert unknown.status_code == 422  # no bowel question after orthopaedic surgery
        body = {"submission_id": str(uuid.uuid4()), "answers": {"pain_rest": 9, "calf": 0}}
        first = client.post("/p/api/questionnaire", json=body)
        again = client.post("/p/api/questionnaire", json=body)  # a retry after a lost answer
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
    with psycopg.connect(world.db, autocommit=True) as conn:
        count = conn.execute(
            "SELECT count(*) FROM questionnaire_responses WHERE patient_id = %s",
            (world.patient_a2,),
        ).fetchone()
        assert count == (1,)
        Engine(world.db, builtin_protocols(), lambda _c, _n: None).evaluate_once(
            conn, [world.patient_a2]
        )
        opened = conn.execute(
            "SELECT rule_id, priority, evidence FROM alerts WHERE patient_id = %s"
            " AND state = 'active'",
            (world.patient_a2,),
        ).fetchall()
    assert opened == [("pain_high", "medium", {"value": 9.0, "threshold": 7.0})]
    assert [r[2] for r in audit_rows(world.db, "questionnaire_answered")] == [
        {"response": first.json()["response_id"]}
    ]
