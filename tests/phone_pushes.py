"""What the tests of the engine's pushes to patients' phones share (re-measurement and
battery requests): a settable clock, the phone's subscription at the local push endpoint
(made by a real enrollment), and the push shown by the patient app's service worker in
Chromium (delivered through the DevTools protocol, as a push service would)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from playwright.sync_api import BrowserContext, Page

from alerts.phone_requests import PhoneRequests
from alerts.vapid import generate
from alerts.webpush import PushNotifier
from tests.patient_phone import PatientPhone, enroll_phone
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> int:
        return int(self.now.timestamp() * 1000)


def subscribe(db: str, conn: psycopg.Connection, endpoint: PushEndpoint, pid: int) -> None:
    """The patient's enrolled phone subscribed (its credential made by a real link)."""
    phone = enroll_phone(db, pid)
    sub = endpoint.subscribe(pid)
    conn.execute(
        "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint, p256dh,"
        " auth) VALUES (%s, %s, %s, %s, %s)",
        (pid, phone.credential_id, sub.endpoint, sub.p256dh, sub.auth),
    )


def shown_by_service_worker(
    context: BrowserContext, page: Page, base_url: str, payload: Mapping[str, str]
) -> list[list[str]]:
    """Deliver ``payload`` to the open app's service worker; the notifications it shows,
    as [title, body, tag]."""
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
            "origin": base_url,
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
    return shown


def pushed_once(
    db: str, phone: PatientPhone, requests: PhoneRequests, ask: Callable[[], int]
) -> dict[str, Any]:
    """The payload the phone got (decrypted at the local push endpoint) when ``ask``
    made one request through ``requests`` with a real pusher."""
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    try:
        sub = endpoint.subscribe(phone.patient_id)
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint,"
                " p256dh, auth) VALUES (%s, %s, %s, %s, %s)",
                (phone.patient_id, phone.credential_id, sub.endpoint, sub.p256dh, sub.auth),
            )
        pusher = PushNotifier(
            keys.private_pem, "mailto:t@postop.invalid", requests.record,
            allow_private_endpoints=True,
        )  # fmt: skip
        requests.pusher = pusher
        pusher.start()
        try:
            assert ask() == 1
            wait_for(lambda: len(endpoint.received) == 1, 10, "the request's push")
        finally:
            pusher.stop()
    finally:
        endpoint.stop()
    return endpoint.received[0].payload
