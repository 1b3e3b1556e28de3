"""The patient app in Debian's Chromium on a phone-sized screen: the team makes the
enrollment link on the patient page (QR sheet), the phone enrolls from it, the home
screen reads in Arabic right to left (screenshot kept in tests/artifacts/), the team
sends a templated message, the patient marks it read and the team sees when; the app's
own service worker controls /p/; the same link again is refused in the patient's
language. Screenshots of the home screen in French and Chinese are kept too."""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.api.conftest import LiveApi, World
from tests.browser import ARTIFACTS, visible_raw
from tests.patient_phone import enroll_phone


def phone_screen(browser: Browser, locale: str, zone: str) -> BrowserContext:
    """A phone-sized, touch screen (about an iPhone 13's)."""
    return browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale=locale,
        timezone_id=zone,
    )


def _at_home(db: str, patient_id: int, language: str, country: str, zone: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = %s, home_country = %s, time_zone = %s"
            " WHERE patient_id = %s",
            (language, country, zone, patient_id),
        )


def _team_contact(db: str, team_id: int) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE care_teams SET contact_phone = '+33 1 40 00 00 00',"
            " contact_hours = 'Lun-ven 8 h-18 h ; nuit : astreinte' WHERE team_id = %s",
            (team_id,),
        )


def _team_context(browser: Browser, api: LiveApi) -> BrowserContext:
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    context.add_cookies(
        [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
    )
    return context


def test_enroll_read_a_message_in_arabic_and_the_team_sees_when(
    browser: Browser, live_api: Callable[[str], LiveApi], world: World
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _at_home(world.db, world.patient_a2, "ar", "SA", "Asia/Riyadh")
    _team_contact(world.db, world.team_a)
    api = live_api("coordinator")
    team = _team_context(browser, api).new_page()
    team.on("dialog", lambda d: d.accept())
    team.goto(f"{api.base_url}/patients/{world.patient_a2}")
    team.get_by_role("button", name="Créer un lien d\u2019inscription").click()
    panel = team.locator("#patient-app-result")
    expect(panel).to_be_visible()
    # the printable sheet speaks the patient's language; its QR code is drawn
    expect(panel.locator(".enroll-sheet")).to_contain_text("امسح هذا الرمز")
    qr = panel.locator("img.qr")
    expect(qr).to_have_attribute("src", re.compile("^data:image/svg"))
    team.wait_for_function("document.querySelector('img.qr').naturalWidth > 0")
    panel.screenshot(path=str(ARTIFACTS / "patient-app-sheet-ar.png"))
    url = panel.locator('[data-field="url"]').inner_text()
    assert url.startswith(f"{api.base_url}/p/enroll/")

    # the patient's phone opens the link (from the QR code) and connects
    phone_context = phone_screen(browser, "ar-SA", "Asia/Riyadh")
    phone = phone_context.new_page()
    phone.goto(url)
    expect(phone.locator("h1")).to_have_text("ربط هذا الهاتف بمتابعتك")
    phone.screenshot(path=str(ARTIFACTS / "patient-enroll-ar.png"), full_page=True)
    phone.get_by_role("button", name="ربط هذا الهاتف").click()
    expect(phone).to_have_url(f"{api.base_url}/p/")
    assert phone.evaluate("getComputedStyle(document.body).direction") == "rtl"
    expect(phone.locator(".messages .empty")).to_be_visible()
    # the app's own worker, scoped to /p/ (installable), takes the page
    scope = phone.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == f"{api.base_url}/p/"

    # the team sends a templated message
    team.reload()
    team.locator("#form-patient-message select").select_option("measure_temperature")
    team.locator("#form-patient-message button[type=submit]").click()
    row = team.locator("#patient-messages tbody tr").first
    expect(row).to_contain_text("Merci de prendre votre température maintenant.")
    expect(row.locator(".read-at")).to_have_text("pas encore lu")

    # the patient sees it in Arabic on the home screen, with what to do now
    phone.reload()
    message = phone.locator("article.message").first
    expect(message).to_contain_text("يُرجى قياس درجة حرارتك الآن.")
    help_panel = phone.locator("aside.help")
    expect(help_panel).to_contain_text("اتصل بالرقم 997 الآن")  # Saudi Red Crescent
    expect(help_panel).to_contain_text("Lun-ven 8 h-18 h")
    assert visible_raw(phone.inner_text("body")) == set()
    phone.screenshot(path=str(ARTIFACTS / "patient-home-ar.png"), full_page=True)
    message.get_by_role("button", name="قرأت هذه الرسالة").click()
    expect(message.locator(".read-at")).to_contain_text("قُرئت في")
    phone.screenshot(path=str(ARTIFACTS / "patient-home-ar-read.png"), full_page=True)

    # the team sees when it was read
    team.reload()
    read_cell = team.locator("#patient-messages tbody tr").first.locator(".read-at")
    expect(read_cell).not_to_have_text("pas encore lu")
    expect(read_cell).to_contain_text("2")  # a date in the clinician's locale
    expect(team.locator("#patient-phones")).to_contain_text("connecté")
    team.locator("#patient-app").screenshot(path=str(ARTIFACTS / "patient-app-team-fr.png"))

    # the same link again, even from the same phone: a clear page in Arabic
    again = phone_context.new_page()
    again.goto(url)
    expect(again.locator("h1")).to_have_text("تم استخدام هذا الرابط من قبل.")
    again.screenshot(path=str(ARTIFACTS / "patient-link-used-ar.png"), full_page=True)
    phone_context.close()


@pytest.mark.parametrize(
    ("language", "country", "zone", "title"),
    [
        ("fr", "FR", "Europe/Paris", "Votre suivi à domicile"),
        ("zh", "CN", "Asia/Shanghai", "您的居家随访"),
        ("en", "GB", "Europe/London", "Your follow-up at home"),
    ],
)
def test_home_screen_in_other_languages(
    browser: Browser,
    live_api: Callable[[str], LiveApi],
    world: World,
    language: str,
    country: str,
    zone: str,
    title: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _at_home(world.db, world.patient_a2, language, country, zone)
    _team_contact(world.db, world.team_a)
    phone_credential = enroll_phone(world.db, world.patient_a2)
    api = live_api("coordinator")
    with psycopg.connect(world.db, autocommit=True) as conn:
        clinician = conn.execute(
            "SELECT clinician_id FROM clinicians WHERE email = 'coord@hopital.example'"
        ).fetchone()
        assert clinician is not None
        conn.execute(
            "INSERT INTO patient_messages (patient_id, kind, sent_by) VALUES (%s, 'we_will_call',"
            " %s), (%s, 'go_to_emergency', %s)",
            (world.patient_a2, clinician[0], world.patient_a2, clinician[0]),
        )
    context = phone_screen(browser, language, zone)
    context.add_cookies([phone_credential.playwright_cookie(api.base_url)])
    page = context.new_page()
    page.goto(f"{api.base_url}/p/")
    expect(page.locator("h1")).to_have_text(title)
    assert page.locator("article.message").count() == 2
    assert visible_raw(page.inner_text("body")) == set()
    page.screenshot(path=str(ARTIFACTS / f"patient-home-{language}.png"), full_page=True)
    context.close()
