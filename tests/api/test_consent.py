"""Consent and patient rights over a real database: every refusal of enrolment and
sharing (no consent, refused, withdrawn, another team's patient, a physician outside the
EU/EEA without the transfer acknowledged) with its sentence in French and English; a
withdrawal ends enrolments or revokes that physician's links at once; the notices in the
eight languages; requests of access with their 8-day deadline on the dashboard."""

from __future__ import annotations

# the French sentences are the catalog's own, typographic apostrophes included
# ruff: noqa: RUF001
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.common.notices import NOTICE_KINDS, NOTICE_LANGUAGES, notice
from store.access_requests import fulfil_access_request
from store.provisioning import ensure_patient, register_device
from tests.api.conftest import World, audit_rows

FR = {"Accept-Language": "fr"}


@pytest.fixture
def admin(login: Callable[[str], TestClient]) -> TestClient:
    return login("admin")


@pytest.fixture
def newcomer(world: World) -> int:
    """A patient of team A with no consent recorded, and a device of the team free."""
    with psycopg.connect(world.db, autocommit=True) as conn:
        patient = ensure_patient(conn, "PA-NEW", world.team_a, "ar", "Africa/Casablanca")
        conn.execute("UPDATE patients SET home_country = 'MA' WHERE patient_id = %s", (patient,))
        register_device(conn, "cuff-consent-1", "bp_cuff", "gw-a-001")
    return patient


def consent(client: TestClient, patient: int, **body: object) -> dict[str, Any]:
    res = client.post(
        f"/api/v1/patients/{patient}/consents",
        json={"notice_version": 1, "notice_language": "fr", **body},
    )
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def enrol(client: TestClient, patient: int, **headers: str) -> tuple[int, str]:
    res = client.post(
        f"/api/v1/patients/{patient}/enrollments",
        json={"device_id": "cuff-consent-1"},
        headers=headers,
    )
    return res.status_code, res.json().get("detail", "") if res.status_code >= 400 else ""


def link(client: TestClient, patient: int, **body: object) -> tuple[int, dict[str, Any]]:
    res = client.post(
        f"/api/v1/patients/{patient}/share-links",
        json={"language": "fr", "second_code": False, **body},
    )
    out: dict[str, Any] = res.json()
    return res.status_code, out


def test_no_device_is_enrolled_without_the_monitoring_consent(
    admin: TestClient, world: World, newcomer: int
) -> None:
    assert enrol(admin, newcomer) == (
        409,
        "Record the patient's consent to remote monitoring (patient page, Consent)"
        " before enrolling a device.",
    )
    assert enrol(admin, newcomer, **FR) == (
        409,
        "Enregistrez le consentement du patient à la télésurveillance (page du patient,"
        " rubrique Consentements) avant d’affecter un appareil.",
    )
    refused = consent(admin, newcomer, kind="monitoring", decision="refused")
    assert refused["enrollments_ended"] == 0
    status, sentence = enrol(admin, newcomer)
    assert status == 409
    assert sentence.startswith("The patient refused remote monitoring")
    status, sentence = enrol(admin, newcomer, **FR)
    assert sentence.startswith("Le patient a refusé la télésurveillance")
    # the patient changes their mind: the latest decision wins
    consent(admin, newcomer, kind="monitoring", notice_language="ar")
    assert enrol(admin, newcomer) == (201, "")
    with psycopg.connect(world.db) as conn:
        count = conn.execute(
            "SELECT count(*) FROM enrollments WHERE patient_id = %s", (newcomer,)
        ).fetchone()
    assert count == (1,)


