"""Which pushes to the patients' phones are still in flight, for the senders that claim
each push in a committed row before sending it (``reminders``, ``phone_requests``): a push
counts as delivered when any of the patient's phones got it, failed when none did, and a
row claimed but not in flight here was left by a process that stopped (pushed again)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import psycopg

from alerts.webpush import DeliveryOutcome, PushSubscription

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)

# the subscription's phone may still be served: not revoked, replaced or expired
PHONE_ACTIVE = (
    "EXISTS (SELECT 1 FROM patient_credentials c WHERE c.credential_id = s.credential_id"
    " AND c.revoked_at IS NULL AND c.expires_at > %s)"
)


def note_subscription(conn: psycopg.Connection, outcome: DeliveryOutcome, now: datetime) -> None:
    """What a push taught of the phone's subscription: gone (the push service said so)
    is deleted, delivered is noted as its last success."""
    if outcome.gone:
        conn.execute(
            "DELETE FROM patient_push_subscriptions WHERE subscription_id = %s",
            (outcome.subscription_id,),
        )
    elif outcome.delivered:
        conn.execute(
            "UPDATE patient_push_subscriptions SET last_success_at = %s WHERE subscription_id = %s",
            (now, outcome.subscription_id),
        )


class InFlight(Generic[K]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[K, int] = {}  # push -> outcomes still awaited
        self._delivered: set[K] = set()
        self._settling: set[K] = set()  # settled, its row not yet written
        self._keys_of: dict[int, deque[K]] = {}  # subscription -> its pushes in order

    def start(self, key: K, subs: Sequence[PushSubscription]) -> None:
        with self._lock:
            self._waiting[key] = len(subs)
            for sub in subs:
                self._keys_of.setdefault(sub.subscription_id, deque()).append(key)

    def busy(self) -> set[K]:
        """Pushes submitted by this process whose outcome is not written yet."""
        with self._lock:
            return set(self._waiting) | self._settling

    def finish(self, outcome: DeliveryOutcome) -> tuple[K | None, str | None]:
        """The push this outcome belongs to, and ``delivered``/``failed`` once its last
        subscription answered (else None); call ``written`` once that is recorded."""
        with self._lock:
            keys = self._keys_of.get(outcome.subscription_id)
            key = keys.popleft() if keys else None
            if keys is not None and not keys:
                del self._keys_of[outcome.subscription_id]
            if key is None:
                return None, None
            if outcome.delivered:
                self._delivered.add(key)
            left = self._waiting.get(key, 1) - 1
            if left > 0:
                self._waiting[key] = left
                return key, None
            self._waiting.pop(key, None)
            settled = "delivered" if key in self._delivered else "failed"
            self._delivered.discard(key)
            self._settling.add(key)
            return key, settled

    def written(self, key: K) -> None:
        with self._lock:
            self._settling.discard(key)


def record_outcome(
    conninfo: str,
    in_flight: InFlight[K],
    outcome: DeliveryOutcome,
    now: datetime,
    settle: Callable[[psycopg.Connection, K, str, datetime], None],
    what: str,
) -> None:
    """On the push thread, each final outcome: what it taught of the subscription, and,
    once the push's last phone answered, its row settled by ``settle``. A database that
    fails here loses only the bookkeeping (logged with ``what``): the row stays claimed
    and unsettled, so the next process pushes it again with the same Topic."""
    key, settled = in_flight.finish(outcome)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            note_subscription(conn, outcome, now)
            if key is not None and settled is not None:
                settle(conn, key, settled, now)
    except psycopg.Error as exc:
        log.warning("could not record %s's push outcome (%s)", what, type(exc).__name__)
    finally:
        if key is not None and settled is not None:
            in_flight.written(key)
