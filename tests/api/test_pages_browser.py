"""Every clinician page in Debian's Chromium, as each role, in French and English: no raw
identifier (rule, protocol, state, device kind, parameter ids) in the visible text, the
empty states and a cleared alert read as a nurse expects, bad input answered with a
translated sentence (never a 500), ``/docs`` renders under the site's CSP. Screenshots
of every page go to tests/artifacts/pages/ for a person to look at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from playwright.sync_api import Browser, Page
from psycopg.types.json import Jsonb

from store.provisioning import ensure_patient
from tests.api.conftest import LiveApi, World
from tests.browser import ARTIFACTS, visible_raw

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow

SHOTS = ARTIFACTS / "pages"


@pytest.fixture
def scene(world: World) -> dict[str, int]:
    """A cleared alert awaiting review with engine evidence, alerts of the newer rules (a
    spot reading awaiting its confirmation, the sepsis screen, the rhythm rule, NEWS2
    with its scored signs), and a patient with no data."""
    now = datetime.now(UTC)
    with psycopg.connect(world.db, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
            " condition_cleared_at, evidence) VALUES (%s, 'no_spo2', 'technical', 'low',"
            " 'active', %s, %s, %s) RETURNING alert_id",
            (
                world.patient_a,
                now - timedelta(hours=2),
                now - timedelta(minutes=30),
                Jsonb({"silent_s": 36300}),
            ),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, transition, actor) VALUES"
            " (%s, %s, 'opened', 'system'), (%s, %s, 'condition_cleared', 'system')",
            (row[0], now - timedelta(hours=2), row[0], now - timedelta(minutes=30)),
        )
        newer = [
            (
                "spo2_spot_low",
                "low",
                {"value": 87.0, "threshold": 90.0, "confirmation_requested": True},
            ),
            ("sepsis_screen", "high", {"temp_c": 38.6, "pulse": 112.0, "usual_pulse": 78.0}),
            (
                "af_suspected",
                "medium",
                {"irregularity": 0.21, "irregular_readings": 3, "pulse": 96.0},
            ),
            (
                "news2",
                "medium",
                {
                    "score": 5,
                    "band": 2,
                    "complete": True,
                    "scored_params": "resp_rate_per_min,on_oxygen,temp_c",
                },
            ),
            (
                "sbp_below_usual",
                "medium",
                {
                    "value": 96.0,
                    "threshold": 104.0,
                    "confirmation_requested": False,
                    "usual": 135.0,
                },
            ),
            ("weight_loss", "low", {"fall": 2.4}),
            (
                "dehydration",
                "medium",
                {
                    "weight_fall": 1.9,
                    "pulse": 84.0,
                    "usual_pulse": 72.0,
                    "sbp": 118.0,
                    "usual_sbp": 135.0,
                },
            ),
        ]
        for rule_id, priority, evidence in newer:
            conn.execute(
                "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
                " evidence) VALUES (%s, %s, 'clinical', %s, 'active', %s, %s)",
                (world.patient_a, rule_id, priority, now - timedelta(hours=1), Jsonb(evidence)),
            )
        empty = ensure_patient(conn, "PA-EMPTY", world.team_a, "de", "Europe/Berlin")
    return {"cleared_alert": int(row[0]), "empty": empty}


def _page(browser: Browser, api: LiveApi, language: str) -> Page:
    context = browser.new_context(locale="fr-FR" if language == "fr" else "en-GB")
    context.add_cookies(
        [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
    )
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    return page


def _set_language(db: str, email: str, language: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE clinicians SET language = %s WHERE email = %s", (language, email))


def _visible_raw(page: Page) -> set[str]:
    return visible_raw(page.inner_text("body"))


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_page_speaks_to_a_clinician(
    browser: Browser,
    live_api: Callable[[str], LiveApi],
    world: World,
    scene: dict[str, int],
    language: str,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for role in ("coordinator", "physician", "admin"):
        _set_language(world.db, world.emails[role], language)
        api = live_api(role)
        page = _page(browser, api, language)
        paths = {
            "dashboard": "/",
            "patient": f"/patients/{world.patient_a}",
            "empty-patient": f"/patients/{scene['empty']}",
            "not-found": "/no/such/page",
            "bad-id": "/patients/987654",
        }
        if role == "admin":
            paths["admin"] = "/admin"
        for name, path in paths.items():
            res = page.goto(api.base_url + path)
            assert res is not None
            assert res.status < 500, (path, res.status)
            page.wait_for_load_state("networkidle")
            if name == "patient":
                page.wait_for_selector("#chart.ready", timeout=20_000)
            page.screenshot(path=str(SHOTS / f"{name}-{role}-{language}.png"), full_page=True)
            assert _visible_raw(page) == set(), (path, role, language)
            text = page.inner_text("body")
            assert '"detail"' not in text, path
            if name in ("not-found", "bad-id"):
                assert res.status == 404
                assert ("Page introuvable" if language == "fr" else "Page not found") in text
        page.context.close()
    print(f"\nscreenshots: {SHOTS}")


def test_empty_and_cleared_states(
    browser: Browser,
    live_api: Callable[[str], LiveApi],
    world: World,
    scene: dict[str, int],
) -> None:
    api = live_api("coordinator")  # French
    page = _page(browser, api, "fr")
    page.goto(f"{api.base_url}/patients/{scene['empty']}")
    assert "Aucun appareil affecté" in page.inner_text("section.latest")
    assert page.locator("#chart").count() == 0  # no empty chart with a year-2000 axis
    page.goto(f"{api.base_url}/")
    row = page.locator(f'tr[data-patient-id="{scene["empty"]}"]')
    assert "aucune mesure pour l\u2019instant" in row.inner_text()
    assert "partiel" not in row.inner_text()
    assert "0" not in row.locator("td").nth(2).inner_text()
    page.goto(f"{api.base_url}/patients/{world.patient_a}")
    alerts = page.inner_text("body")
    assert "confirmation demandée (refaire la mesure)" in alerts
    assert "SpO2 sous 90 % (86 % en échelle 2) lors d'une mesure ponctuelle" in alerts
    assert "(infection possible)" in alerts
    assert "Rythme cardiaque irrégulier (fibrillation atriale possible)" in alerts
    assert "sous oxygène" in alerts
    assert "pouls habituel du patient" in alerts
    assert "Poids en baisse de 1 kg (ou 1,5 %) en 3 jours avec pouls plus rapide" in alerts
    assert "pression systolique habituelle du patient" in alerts
    page.screenshot(path=str(SHOTS / "patient-newer-rules-fr.png"), full_page=True)
    page.goto(f"{api.base_url}/patients/{world.patient_a}")
    alert = page.locator(f"#alert-{scene['cleared_alert']}")
    text = alert.inner_text()
    assert "condition disparue, à examiner" in text
    assert "active" not in alert.locator(".state").inner_text()
    assert "10\u202fh 5\u00a0min" in text or "10 h 5 min" in text  # 36,300 s as a duration
    assert "Aucune mesure de SpO2 pendant 8 h d'éveil" in text  # the rule's title, translated
    latest = page.inner_text("section.latest")
    assert "Saturation" in latest or "SpO2" in latest
    page.context.close()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_bad_input_gets_a_translated_sentence(
    browser: Browser,
    live_api: Callable[[str], LiveApi],
    world: World,
    language: str,
) -> None:
    _set_language(world.db, world.emails["admin"], language)
    api = live_api("admin")
    page = _page(browser, api, language)
    page.goto(f"{api.base_url}/patients/{world.patient_a}")
    form = page.locator("form.note-form")
    form.locator("textarea").fill("    ")
    form.locator("button").click()
    error = form.locator(".error")
    expected = "ne peut pas être vide" if language == "fr" else "cannot be empty"
    error.filter(has_text=expected).wait_for(timeout=10_000)
    page.goto(f"{api.base_url}/admin")
    cases = [
        ("#form-patient", {"pseudonym": "x"}, ("Pseudonyme", "Pseudonym")),
        (
            "#form-patient",
            {"pseudonym": "PA-NEW", "time_zone": "Mars/Olympus"},
            ("fuseau horaire inconnu", "unknown time zone"),
        ),
        (
            "#form-device",
            {"device_id": "dev-001", "gateway_id": "gw-missing"},
            ("enregistrez d\u2019abord la passerelle", "register the gateway first"),
        ),
        ("#form-gateway", {"gateway_id": " "}, ("Identifiant de la passerelle", "Gateway id")),
    ]
    for selector, fields, words in cases:
        form = page.locator(selector)
        for name, value in fields.items():
            form.locator(f'[name="{name}"]').fill(value)
        form.locator("button[type=submit]").click()
        want = words[0] if language == "fr" else words[1]
        form.locator(".error").filter(has_text=want).wait_for(timeout=10_000)
        page.screenshot(path=str(SHOTS / f"admin-error-{language}.png"), full_page=True)
    page.context.close()


def test_docs_render_under_the_csp(browser: Browser, live_api: Callable[[str], LiveApi]) -> None:
    api = live_api("admin")
    page = browser.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    res = page.goto(f"{api.base_url}/docs")
    assert res is not None
    assert res.status == 200
    page.wait_for_selector(".opblock", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "docs.png"))
    assert "cdn" not in page.content().lower()
    assert blocked == []


def test_dates_are_typed_as_the_viewers_locale_writes_them(
    browser: Browser, live_api: Callable[[str], LiveApi], world: World
) -> None:
    """A French coordinator whose browser speaks US English types 28/11/2026, as every
    page of the app writes dates for them; the browser's own date widget would ask for
    11/28/2026. An impossible date is refused in their language."""
    _set_language(world.db, world.emails["admin"], "fr")
    api = live_api("admin")
    context = browser.new_context(locale="en-US", timezone_id="Europe/Paris")
    context.add_cookies(
        [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
    )
    page = context.new_page()
    page.goto(f"{api.base_url}/admin")
    form = page.locator("#form-patient")
    assert form.locator('[name="surgery_date"]').get_attribute("placeholder", timeout=5000)
    assert form.locator('[name="surgery_date"]').get_attribute("data-pattern") == "dd/MM/yyyy"
    form.locator('[name="pseudonym"]').fill("PA-DATES")
    form.locator('[name="surgery_date"]').fill("31/02/2026")
    form.locator("button[type=submit]").click()
    form.locator(".error").filter(has_text="Date de l").wait_for(timeout=10_000)
    form.locator('[name="surgery_date"]').fill("28/11/2026")
    form.locator('[name="discharged_at"]').fill("29/11/2026 14:30")
    form.locator('[name="usual_values.beta_blocker"]').check()
    form.locator("button[type=submit]").click()
    form.locator(".result").wait_for(timeout=10_000)
    page.screenshot(path=str(SHOTS / "admin-dates-fr-on-en-us.png"), full_page=True)
    context.close()
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "SELECT surgery_date, discharged_at AT TIME ZONE 'Europe/Paris', patient_id"
            " FROM patients WHERE pseudonym = 'PA-DATES'"
        ).fetchone()
        assert row is not None
        assert (row[0].isoformat(), row[1].isoformat()) == ("2026-11-28", "2026-11-29T14:30:00")
        # the form's checkboxes reach their nested fields (they were sent flat, refused)
        usual = conn.execute(
            "SELECT beta_blocker FROM patients WHERE patient_id = %s", (row[2],)
        ).fetchone()
    assert usual == (True,)