def test_withdrawing_monitoring_ends_the_enrolments_at_once(
    admin: TestClient, world: World, newcomer: int
) -> None:
    given = consent(admin, newcomer, kind="monitoring")
    assert enrol(admin, newcomer)[0] == 201
    consent_id = given["consent"]["consent_id"]
    res = admin.post(
        f"/api/v1/patients/{newcomer}/consents/{consent_id}/withdraw",
        json={"note": "ne souhaite plus être suivi"},
    )
    assert res.status_code == 200, res.text
    assert res.json()["enrollments_ended"] == 1
    assert res.json()["consent"]["in_force"] is False
    assert res.json()["consent"]["withdrawn_by"] == "Admin A"
    with psycopg.connect(world.db) as conn:
        open_now = conn.execute(
            "SELECT count(*) FROM enrollments WHERE patient_id = %s AND valid @> now()",
            (newcomer,),
        ).fetchone()
        kept = conn.execute(
            "SELECT count(*), bool_and(withdrawn_at IS NOT NULL) FROM consents"
            " WHERE patient_id = %s",
            (newcomer,),
        ).fetchone()
    assert open_now == (0,)
    assert kept == (1, True)  # the record stays, stamped: the history is kept
    status, sentence = enrol(admin, newcomer)
    assert (status, sentence.split(":")[0]) == (
        409,
        "The patient withdrew their consent to remote monitoring",
    )
    assert enrol(admin, newcomer, **FR)[1].startswith(
        "Le patient a retiré son consentement à la télésurveillance"
    )
    again = admin.post(f"/api/v1/patients/{newcomer}/consents/{consent_id}/withdraw", json={})
    assert again.status_code == 409
    assert again.json()["detail"].startswith("This consent is not in force")
    (actor, patient, detail) = audit_rows(world.db, "consent_withdrawn")[0]
    assert str(actor).startswith("clinician:")
    assert patient == newcomer
    assert detail == {
        "consent_id": consent_id,
        "kind": "monitoring",
        "enrollments_ended": 1,
        "links_revoked": [],
    }


def test_no_link_without_a_sharing_consent_naming_the_physician(
    admin: TestClient, world: World, newcomer: int
) -> None:
    status, body = link(admin, newcomer)
    assert status == 409
    assert body["detail"] == (
        "The patient has not consented to sharing with a home physician: record that"
        " consent, naming the physician, before making a link."
    )
    fr = admin.post(f"/api/v1/patients/{newcomer}/share-links", json={"language": "fr"}, headers=FR)
    assert fr.json()["detail"] == (
        "Le patient n’a pas consenti au partage avec un médecin traitant : enregistrez ce"
        " consentement, en désignant le médecin, avant de créer un lien."
    )
    # a physician in Morocco: outside the EU/EEA, the transfer must be acknowledged too
    sharing = consent(
        admin,
        newcomer,
        kind="sharing",
        notice_language="ar",
        physician={"name": "Dr Amina Benali", "country": "MA", "email": "a.benali@example.ma"},
    )["consent"]
    assert sharing["physician_in_eea"] is False
    status, body = link(admin, newcomer)
    assert (status, body["detail"]) == (
        409,
        "Dr Amina Benali practises outside the EU/EEA: record the patient's acknowledgement"
        " of the transfer before making a link.",
    )
    fr = admin.post(f"/api/v1/patients/{newcomer}/share-links", json={"language": "fr"}, headers=FR)
    assert fr.json()["detail"].startswith("Dr Amina Benali exerce hors de l’UE/EEE")
    consent(
        admin,
        newcomer,
        kind="transfer",
        notice_language="ar",
        sharing_consent_id=sharing["consent_id"],
    )
    status, made = link(admin, newcomer)
    assert status == 201, made
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT consent_id, recipient FROM share_links WHERE link_id = %s", (made["link_id"],)
        ).fetchone()
    assert row == (sharing["consent_id"], "Dr Amina Benali")


