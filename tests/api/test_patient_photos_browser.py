"""Issue 20 in Debian's Chromium: the patient, on a phone-sized screen in Spanish, takes a
wound photo (the file input the camera fills), checks the preview and sends it; the
care team's patient page, open on a desktop, shows the photo within seconds without a
reload. Screenshots of both go to tests/artifacts/patient/. A reminder pushed by the
engine shows on the phone in the patient's language."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
from PIL import Image
from playwright.sync_api import Browser, ViewportSize

from alerts.protocol import builtin_protocols
from alerts.reminders import ReminderSender
from alerts.vapid import generate
from alerts.webpush import PushNotifier
from tests.api.conftest import LiveApi, World
from tests.browser import ARTIFACTS
from tests.patient_phone import enroll_phone
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for

SHOTS = ARTIFACTS / "patient"
PHONE: ViewportSize = {"width": 390, "height": 844}


def wound_jpeg() -> bytes:
    image = Image.new("RGB", (1200, 900), (225, 190, 170))
    image.paste((170, 50, 50), (350, 420, 850, 480))  # a red line: the scar
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_a_photo_taken_on_the_phone_appears_on_the_team_s_page_without_reload(
    world: World, browser: Browser, live_api: Callable[[str], LiveApi]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    api = live_api("coordinator")  # a French nurse of the patient's team
    team = browser.new_context(locale="fr-FR").new_page()
    team.context.add_cookies(
        [{"name": k, "value": v, "url": api.base_url} for k, v in api.cookies.items()]
    )
    team.goto(f"{api.base_url}/patients/{world.patient_a2}")
    section = team.locator("#wound-photos")
    section.locator(".photos-state", has_text="Aucune photo de plaie").wait_for(timeout=10_000)
    team.wait_for_timeout(500)  # the live stream is open

    phone_ctx = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="es-ES"
    )
    enrolled = enroll_phone(world.db, world.patient_a2)  # speaks Spanish
    phone_ctx.add_cookies([enrolled.playwright_cookie(api.base_url)])
    phone = phone_ctx.new_page()
    res = phone.goto(f"{api.base_url}/p/photos")
    assert res is not None
    assert res.status == 200
    camera = phone.locator("#photo-input")
    assert camera.get_attribute("capture") == "environment"
    assert camera.get_attribute("accept") == "image/*"
    assert phone.locator("#none-sent").is_visible()
    camera.set_input_files(
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": wound_jpeg()}
    )
    phone.locator("#photo-preview").wait_for(state="visible")
    sent_at = time.monotonic()
    phone.locator("#photo-send").click()
    phone.locator("#photo-status", has_text="Foto enviada a su equipo médico.").wait_for(
        timeout=15_000
    )
    assert phone.locator("#sent-photos li").count() == 1
    assert not phone.locator("#none-sent").is_visible()
    phone.screenshot(path=str(SHOTS / "phone-photo-sent-es.png"), full_page=True)

    # the team's page, never reloaded, shows it within seconds (the live stream)
    shown = section.locator("ol.photos li img")
    shown.wait_for(timeout=10_000)
    seconds = time.monotonic() - sent_at
    team.wait_for_function(
        "() => { const i = document.querySelector('#wound-photos img');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=10_000,
    )
    assert team.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert section.locator(".photos-state").inner_text() == ""
    team.screenshot(path=str(SHOTS / "team-sees-photo-fr.png"), full_page=True)
    assert seconds < 10, seconds
    print(f"\nphoto on the team's page {seconds:.1f} s after sending; screenshots: {SHOTS}")


def test_a_reminder_push_shows_in_the_patient_s_language_on_the_phone(
    world: World, browser: Browser, live_api: Callable[[str], LiveApi]
) -> None:
    """The engine's real push (the evening questionnaire at 19:00 in Madrid, an injected
    clock), decrypted by the local push endpoint, delivered into the patient app's service
    worker through the DevTools protocol (headless Chromium cannot reach a real push
    service): the phone shows it in Spanish, with the reminder's tag."""
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    api = live_api("coordinator")
    enrolled = enroll_phone(world.db, world.patient_a2)
    sub = endpoint.subscribe(world.patient_a2)
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint,"
            " p256dh, auth) VALUES (%s, %s, %s, %s, %s)",
            (world.patient_a2, enrolled.credential_id, sub.endpoint, sub.p256dh, sub.auth),
        )
        evening = datetime(2026, 11, 30, 19, 0, 30, tzinfo=ZoneInfo("Europe/Madrid"))
        reminders = ReminderSender(
            world.db, builtin_protocols(), None, "/p/", lambda: int(evening.timestamp() * 1000)
        )
        pusher = PushNotifier(
            keys.private_pem,
            "mailto:t@postop.invalid",
            reminders.record,
            allow_private_endpoints=True,
        )
        reminders.pusher = pusher
        pusher.start()
        try:
            assert [c.reminder_id for c in reminders.once(conn)] == ["evening_questionnaire"]
            wait_for(lambda: len(endpoint.received) == 1, 10, "the reminder push")
        finally:
            pusher.stop()
            endpoint.stop()
    payload = endpoint.received[0].payload

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="es-ES")
    context.grant_permissions(["notifications"], origin=api.base_url)
    context.add_cookies([enrolled.playwright_cookie(api.base_url)])
    page = context.new_page()
    page.goto(f"{api.base_url}/p/")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = context.new_cdp_session(page)
    found: list[dict[str, object]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(40):
        if found:
            break
        page.wait_for_timeout(250)
    assert found, "the patient app registered no service worker"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": api.base_url,
            "registrationId": str(found[0]["registrationId"]),
            "data": json.dumps(payload),
        },
    )
    shown: list[list[str]] = []
    for _ in range(40):
        shown = page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(ns => ns.map(n => [n.title, n.body, n.tag]))"
        )
        if shown:
            break
        page.wait_for_timeout(250)
    assert shown == [
        [
            "Mi seguimiento",
            "Es hora de responder a las preguntas de hoy sobre cómo se encuentra.",
            "reminder-evening_questionnaire-2026-11-30",
        ]
    ]
    context.close()
