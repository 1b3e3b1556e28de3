"""The home physician's page in Debian's Chromium: every language renders (a screenshot
each, kept in tests/artifacts/), Arabic lays out right to left, times move to the
viewer's own zone with the patient's beside them, the trend chart draws, and the
printable summary renders to a PDF; the physician's question reaches the team, whose
clinician signs in with a second factor, and the answer comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pyotp
import pytest
from playwright.sync_api import Browser, expect

from api.common.passwords import hash_password
from api.common.share_links import create_link, default_units
from store.clinicians import create_clinician
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests import second_factor
from tests.api.conftest import add_vitals, open_alert
from tests.browser import ARTIFACTS, visible_raw

LANGUAGES = ("fr", "en", "es", "it", "de", "pt", "ar", "zh")
VIEWER_ZONES = {"ar": "Asia/Riyadh", "zh": "Asia/Shanghai", "en": "America/Chicago"}


@pytest.fixture
def shared(db: str) -> dict[str, str]:
    """A patient at home in New York with a day of readings, an alert the team resolved,
    and one link per language."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "Chirurgie viscérale")
        conn.execute(
            "UPDATE care_teams SET contact_name = 'IDE de coordination',"
            " contact_phone = '+33 1 40 00 00 00', contact_hours = 'Lun-ven 8 h-18 h'"
            " WHERE team_id = %s",
            (team,),
        )
        author = create_clinician(
            conn, "dr@hopital.example", "Dr Martin", "physician", hash_password("x" * 16), [team]
        )
        patient = ensure_patient(conn, "P-SHARE-01", team, "en", "America/New_York")
        conn.execute(
            "UPDATE patients SET home_country = 'US', procedure = 'Laparoscopic colectomy',"
            " surgery_date = current_date - 6, discharged_at = now() - interval '3 days',"
            " discharge_instructions = 'Walk 3 times a day. Call if fever above 38.5 °C.',"
            " medications = 'Enoxaparin 4000 IU daily for 28 days' WHERE patient_id = %s",
            (patient,),
        )
        register_gateway(conn, "gw-share")
        register_device(conn, "ox-share", "oximeter", "gw-share")
        enroll(conn, "ox-share", patient, now - timedelta(days=3))
        add_vitals(
            conn,
            patient,
            "ox-share",
            "spo2_pct",
            [(now - timedelta(minutes=5 * i), 95.0 - (i % 4)) for i in range(288)],
        )
        add_vitals(
            conn,
            patient,
            "ox-share",
            "heart_rate_bpm",
            [(now - timedelta(minutes=5 * i), 78.0 + (i % 9)) for i in range(288)],
        )
        add_vitals(
            conn,
            patient,
            "ox-share",
            "temp_c",
            [(now - timedelta(hours=6 * i), 37.2 + 0.1 * (i % 3)) for i in range(8)],
        )
        alert = open_alert(conn, patient, "spo2_low", "medium")
        conn.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = now(), resolved_by = %s,"
            " resolution_note = 'Appel du patient : capteur mal positionné' WHERE alert_id = %s",
            (f"clinician:{author}", alert),
        )
        tokens = {}
        for lang in LANGUAGES:
            link = create_link(
                conn, patient, author, lang, default_units("US"), timedelta(days=30), False, None
            )
            tokens[lang] = link.token
    return tokens


