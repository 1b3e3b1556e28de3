"""Clinicians' second factor (TOTP, recovery codes) over a real database: the page
enrols at first sign-in; the REST sign-in and the page both refuse a session without the
code; a code is accepted once; a recovery code works once; wrong codes are throttled like
wrong passwords; the secret is stored sealed."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import psycopg
import pyotp
from fastapi.testclient import TestClient

from api.common import second_factor as factor
from tests import second_factor
from tests.security.webapp_world import (
    PASSWORD,
    Clients,
    World,
    add_clinician,
    app_settings,
    clients,
    credentials,
    world,
)

__all__ = ["app_settings", "clients", "world"]


def _password_step(client: TestClient, email: str) -> tuple[str, str]:
    """Sign-in form, then the password: (the form's token, the second step's page)."""
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    res = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token[1]},
        follow_redirects=False,
    )
    assert res.status_code == 200, res.text
    return token[1], res.text


def _code_step(client: TestClient, csrf: str, code: str) -> Any:
    return client.post(
        "/login/code", data={"code": code, "csrf_token": csrf}, follow_redirects=False
    )


def _enrol_on_the_page(client: TestClient, email: str) -> tuple[str, list[str]]:
    """A first sign-in: the QR code and key are shown; the first code enrols; the
    recovery codes come once. Returns (secret, recovery codes)."""
    csrf, page = _password_step(client, email)
    assert 'src="data:image/svg+xml' in page  # the QR code, drawn by segno
    shown = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', page)
    assert shown is not None
    secret = shown[1].replace(" ", "")
    wrong = _code_step(client, csrf, "000000" if pyotp.TOTP(secret).now() != "000000" else "1")
    assert wrong.status_code == 401
    assert "Code incorrect ou déjà utilisé." in wrong.text
    done = _code_step(client, csrf, pyotp.TOTP(secret).now())
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", done.text)
    assert len(codes) == factor.RECOVERY_CODES
    assert "postop_session=" in done.headers["set-cookie"]
    return secret, codes


def test_first_sign_in_enrols_then_the_code_is_always_asked(world: World, clients: Clients) -> None:
    email = "nouvelle@hopital.example"
    add_clinician(world.db, email, "coordinator", [world.team_a])
    # the REST sign-in of an account without a second factor says where to set it up
    api = clients.anonymous()
    refused = api.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 403
    assert "second facteur" in refused.json()["detail"]

    browser = clients.anonymous()
    secret, _codes = _enrol_on_the_page(browser, email)
    assert browser.get("/", follow_redirects=False).status_code == 200  # signed in
    with psycopg.connect(world.db) as conn:
        stored = conn.execute(
            "SELECT totp_secret FROM clinicians WHERE email = %s", (email,)
        ).fetchone()
        hashes = conn.execute(
            "SELECT code_hash FROM clinician_recovery_codes c JOIN clinicians USING"
            " (clinician_id) WHERE email = %s",
            (email,),
        ).fetchall()
        enrolled = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'second_factor_enrolled'"
        ).fetchone()
    assert stored is not None
    assert stored[0].startswith("fernet:")  # sealed with the API's key
    assert secret not in stored[0]
    assert all(h[0].startswith("$argon2id$") for h in hashes)
    assert enrolled == (1,)

    # the next sign-in on the page asks for the code; the password alone opens nothing
    again = clients.anonymous()
    csrf, page = _password_step(again, email)
    assert 'action="/login/code"' in page
    assert "totp-secret" not in page  # no new enrolment
    assert "postop_session" not in again.cookies
    assert again.get("/", follow_redirects=False).status_code == 303  # to /login
    code = second_factor.code(world.db, email)
    assert _code_step(again, csrf, code).status_code == 303
    assert again.get("/", follow_redirects=False).status_code == 200


def test_rest_sign_in_needs_the_code_and_refuses_a_replay(world: World, clients: Clients) -> None:
    email = world.emails["coordinator"]
    client = clients.anonymous()
    body = {"email": email, "password": PASSWORD}
    second_factor.code(world.db, email)  # enrolled
    no_code = client.post("/api/v1/session", json=body)
    assert no_code.status_code == 401
    assert no_code.json()["detail"] == "Code incorrect ou déjà utilisé."
    assert "postop_session" not in no_code.headers.get("set-cookie", "")
    with psycopg.connect(world.db) as conn:
        secret = second_factor.secret_of(conn, email)
    code = pyotp.TOTP(secret).now()
    first = client.post("/api/v1/session", json={**body, "code": code})
    assert first.status_code == 200, first.text
    replay = clients.anonymous().post("/api/v1/session", json={**body, "code": code})
    assert replay.status_code == 401
    # an older code of the same window is refused too once a later one was used
    previous = pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() - 30)
    assert (
        clients.anonymous().post("/api/v1/session", json={**body, "code": previous}).status_code
        == 401
    )


def test_a_recovery_code_works_once(world: World, clients: Clients) -> None:
    email = "recuperation@hopital.example"
    add_clinician(world.db, email, "physician", [world.team_a])
    _secret, codes = _enrol_on_the_page(clients.anonymous(), email)
    body = {"email": email, "password": PASSWORD, "code": codes[3].upper()}  # as typed
    used = clients.anonymous().post("/api/v1/session", json=body)
    assert used.status_code == 200, used.text
    again = clients.anonymous().post("/api/v1/session", json=body)
    assert again.status_code == 401
    # the others still work, on the page too
    page = clients.anonymous()
    csrf, _ = _password_step(page, email)
    assert _code_step(page, csrf, codes[4]).status_code == 303
    with psycopg.connect(world.db) as conn:
        left = conn.execute(
            "SELECT detail->>'recovery_codes_left' FROM audit_log"
            " WHERE action = 'recovery_code_used' ORDER BY audit_id"
        ).fetchall()
    assert [r[0] for r in left] == ["9", "8"]


def test_a_storm_of_wrong_codes_is_throttled(world: World, clients: Clients) -> None:
    """The right password with wrong codes: counted like wrong passwords (3 per account
    and address in these tests), then even the right code waits out the lockout."""
    email = world.emails["physician"]
    second_factor.code(world.db, email)  # enrolled
    client = clients.anonymous()
    statuses = [
        client.post(
            "/api/v1/session",
            json={"email": email, "password": PASSWORD, "code": f"{n:06d}"},
        ).status_code
        for n in range(8)
    ]
    assert statuses[:3] == [401] * 3, statuses
    assert set(statuses[3:]) == {429}, statuses
    locked = client.post("/api/v1/session", json=credentials(clients.settings, email))
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0


def test_wrong_codes_on_the_page_are_throttled_and_end_the_step(
    world: World, clients: Clients
) -> None:
    email = world.emails["admin"]
    second_factor.code(world.db, email)  # enrolled
    page = clients.anonymous()
    csrf, _ = _password_step(page, email)  # one attempt
    first = _code_step(page, csrf, "12345")  # two (not even six digits)
    assert first.status_code == 401
    assert _code_step(page, csrf, "123456").status_code == 401
    # the fourth attempt from this address on this account: the lockout (limit 3)
    stormed = _code_step(page, csrf, second_factor.code(world.db, email))
    assert stormed.status_code == 429
    assert "postop_session" not in page.cookies
