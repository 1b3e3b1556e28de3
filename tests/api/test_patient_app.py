"""The patient app's enrollment and credential over a real database: the team makes a
one-time link (token shown once, stored hashed, with a QR code), the phone uses it once
and gets an HttpOnly cookie, every refusal (link reused, expired, revoked, unknown, past
the follow-up; phone revoked, replaced, expired, ended, absent; another site) answers
a page in the patient's language, and each read by the patient is audited as the patient."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.patient.access import COOKIE
from tests.api.conftest import World, audit_rows
from tests.patient_phone import enroll_phone
from vitals.settings import Settings


def make_link(client: TestClient, patient_id: int) -> dict[str, str]:
    res = client.post(f"/api/v1/patients/{patient_id}/patient-app/links")
    assert res.status_code == 201, res.text
    out: dict[str, str] = res.json()
    return out


@pytest.fixture
def coordinator(login: Callable[[str], TestClient]) -> TestClient:
    return login("coordinator")


@pytest.fixture
def phone(app_settings: Settings) -> Iterator[TestClient]:
    """A fresh browser on the patient's phone (no cookie yet)."""
    with TestClient(create_app(app_settings), follow_redirects=False) as client:
        yield client


def reason(page_html: str) -> str:
    found = re.search(r'data-reason="([^"]+)"', page_html)
    assert found is not None, page_html
    return found[1]


def test_link_is_shown_once_stored_hashed_and_printable(
    coordinator: TestClient, world: World
) -> None:
    link = make_link(coordinator, world.patient_a2)
    token = link["url"].removeprefix("/p/enroll/")
    assert len(token) >= 43  # 256 bits, base64url
    assert link["qr_svg"].startswith("<svg")
    assert "<path" in link["qr_svg"]
    with psycopg.connect(world.db) as conn:
        stored = conn.execute(
            "SELECT token_sha256, expires_at - created_at FROM patient_app_links"
            " WHERE link_id = %s",
            (link["link_id"],),
        ).fetchone()
    assert stored is not None
    assert bytes(stored[0]) == hashlib.sha256(token.encode()).digest()
    assert stored[1].total_seconds() == 72 * 3600
    listed = coordinator.get(f"/api/v1/patients/{world.patient_a2}/patient-app").json()
    assert [x["state"] for x in listed["links"]] == ["active"]
    assert token not in str(listed)
    assert audit_rows(world.db, "patient_app_link_created")[0][1] == world.patient_a2


def test_only_the_patients_team_makes_or_revokes_links(
    login: Callable[[str], TestClient], coordinator: TestClient, world: World
) -> None:
    other = login("other")
    assert other.post(f"/api/v1/patients/{world.patient_a}/patient-app/links").status_code == 403
    assert other.post("/api/v1/patients/999999/patient-app/links").status_code == 404
    assert other.get(f"/api/v1/patients/{world.patient_a}/patient-app").status_code == 403
    link = make_link(coordinator, world.patient_a)
    path = f"/api/v1/patients/{world.patient_a}/patient-app/links/{link['link_id']}/revoke"
    assert other.post(path).status_code == 403
    assert coordinator.post(path).status_code == 200
    assert coordinator.post(path).status_code == 404  # already revoked


def test_enrollment_binds_the_phone_once(
    coordinator: TestClient, phone: TestClient, app_settings: Settings, world: World
) -> None:
    link = make_link(coordinator, world.patient_a2)
    # a link preview fetching the URL does not use it up
    for _ in range(2):
        page = phone.get(link["url"])
        assert page.status_code == 200
        assert 'method="post"' in page.text
        assert '<html lang="es" dir="ltr">' in page.text
    assert phone.get("/p/").status_code == 401
    res = phone.post(link["url"])
    assert res.status_code == 303
    assert res.headers["location"] == "/p/"
    cookie = res.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/p" in cookie
    assert "Secure" not in cookie  # plain http in the test; Secure on TLS
    home = phone.get("/p/")
    assert home.status_code == 200
    assert home.headers["cache-control"].startswith("no-store")
    listed = coordinator.get(f"/api/v1/patients/{world.patient_a2}/patient-app").json()
    assert [x["state"] for x in listed["links"]] == ["used"]
    assert [x["state"] for x in listed["phones"]] == ["active"]
    credential_id = listed["phones"][0]["credential_id"]
    # the patient's read is audited as the patient (their phone)
    rows = audit_rows(world.db, "patient_app_home")
    assert [(r[0], r[1]) for r in rows] == [(f"patient_app:{credential_id}", world.patient_a2)]
    # the same link again, from this phone or another: refused in the patient's language
    with TestClient(create_app(app_settings)) as thief:
        again = thief.post(link["url"])
        assert again.status_code == 410
        assert reason(again.text) == "link_used"
        assert '<html lang="es"' in again.text
        assert COOKIE not in again.headers.get("set-cookie", "")
        assert thief.get(link["url"]).status_code == 410