@pytest.mark.parametrize("language", LANGUAGES)
def test_shared_page_in_each_language(
    browser: Browser,
    api_server: str,
    shared: dict[str, str],
    language: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    zone = VIEWER_ZONES.get(language, "Europe/Berlin")
    context = browser.new_context(timezone_id=zone, locale=language)
    page = context.new_page()
    page.goto(f"{api_server}/s/{shared[language]}")
    expect(page.locator("h1")).to_contain_text("P-SHARE-01")
    expect(page.locator("#chart.ready")).to_be_visible(timeout=20_000)
    direction = page.evaluate("getComputedStyle(document.body).direction")
    assert direction == ("rtl" if language == "ar" else "ltr")
    # the first reading time is shown in the viewer's zone by the page's script...
    shown = page.locator("time.viewer").first.inner_text()
    iso = page.locator("time.viewer").first.get_attribute("datetime") or ""
    # (the page's language in the region the server writes its dates for: one format)
    expected = page.evaluate(
        "([iso, zone]) => new Intl.DateTimeFormat(document.body.dataset.locale, {dateStyle:"
        " 'medium', timeStyle: 'short', timeZone: zone}).format(new Date(iso))",
        [iso, zone],
    )
    assert shown == expected
    # ...and the patient's own time stays beside it, named
    expect(page.locator(".patient-head")).to_contain_text("America/New_York")
    expect(page.locator(".latest")).to_contain_text("°F")  # a US physician's units
    # the care team's contact with its hours, and a switch to the other languages
    expect(page.locator(".contact")).to_contain_text("Lun-ven 8 h-18 h")
    assert page.locator("nav.languages a").count() == 7
    assert visible_raw(page.inner_text("body")) == set()
    page.screenshot(path=str(ARTIFACTS / f"share-{language}.png"), full_page=True)
    print_page = context.new_page()
    print_page.goto(f"{api_server}/s/{shared[language]}/print")
    print_page.screenshot(path=str(ARTIFACTS / f"share-print-{language}.png"), full_page=True)
    assert visible_raw(print_page.inner_text("body")) == set()
    context.close()


def test_printable_summary_renders_to_pdf(
    browser: Browser,
    api_server: str,
    shared: dict[str, str],
) -> None:
    context = browser.new_context(timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    page.goto(f"{api_server}/s/{shared['en']}/print")
    expect(page.locator("h1").first).to_have_text("Follow-up summary")
    expect(page.locator(".daily tbody tr").first).to_be_visible()
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden()  # the print stylesheet applies
    pdf = page.pdf(format="A4", print_background=True)
    context.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "share-summary-en.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 20_000


def test_physician_asks_team_answers_with_a_second_factor_sign_in(
    browser: Browser, api_server: str, shared: dict[str, str], db: str
) -> None:
    """The clinician's first sign-in enrols the authenticator (QR code and key on the
    page, the code computed from that key as an app would); the physician's question
    reaches the open dashboard live; the team answers on the patient page; the physician
    reads the answer. A later sign-in needs the code: the password alone opens nothing."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    team = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    desk = team.new_page()
    desk.goto(f"{api_server}/")
    desk.fill("input[name=email]", "dr@hopital.example")
    desk.fill("input[name=password]", "x" * 16)
    desk.click("button[type=submit]")
    expect(desk.locator("img.totp-qr")).to_be_visible()
    secret = desk.locator("code.totp-secret").inner_text().replace(" ", "")
    desk.screenshot(path=str(ARTIFACTS / "second-factor-enrol.png"), full_page=True)
    desk.fill("input[name=code]", pyotp.TOTP(secret).now())
    desk.click("button[type=submit]")
    expect(desk.locator(".recovery-codes li")).to_have_count(10)
    desk.click("a.button")
    expect(desk.locator("#live-state.on")).to_be_visible(timeout=10_000)
    expect(desk.locator("#question-rows")).to_contain_text("Aucune question en attente")
    desk.evaluate("window.__sameDocument = 'yes'")

    physician = browser.new_context(locale="en-US", timezone_id="America/Chicago")
    shared_page = physician.new_page()
    shared_page.goto(f"{api_server}/s/{shared['en']}")
    shared_page.check("input[name=kind][value=news]")
    news = "Started bisoprolol 2.5 mg today.\nSeen in clinic <b>Monday</b>."
    shared_page.fill("textarea[name=body]", news)
    shared_page.click(".ask-form button[type=submit]")
    expect(shared_page.locator(".asked-item .question-body")).to_have_text(news)
    expect(shared_page.locator(".asked-item .awaiting")).to_be_visible()

    # the team's open dashboard shows it without a reload, escaped, with the patient
    item = desk.locator("#question-rows .question-item")
    expect(item).to_contain_text("P-SHARE-01", timeout=15_000)
    expect(item).to_contain_text("<b>Monday</b>")
    assert desk.evaluate("window.__sameDocument") == "yes"
    desk.screenshot(path=str(ARTIFACTS / "questions-worklist.png"), full_page=True)
    item.locator("a").click()
    answer = "Noted, thank you. Please check the heart rate on day 10."
    desk.fill("#questions textarea[name=answer]", answer)
    desk.click("#questions .answer-form button[type=submit]")
    expect(desk.locator("#questions .answer")).to_contain_text(answer)
    assert visible_raw(desk.inner_text("body")) == set()

    shared_page.reload()
    expect(shared_page.locator(".asked-item .answer-body")).to_have_text(answer)
    expect(shared_page.locator(".asked-item")).to_contain_text("Dr Martin")
    shared_page.screenshot(path=str(ARTIFACTS / "questions-answered-en.png"), full_page=True)
    physician.close()
    team.close()

    # a later sign-in: the password, then the code of the enrolled app
    later = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    page = later.new_page()
    page.goto(f"{api_server}/login")
    page.fill("input[name=email]", "dr@hopital.example")
    page.fill("input[name=password]", "x" * 16)
    page.click("button[type=submit]")
    expect(page.locator("input[name=code]")).to_be_visible()
    assert page.locator("img.totp-qr").count() == 0
    page.goto(f"{api_server}/")  # the password alone opens nothing
    expect(page).to_have_url(f"{api_server}/login?next=%2F")
    page.fill("input[name=email]", "dr@hopital.example")
    page.fill("input[name=password]", "x" * 16)
    page.click("button[type=submit]")
    page.fill("input[name=code]", second_factor.code(db, "dr@hopital.example"))
    page.click("button[type=submit]")
    expect(page.locator("#dashboard")).to_be_visible()
    later.close()