def test_withdrawing_sharing_revokes_that_physicians_links_at_once(
    login: Callable[[str], TestClient], world: World, anonymous: TestClient
) -> None:
    coordinator = login("coordinator")
    records = coordinator.get(f"/api/v1/patients/{world.patient_a2}/consents").json()
    sharing = next(r for r in records["records"] if r["kind"] == "sharing")
    assert sharing["physician_name"] == "Dra. Lucía García"
    # a second physician, in Germany: links under each consent are that physician's
    other = consent(
        coordinator,
        world.patient_a2,
        kind="sharing",
        physician={"name": "Dr Klaus Weber", "country": "DE"},
    )["consent"]
    status, body = link(coordinator, world.patient_a2)
    assert status == 422
    assert body["detail"].startswith("The patient consented to sharing with several")
    _, first = link(coordinator, world.patient_a2, consent_id=sharing["consent_id"])
    _, second = link(coordinator, world.patient_a2, consent_id=sharing["consent_id"])
    _, weber = link(coordinator, world.patient_a2, consent_id=other["consent_id"])
    token = str(first["url"]).removeprefix("/s/")
    assert anonymous.get(f"/s/{token}").status_code == 200
    res = coordinator.post(
        f"/api/v1/patients/{world.patient_a2}/consents/{sharing['consent_id']}/withdraw",
        json={},
    )
    assert res.status_code == 200, res.text
    assert res.json()["links_revoked"] == sorted([first["link_id"], second["link_id"]])
    assert anonymous.get(f"/s/{token}").status_code == 410  # the physician's page: revoked
    states = {
        x["link_id"]: x["state"]
        for x in coordinator.get(f"/api/v1/patients/{world.patient_a2}/share-links").json()
    }
    assert states == {
        first["link_id"]: "revoked",
        second["link_id"]: "revoked",
        weber["link_id"]: "active",
    }
    # no new link for the withdrawn physician; the other one still works
    status, body = link(coordinator, world.patient_a2, consent_id=sharing["consent_id"])
    assert (status, body["detail"]) == (
        409,
        "No sharing consent in force names this physician: record the patient's consent"
        " to share with them first.",
    )
    assert link(coordinator, world.patient_a2)[0] == 201  # the only one left: Dr Weber


def test_withdrawn_sharing_is_said_so(admin: TestClient, world: World) -> None:
    records = admin.get(f"/api/v1/patients/{world.patient_a2}/consents").json()
    sharing = next(r for r in records["records"] if r["kind"] == "sharing")
    admin.post(
        f"/api/v1/patients/{world.patient_a2}/consents/{sharing['consent_id']}/withdraw", json={}
    )
    status, body = link(admin, world.patient_a2)
    assert (status, body["detail"]) == (
        409,
        "The patient withdrew their consent to sharing with a home physician: no link can be"
        " made unless they consent again.",
    )
    fr = admin.post(
        f"/api/v1/patients/{world.patient_a2}/share-links", json={"language": "fr"}, headers=FR
    )
    assert fr.json()["detail"].startswith(
        "Le patient a retiré son consentement au partage avec un médecin traitant"
    )


def test_withdrawing_the_transfer_revokes_links_outside_the_eu(
    admin: TestClient, world: World
) -> None:
    records = admin.get(f"/api/v1/patients/{world.patient_a}/consents").json()["records"]
    transfer = next(r for r in records if r["kind"] == "transfer")
    _, made = link(admin, world.patient_a)
    res = admin.post(
        f"/api/v1/patients/{world.patient_a}/consents/{transfer['consent_id']}/withdraw", json={}
    )
    assert res.json()["links_revoked"] == [made["link_id"]]
    status, body = link(admin, world.patient_a)
    assert status == 409
    assert str(body["detail"]).startswith("Dr Jane Miller practises outside the EU/EEA")


