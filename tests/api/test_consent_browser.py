"""The consent panel in Chromium, as a French coordinator would use it: a patient with
nothing recorded, the monitoring consent, a sharing consent naming a physician in
Morocco (then the transfer form appears), a link made under it, the withdrawal that
revokes it, a late request of access; the notice read in Arabic, right to left.
Screenshots in tests/artifacts/consent/ for a person to look at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from playwright.sync_api import Browser, Page

from store.provisioning import ensure_patient
from tests.api.conftest import LiveApi, World
from tests.browser import ARTIFACTS, visible_raw

SHOTS = ARTIFACTS / "consent"


def _page(browser: Browser, api: LiveApi) -> Page:
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
    )
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # the confirmations say yes
    return page


def _submit(page: Page, form: str) -> None:
    with page.expect_navigation():
        page.locator(f"{form} button[type=submit]").click()


def test_consent_panel_in_french(
    browser: Browser, live_api: Callable[[str], LiveApi], world: World
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(world.db, autocommit=True) as conn:
        patient = ensure_patient(conn, "PA-MAROC", world.team_a, "ar", "Africa/Casablanca")
        conn.execute(
            "UPDATE patients SET home_country = 'MA', home_physician_name = 'Dr Amina Benali',"
            " home_physician_email = 'a.benali@example.ma' WHERE patient_id = %s",
            (patient,),
        )
    api = live_api("coordinator")  # French
    page = _page(browser, api)
    page.goto(f"{api.base_url}/patients/{patient}")
    panel = page.locator("#consent")
    assert "Consentements et droits du patient" in panel.inner_text()
    assert "non enregistré" in page.inner_text("#monitoring-consent-state")
    assert "Aucun consentement enregistré pour l\u2019instant." in panel.inner_text()
    # no link without the patient's consent: the page says so, the API refuses in French
    assert page.locator("#no-sharing-consent").is_visible()
    page.locator("#form-share button[type=submit]").click()
    error = page.locator("#form-share .error")
    error.wait_for(state="visible")
    page.locator("#form-share .error:not(:empty)").wait_for()  # no eval under the page's CSP
    assert error.inner_text().startswith("Le patient n\u2019a pas consenti au partage")

    # monitoring: the notice was read in Arabic, the patient consents
    page.select_option("#form-consent-monitoring select[name=notice_language]", "ar")
    _submit(page, "#form-consent-monitoring")
    assert page.inner_text("#monitoring-consent-state") == "donné"
    # sharing with the physician at home, in Morocco (prefilled from the patient's record)
    assert page.input_value("#form-consent-sharing input[name='physician.name']") == (
        "Dr Amina Benali"
    )
    _submit(page, "#form-consent-sharing")
    # outside the EU/EEA: the transfer form appears, and the link is refused until then
    assert page.locator("#form-consent-transfer").is_visible()
    page.locator("#form-share button[type=submit]").click()
    page.locator("#form-share .error:not(:empty)").wait_for()  # no eval under the page's CSP
    assert page.inner_text("#form-share .error").startswith(
        "Dr Amina Benali exerce hors de l\u2019UE/EEE"
    )
    _submit(page, "#form-consent-transfer")
    assert page.locator("#form-consent-transfer").count() == 0
    page.locator("#form-share button[type=submit]").click()
    page.locator("#share-result").wait_for(state="visible")

    # a request of access received ten days ago: overdue
    received_day = datetime.now(UTC).date() - timedelta(days=10)
    received = received_day.strftime("%d/%m/%Y")  # as the French page writes dates
    page.fill("#form-access-request input[name=received_on]", received)
    _submit(page, "#form-access-request")
    assert "en retard" in page.inner_text("#access-requests-table")
    table = page.inner_text("#consent-table")
    for words in ("Télésurveillance", "Partage avec le médecin traitant", "Transfert hors UE/EEE"):
        assert words in table
    assert "en vigueur" in table
    assert "arabe" in table  # the notice's language, named
    assert "Maroc" in table
    assert visible_raw(page.inner_text("body")) == set()
    panel.screenshot(path=str(SHOTS / "consent-panel-fr.png"))
    page.screenshot(path=str(SHOTS / "patient-page-fr.png"), full_page=True)

    # the patient withdraws the sharing consent: the physician's link is revoked at once
    row = page.locator("#consent-table tr", has_text="Partage avec le médecin traitant")
    with page.expect_navigation():
        row.locator("button.withdraw").click()
    assert "retiré le" in page.inner_text("#consent-table")
    assert page.inner_text("#share-links-table td.state") == "révoqué"
    panel.screenshot(path=str(SHOTS / "consent-panel-withdrawn-fr.png"))

    # the dashboard names the late request
    page.goto(f"{api.base_url}/")
    assert "Demande (accès au dossier) en retard depuis le" in page.inner_text(
        f'tr[data-patient-id="{patient}"]'
    )
    page.screenshot(path=str(SHOTS / "dashboard-fr.png"), full_page=True)

    # the notice as the patient reads it, in Arabic, right to left
    page.goto(f"{api.base_url}/notices/monitoring/1/ar")
    assert page.locator("article.notice").get_attribute("dir") == "rtl"
    page.screenshot(path=str(SHOTS / "notice-monitoring-ar.png"), full_page=True)
    page.context.close()
    print(f"\nscreenshots: {SHOTS}")
