"""Issue 16, what the pages and cookies give away: the shared page's cookie lacked
Secure with POSTOP_API__SECURE_COOKIES; no HSTS could be turned on; ``/alerts/{id}``
redirected to another team's patient page (revealing its id); year-9999 dates were
accepted and made pages fail; a 500 page came without the security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from tests.security.webapp_world import (
    Clients,
    World,
    add_clinician,
    app_settings,
    clients,
    world,
)
from vitals.settings import ApiSettings, Settings

__all__ = ["app_settings", "clients", "world"]


def _settings(world: World, **api: object) -> Settings:
    return Settings(database_url=SecretStr(world.db), api=ApiSettings(**api))  # type: ignore[arg-type]


@pytest.fixture
def secure_clients(world: World) -> Iterator[Clients]:
    made = Clients(_settings(world, secure_cookies=True, hsts=True))
    yield made
    made.close()


def _cookie(res: object, name: str) -> str:
    headers = res.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert found, headers
    return str(found[0])


def test_every_cookie_is_secure_with_secure_cookies(
    world: World, clients: Clients, secure_clients: Clients
) -> None:
    physician = clients.signed_in(world.emails["physician"])
    link = physician.post(
        f"/api/v1/patients/{world.patient_a}/share-links", json={"language": "en"}
    ).json()
    browser = secure_clients.anonymous()  # http://testserver: only the setting says TLS
    form = browser.get(link["url"])
    form_cookie = _cookie(form, "postop_share_form")
    assert "Secure" in form_cookie
    token = re.search(r'name="form_token" value="([^"]+)"', form.text)
    assert token is not None
    res = browser.post(
        f"{link['url']}/code",
        data={"code": link["code"], "form_token": token[1]},
        # a client keeps a Secure cookie for https: handed back by hand over http
        headers={"Cookie": form_cookie.split(";")[0]},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    assert "Secure" in _cookie(res, "postop_share")
    assert "Secure" in _cookie(browser.get("/login"), "postop_login_csrf")


def test_hsts_when_configured_and_only_then(world: World, secure_clients: Clients) -> None:
    on = secure_clients.anonymous().get("/login")
    assert on.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    with TestClient(create_app(_settings(world))) as plain:
        assert "strict-transport-security" not in plain.get("/login").headers


def test_an_alert_link_of_another_team_answers_like_a_missing_alert(
    world: World, clients: Clients
) -> None:
    client = clients.signed_in(world.emails["coordinator"])  # team A
    missing = client.get("/alerts/999999", follow_redirects=False)
    other = client.get(f"/alerts/{world.alert_b}", follow_redirects=False)
    assert missing.status_code == 404
    assert other.status_code == 404
    assert "location" not in other.headers
    assert f"/patients/{world.patient_b}" not in other.text
    if other.headers["content-type"].startswith("application/json"):
        said = other.json()["detail"].replace(str(world.alert_b), "N")
        assert said == missing.json()["detail"].replace("999999", "N")
    own = client.get(f"/alerts/{world.alert_a}", follow_redirects=False)
    assert own.status_code == 303
    assert own.headers["location"] == f"/patients/{world.patient_a}#alert-{world.alert_a}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("discharged_at", "9999-12-31T23:00:00Z"),
        ("discharged_at", "0001-01-01T00:00:00Z"),
        ("surgery_date", "9999-01-01"),
        ("discharged_at", "2026-11-29T10:00:00"),  # no offset: which zone?
    ],
)
def test_a_patient_with_an_absurd_date_is_refused_in_the_readers_language(
    world: World, clients: Clients, field: str, value: str
) -> None:
    add_clinician(world.db, "admin-en@hopital.example", "admin", [world.team_a], "en")
    details = []
    for email in (world.emails["admin"], "admin-en@hopital.example"):  # French, English
        admin = clients.signed_in(email)
        res = admin.post(
            "/api/v1/patients",
            json={"pseudonym": "PA-999", "team_id": world.team_a, field: value},
        )
        assert res.status_code == 422, res.text
        details.append(res.json()["detail"])
        assert admin.get("/api/v1/patients/999999").status_code == 404  # the app still answers
    french, english = details
    assert french != english
    if "T10:00:00" not in value:  # out of range: the sentence says the allowed span
        latest = str(datetime.now(UTC).year + 1)
        assert latest in french
        assert latest in english


def test_enrollments_and_trends_are_bounded_too(world: World, clients: Clients) -> None:
    admin = clients.signed_in(world.emails["admin"])
    res = admin.post(
        f"/api/v1/patients/{world.patient_a2}/enrollments",
        json={"device_id": "ox-a-001", "end": "9999-12-31T00:00:00Z"},
    )
    latest = str(datetime.now(UTC).year + 1)
    assert res.status_code == 422
    assert latest in res.json()["detail"]
    physician = clients.signed_in(world.emails["physician"])  # English
    trends = physician.get(
        f"/api/v1/patients/{world.patient_a}/trends",
        params={
            "metric": "spo2_pct",
            "start": "2026-01-01T00:00:00Z",
            "end": "9999-01-01T00:00:00Z",
        },
    )
    assert trends.status_code == 422
    assert latest in trends.json()["detail"]


def _failing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/api/v1/test-failure")
    @app.get("/test-failure")
    def fail() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.mark.parametrize("path", ["/test-failure", "/api/v1/test-failure"])
def test_a_500_carries_the_security_headers(world: World, path: str) -> None:
    app = _failing_app(_settings(world, hsts=True))
    with TestClient(app, raise_server_exceptions=False) as client:
        res = client.get(path, headers={"Accept-Language": "en"})
    assert res.status_code == 500
    assert "frame-ancestors 'none'" in res.headers["content-security-policy"]
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" in res.headers
    assert "a bug" not in res.text


def test_a_busy_database_pool_is_a_503_not_a_500(world: World) -> None:
    """40 parallel sign-ins once took every pooled connection: the rest answered 500."""
    app = create_app(_settings(world, pool_max_size=1))
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        app.state.db.connection(),  # the only connection, held
    ):
        res = client.post(
            "/api/v1/session", json={"email": world.emails["physician"], "password": "x"}
        )
    assert res.status_code == 503
    assert res.headers["retry-after"] == "2"
    assert "content-security-policy" in res.headers
