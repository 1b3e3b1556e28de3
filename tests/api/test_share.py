"""Shared links over a real database: creation (token and code shown once, stored
hashed), the page and its audit, the second code and its lockout, expiry, revocation,
unknown links, every language, the viewer's units, the FHIR R4 export validated with
fhir.resources, rate limiting, and nothing of another patient reachable."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from pydantic import SecretStr

from api.app import create_app
from api.common.share_links import CODE_MAX_FAILURES
from tests.api.conftest import World, add_vitals, audit_rows
from vitals.settings import ApiSettings, Settings

HEADINGS = {  # "Latest values" in each language of the shared page
    "fr": "Dernières valeurs",
    "en": "Latest values",
    "es": "Últimos valores",
    "it": "Ultimi valori",
    "de": "Letzte Werte",
    "pt": "Últimos valores",
    "ar": "آخر القيم",
    "zh": "最新数值",
}


def make_link(client: TestClient, patient_id: int, **body: object) -> dict[str, str]:
    res = client.post(
        f"/api/v1/patients/{patient_id}/share-links",
        json={"language": "en", "second_code": False, **body},
    )
    assert res.status_code == 201, res.text
    out: dict[str, str] = res.json()
    return out


@pytest.fixture
def physician(login: Callable[[str], TestClient]) -> TestClient:
    return login("physician")


def _code_form_token(page_html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page_html)
    assert found is not None
    return found[1]


def test_link_is_shown_once_and_stored_hashed(physician: TestClient, world: World) -> None:
    link = make_link(physician, world.patient_a, second_code=True, recipient="Dr Smith")
    token = link["url"].removeprefix("/s/")
    assert len(token) >= 43  # 256 bits, base64url
    assert re.fullmatch(r"\d{6}", link["code"])
    with psycopg.connect(world.db) as conn:
        row = conn.execute("SELECT token_sha256, code_hash FROM share_links").fetchone()
        dump = conn.execute("SELECT row_to_json(l)::text FROM share_links l").fetchone()
    assert row is not None
    assert dump is not None
    assert token not in dump[0]
    assert link["code"] not in dump[0]
    assert row[1].startswith("$argon2id$")
    listed = physician.get(f"/api/v1/patients/{world.patient_a}/share-links").json()
    assert [(x["recipient"], x["created_by"], x["state"], x["has_code"]) for x in listed] == [
        ("Dr Smith", "Dr A", "active", True)
    ]


def test_shared_page_is_read_only_uncached_and_audited(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    link = make_link(physician, world.patient_a)
    page = anonymous.get(link["url"], headers={"X-Forwarded-For": "ignored"})
    assert page.status_code == 200
    assert "PA-001" in page.text
    assert '<meta name="robots" content="noindex' in page.text
    assert page.headers["x-robots-tag"].startswith("noindex")
    assert page.headers["cache-control"].startswith("no-store")
    assert "Oxygen saturation very low" in page.text  # the alert, in words
    uses = audit_rows(world.db, "share_view")
    assert len(uses) == 1
    actor, patient, detail = uses[0]
    assert actor == f"share_link:{link['link_id']}"
    assert patient == world.patient_a
    assert detail == {
        "address": "testclient",
        "shown": ["summary", "latest", "alerts", "questions", "questionnaires"],
    }
    # the clinicians see it on the patient's record
    log = physician.get(f"/api/v1/patients/{world.patient_a}/access-log").json()
    assert any(e["who"].startswith(f"link {link['link_id']}") for e in log)
    listed = physician.get(f"/api/v1/patients/{world.patient_a}/share-links").json()
    assert listed[0]["uses"] == 1
    assert listed[0]["last_used_at"] is not None


def test_second_code_then_lockout(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    link = make_link(physician, world.patient_a, second_code=True, language="de")
    page = anonymous.get(link["url"])
    assert page.status_code == 200
    assert "Code eingeben" in page.text
    assert "PA-001" not in page.text  # nothing about the patient before the code
    wrong = "000000" if link["code"] != "000000" else "111111"
    for attempt in range(1, CODE_MAX_FAILURES + 1):
        res = anonymous.post(
            f"{link['url']}/code",
            data={"code": wrong, "form_token": _code_form_token(page.text)},
        )
        page = res
        if attempt < CODE_MAX_FAILURES:
            assert res.status_code == 401
            assert "Falscher Code." in res.text
        else:
            assert res.status_code == 423
            assert "gesperrt" in res.text
    # locked: even the right code is refused now, and nothing is shown
    form = anonymous.get(link["url"])
    assert form.status_code == 423
    assert "PA-001" not in form.text
    listed = physician.get(f"/api/v1/patients/{world.patient_a}/share-links").json()
    assert listed[0]["state"] == "locked"


def test_right_code_opens_the_page_for_this_browser_only(
    physician: TestClient, anonymous: TestClient, app_settings: Settings, world: World
) -> None:
    link = make_link(physician, world.patient_a, second_code=True)
    form = anonymous.get(link["url"])
    res = anonymous.post(
        f"{link['url']}/code",
        data={"code": link["code"], "form_token": _code_form_token(form.text)},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert "PA-001" in anonymous.get(link["url"]).text
    with TestClient(create_app(app_settings)) as other_browser:
        assert "PA-001" not in other_browser.get(link["url"]).text


def test_expired_and_revoked_links_say_so_in_their_language(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    expired = make_link(physician, world.patient_a, language="it")
    revoked = make_link(physician, world.patient_a, language="es")
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE share_links SET created_at = now() - interval '31 days',"
            " expires_at = now() - interval '1 day' WHERE link_id = %s",
            (expired["link_id"],),
        )
        conn.execute(
            "UPDATE care_teams SET contact_phone = '+33 1 23 45 67 89' WHERE team_id = %s",
            (world.team_a,),
        )
    res = physician.post(
        f"/api/v1/patients/{world.patient_a}/share-links/{revoked['link_id']}/revoke"
    )
    assert res.status_code == 200
    page = anonymous.get(expired["url"])
    assert page.status_code == 410
    assert "Questo link è scaduto." in page.text
    assert "+33 1 23 45 67 89" in page.text  # whom to contact
    assert "PA-001" not in page.text
    page = anonymous.get(revoked["url"])
    assert page.status_code == 410
    assert "El equipo asistencial retiró este enlace." in page.text
    assert "PA-001" not in page.text
    for suffix in ("/trends?metric=spo2_pct", "/fhir"):
        assert anonymous.get(revoked["url"] + suffix).status_code == 403
    listed = {
        x["link_id"]: x["state"]
        for x in physician.get(f"/api/v1/patients/{world.patient_a}/share-links").json()
    }
    assert listed == {int(expired["link_id"]): "expired", int(revoked["link_id"]): "revoked"}


def test_unknown_link_reveals_nothing(anonymous: TestClient, world: World) -> None:
    page = anonymous.get("/s/not-a-real-token", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 404
    assert "此链接不存在" in page.text
    assert "PA-" not in page.text


@pytest.mark.parametrize("language", sorted(HEADINGS))
def test_every_language_renders(
    physician: TestClient, anonymous: TestClient, world: World, language: str
) -> None:
    link = make_link(physician, world.patient_a, language=language)
    page = anonymous.get(link["url"])
    assert page.status_code == 200
    assert HEADINGS[language] in page.text
    assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in page.text


def test_units_follow_the_physicians_country(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET home_country = 'US' WHERE patient_id = %s", (world.patient_a,)
        )
        add_vitals(
            conn, world.patient_a, "ox-a-001", "temp_c", [(now - timedelta(minutes=3), 38.0)]
        )
    us = make_link(physician, world.patient_a)
    metric = make_link(physician, world.patient_a, units="metric", language="fr")
    assert "100.4 °F" in anonymous.get(us["url"]).text
    assert "38,0 °C" in anonymous.get(metric["url"]).text
    series = anonymous.get(f"{us['url']}/trends", params={"metric": "temp_c"}).json()
    assert series["series"][0]["unit"] == "°F"
    assert series["series"][0]["points"][-1]["avg"] == pytest.approx(100.4)
    assert "patient_id" not in series


def test_fhir_bundle_validates_and_carries_what_the_physician_needs(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute("INSERT INTO gateways (gateway_id) VALUES ('gw-cuff')")
        conn.execute(
            "INSERT INTO devices (device_id, kind, gateway_id)"
            " VALUES ('cuff-a', 'bp_cuff', 'gw-cuff')"
        )
        conn.execute(
            "INSERT INTO enrollments (device_id, patient_id, valid) VALUES ('cuff-a', %s,"
            " tstzrange(now() - interval '2 days', NULL))",
            (world.patient_a,),
        )
        at = now - timedelta(hours=2)
        add_vitals(conn, world.patient_a, "cuff-a", "bp_systolic_mmhg", [(at, 128.0)])
        add_vitals(conn, world.patient_a, "cuff-a", "bp_diastolic_mmhg", [(at, 79.0)])
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)"
            " VALUES (%s, %s, 'ox-a-001', 3, NULL, 1)",
            (now - timedelta(hours=1), world.patient_a),
        )
        conn.execute(
            "UPDATE patients SET procedure = 'Total hip replacement', surgery_date = %s,"
            " medications = 'Enoxaparin 4000 IU daily', discharge_instructions = 'Walk daily'"
            " WHERE patient_id = %s",
            ((now - timedelta(days=4)).date(), world.patient_a),
        )
    link = make_link(physician, world.patient_a)
    res = anonymous.get(f"{link['url']}/fhir")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/fhir+json")
    body = res.json()
    bundle = Bundle.model_validate(body)  # FHIR R4B (4.3) models of fhir.resources
    assert bundle.type == "collection"
    resources = [e["resource"] for e in body["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert "name" not in patient
    assert patient["identifier"][0]["value"] == "PA-001"
    assert {r["id"] for r in resources if r["resourceType"] == "Device"} == {"ox-a-001", "cuff-a"}
    obs = [r for r in resources if r["resourceType"] == "Observation"]
    assert all(o["category"][0]["coding"][0]["code"] == "vital-signs" for o in obs)
    panel = next(o for o in obs if o["code"]["coding"][0]["code"] == "85354-9")
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in panel["component"]
    ] == [
        ("8480-6", 128.0),
        ("8462-4", 79.0),
    ]
    assert panel["component"][0]["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert panel["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    absent = [o for o in obs if "dataAbsentReason" in o]
    assert [o["dataAbsentReason"]["coding"][0]["code"] for o in absent] == ["not-a-number"]
    # 599 readings of SpO2 in 10 hours: hourly summaries (mean, with min and max), never
    # hundreds of Observations
    spo2 = [o for o in obs if o["code"]["coding"][0]["code"] == "59408-5"]
    assert 10 <= len(spo2) <= 12
    assert {c["code"] for c in spo2[0]["code"]["coding"]} == {"59408-5", "2708-6"}
    assert spo2[0]["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]
    low, high = (c["valueQuantity"]["value"] for c in spo2[1]["component"])
    assert low <= spo2[1]["valueQuantity"]["value"] <= high
    assert "effectivePeriod" in spo2[1]
    # the procedure, medications, instructions and the alert with what the team did
    kinds = {r["resourceType"] for r in resources}
    assert {"Procedure", "MedicationStatement", "CarePlan", "DetectedIssue"} <= kinds
    issue = next(r for r in resources if r["resourceType"] == "DetectedIssue")
    assert issue["code"]["text"] == "SpO2 below 88% (84% on scale 2) for 3 min"
    assert issue["severity"] == "high"
    assert audit_rows(world.db, "share_fhir")[0][1] == world.patient_a


def test_nothing_of_another_patient_is_reachable(
    physician: TestClient, anonymous: TestClient, world: World, login: Callable[[str], TestClient]
) -> None:
    mine = make_link(physician, world.patient_a)
    theirs = make_link(login("other"), world.patient_b)
    # identifiers in the query are ignored: the token alone says which patient
    queries: list[dict[str, str | int]] = [
        {"metric": "spo2_pct", "patient_id": world.patient_b},
        {"metric": "spo2_pct", "patient": world.patient_b},
    ]
    for params in queries:
        res = anonymous.get(f"{mine['url']}/trends", params=params)
        assert res.status_code == 200
        assert len(res.json()["series"][0]["points"]) > 0  # patient A's readings
    page_b = anonymous.get(theirs["url"]).text
    assert "PB-001" in page_b
    assert "PA-001" not in page_b
    # a link's cookie or page opens no clinician endpoint
    for url in (
        f"/api/v1/patients/{world.patient_b}",
        "/api/v1/dashboard",
        f"/patients/{world.patient_a}",
    ):
        assert anonymous.get(url, follow_redirects=False).status_code in (401, 303)
    # a token with one character changed is another (unknown) link
    token = mine["url"].removeprefix("/s/")
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert anonymous.get(f"/s/{altered}").status_code == 404
    assert anonymous.get(f"/s/{altered}/fhir").status_code == 403
    # nor does putting the other patient's id anywhere in the path
    for url in (
        f"{mine['url']}/{world.patient_b}",
        f"{mine['url']}/trends/{world.patient_b}",
        f"/s/{world.patient_b}",
    ):
        res = anonymous.get(url)
        assert res.status_code == 404
        assert "PB-001" not in res.text


def test_shared_pages_are_rate_limited(world: World, login: Callable[[str], TestClient]) -> None:
    settings = Settings(
        database_url=SecretStr(world.db), api=ApiSettings(share_requests_per_minute=5)
    )
    link = make_link(login("physician"), world.patient_a)
    with TestClient(create_app(settings)) as client:
        codes = [client.get(link["url"]).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2


def test_only_the_team_can_make_or_revoke_links(
    login: Callable[[str], TestClient], world: World
) -> None:
    other = login("other")
    res = other.post(f"/api/v1/patients/{world.patient_a}/share-links", json={"language": "en"})
    assert res.status_code == 403
    link = make_link(login("physician"), world.patient_a)
    res = other.post(f"/api/v1/patients/{world.patient_a}/share-links/{link['link_id']}/revoke")
    assert res.status_code == 403
    bad = login("physician").post(
        f"/api/v1/patients/{world.patient_a}/share-links", json={"language": "ru"}
    )
    assert bad.status_code == 422
    assert "Language: choose one of the values offered." in bad.json()["detail"]


def test_an_alert_found_late_says_so_to_the_team_and_the_home_physician(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    """Opened for an episode that was over before its readings arrived: the API gives its
    times, the team's page and the shared page say it was found after the fact."""
    onset = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE alerts SET late = true, condition_onset_at = %s, condition_cleared_at = %s"
            " WHERE alert_id = %s",
            (onset, onset + timedelta(minutes=8), world.alert_a),
        )
    alerts = physician.get(f"/api/v1/patients/{world.patient_a}/timeline").json()["alerts"]
    late = next(a for a in alerts if a["alert_id"] == world.alert_a)
    assert late["late"] is True
    cleared = datetime.fromisoformat(late["condition_cleared_at"])
    assert cleared - datetime.fromisoformat(late["condition_onset_at"]) == timedelta(minutes=8)
    page = physician.get(f"/patients/{world.patient_a}")
    assert "Found late: the episode was over before its readings arrived" in page.text
    link = make_link(physician, world.patient_a, language="de")
    shared = anonymous.get(link["url"]).text
    assert "Nachträglich erkannt" in shared


def test_the_data_requests_refuse_in_the_links_language(
    physician: TestClient, anonymous: TestClient, world: World
) -> None:
    """The page's script shows these answers as they are: in the physician's language."""
    de = make_link(physician, world.patient_a, language="de")
    res = anonymous.get(f"{de['url']}/trends", params={"metric": "mood_level"})
    assert res.status_code == 422
    assert res.json()["detail"] == "Dieser Messwert wird auf geteilten Seiten nicht angezeigt."
    coded = make_link(physician, world.patient_a, language="ar", second_code=True)
    res = anonymous.get(f"{coded['url']}/trends", params={"metric": "spo2_pct"})
    assert res.status_code == 403
    assert res.json()["detail"] == "لا يمكن استخدام هذا الرابط الآن. أعد تحميل الصفحة."
