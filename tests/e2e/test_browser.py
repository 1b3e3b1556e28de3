"""A coordinator in a real browser (Debian's Chromium through Playwright): signs in, sees
a simulated patient's desaturation alert appear on the dashboard without reloading (the
readings go firmware-sim -> gateway -> Mosquitto -> ingest -> alerts engine -> SSE),
receives the alert's Web Push in the page's service worker, opens the patient, sees the
trend chart and acknowledges the alert. The screenshots stay in tests/artifacts/."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from firmware_sim.devices import DeviceKind, KitSimulator, kit_devices
from playwright.sync_api import Page, expect

from alerts.protocol import builtin_protocols
from alerts.published import publish_protocols
from alerts.vapid import generate
from api.common.passwords import hash_password
from postop.ports import free_port
from store.clinicians import create_clinician
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests import second_factor
from tests.browser import ARTIFACTS, chromium
from tests.conftest import Broker
from tests.e2e.test_alert_e2e import Desaturation
from tests.e2e.test_gateway_e2e import gateway_process, send_frames
from tests.push_endpoint import PushEndpoint
from tests.stack import ServiceProcess, wait_for

EMAIL = "ide@hopital.example"
PASSWORD = "une phrase de passe assez longue"


def _service_worker_registration(page: Page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    found: list[dict[str, object]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(40):
        if found:
            break
        page.wait_for_timeout(250)
    assert found, "the page registered no service worker"
    return cdp, str(found[0]["registrationId"])


def test_live_alert_push_chart_and_acknowledge_in_chromium(
    db: str, broker: Broker, ingest: ServiceProcess, workdir: Path, api_server: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    offset_h = ((3 - now.hour + 12) % 24) - 12  # a home where it is 3 a.m.: oximeter on
    home_tz = ZoneInfo(f"Etc/GMT{-offset_h:+d}" if offset_h else "Etc/GMT")
    start = now - timedelta(minutes=40)
    kit = KitSimulator("web-kit", 7, start, kinds=[DeviceKind.OXIMETER], tz=home_tz)
    kit.patient.add_deviation(Desaturation(int((now - timedelta(minutes=15)).timestamp() * 1000)))
    gateway_id = "gw-web-kit"
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    sub = endpoint.subscribe(1)
    with psycopg.connect(db, autocommit=True) as conn:
        publish_protocols(conn, builtin_protocols())
        team = ensure_team(conn, "Orthopédie")
        create_clinician(conn, EMAIL, "IDE Martin", "coordinator", hash_password(PASSWORD), [team])
        patient = ensure_patient(conn, "P-WEB-01", team, "en", str(home_tz))
        conn.execute(
            "UPDATE patients SET protocol = 'orthopaedic_surgery' WHERE patient_id = %s",
            (patient,),
        )
        password = register_gateway(conn, gateway_id)
        for device_id, kind in kit_devices("web-kit", [DeviceKind.OXIMETER]):
            register_device(conn, device_id, kind, gateway_id)
            enroll(conn, device_id, patient, start - timedelta(days=1))
        conn.execute(
            "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth)"
            " VALUES (%s, 'coordinator', %s, %s, %s)",
            (team, sub.endpoint, sub.p256dh, sub.auth),
        )
    broker.add_account(gateway_id, password)
    alerts = ServiceProcess(
        "alerts.main",
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_ALERTS__VAPID_PRIVATE_KEY": keys.private_pem,
            "POSTOP_ALERTS__PUSH_ALLOW_PRIVATE_ENDPOINTS": "true",  # the local endpoint
        },
        workdir / "alerts",
    ).start()
    link_port = free_port()
    gw = gateway_process(gateway_id, password, broker, workdir / "gw", link_port, str(home_tz))
    gw.start()
    try:
        with chromium() as browser:
            context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
            context.grant_permissions(["notifications"], origin=api_server)
            page = context.new_page()
            code = second_factor.code(db, EMAIL)  # enrolled before, as at a first sign-in
            page.goto(f"{api_server}/")
            expect(page).to_have_url(f"{api_server}/login?next=%2F")
            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.fill("input[name=code]", code)
            page.click("button[type=submit]")
            row = page.locator("tr[data-patient-id]", has_text="P-WEB-01")
            expect(row).to_be_visible()
            expect(row.locator(".alert-badge.high")).to_have_count(0)
            expect(page.locator("#live-state.on")).to_be_visible(timeout=10_000)
            page.evaluate("window.__sameDocument = 'yes'")
            cdp, registration = _service_worker_registration(page)

            frames = kit.frames(int(start.timestamp() * 1000), int(now.timestamp() * 1000))
            send_frames(link_port, [f.line for f in frames])
            badge = row.locator(".alert-badge.high")
            expect(badge).to_be_visible(timeout=90_000)
            assert page.evaluate("window.__sameDocument") == "yes"  # no reload happened
            page.screenshot(path=str(ARTIFACTS / "dashboard-live-alert.png"), full_page=True)

            # the push the alerts engine really sent, decrypted by the push endpoint, goes
            # into the page's service worker (the browser's own push service is Google's,
            # out of reach here)
            with psycopg.connect(db) as conn:
                high = conn.execute(
                    "SELECT alert_id FROM alerts WHERE patient_id = %s AND priority = 'high'",
                    (patient,),
                ).fetchone()
            assert high is not None
            tag = f"alert-{high[0]}"
            wait_for(
                lambda: any(r.payload["tag"] == tag for r in endpoint.received), 20, "the push"
            )
            payload = next(r.payload for r in endpoint.received if r.payload["tag"] == tag)
            cdp.send(  # type: ignore[attr-defined]
                "ServiceWorker.deliverPushMessage",
                {
                    "origin": api_server,
                    "registrationId": registration,
                    "data": json.dumps(payload),
                },
            )
            # codes only in the push; the service worker words it in the nurse's French
            assert (payload["reason"], payload["priority"]) == ("opened", "high")
            toast = page.locator(".push-toast")
            expect(toast).to_contain_text("Nouvelle alerte")
            expect(toast).to_contain_text("Un patient doit être vu (priorité haute).")
            shown = page.evaluate(
                "navigator.serviceWorker.ready.then(r => r.getNotifications())"
                ".then(ns => ns.map(n => [n.title, n.body]))"
            )
            assert ["Nouvelle alerte", "Un patient doit être vu (priorité haute)."] in shown

            row.locator("a").first.click()
            expect(page.locator("#chart.ready")).to_be_visible(timeout=20_000)
            assert int(page.locator("#chart").get_attribute("data-points") or 0) > 10
            expect(page.locator("#chart .main-svg").first).to_be_visible()
            item = page.locator(".alert-item.high.active").first
            expect(item).to_be_visible()
            item.locator("button.ack").click()
            expect(page.locator(".alert-item.high.acknowledged").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "patient-acknowledged.png"), full_page=True)
            context.close()
    finally:
        gw.stop()
        alerts.stop()
        endpoint.stop()
        print(f"--- alerts log ---\n{alerts.log()[-3000:]}")
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.state, a.acknowledged_by, c.email FROM alerts a"
            " JOIN clinicians c ON 'clinician:' || c.clinician_id = a.acknowledged_by"
            " WHERE a.patient_id = %s AND a.priority = 'high'",
            (patient,),
        ).fetchall()
    assert [(r[0], r[2]) for r in rows][:1] == [("acknowledged", EMAIL)]
    assert (ARTIFACTS / "patient-acknowledged.png").stat().st_size > 10_000