def test_expired_revoked_unknown_and_ended_links_are_refused(
    coordinator: TestClient, phone: TestClient, login: Callable[[str], TestClient], world: World
) -> None:
    expired = make_link(coordinator, world.patient_a2)
    revoked = make_link(coordinator, world.patient_a2)
    ended = make_link(coordinator, world.patient_a)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patient_app_links SET created_at = now() - interval '4 days',"
            " expires_at = now() - interval '1 day' WHERE link_id = %s",
            (expired["link_id"],),
        )
    path = f"/api/v1/patients/{world.patient_a2}/patient-app/links/{revoked['link_id']}/revoke"
    assert coordinator.post(path).status_code == 200
    res = login("admin").post(
        f"/api/v1/patients/{world.patient_a}/end-follow-up", json={"note": None}
    )
    assert res.status_code == 200, res.text
    for link, why, lang in (
        (expired, "link_expired", "es"),
        (revoked, "link_revoked", "es"),
        (ended, "link_ended", "en"),
    ):
        for method in (phone.get, phone.post):
            page = method(link["url"])
            assert page.status_code == 410, (why, page.text)
            assert reason(page.text) == why
            assert f'<html lang="{lang}"' in page.text
            assert "PA-00" not in page.text
    page = phone.get("/p/enroll/not-a-real-token", headers={"Accept-Language": "zh-CN,zh"})
    assert page.status_code == 404
    assert reason(page.text) == "link_unknown"
    assert '<html lang="zh"' in page.text
    assert phone.post("/p/enroll/not-a-real-token").status_code == 404
    # after the follow-up, no new link can be made
    res = coordinator.post(f"/api/v1/patients/{world.patient_a}/patient-app/links")
    assert res.status_code == 409


def test_a_phone_is_refused_once_revoked_replaced_expired_or_ended(
    coordinator: TestClient,
    app_settings: Settings,
    login: Callable[[str], TestClient],
    world: World,
) -> None:
    def status(cookie: str) -> tuple[int, str]:
        with TestClient(create_app(app_settings), cookies={COOKIE: cookie}) as client:
            page = client.get("/p/")
            return page.status_code, (reason(page.text) if page.status_code != 200 else "")

    assert status("not-a-credential") == (401, "not_enrolled")
    lost = enroll_phone(world.db, world.patient_a2)
    assert status(lost.token) == (200, "")
    new = enroll_phone(world.db, world.patient_a2)  # the lost phone is replaced
    assert status(lost.token) == (403, "credential_replaced")
    assert status(new.token) == (200, "")
    path = f"/api/v1/patients/{world.patient_a2}/patient-app/phones/{new.credential_id}/revoke"
    assert login("other").post(path).status_code == 403
    assert coordinator.post(path).status_code == 200
    assert status(new.token) == (403, "credential_revoked")
    assert coordinator.post(path).status_code == 404
    old = enroll_phone(world.db, world.patient_b)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patient_credentials SET expires_at = now() - interval '1 s'"
            " WHERE credential_id = %s",
            (old.credential_id,),
        )
    assert status(old.token) == (403, "credential_expired")
    ending = enroll_phone(world.db, world.patient_a)
    assert status(ending.token) == (200, "")
    res = login("admin").post(
        f"/api/v1/patients/{world.patient_a}/end-follow-up", json={"note": None}
    )
    assert res.status_code == 200
    assert status(ending.token) == (403, "credential_ended")
    phones = coordinator.get(f"/api/v1/patients/{world.patient_a2}/patient-app").json()["phones"]
    assert [x["state"] for x in phones] == ["revoked", "replaced"]


def test_refusals_speak_the_patients_language(app_settings: Settings, world: World) -> None:
    phone = enroll_phone(world.db, world.patient_b)  # an Italian patient
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patient_credentials SET revoked_at = now(), revoked_reason = 'team'"
            " WHERE credential_id = %s",
            (phone.credential_id,),
        )
    with TestClient(
        create_app(app_settings), cookies=phone.cookies, headers={"Accept-Language": "fr"}
    ) as client:
        page = client.get("/p/")
    assert page.status_code == 403
    assert '<html lang="it" dir="ltr">' in page.text


def test_another_site_cannot_enroll_a_browser(
    coordinator: TestClient, phone: TestClient, world: World
) -> None:
    link = make_link(coordinator, world.patient_a2)
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame of another site
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
    ):
        res = phone.post(link["url"], headers=headers)
        assert res.status_code == 403, headers
        assert COOKIE not in res.headers.get("set-cookie", "")
    # what Chromium sends from the app's own button (it says so in Sec-Fetch-Site)
    res = phone.post(link["url"], headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert res.status_code == 303
