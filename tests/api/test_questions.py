"""The home physician's questions over a real database: sent from the shared page (plain
text, escaped when shown, a length limit, a rate limit per link, a resent form stored
once), in the team's worklist and on the patient page, answered there (not by another
team; once), and the answer on the shared page; every step audited."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.common import questions
from api.common.share_links import create_link, default_units
from tests.api.conftest import World, audit_rows


def _link(db: str, patient_id: int, language: str = "de", recipient: str = "Dr Weber") -> str:
    with psycopg.connect(db, autocommit=True) as conn:
        author = conn.execute("SELECT min(clinician_id) FROM clinicians").fetchone()
        assert author is not None
        link = create_link(
            conn,
            patient_id,
            int(author[0]),
            language,
            default_units("DE"),
            timedelta(days=30),
            False,
            recipient,
        )
    return f"/s/{link.token}"


def _form(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'name="(form_token|request_key)" value="([^"]+)"', page))
    assert set(fields) == {"form_token", "request_key"}, page
    return fields


def _ask(client: TestClient, url: str, body: str, kind: str = "question") -> Any:
    form = _form(client.get(url).text)
    return client.post(
        f"{url}/questions", data={**form, "kind": kind, "body": body}, follow_redirects=False
    )


@pytest.fixture
def browser(anonymous: TestClient) -> TestClient:
    """The home physician's browser (it names no language: the link's is used)."""
    anonymous.headers.pop("Accept-Language", None)
    return anonymous


def test_the_physician_asks_the_team_answers_the_physician_reads(
    browser: TestClient, login: Callable[[str], TestClient], world: World
) -> None:
    url = _link(world.db, world.patient_a)
    page = browser.get(url).text
    assert "Fragen an das Behandlungsteam" in page
    assert "Sie haben noch keine Nachricht gesendet." in page
    text = "Neue Behandlung: Bisoprolol 2,5 mg.\n<script>alert(1)</script>"
    sent = _ask(browser, url, text, "news")
    assert sent.status_code == 303
    shown = browser.get(url).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown  # shown escaped, as typed
    assert "<script>alert(1)" not in shown
    assert "Die Antwort des Teams steht noch aus." in shown

    # the team's worklist: the patient and the message, for team A only
    coordinator = login("coordinator")
    open_ = coordinator.get("/api/v1/questions").json()
    assert [(q["pseudonym"], q["kind"], q["body"], q["physician"]) for q in open_] == [
        ("PA-001", "news", text, "Dr Weber")
    ]
    assert login("other").get("/api/v1/questions").json() == []
    dashboard = coordinator.get("/", headers={"Accept-Language": ""}).text
    assert "Questions des médecins traitants" in dashboard
    assert "Nouvelle du médecin traitant" in dashboard
    assert "&lt;script&gt;" in dashboard
    fragment = coordinator.get("/fragments/questions").text
    assert f'data-patient-id="{world.patient_a}"' in fragment
    patient_page = coordinator.get(f"/patients/{world.patient_a}").text
    question_id = open_[0]["question_id"]
    assert f"/api/v1/questions/{question_id}/answer" in patient_page

    # another team cannot answer; an empty answer is refused with a sentence
    assert (
        login("other")
        .post(f"/api/v1/questions/{question_id}/answer", json={"answer": "x"})
        .status_code
        == 403
    )
    blank = coordinator.post(f"/api/v1/questions/{question_id}/answer", json={"answer": "  "})
    assert blank.status_code == 422
    answer = "Merci, noté. Contrôle de la fréquence cardiaque à J+10."
    done = coordinator.post(f"/api/v1/questions/{question_id}/answer", json={"answer": answer})
    assert done.status_code == 200, done.text
    assert done.json()["answered_by"] == "Infirmière A"
    twice = coordinator.post(f"/api/v1/questions/{question_id}/answer", json={"answer": "bis"})
    assert twice.status_code == 409
    assert coordinator.get("/api/v1/questions").json() == []  # off the worklist
    assert (
        coordinator.get(f"/api/v1/patients/{world.patient_a}/questions").json()[0]["answer"]
        == answer
    )

    # the physician reads the answer on the shared page
    shown = browser.get(url).text
    assert "Antwort des Behandlungsteams" in shown
    assert answer in shown
    # audited: the physician's message, the team's reads and answer
    assert [r[1] for r in audit_rows(world.db, "share_question")] == [world.patient_a]
    assert [r[1] for r in audit_rows(world.db, "question_answered")] == [world.patient_a]
    assert audit_rows(world.db, "questions_read")


def test_another_links_physician_sees_none_of_it(browser: TestClient, world: World) -> None:
    first = _link(world.db, world.patient_a, "en", "Dr Smith")
    second = _link(world.db, world.patient_a, "en", "Dr Jones")
    assert _ask(browser, first, "Is the wound healing?").status_code == 303
    assert "Is the wound healing?" in browser.get(first).text
    assert "Is the wound healing?" not in browser.get(second).text


def test_refusals_in_the_physicians_language(browser: TestClient, world: World) -> None:
    url = _link(world.db, world.patient_a, "es")
    empty = _ask(browser, url, "   ")
    assert empty.status_code == 422
    assert "Escriba su mensaje antes de enviarlo." in empty.text
    long = _ask(browser, url, "x" * (questions.MAX_CHARS + 1))
    assert long.status_code == 422
    assert "demasiado largo" in long.text
    form = _form(browser.get(url).text)
    forged = browser.post(
        f"{url}/questions",
        data={**form, "form_token": "forged-token-value", "body": "hola"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    with psycopg.connect(world.db) as conn:
        count = conn.execute("SELECT count(*) FROM physician_questions").fetchone()
    assert count == (0,)


def test_a_resent_form_is_stored_once_and_a_storm_is_refused(
    browser: TestClient, world: World
) -> None:
    url = _link(world.db, world.patient_a, "it")
    form = _form(browser.get(url).text)
    body = {**form, "kind": "question", "body": "Posso sospendere l'eparina?"}
    for _ in range(2):  # the browser sent it again (a double click, a retry)
        res = browser.post(f"{url}/questions", data=body, follow_redirects=False)
        assert res.status_code == 303
    with psycopg.connect(world.db) as conn:
        count = conn.execute("SELECT count(*) FROM physician_questions").fetchone()
    assert count == (1,)
    statuses = [
        _ask(browser, url, f"Domanda {n}").status_code for n in range(questions.PER_HOUR + 1)
    ]
    assert statuses[: questions.PER_HOUR - 1] == [303] * (questions.PER_HOUR - 1)
    assert statuses[-2:] == [429, 429]
    refused = _ask(browser, url, "Ancora una")
    assert "Ha inviato diversi messaggi" in refused.text
    assert audit_rows(world.db, "share_question_refused")
