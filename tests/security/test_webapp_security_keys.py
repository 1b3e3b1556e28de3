"""Security keys (WebAuthn) over a real database, the app under uvicorn and Debian's
Chromium with the DevTools Protocol's virtual authenticator (a CTAP2 USB key): a key is
registered on the security page, signs in after the password, is removed (the code
still works). Then, with that key's private half read from the virtual authenticator,
assertions made by hand are sent to the sign-in: a replayed one, one of another
challenge, origin or account, one whose counter did not grow, a used challenge: each is
a 401 with a sentence and an audit row. Screenshots in tests/artifacts/security_keys/."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from playwright.sync_api import Browser, CDPSession, Page, expect
from pydantic import SecretStr

from api.common.second_factor import reset as factor_reset
from postop.ports import free_port
from tests import second_factor
from tests.api_server import serving
from tests.browser import ARTIFACTS
from tests.second_factor import TEST_KEY
from tests.security.webapp_world import PASSWORD, World, world
from vitals.settings import ApiSettings, Settings

__all__ = ["world"]
SHOTS = ARTIFACTS / "security_keys"
SIGN_OUT = {"fr": "Se déconnecter", "en": "Sign out"}
KEY_REFUSED = {
    "fr": "La clé de sécurité n'a pas été acceptée ; réessayez, ou saisissez un code.",
    "en": "The security key was not accepted; try again, or enter a code.",
}


@dataclass(frozen=True)
class Live:
    base: str  # http://localhost:port: the RP id is a domain, never an IP address
    port: int
    db: str

    @property
    def origin(self) -> str:
        return self.base


@pytest.fixture
def live(world: World) -> Iterator[Live]:
    port = free_port()
    settings = Settings(
        database_url=SecretStr(world.db),
        api=ApiSettings(
            port=port,
            login_max_failures=30,
            login_max_failures_account=60,
            second_factor_key=TEST_KEY,
            webauthn_rp_id="localhost",
            webauthn_origins=[f"http://localhost:{port}"],
        ),
    )
    with serving(settings, port):
        yield Live(f"http://localhost:{port}", port, world.db)


def _with_authenticator(browser: Browser, language: str) -> tuple[Page, CDPSession, str]:
    context = browser.new_context(locale="fr-FR" if language == "fr" else "en-GB")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # the removal's confirmation: yes
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    made = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return page, cdp, str(made["authenticatorId"])


def _password(page: Page, live: Live, email: str, language: str) -> None:
    second_factor.code(live.db, email)  # the account's authenticator app, enrolled
    page.goto(f"{live.base}/login?lang={language}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("input[name=code]")).to_be_visible()


def _code(page: Page, live: Live, email: str) -> None:
    page.fill("input[name=code]", second_factor.code(live.db, email))
    page.click("form[action='/login/code'] button[type=submit]")
    expect(page).to_have_url(f"{live.base}/")


def _shot(page: Page, name: str, language: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{language}.png"), full_page=True)


def _key_row(db: str, email: str) -> tuple[Any, ...] | None:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT k.name, k.sign_count, k.last_used_at, k.transports FROM"
            " clinician_security_keys k JOIN clinicians USING (clinician_id) WHERE email = %s",
            (email,),
        ).fetchone()


def _audit(db: str, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT detail FROM audit_log WHERE action = %s ORDER BY audit_id", (action,)
        ).fetchall()
    return [r[0] for r in rows]


def _register(page: Page, live: Live, language: str, name: str) -> None:
    page.goto(f"{live.base}/account/security")
    expect(page.locator("#no-security-key")).to_be_visible()
    expect(page.locator("#security-key-unsupported")).to_be_hidden()
    _shot(page, "security-empty", language)
    page.fill("#form-security-key input[name=name]", name)
    page.click("#form-security-key button[type=submit]")
    expect(page.locator("#security-keys .key-name")).to_have_text(name)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_key_signs_in_then_is_removed_and_the_code_still_works(
    browser: Browser, live: Live, world: World, language: str
) -> None:
    email = world.emails["coordinator"]
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute("UPDATE clinicians SET language = %s WHERE email = %s", (language, email))
    page, cdp, authenticator = _with_authenticator(browser, language)
    _password(page, live, email, language)
    # no key yet: the code alone, no key button
    expect(page.locator("#form-login-key")).to_have_count(0)
    _code(page, live, email)

    _register(page, live, language, "YubiKey 5C")
    _shot(page, "security-one-key", language)
    registered = _key_row(world.db, email)
    assert registered is not None
    assert registered[0] == "YubiKey 5C"
    assert registered[2] is None
    assert registered[3] == ["usb"]
    assert [d["name"] for d in _audit(world.db, "security_key_registered")] == ["YubiKey 5C"]

    page.click(f"header button:has-text('{SIGN_OUT[language]}')")
    expect(page.locator("input[name=password]")).to_be_visible()
    _password(page, live, email, language)
    key_button = page.locator("#form-login-key button[type=submit]")
    expect(key_button).to_be_visible()
    expect(page.locator("input[name=code]")).to_be_visible()  # the fallback stays
    _shot(page, "sign-in-with-key", language)
    # a counter that does not grow (as from a cloned key) is refused, in the page's words
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute("UPDATE clinician_security_keys SET sign_count = 1000000")
    key_button.click()
    expect(page.locator("section.login > p.error")).to_have_text(KEY_REFUSED[language])
    expect(page.locator("input[name=code]")).to_be_visible()
    _shot(page, "sign-in-key-refused", language)
    assert [d["reason"] for d in _audit(world.db, "security_key_refused")] == [
        "sign count did not grow: InvalidAuthenticationResponse"
    ]
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute("UPDATE clinician_security_keys SET sign_count = %s", (registered[1],))
    page.locator("#form-login-key button[type=submit]").click()
    expect(page).to_have_url(f"{live.base}/")
    # the session works: a page of the app, and the API
    expect(page.locator("header .who")).to_be_visible()
    me = page.request.get(f"{live.base}/api/v1/me")
    assert me.ok
    assert me.json()["email"] == email
    used = _key_row(world.db, email)
    assert used is not None
    assert used[1] > registered[1]  # the virtual key's counter grew, and was kept
    assert used[2] is not None  # last used
    assert [(d["name"], d["sign_count"]) for d in _audit(world.db, "security_key_used")] == [
        ("YubiKey 5C", used[1])
    ]
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert creds["credentials"][0]["signCount"] == used[1]

    # removal, after a confirmation; the code signs in again
    page.goto(f"{live.base}/account/security")
    _shot(page, "security-key-used", language)
    page.click("#security-keys button.remove-key")
    expect(page.locator("#no-security-key")).to_be_visible()
    assert _key_row(world.db, email) is None
    assert [d["name"] for d in _audit(world.db, "security_key_removed")] == ["YubiKey 5C"]
    page.click(f"header button:has-text('{SIGN_OUT[language]}')")
    _password(page, live, email, language)
    expect(page.locator("#form-login-key")).to_have_count(0)
    _code(page, live, email)


# --- assertions made by hand with the virtual key's private half -------------------------


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class VirtualKey:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    def assertion(
        self,
        challenge: str,
        sign_count: int,
        origin: str,
        rp_id: str = "localhost",
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """What a browser posts after ``navigator.credentials.get``, signed with the key."""
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": challenge, "origin": origin}
        ).encode()
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest() + bytes([0x05]) + sign_count.to_bytes(4, "big")
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            signature = self.private_key.sign(signed)
        else:
            signature = self.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        cid = _b64u(credential_id or self.credential_id)
        return {
            "id": cid,
            "rawId": cid,
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64u(client_data),
                "authenticatorData": _b64u(auth_data),
                "signature": _b64u(signature),
            },
            "clientExtensionResults": {},
        }


def _virtual_key(cdp: CDPSession, authenticator: str) -> VirtualKey:
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    cred = creds["credentials"][0]
    private = serialization.load_der_private_key(base64.b64decode(cred["privateKey"]), None)
    # Chromium picks the first algorithm offered it knows: Ed25519, else P-256
    assert isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return VirtualKey(base64.b64decode(cred["credentialId"]), private)


class PendingSignIn:
    """A sign-in over HTTP whose password passed, waiting for its second factor."""

    def __init__(self, live: Live, email: str, language: str = "en") -> None:
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{live.port}", headers={"Accept-Language": language}
        )
        form = self.client.get("/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert found is not None
        self.csrf = found[1]
        page = self.client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": self.csrf}
        )
        assert page.status_code == 200, page.text
        assert 'id="form-login-key"' in page.text

    def options(self) -> httpx.Response:
        return self.client.post("/login/key/options", data={"csrf_token": self.csrf})

    def challenge(self) -> str:
        res = self.options()
        assert res.status_code == 200, res.text
        return str(res.json()["options"]["challenge"])

    def answer(self, credential: dict[str, Any]) -> httpx.Response:
        return self.client.post(
            "/login/key",
            data={"csrf_token": self.csrf, "credential": json.dumps(credential)},
        )


def _count(db: str, email: str) -> int:
    row = _key_row(db, email)
    assert row is not None
    return int(row[1])


def test_replayed_foreign_and_stale_assertions_are_refused(
    browser: Browser, live: Live, world: World
) -> None:
    email = world.emails["physician"]
    page, cdp, authenticator = _with_authenticator(browser, "en")
    _password(page, live, email, "en")
    _code(page, live, email)
    _register(page, live, "en", "Security key")
    # the same key again: the browser refuses it (the account's keys are excluded)
    page.fill("#form-security-key input[name=name]", "Same key")
    page.click("#form-security-key button[type=submit]")
    expect(page.locator("#form-security-key .error")).to_have_text(
        "This security key is registered already."
    )
    expect(page.locator("#security-keys .key-name")).to_have_count(1)
    key = _virtual_key(cdp, authenticator)
    # at an address the key does not belong to (an IP: no RP id), only the code is offered
    elsewhere = page.context.browser
    assert elsewhere is not None
    by_ip = elsewhere.new_context(locale="en-GB").new_page()
    by_ip.goto(f"http://127.0.0.1:{live.port}/login?lang=en")
    by_ip.fill("input[name=email]", email)
    by_ip.fill("input[name=password]", PASSWORD)
    by_ip.click("form[action='/login'] button[type=submit]")
    expect(by_ip.locator("input[name=code]")).to_be_visible()
    expect(by_ip.locator("#form-login-key")).to_be_hidden()
    expect(by_ip.locator(".code-hint")).to_be_visible()
    by_ip.context.close()
    refused_sentence = "The security key was not accepted; try again, or enter a code."

    def sign_in() -> PendingSignIn:
        return PendingSignIn(live, email)

    # the hand-made assertion is right: it signs in (the counter moves on)
    count = _count(world.db, email) + 1
    first = sign_in()
    good = key.assertion(first.challenge(), count, live.origin)
    passed = first.answer(good)
    assert passed.status_code == 303, passed.text
    assert "postop_session" in passed.cookies
    assert _count(world.db, email) == count

    # the same assertion again, in another pending sign-in: its challenge is not this one
    replay = sign_in()
    replay.challenge()
    again = replay.answer(good)
    assert again.status_code == 401
    assert refused_sentence in again.text
    assert "postop_session" not in again.cookies

    # a fresh challenge signed with a counter that did not grow (a cloned key)
    stale = sign_in()
    assert stale.answer(key.assertion(stale.challenge(), count, live.origin)).status_code == 401
    # another origin; then the challenge is used: even a right answer to it fails
    late = sign_in()
    used_challenge = late.challenge()
    evil = key.assertion(used_challenge, count + 1, "http://evil.example")
    assert late.answer(evil).status_code == 401
    assert late.answer(key.assertion(used_challenge, count + 2, live.origin)).status_code == 401

    # a challenge the server never gave, another RP id, a key of no account
    other = sign_in()
    other.challenge()
    forged = key.assertion(_b64u(secrets.token_bytes(64)), count + 3, live.origin)
    assert other.answer(forged).status_code == 401
    wrong_rp = key.assertion(other.challenge(), count + 4, live.origin, rp_id="example.org")
    assert other.answer(wrong_rp).status_code == 401
    stranger = key.assertion(
        other.challenge(), count + 5, live.origin, credential_id=secrets.token_bytes(32)
    )
    assert other.answer(stranger).status_code == 401
    # malformed answers are refusals too, never a 500
    other.challenge()
    assert other.answer({"id": 3}).status_code == 401
    bad = other.client.post(
        "/login/key", data={"csrf_token": other.csrf, "credential": "{not json"}
    )
    assert bad.status_code == 401

    assert _count(world.db, email) == count  # nothing refused moved the counter
    reasons = [d["reason"] for d in _audit(world.db, "security_key_refused")]
    assert reasons[0].startswith("not verified")  # the replay: another challenge
    assert reasons[1].startswith("sign count did not grow")
    assert reasons[2].startswith("not verified")  # another origin
    assert reasons[3] == "no challenge waiting"  # the challenge was used
    assert reasons[4].startswith("not verified")  # a challenge never given
    assert reasons[5].startswith("not verified")  # another RP id
    assert reasons[6:8] == ["not a key of this account"] * 2
    assert reasons[8] == "no challenge waiting"
    assert len(_audit(world.db, "security_key_used")) == 1

    # a right answer still passes afterwards (the refusals did not lock the key)
    final = sign_in()
    ok = final.answer(key.assertion(final.challenge(), count + 20, live.origin))
    assert ok.status_code == 303, ok.text

    # `postop second-factor-reset` (a lost phone) forgets the keys too
    with psycopg.connect(world.db, autocommit=True) as conn:
        row = conn.execute("SELECT clinician_id FROM clinicians WHERE email = %s", (email,))
        clinician = row.fetchone()
        assert clinician is not None
        factor_reset(conn, int(clinician[0]))
    assert _key_row(world.db, email) is None


def test_refusals_without_a_browser_say_what_to_do(live: Live, world: World) -> None:
    """No pending sign-in, a registration without its challenge, another account's key:
    4xx with a sentence in the reader's language."""
    email = world.emails["admin"]
    client = httpx.Client(base_url=f"http://127.0.0.1:{live.port}")
    form = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found is not None
    expired = client.post(
        "/login/key/options",
        data={"csrf_token": found[1]},
        headers={"Accept": "application/json", "Accept-Language": "fr"},
    )
    assert expired.status_code == 401
    assert (
        expired.json()["detail"]
        == "La connexion a expiré ; saisissez de nouveau votre mot de passe."
    )

    body = {
        "email": email,
        "password": PASSWORD,
        "code": second_factor.code(world.db, email),
    }
    session = client.post("/api/v1/session", json=body)
    assert session.status_code == 200, session.text
    headers = {"X-CSRF-Token": session.json()["csrf_token"], "Accept-Language": "en"}
    no_challenge = client.post(
        "/api/v1/security-keys",
        json={"name": "Key", "credential": {"id": "x"}},
        headers=headers,
    )
    assert no_challenge.status_code == 400
    assert no_challenge.json()["detail"] == "The security key could not be registered; try again."
    options = client.post("/api/v1/security-keys/options", headers=headers)
    assert options.status_code == 200
    assert options.json()["options"]["rp"]["id"] == "localhost"
    garbage = client.post(
        "/api/v1/security-keys",
        json={"name": "Key", "credential": {"id": "x", "response": {}}},
        headers=headers,
    )
    assert garbage.status_code == 400
    blank = client.post(
        "/api/v1/security-keys", json={"name": "  ", "credential": {}}, headers=headers
    )
    assert blank.status_code == 422
    missing = client.delete("/api/v1/security-keys/987654", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No such security key on this account."
    assert client.get("/api/v1/security-keys", headers=headers).json() == []
    assert len(_audit(world.db, "security_key_refused")) == 2
