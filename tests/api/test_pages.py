"""The clinician pages: sign-in form with its CSRF cookie, no open redirect, French by
default and English for an English-speaking account, times in the viewer's zone with
the patient's alongside; and the French catalog covers every message of the code."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, World

API_DIR = Path(__file__).resolve().parents[2] / "api"


@pytest.fixture(autouse=True)
def _browser_without_language(anonymous: TestClient) -> None:
    """These tests are a browser that names no language: the pages default to French."""
    anonymous.headers.pop("Accept-Language", None)


def _sign_in(client: TestClient, email: str, next_path: str = "/") -> TestClient:
    form = client.get(f"/login?next={next_path}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    res = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token[1], "next": next_path},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    return client


def test_sign_in_form_then_french_dashboard(anonymous: TestClient, world: World) -> None:
    res = _sign_in(anonymous, world.emails["coordinator"])
    page = res.get("/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "Dernière mesure" in page.text
    assert "PA-001" in page.text
    assert "PA-002" in page.text
    assert "PB-001" not in page.text  # another team's patient
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_english_account_and_times_in_both_zones(anonymous: TestClient, world: World) -> None:
    client = _sign_in(anonymous, world.emails["physician"])  # America/New_York, English
    page = client.get(f"/patients/{world.patient_a}")
    assert '<html lang="en">' in page.text
    assert "Alerts and notes" in page.text
    assert 'data-viewer-zone="America/New_York"' in page.text
    assert "(America/New_York)" in page.text  # the patient's local time, named
    assert 'data-metrics="spo2_pct,heart_rate_bpm"' in page.text
    assert "/static/vendor/plotly.min.js" in page.text
    js = client.get("/static/vendor/plotly.min.js")
    assert js.status_code == 200
    assert len(js.content) > 1_000_000  # the real library, served from the installed package


def test_wrong_password_on_the_form(anonymous: TestClient, world: World) -> None:
    form = anonymous.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    res = anonymous.post(
        "/login",
        data={"email": world.emails["admin"], "password": "nope", "csrf_token": token[1]},
    )
    assert res.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in res.text


def test_sign_in_form_without_its_csrf_cookie_is_refused(
    anonymous: TestClient, world: World
) -> None:
    res = anonymous.post(
        "/login",
        data={"email": world.emails["admin"], "password": PASSWORD, "csrf_token": "forged"},
    )
    assert res.status_code == 403


def test_no_open_redirect_after_sign_in(anonymous: TestClient, world: World) -> None:
    form = anonymous.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    res = anonymous.post(
        "/login",
        data={
            "email": world.emails["admin"],
            "password": PASSWORD,
            "csrf_token": token[1],
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert res.headers["location"] == "/"


def test_sign_out_needs_the_token(login: Callable[[str], TestClient], world: World) -> None:
    client = login("coordinator")
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    res = client.post(
        "/logout", data={"csrf_token": client.headers["X-CSRF-Token"]}, follow_redirects=False
    )
    assert res.status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_french_catalog_translates_every_message_of_the_code() -> None:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    in_code = {
        msg[2] if isinstance(msg[2], str) else msg[2][0]
        for msg in extract_from_dir(str(API_DIR), method_map, keywords={"_": None, "N_": None})
    }
    with (API_DIR / "locales" / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string}
    assert in_code - translated == set()
    assert len(in_code) > 100


@pytest.mark.parametrize("language", ["fr", "es", "it", "de", "pt", "ar", "zh"])
def test_share_catalog_translates_every_message_of_the_shared_pages(language: str) -> None:
    # the patient app's pages use ``t`` too, for their own catalog domain (``patient``)
    method_map = [
        ("patient/**", "ignore"),
        ("templates/patient/**", "ignore"),
        ("**.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    in_code = {
        msg[2] if isinstance(msg[2], str) else msg[2][0]
        for msg in extract_from_dir(str(API_DIR), method_map, keywords={"t": None, "S_": None})
    }
    with (API_DIR / "locales" / language / "LC_MESSAGES" / "share.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id: m.string for m in catalog if m.id and m.string}
    assert in_code - set(translated) == set()
    # placeholders survive translation
    for msgid, text in translated.items():
        singular = msgid if isinstance(msgid, str) else msgid[0]
        assert re.findall(r"%\(\w+\)s", singular) == re.findall(r"%\(\w+\)s", str(text)), msgid


def test_patient_page_shows_what_the_gateway_last_reported_of_each_device(
    anonymous: TestClient, world: World
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO device_info (device_id, gateway_id, model, firmware_revision,"
            " battery_pct, last_seen, clock_skew_s, reported_at)"
            " VALUES ('ox-a-001', 'gw-a-001', 'SIM-oximeter', '1.4.2', 57, now(), 7198, now())"
        )
    client = _sign_in(anonymous, world.emails["coordinator"])
    page = client.get(f"/patients/{world.patient_a}")
    assert page.status_code == 200
    assert "Tels que la passerelle les a vus en dernier" in page.text
    for shown in ("SIM-oximeter", "1.4.2", "57 %", "+7198 s"):
        assert shown in page.text
    quiet = client.get(f"/patients/{world.patient_a2}")  # nothing reported: no table
    assert "Micrologiciel" not in quiet.text


def test_every_shipped_rule_reads_in_french_and_on_the_shared_page() -> None:
    """A protocol's titles are message ids (the engine publishes them and the pages
    translate them): a new or reworded rule fails here until the catalogs know it."""
    from alerts.protocol import builtin_protocols
    from api.common.labels import RULE_TITLES
    from api.home_physician.share_text import RULES

    with (API_DIR / "locales" / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        french = {m.id: m.string for m in read_po(fh) if m.id and m.string}
    rules = [rule for proto in builtin_protocols().values() for rule in proto.rules]
    assert len(rules) > 20
    assert {r.title for r in rules} - set(french) == set()
    assert {proto.title for proto in builtin_protocols().values()} - set(french) == set()
    assert {r.id for r in rules} - set(RULE_TITLES) == set()
    assert {r.id for r in rules} - set(RULES) == set()
    for language in ("fr", "es", "it", "de", "pt", "ar", "zh"):
        with (API_DIR / "locales" / language / "LC_MESSAGES" / "share.po").open("rb") as fh:
            shared = {m.id for m in read_po(fh) if m.id and m.string}
        assert {RULES[r.id] for r in rules} - shared == set(), language
