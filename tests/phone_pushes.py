"""What the tests of the engine's pushes to patients' phones share (re-measurement and
battery requests): a settable clock, the phone's subscription at the local push endpoint
(made by a real enrollment), and the push shown by the patient app's service worker in
Chromium (delivered through the DevTools protocol, as a push service would)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg
from playwright.sync_api import Browser, BrowserContext, Page

from alerts.engine import Engine
from alerts.phone_requests import PhoneRequests
from alerts.protocol import Protocol, builtin_protocols
from alerts.vapid import generate
from alerts.webpush import PushNotifier
from tests.browser import ARTIFACTS
from tests.patient_phone import PatientPhone, enroll_phone
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> int:
        return int(self.now.timestamp() * 1000)


# a phone-request sender's class, built as alerts.main builds it: (conninfo, protocols,
# pusher, app url, clock)
MakeRequests = Callable[
    [str, Mapping[str, Protocol], PushNotifier | None, str, Callable[[], int]], PhoneRequests
]


def requests_engine(
    db: str, pem: str, clock: Clock, make: MakeRequests, *, start: bool = True
) -> tuple[Engine, PhoneRequests, PushNotifier]:
    """The engine with one kind of phone requests after each round, as ``alerts.main``
    wires them; a pusher not started stands for a process that claimed and died before
    pushing."""
    requests = make(db, builtin_protocols(), None, "/p/", clock)
    pusher = PushNotifier(
        pem, "mailto:t@postop.invalid", requests.record, base_delay_s=0.05,
        allow_private_endpoints=True,
    )  # fmt: skip
    requests.pusher = pusher
    if start:
        pusher.start()
    eng = Engine(db, builtin_protocols(), lambda _c, _n: None, clock_ms=clock, after_round=requests)
    return eng, requests, pusher


def pushed_after_restart(
    db: str,
    push: tuple[str, PushEndpoint],
    conn: psycopg.Connection,
    pid: int,
    make: MakeRequests,
    clock: Clock,
    requests_of: Callable[[], list[tuple[Any, ...]]],
) -> dict[str, Any]:
    """A request claimed (committed) by a process that died before its push is pushed by
    the restarted process's first round, once, with the Topic of its message; its
    outcome is recorded and a later round pushes nothing more. The push's payload."""
    pem, endpoint = push
    dead, sender, _ = requests_engine(db, pem, clock, make, start=False)
    dead.evaluate_once(conn, [pid])
    [(message_id, *_)] = requests_of()
    threading.Event().wait(0.3)
    assert endpoint.received == []
    clock.now += timedelta(minutes=1)
    eng, _, pusher = requests_engine(db, pem, clock, make)  # the restarted process
    try:
        eng.evaluate_once(conn, None)  # its first round looks at everyone
        wait_for(lambda: len(endpoint.received) == 1, 10, "the push after the restart")
        got = endpoint.received[0]
        assert got.headers["topic"] == sender.topic_of(int(message_id))
        assert got.payload["tag"] == f"{sender.push_kind}-{message_id}"
        wait_for(lambda: requests_of()[0][4] == "delivered", 10, "the outcome")
        clock.now += timedelta(minutes=1)
        eng.evaluate_once(conn, None)
        threading.Event().wait(0.3)
        assert len(endpoint.received) == 1
        assert len(requests_of()) == 1
        return dict(got.payload)
    finally:
        pusher.stop()


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


def arabic_phone_shows(
    browser: Browser,
    base_url: str,
    phone: PatientPhone,
    payload: Mapping[str, str],
    text: str,
    screenshot: str,
) -> None:
    """On the enrolled phone, in Arabic: the request on the app's home screen (saved as
    ``screenshot`` to look at), and the push as its service worker shows it, both saying
    ``text``; the title is the app's Arabic name, not the fallback."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="ar"
    )
    try:
        context.grant_permissions(["notifications"], origin=base_url)
        context.add_cookies([phone.playwright_cookie(base_url)])
        page = context.new_page()
        page.goto(f"{base_url}/p/")
        assert page.locator(f"article.kind-{payload['request']} .text").inner_text() == text
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
        shown = shown_by_service_worker(context, page, base_url, payload)
        assert len(shown) == 1
        title, body, tag = shown[0]
        assert body == text
        assert tag == payload["tag"]
        assert title != "postop"
    finally:
        context.close()


def asked(db: str, requests: PhoneRequests, patient_id: int, at: datetime) -> int:
    """The engine's step after a round for one patient at ``at`` (pushing only if
    ``requests`` has a pusher); how many requests it made."""
    with psycopg.connect(db, autocommit=True) as conn:
        return len(requests(conn, [patient_id], int(at.timestamp() * 1000)))