def test_another_teams_patient_is_refused(login: Callable[[str], TestClient], world: World) -> None:
    other = login("other")
    for method, url, body in [
        ("GET", f"/api/v1/patients/{world.patient_a}/consents", None),
        (
            "POST",
            f"/api/v1/patients/{world.patient_a}/consents",
            {"kind": "monitoring", "notice_version": 1, "notice_language": "fr"},
        ),
        ("POST", f"/api/v1/patients/{world.patient_a}/consents/1/withdraw", {}),
        ("GET", f"/api/v1/patients/{world.patient_a}/access-requests", None),
        (
            "POST",
            f"/api/v1/patients/{world.patient_a}/access-requests",
            {"kind": "access", "received_on": date.today().isoformat()},
        ),
        ("POST", f"/api/v1/patients/{world.patient_a}/access-requests/1/fulfil", None),
    ]:
        res = other.request(method, url, json=body)
        assert res.status_code == 403, (url, res.text)
        assert res.json()["detail"] == "This patient is not followed by your care teams."
        fr = other.request(method, url, json=body, headers=FR)
        assert fr.json()["detail"] == "Ce patient n’est pas suivi par vos équipes de soins."
    # and a consent of another patient cannot be withdrawn through one of this team
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT consent_id FROM consents WHERE patient_id = %s LIMIT 1", (world.patient_a,)
        ).fetchone()
    assert row is not None
    res = other.post(f"/api/v1/patients/{world.patient_b}/consents/{row[0]}/withdraw", json={})
    assert res.status_code == 404
    assert res.json()["detail"] == "This consent record does not exist."


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (
            {"kind": "monitoring", "notice_version": 7, "notice_language": "fr"},
            "There is no notice version 7 in this language for this consent.",
        ),
        (
            {
                "kind": "sharing",
                "decision": "refused",
                "notice_version": 1,
                "notice_language": "fr",
                "physician": {"name": "Dr X", "country": "FR"},
            },
            "Only remote monitoring is recorded as a refusal; when the patient does not agree"
            " to the others, record nothing.",
        ),
        (
            {"kind": "sharing", "notice_version": 1, "notice_language": "fr"},
            "A sharing consent names the home physician; the other consents name none.",
        ),
        (
            {
                "kind": "monitoring",
                "notice_version": 1,
                "notice_language": "fr",
                "decided_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            },
            "The patient's decision cannot be dated in the future.",
        ),
        (
            {"kind": "monitoring", "notice_version": 1, "notice_language": "ru"},
            "Notice language: choose one of the values offered.",
        ),
    ],
)
def test_inconsistent_records_are_refused_with_a_sentence(
    admin: TestClient, world: World, body: dict[str, object], sentence: str
) -> None:
    res = admin.post(f"/api/v1/patients/{world.patient_a}/consents", json=body)
    assert res.status_code == 422
    assert res.json()["detail"] == sentence


def test_a_physician_in_the_eu_needs_no_transfer(admin: TestClient, world: World) -> None:
    records = admin.get(f"/api/v1/patients/{world.patient_a2}/consents").json()["records"]
    sharing = next(r for r in records if r["kind"] == "sharing")
    res = admin.post(
        f"/api/v1/patients/{world.patient_a2}/consents",
        json={
            "kind": "transfer",
            "notice_version": 1,
            "notice_language": "es",
            "sharing_consent_id": sharing["consent_id"],
        },
        headers=FR,
    )
    assert res.status_code == 422
    assert res.json()["detail"] == (
        "Ce médecin exerce dans l’UE/EEE : aucun accord de transfert n’est nécessaire."
    )


def test_consents_are_read_audited_and_listed_newest_first(admin: TestClient, world: World) -> None:
    got = admin.get(f"/api/v1/patients/{world.patient_a}/consents").json()
    assert got["monitoring"] == "given"
    assert [r["kind"] for r in got["records"]][:3] == ["transfer", "sharing", "monitoring"] or {
        r["kind"] for r in got["records"]
    } == {"monitoring", "sharing", "transfer"}
    assert all(r["in_force"] for r in got["records"])
    assert audit_rows(world.db, "consents_read")[-1][1] == world.patient_a
    consent(admin, world.patient_a, kind="monitoring", notice_language="en")
    rows = audit_rows(world.db, "consent_recorded")
    assert rows[-1][2]["notice"] == "monitoring/v1/en"  # type: ignore[index]
    again = admin.get(f"/api/v1/patients/{world.patient_a}/consents").json()["records"]
    monitoring = [r for r in again if r["kind"] == "monitoring"]
    assert [r["in_force"] for r in monitoring] == [True, False]  # the older one superseded


