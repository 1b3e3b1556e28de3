"""Sign-in, sessions, CSRF, throttling, roles, and team scoping of every patient-data
endpoint, over a real database."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, World, audit_rows, credentials
from vitals.settings import Settings

# every endpoint that reads or changes one patient's data: (method, path template, body)
PATIENT_ENDPOINTS = [
    ("GET", "/api/v1/patients/{p}", None),
    ("GET", "/api/v1/patients/{p}/timeline", None),
    ("GET", "/api/v1/patients/{p}/trends?metric=spo2_pct", None),
    ("GET", "/api/v1/patients/{p}/overrides", None),
    ("POST", "/api/v1/patients/{p}/notes", {"body": "called the patient"}),
    (
        "PUT",
        "/api/v1/patients/{p}/overrides",
        {"rule_id": "spo2_low", "param": "threshold", "value": 90, "reason": "COPD baseline"},
    ),
    ("GET", "/patients/{p}", None),
    ("GET", "/api/v1/patients/{p}/share-links", None),
    ("POST", "/api/v1/patients/{p}/share-links", {"language": "en"}),
    ("POST", "/api/v1/patients/{p}/share-links/1/revoke", None),
    ("GET", "/api/v1/patients/{p}/access-log", None),
    ("PUT", "/api/v1/patients/{p}/discharge", {"medications": "paracetamol"}),
]
ALERT_ENDPOINTS = [
    ("GET", "/api/v1/alerts/{a}", None),
    ("POST", "/api/v1/alerts/{a}/acknowledge", None),
    ("POST", "/api/v1/alerts/{a}/resolve", {"note": "seen"}),
]


def test_sign_in_sets_an_httponly_session_cookie(
    anonymous: TestClient, world: World, app_settings: Settings
) -> None:
    res = anonymous.post(
        "/api/v1/session", json=credentials(app_settings, world.emails["coordinator"])
    )
    assert res.status_code == 200
    cookie = res.headers["set-cookie"]
    assert "postop_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert res.json()["clinician"]["role"] == "coordinator"
    assert len(res.json()["csrf_token"]) >= 24
    assert anonymous.get("/api/v1/me").json()["email"] == world.emails["coordinator"]
    # sign out ends the session on the server, not only in the browser
    token = res.json()["csrf_token"]
    assert anonymous.delete("/api/v1/session", headers={"X-CSRF-Token": token}).status_code == 204
    assert anonymous.get("/api/v1/me").status_code == 401


def test_wrong_password_then_throttled(
    anonymous: TestClient, world: World, app_settings: Settings
) -> None:
    email = world.emails["physician"]
    for _ in range(3):  # login_max_failures=3 in these tests
        res = anonymous.post("/api/v1/session", json={"email": email, "password": "nope"})
        assert res.status_code == 401
        assert res.json()["detail"] == "Wrong e-mail address or password."
    res = anonymous.post("/api/v1/session", json=credentials(app_settings, email))
    assert res.status_code == 429  # even the right password waits out the lockout
    assert int(res.headers["Retry-After"]) > 0
    assert "try again" in res.json()["detail"]
    # another account from the same address is not locked yet
    other = anonymous.post("/api/v1/session", json=credentials(app_settings, world.emails["admin"]))
    assert other.status_code == 200


def test_unknown_account_fails_like_a_wrong_password(anonymous: TestClient, world: World) -> None:
    res = anonymous.post(
        "/api/v1/session", json={"email": "nobody@hopital.example", "password": PASSWORD}
    )
    assert res.status_code == 401
    assert res.json()["detail"] == "Wrong e-mail address or password."


def test_api_needs_a_session_and_pages_redirect(anonymous: TestClient, world: World) -> None:
    res = anonymous.get("/api/v1/dashboard")
    assert res.status_code == 401
    assert res.json()["detail"] == "Sign in first."
    page = anonymous.get(f"/patients/{world.patient_a}", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=%2Fpatients%2F{world.patient_a}"


def test_changes_need_the_csrf_header(login: Callable[[str], TestClient], world: World) -> None:
    client = login("coordinator")
    token = client.headers.pop("X-CSRF-Token")
    res = client.post(f"/api/v1/alerts/{world.alert_a}/acknowledge")
    assert res.status_code == 403
    assert "reload the page" in res.json()["detail"]
    res = client.post(
        f"/api/v1/alerts/{world.alert_a}/acknowledge", headers={"X-CSRF-Token": token + "x"}
    )
    assert res.status_code == 403
    with psycopg.connect(world.db) as conn:
        state = conn.execute(
            "SELECT state FROM alerts WHERE alert_id = %s", (world.alert_a,)
        ).fetchone()
    assert state == ("active",)


@pytest.mark.parametrize(("method", "path", "body"), PATIENT_ENDPOINTS)
def test_another_teams_patient_is_forbidden(
    login: Callable[[str], TestClient],
    world: World,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    client = login("physician")  # team A
    res = client.request(method, path.format(p=world.patient_b), json=body)
    assert res.status_code == 403
    # the API answers JSON, a page answers a page; both say why in the reader's language
    detail = res.text if not path.startswith("/api/") else res.json()["detail"]
    assert "not followed by your care teams" in detail
    missing = client.request(method, path.format(p=987654), json=body)
    assert missing.status_code == 404
    detail = missing.text if not path.startswith("/api/") else missing.json()["detail"]
    assert "This patient does not exist." in detail
    with psycopg.connect(world.db) as conn:
        changed = conn.execute(
            "SELECT (SELECT count(*) FROM clinician_notes) + (SELECT count(*)"
            " FROM threshold_overrides) + (SELECT count(*) FROM share_links)"
            " + (SELECT count(*) FROM patients WHERE medications IS NOT NULL)"
        ).fetchone()
    assert changed == (0,)


@pytest.mark.parametrize(("method", "path", "body"), ALERT_ENDPOINTS)
def test_another_teams_alert_is_forbidden(
    login: Callable[[str], TestClient],
    world: World,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    client = login("physician")
    res = client.request(method, path.format(a=world.alert_b), json=body)
    assert res.status_code == 403
    assert client.request(method, path.format(a=999999), json=body).status_code == 404
    with psycopg.connect(world.db) as conn:
        state = conn.execute(
            "SELECT state FROM alerts WHERE alert_id = %s", (world.alert_b,)
        ).fetchone()
    assert state == ("active",)


def test_dashboard_lists_only_the_teams_patients(
    login: Callable[[str], TestClient], world: World
) -> None:
    ids = [p["patient_id"] for p in login("other").get("/api/v1/dashboard").json()["patients"]]
    assert ids == [world.patient_b]


def test_admin_endpoints_need_the_admin_role(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("physician")
    res = client.post("/api/v1/gateways", json={"gateway_id": "gw-new-001"})
    assert res.status_code == 403
    assert res.json()["detail"] == "Your role does not allow this."
    assert client.get("/admin").status_code == 403
    with psycopg.connect(world.db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM gateways WHERE gateway_id = 'gw-new-001'"
        ).fetchone() == (0,)


def test_overrides_need_a_physician(login: Callable[[str], TestClient], world: World) -> None:
    res = login("coordinator").put(
        f"/api/v1/patients/{world.patient_a}/overrides",
        json={"rule_id": "spo2_low", "param": "threshold", "value": 90, "reason": "COPD"},
    )
    assert res.status_code == 403


def test_every_patient_read_is_audited(login: Callable[[str], TestClient], world: World) -> None:
    client = login("physician")
    client.get(f"/api/v1/patients/{world.patient_a}")
    client.get(f"/api/v1/patients/{world.patient_a}/trends?metric=spo2_pct&range=7d")
    client.get(f"/patients/{world.patient_a}")
    client.get("/api/v1/dashboard")
    reads = audit_rows(world.db, "patient_read")
    assert [(r[0], r[1]) for r in reads] == [("clinician:3", world.patient_a)] * 2
    trends = audit_rows(world.db, "trends_read")
    assert trends[0][1] == world.patient_a
    assert trends[0][2] == {"metrics": ["spo2_pct"]}
    board = audit_rows(world.db, "dashboard_read")
    assert set(board[-1][2]["patients"]) == {world.patient_a, world.patient_a2}  # type: ignore[index]
