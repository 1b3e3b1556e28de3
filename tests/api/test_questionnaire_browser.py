"""The daily questionnaire in Debian's Chromium on a phone-sized screen, in Arabic (right
to left, screenshot kept in tests/artifacts/): one question per block, touch targets of
at least 44 px, the answers sent; the team's patient page, open in French, shows the
response on its timeline within seconds without a reload, in French."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from playwright.sync_api import Browser, BrowserContext, expect

from tests.api.conftest import LiveApi, World
from tests.browser import ARTIFACTS
from tests.patient_phone import enroll_phone


def phone_screen(browser: Browser) -> BrowserContext:
    return browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="ar-SA",
        timezone_id="Asia/Riyadh",
    )


def test_answered_in_arabic_on_a_phone_and_seen_live_by_the_team(
    browser: Browser, live_api: Callable[[str], LiveApi], world: World
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = 'ar', home_country = 'SA', time_zone = 'Asia/Riyadh',"
            " protocol = 'digestive_surgery' WHERE patient_id = %s",
            (world.patient_a2,),
        )
    api = live_api("coordinator")
    team_context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    team_context.add_cookies(
        [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
    )
    team = team_context.new_page()
    team.goto(f"{api.base_url}/patients/{world.patient_a2}")
    team.evaluate("window.__notReloaded = true")
    expect(team.locator("#timeline li.questionnaire-item")).to_have_count(0)

    phone_ctx = phone_screen(browser)
    phone_ctx.add_cookies(
        [enroll_phone(world.db, world.patient_a2).playwright_cookie(api.base_url)]
    )
    phone = phone_ctx.new_page()
    phone.goto(f"{api.base_url}/p/questionnaire")
    expect(phone.locator("html")).to_have_attribute("dir", "rtl")
    expect(phone.locator("h1")).to_have_text("كيف حالك اليوم؟")
    blocks = phone.locator("fieldset.question")
    expect(blocks).to_have_count(12)  # the digestive questionnaire, one question a block
    expect(blocks.first.locator(".count")).to_have_text("السؤال 1 من 12")
    expect(phone.locator("#q-bowel legend .text")).to_have_text(
        "منذ الأمس، هل أخرجت غازات أو برازًا؟"
    )
    phone.locator("#q-pain_rest label.choice", has_text="8").click()
    phone.locator("#q-pain_movement label.choice", has_text="9").click()
    phone.locator("#q-bowel label.choice", has_text="لا غازات ولا براز").click()
    phone.locator("#q-wound_redness label.choice", has_text="نعم").click()
    phone.locator("#q-fever_chills label.choice", has_text="لا").click()
    for target in (
        phone.locator("#q-pain_rest label.choice").first,
        phone.locator("#q-wound_redness label.choice").first,
        phone.locator("#send"),
    ):
        box = target.bounding_box()
        assert box is not None
        assert box["height"] >= 44  # WCAG 2.5.5 touch target
    # nothing runs off a phone's width
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(ARTIFACTS / "questionnaire-ar-phone.png"), full_page=True)
    phone.locator("#send").click()
    expect(phone.locator("#sent")).to_have_text("تم إرسال إجاباتك. شكرًا لك.")
    phone.screenshot(path=str(ARTIFACTS / "questionnaire-ar-sent.png"))

    item = team.locator("#timeline li.questionnaire-item")
    expect(item).to_have_count(1, timeout=10_000)  # pushed by the live events, no reload
    expect(item).to_contain_text("Questionnaire rempli par le patient")
    expect(item.locator('[data-item="bowel"].notable')).to_contain_text("Ni gaz ni selles")
    expect(item.locator('[data-item="pain_rest"]')).to_contain_text("8/10")
    assert team.evaluate("window.__notReloaded") is True
    team.screenshot(path=str(ARTIFACTS / "questionnaire-team-live.png"), full_page=True)
    with psycopg.connect(world.db) as conn:
        stored = conn.execute(
            "SELECT language, credential_id IS NOT NULL FROM questionnaire_responses"
            " WHERE patient_id = %s",
            (world.patient_a2,),
        ).fetchall()
    assert stored == [("ar", True)]
