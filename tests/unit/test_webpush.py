"""Web Push over loopback to a real endpoint that verifies VAPID and decrypts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from alerts.vapid import generate
from alerts.webpush import DeliveryOutcome, PushMessage, PushNotifier
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for

MSG = PushMessage(
    "postop: New alert",
    "A patient needs review (high priority).",
    "/alerts/7",
    "alert-7",
    reason="opened",
    priority="high",
)


@pytest.fixture
def keys_and_endpoint() -> Iterator[tuple[str, PushEndpoint]]:
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    yield keys.private_pem, endpoint
    endpoint.stop()


def notifier(pem: str, outcomes: list[DeliveryOutcome]) -> PushNotifier:
    lock = threading.Lock()

    def record(o: DeliveryOutcome) -> None:
        with lock:
            outcomes.append(o)

    n = PushNotifier(
        pem,
        "mailto:team@postop.invalid",
        record,
        base_delay_s=0.05,
        allow_private_endpoints=True,  # the local endpoint on loopback
    )
    n.start()
    return n


def test_push_is_verified_decrypted_and_carries_no_clinical_detail(
    keys_and_endpoint: tuple[str, PushEndpoint],
) -> None:
    pem, endpoint = keys_and_endpoint
    outcomes: list[DeliveryOutcome] = []
    n = notifier(pem, outcomes)
    n.submit([endpoint.subscribe(1), endpoint.subscribe(2)], MSG)
    wait_for(lambda: len(outcomes) == 2, 10, "two outcomes")
    n.stop()
    assert all(o.delivered and o.attempts == 1 for o in outcomes)
    assert {r.endpoint_id for r in endpoint.received} == {"ep1", "ep2"}
    got = endpoint.received[0]
    # the English fallback, the link and codes: nothing about the patient
    assert got.payload == {
        "title": MSG.title,
        "body": MSG.body,
        "url": MSG.url,
        "tag": MSG.tag,
        "reason": "opened",
        "priority": "high",
        "minutes": 0,
    }
    assert got.headers["urgency"] == "high"
    assert endpoint.rejected == []


def test_gone_subscriptions_are_reported_and_not_retried(
    keys_and_endpoint: tuple[str, PushEndpoint],
) -> None:
    pem, endpoint = keys_and_endpoint
    outcomes: list[DeliveryOutcome] = []
    n = notifier(pem, outcomes)
    s404, s410 = endpoint.subscribe(1), endpoint.subscribe(2)
    endpoint.answer("ep1", (404, {}))
    endpoint.answer("ep2", (410, {}))
    n.submit([s404, s410], MSG)
    wait_for(lambda: len(outcomes) == 2, 10, "two outcomes")
    n.stop()
    assert all(o.gone and not o.delivered and o.attempts == 1 for o in outcomes)


def test_server_errors_and_429_are_retried_then_delivered(
    keys_and_endpoint: tuple[str, PushEndpoint],
) -> None:
    pem, endpoint = keys_and_endpoint
    outcomes: list[DeliveryOutcome] = []
    n = notifier(pem, outcomes)
    flaky = endpoint.subscribe(1)
    endpoint.answer("ep1", (500, {}), (429, {"Retry-After": "1"}))
    n.submit([flaky], MSG)
    wait_for(lambda: len(outcomes) == 1, 15, "the outcome")
    n.stop()
    assert outcomes[0].delivered
    assert outcomes[0].attempts == 3
    assert len(endpoint.received) == 1


def test_a_wrong_vapid_key_is_refused_by_the_endpoint() -> None:
    endpoint = PushEndpoint(generate().public_key_b64url).start()  # expects another key
    outcomes: list[DeliveryOutcome] = []
    n = notifier(generate().private_pem, outcomes)
    n.submit([endpoint.subscribe(1)], MSG)
    wait_for(lambda: len(outcomes) == 1, 10, "the outcome")
    n.stop()
    endpoint.stop()
    assert not outcomes[0].delivered
    assert endpoint.rejected == ["unknown application server key"]
