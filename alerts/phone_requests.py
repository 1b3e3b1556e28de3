"""What the alerts engine's requests to the patient's phone share (``remeasure``: measure
again; ``battery_requests``: charge a device): each request is a patient message with no
clinician, claimed in a committed row before its Web Push, so that a restart never asks
twice; a row claimed but not settled when the process stopped is pushed again with the
same RFC 8030 ``Topic`` and notification tag. The payload names the push's kind and the
request's message kind only (no value, no device or patient id); the patient app's
service worker words it in the patient's language."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import psycopg

from alerts.phone_pushes import PHONE_ACTIVE, InFlight, record_outcome
from alerts.webpush import DeliveryOutcome, PushNotifier, PushSubscription


@dataclass(frozen=True)
class Request:
    message_id: int
    patient_id: int
    kind: str


def request_topic(push_kind: str, message_id: int) -> str:
    """RFC 8030 Topic (at most 32 URL-safe characters): one per request."""
    digest = hashlib.sha256(f"{push_kind}/{message_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


# the round's patients only (``%(ids)s``), appended to a sender's query on ``col``
ROUND_PATIENTS = " AND {col} = ANY(%(ids)s)"


def request_payload(push_kind: str, request: Request, app_url: str) -> dict[str, str]:
    return {
        "kind": push_kind,
        "request": request.kind,
        "url": app_url,
        "tag": f"{push_kind}-{request.message_id}",
    }


class PhoneRequests:
    """Pushes the requests a subclass claimed, and records their outcomes; ``pusher`` is
    its own ``PushNotifier`` (outcomes name patients' subscriptions)."""

    push_kind: ClassVar[str]
    # message_id, patient_id, kind of this sender's claimed rows whose push is not settled
    unpushed_sql: ClassVar[str]
    urgency: ClassVar[str] = "high"  # RFC 8030: a phone saving power still gets it

    def __init__(
        self,
        conninfo: str,
        pusher: PushNotifier | None,
        app_url: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._conninfo = conninfo
        self.pusher = pusher
        self._app_url = app_url
        self._clock_ms = clock_ms
        self._in_flight: InFlight[int] = InFlight()

    @classmethod
    def topic_of(cls, message_id: int) -> str:
        """The RFC 8030 Topic of this sender's push for ``message_id``."""
        return request_topic(cls.push_kind, message_id)

    def __call__(
        self, conn: psycopg.Connection, patient_ids: Sequence[int] | None, now_ms: int
    ) -> list[Request]:
        """After an engine round over ``patient_ids`` (None: everyone): settle, claim and
        push this sender's requests; the requests made."""
        raise NotImplementedError

    def push_claimed(
        self, conn: psycopg.Connection, made: Sequence[Request], now: datetime
    ) -> None:
        """Push the requests just claimed, and those a stopped process left unsettled."""
        busy = self._in_flight.busy() | {r.message_id for r in made}
        left = [
            Request(int(mid), int(pid), str(kind))
            for mid, pid, kind in conn.execute(self.unpushed_sql).fetchall()
            if int(mid) not in busy
        ]
        for request in [*made, *left]:
            self._push(conn, request, now)

    def _push(self, conn: psycopg.Connection, request: Request, now: datetime) -> None:
        subs = [
            PushSubscription(int(sid), str(endpoint), str(p256dh), str(auth))
            for sid, endpoint, p256dh, auth in conn.execute(
                "SELECT subscription_id, endpoint, p256dh, auth FROM patient_push_subscriptions s"
                f" WHERE patient_id = %s AND {PHONE_ACTIVE} ORDER BY subscription_id",
                (request.patient_id, now),
            ).fetchall()
        ]
        if not subs or self.pusher is None:
            self._settle(conn, request.message_id, "no_subscription", now)
            return
        self._in_flight.start(request.message_id, subs)
        self.pusher.submit(
            subs,
            request_payload(self.push_kind, request, self._app_url),
            topic=self.topic_of(request.message_id),
            urgency=self.urgency,
        )

    @staticmethod
    def _settle(conn: psycopg.Connection, message_id: int, outcome: str, now: datetime) -> None:
        conn.execute(
            "UPDATE patient_messages SET push_outcome = %s, push_settled_at = %s"
            " WHERE message_id = %s AND push_outcome IS NULL",
            (outcome, now, message_id),
        )

    def record(self, outcome: DeliveryOutcome) -> None:
        """Called on the push thread with each final outcome."""
        now = datetime.fromtimestamp(self._clock_ms() / 1000, UTC)
        record_outcome(self._conninfo, self._in_flight, outcome, now, self._settle, "a request")