def test_every_notice_exists_in_the_eight_languages(
    admin: TestClient, login: Callable[[str], TestClient]
) -> None:
    index = admin.get("/api/v1/notices").json()
    assert [(n["kind"], n["current_version"]) for n in index] == [
        ("monitoring", 1),
        ("sharing", 1),
        ("transfer", 1),
    ]
    titles = set()
    for kind in NOTICE_KINDS:
        for lang in NOTICE_LANGUAGES:
            text = notice(kind, 1, lang)
            assert text is not None, (kind, lang)
            assert len(text.paragraphs) >= 3, (kind, lang)
            titles.add(text.title)
    assert len(titles) == len(NOTICE_KINDS) * len(NOTICE_LANGUAGES)  # each translated
    ar = admin.get("/api/v1/notices/transfer/1/ar").json()
    assert ar["direction"] == "rtl"
    assert "49" in " ".join(ar["paragraphs"])
    missing = admin.get("/api/v1/notices/monitoring/9/fr", headers=FR)
    assert missing.status_code == 404
    assert (
        missing.json()["detail"] == "Cette notice n’existe pas dans cette version et cette langue."
    )
    page = admin.get("/notices/sharing/1/zh")
    assert page.status_code == 200
    assert "同意与您的家庭医生共享" in page.text
    assert 'dir="ltr"' in page.text
    assert 'dir="rtl"' in admin.get("/notices/monitoring/1/ar").text


def test_access_requests_have_an_eight_day_deadline_on_the_dashboard(
    login: Callable[[str], TestClient], world: World
) -> None:
    coordinator = login("coordinator")
    today = datetime.now(UTC).date()
    late = coordinator.post(
        f"/api/v1/patients/{world.patient_a2}/access-requests",
        json={"kind": "portability", "received_on": (today - timedelta(days=10)).isoformat()},
    )
    assert late.status_code == 201, late.text
    assert late.json()["due_on"] == (today - timedelta(days=2)).isoformat()
    assert late.json()["overdue"] is True
    fresh = coordinator.post(
        f"/api/v1/patients/{world.patient_a}/access-requests",
        json={"kind": "access", "received_on": today.isoformat(), "note": "par courrier"},
    ).json()
    assert fresh["due_on"] == (today + timedelta(days=8)).isoformat()
    assert fresh["overdue"] is False
    board = {p["patient_id"]: p for p in coordinator.get("/api/v1/dashboard").json()["patients"]}
    assert [(r["kind"], r["overdue"]) for r in board[world.patient_a2]["access_requests"]] == [
        ("portability", True)
    ]
    assert [r["due_on"] for r in board[world.patient_a]["access_requests"]] == [fresh["due_on"]]
    page = coordinator.get("/")  # the coordinator reads French
    assert "en retard depuis le" in page.text
    assert "réponse avant le" in page.text
    done = coordinator.post(
        f"/api/v1/patients/{world.patient_a2}/access-requests/{late.json()['request_id']}/fulfil"
    )
    assert done.status_code == 200
    assert done.json()["fulfilled_by"] == "Infirmière A"
    assert done.json()["overdue"] is False
    twice = coordinator.post(
        f"/api/v1/patients/{world.patient_a2}/access-requests/{late.json()['request_id']}/fulfil",
        headers={"Accept-Language": "en"},
    )
    assert (twice.status_code, twice.json()["detail"]) == (
        409,
        "This request was answered already.",
    )
    board = {p["patient_id"]: p for p in coordinator.get("/api/v1/dashboard").json()["patients"]}
    assert board[world.patient_a2]["access_requests"] == []
    # the store function the export uses answers once
    with psycopg.connect(world.db, autocommit=True) as conn:
        assert fulfil_access_request(conn, fresh["request_id"], 1) is True
        assert fulfil_access_request(conn, fresh["request_id"], 1) is False
    assert [r[2]["request_id"] for r in audit_rows(world.db, "access_request_recorded")] == [  # type: ignore[index]
        late.json()["request_id"],
        fresh["request_id"],
    ]
    future = coordinator.post(
        f"/api/v1/patients/{world.patient_a}/access-requests",
        json={"kind": "access", "received_on": (today + timedelta(days=20)).isoformat()},
        headers={"Accept-Language": "en"},
    )
    assert (future.status_code, future.json()["detail"]) == (
        422,
        "A request cannot be received in the future.",
    )
