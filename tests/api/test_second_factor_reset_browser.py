"""In Debian's Chromium: a nurse has lost her phone at night; the admin resets her second
factor from the administration page through the confirmation step, her open session ends,
and her next sign-in asks her to set up a new authenticator. Screenshots of the
confirmation step and of the result (French) go to tests/artifacts/second-factor-reset/."""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg
import pyotp
import pytest
from playwright.sync_api import Browser, expect

from tests.api.conftest import PASSWORD, LiveApi, World
from tests.browser import ARTIFACTS, visible_raw

SHOTS = ARTIFACTS / "second-factor-reset"


def _set_language(db: str, email: str, language: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE clinicians SET language = %s WHERE email = %s", (language, email))


def test_admin_resets_a_colleague_who_then_enrols_again(
    browser: Browser, live_api: Callable[[str], LiveApi], world: World
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    email = world.emails["coordinator"]
    with psycopg.connect(world.db) as conn:
        found = conn.execute(
            "SELECT clinician_id FROM clinicians WHERE email = %s", (email,)
        ).fetchone()
    assert found is not None
    nurse = int(found[0])

    # the nurse's session, open on the ward computer
    nurse_api = live_api("coordinator")
    ward = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    ward.add_cookies(
        [{"name": k, "value": v, "url": nurse_api.base_url} for k, v in nurse_api.cookies.items()]
    )
    ward_page = ward.new_page()
    ward_page.goto(f"{nurse_api.base_url}/")
    expect(ward_page.locator("form[action='/logout']")).to_have_count(1)

    # the admin, in French: the list of the team's accounts, then the confirmation step
    admin_api = live_api("admin")
    desk = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    desk.add_cookies(
        [{"name": k, "value": v, "url": admin_api.base_url} for k, v in admin_api.cookies.items()]
    )
    page = desk.new_page()
    page.on("dialog", lambda d: pytest.fail(f"unexpected browser dialog: {d.message}"))
    page.goto(f"{admin_api.base_url}/admin")
    row = page.locator(f'#members tr[data-clinician-id="{nurse}"]')
    expect(row).to_contain_text("Infirmière A")
    expect(row).to_contain_text("configuré le")
    row.locator("a.reset-second-factor").click()
    expect(page.locator("h1")).to_have_text(
        "Réinitialiser le second facteur du compte « Infirmière A » ?"
    )
    consequences = page.locator("ul.consequences li")
    expect(consequences).to_have_count(6)
    expect(consequences.nth(1)).to_have_text(
        "Ses codes de secours restants cessent de fonctionner dès maintenant."
    )
    expect(consequences.nth(2)).to_contain_text("Ses clés de sécurité et clés d")
    expect(page.locator("p.warn")).to_contain_text("Cette action est irréversible.")
    assert visible_raw(page.inner_text("body")) == set()
    page.screenshot(path=str(SHOTS / "confirm-fr.png"), full_page=True)
    # the English source reads as well (the admin's language is the account's)
    _set_language(world.db, world.emails["admin"], "en")
    page.reload()
    expect(page.locator("h1")).to_have_text("Reset the second factor of Infirmière A?")
    page.screenshot(path=str(SHOTS / "confirm-en.png"), full_page=True)
    _set_language(world.db, world.emails["admin"], "fr")
    page.reload()

    page.locator("#form-second-factor-reset button.danger").click()
    done = page.locator("#second-factor-reset-done")
    expect(done).to_contain_text("Le second facteur du compte « Infirmière A » est réinitialisé")
    assert re.search(rf"/admin\?second_factor_reset={nurse}", page.url)
    expect(row).to_contain_text("pas encore configuré")
    page.screenshot(path=str(SHOTS / "done-fr.png"), full_page=True)
    desk.close()

    # the ward computer's session is over: back to the sign-in form
    ward_page.goto(f"{nurse_api.base_url}/")
    expect(ward_page.locator("input[name=password]")).to_be_visible()
    # her next sign-in enrols a new authenticator, then shows new recovery codes
    ward_page.fill("input[name=email]", email)
    ward_page.fill("input[name=password]", PASSWORD)
    ward_page.click("button[type=submit]")
    expect(ward_page.locator("img.totp-qr")).to_be_visible()
    secret = ward_page.locator("code.totp-secret").inner_text().replace(" ", "")
    ward_page.screenshot(path=str(SHOTS / "colleague-enrols-fr.png"), full_page=True)
    ward_page.fill("input[name=code]", pyotp.TOTP(secret).now())
    ward_page.click("button[type=submit]")
    expect(ward_page.locator(".recovery-codes li")).to_have_count(10)
    ward.close()
