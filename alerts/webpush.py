"""Web Push to the care team's browsers (RFC 8030, aes128gcm per RFC 8291, VAPID per
RFC 8292) through pywebpush, off the evaluation path: ``submit`` only queues.

One worker thread sends deliveries in due order from a heap, so a retry waiting for its
backoff never holds up another delivery. 201/202: delivered. 404/410: the subscription
is gone (the caller deletes it). 429 (honouring Retry-After), 5xx and connection errors:
retried with exponential backoff and jitter up to ``max_attempts``. Other 4xx: failed.
Payloads carry no clinical detail; endpoints' keys are never logged.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import requests
from pywebpush import WebPushException, webpush

from alerts.push_transport import push_session
from alerts.vapid import load
from vitals.push_endpoints import UnresolvedPushEndpoint, UnsafePushEndpoint, check_push_endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushSubscription:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushMessage:
    # ``title`` and ``body`` are the English fallback; the team's service worker words the
    # notification in the clinician's language from ``reason``, ``priority`` and
    # ``minutes`` (codes and a count only, no clinical detail)
    title: str
    body: str
    url: str
    tag: str
    reason: str = ""
    priority: str = ""
    minutes: int = 0


@dataclass(frozen=True)
class DeliveryOutcome:
    subscription_id: int
    delivered: bool
    gone: bool
    attempts: int
    error: str | None


@dataclass(frozen=True)
class _Delivery:
    sub: PushSubscription
    payload: str
    attempt: int
    # RFC 8030: a message with the same topic replaces one the push service still holds
    topic: str | None = None
    urgency: str = "high"


class PushNotifier:
    def __init__(
        self,
        vapid_private_pem: str,
        vapid_subject: str,
        on_outcome: Callable[[DeliveryOutcome], None],
        *,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        ttl_s: int = 3600,
        timeout_s: float = 10.0,
        allow_private_endpoints: bool = False,
    ) -> None:
        self._vapid = load(vapid_private_pem)
        self._subject = vapid_subject
        self._on_outcome = on_outcome
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._allow_private = allow_private_endpoints
        self._session = push_session(allow_private=allow_private_endpoints)
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webpush", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + drain_timeout_s
        with self._cv:
            while self._heap and time.monotonic() < deadline:
                self._cv.wait(0.05)
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=drain_timeout_s)

    def submit(
        self,
        subs: Sequence[PushSubscription],
        msg: PushMessage | Mapping[str, str],
        *,
        topic: str | None = None,
        urgency: str = "high",
    ) -> None:
        """Queue ``msg`` (a care-team message, or another payload of plain words) for
        each subscription."""
        payload = json.dumps(asdict(msg) if isinstance(msg, PushMessage) else dict(msg))
        with self._cv:
            for sub in subs:
                delivery = _Delivery(sub, payload, 1, topic, urgency)
                heapq.heappush(self._heap, (time.monotonic(), next(self._order), delivery))
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cv.wait(timeout)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._heap)
                self._cv.notify_all()
            self._send(delivery)

    def _deliver(self, d: _Delivery) -> None:
        status, retry_after, error = self._post(d)
        if status in (200, 201, 202):
            self._done(d, delivered=True, gone=False, error=None)
        elif status in (404, 410):
            self._done(d, delivered=False, gone=True, error=f"HTTP {status}")
        elif (status is None or status == 429 or status >= 500) and d.attempt < self._max_attempts:
            delay = (
                retry_after
                if retry_after is not None
                else self._base_delay_s * 2 ** (d.attempt - 1) * (0.5 + random.random())
            )
            with self._cv:
                heapq.heappush(
                    self._heap,
                    (
                        time.monotonic() + delay,
                        next(self._order),
                        _Delivery(d.sub, d.payload, d.attempt + 1, d.topic, d.urgency),
                    ),
                )
                self._cv.notify_all()
        else:
            self._done(d, delivered=False, gone=False, error=error or f"HTTP {status}")

    def _send(self, d: _Delivery) -> None:
        try:
            check_push_endpoint(d.sub.endpoint, allow_private=self._allow_private)
        except UnresolvedPushEndpoint:
            pass  # perhaps a passing DNS failure: retried like a connection error below
        except UnsafePushEndpoint as exc:
            # an address of our own network (or no https): never contacted, and dropped
            self._done(d, delivered=False, gone=True, error=f"unsafe endpoint: {exc}")
            return
        self._deliver(d)

    def _post(self, d: _Delivery) -> tuple[int | None, float | None, str | None]:
        info = {"endpoint": d.sub.endpoint, "keys": {"p256dh": d.sub.p256dh, "auth": d.sub.auth}}
        headers = {"Urgency": d.urgency}
        if d.topic is not None:
            headers["Topic"] = d.topic
        try:
            resp = webpush(
                info,
                d.payload,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},
                ttl=self._ttl_s,
                timeout=self._timeout_s,
                headers=headers,
                requests_session=self._session,
            )
        except WebPushException as exc:
            resp = exc.response
            if resp is None:
                return None, None, "no response"
        except requests.RequestException as exc:
            return None, None, type(exc).__name__
        if not isinstance(resp, requests.Response):
            return None, None, "unexpected response"
        retry_after = resp.headers.get("Retry-After")
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return resp.status_code, delay, None

    def _done(self, d: _Delivery, *, delivered: bool, gone: bool, error: str | None) -> None:
        if not delivered:
            log.warning(
                "push to subscription %d %s after %d attempt(s)",
                d.sub.subscription_id,
                "gone" if gone else "failed",
                d.attempt,
            )
        try:
            self._on_outcome(
                DeliveryOutcome(d.sub.subscription_id, delivered, gone, d.attempt, error)
            )
        except Exception:  # the recorder must never kill the sender
            log.exception("recording a push outcome failed")
