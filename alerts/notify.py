"""Telling the care team after each committed round: a Web Push to the browsers of the
patient's team, by escalation tier (tier 0: the protocol's first role; each escalation
adds the next role). Payloads carry no clinical detail: the page behind the link does,
after login. Outcomes are recorded; gone subscriptions (404/410) are deleted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import psycopg

from alerts.alert_store import Notice
from alerts.protocol import Protocol
from alerts.stale_data import SystemNotice
from alerts.webpush import DeliveryOutcome, PushMessage, PushNotifier, PushSubscription

log = logging.getLogger(__name__)

TITLES = {
    "opened": "New alert",
    "priority raised": "Alert priority raised",
    "escalated": "Alert escalated to you",
    "more missing": "Another measurement missing",
}


# the codes the service worker words (api/care_team/push_texts.py has their words)
REASON_CODES = {
    "opened": "opened",
    "priority raised": "priority_raised",
    "escalated": "escalated",
    "more missing": "more_missing",
}


def push_message(notice: Notice, base_url: str | None = None) -> PushMessage:
    path = f"/alerts/{notice.alert_id}"
    return PushMessage(
        title=f"postop: {TITLES.get(notice.reason, 'Alert')}",
        body=f"A patient needs review ({notice.priority} priority).",
        url=base_url.rstrip("/") + path if base_url else path,
        tag=f"alert-{notice.alert_id}",
        reason=REASON_CODES.get(notice.reason, "alert"),
        priority=notice.priority,
    )


def system_message(notice: SystemNotice, base_url: str | None = None) -> PushMessage:
    minutes = max(1, round(notice.silent_s / 60))
    return PushMessage(
        title="postop: No data from any home",
        body=f"No reading has arrived from any home for {minutes} min: alerts cannot fire."
        " Check the system.",
        url=base_url.rstrip("/") + "/" if base_url else "/",
        tag=f"system-{notice.system_alert_id}",
        reason="no_data",
        minutes=minutes,
    )


class CareTeamNotifier:
    def __init__(
        self, conninfo: str, protocols: Mapping[str, Protocol], base_url: str | None = None
    ) -> None:
        self._conninfo = conninfo
        self._base_url = base_url
        self._protocols = protocols
        self._lock = threading.Lock()
        self._alert_of: dict[int, int] = {}  # subscription -> alert of its latest push
        self.pusher: PushNotifier | None = None

    def __call__(self, conn: psycopg.Connection, notices: Sequence[Notice]) -> None:
        if self.pusher is None:
            return
        for notice in notices:
            row = conn.execute(
                "SELECT team_id, protocol FROM patients WHERE patient_id = %s", (notice.patient_id,)
            ).fetchone()
            if row is None:
                continue
            proto = self._protocols.get(str(row[1]))
            tiers = proto.escalation.tiers if proto else ["coordinator", "physician", "admin"]
            subs = [
                PushSubscription(int(sid), str(endpoint), str(p256dh), str(auth))
                for sid, endpoint, p256dh, auth in conn.execute(
                    "SELECT subscription_id, endpoint, p256dh, auth FROM push_subscriptions s"
                    " WHERE team_id = %s AND role = ANY(%s) AND (s.clinician_id IS NULL"
                    # a clinician hears a team's alerts while an active member of it
                    "  OR EXISTS (SELECT 1 FROM clinician_teams ct JOIN clinicians c"
                    "   USING (clinician_id) WHERE ct.clinician_id = s.clinician_id"
                    "   AND ct.team_id = s.team_id AND c.active))",
                    (row[0], list(tiers[: notice.tier + 1])),
                ).fetchall()
            ]
            with self._lock:
                for sub in subs:
                    self._alert_of[sub.subscription_id] = notice.alert_id
            if subs:
                self.pusher.submit(subs, push_message(notice, self._base_url))

    def system(self, conn: psycopg.Connection, notices: Sequence[SystemNotice]) -> None:
        """A system-level alert goes to every browser of the team, whatever the role:
        nobody's patients are monitored while it lasts."""
        if self.pusher is None:
            return
        for notice in notices:
            subs = [
                PushSubscription(int(sid), str(endpoint), str(p256dh), str(auth))
                for sid, endpoint, p256dh, auth in conn.execute(
                    "SELECT subscription_id, endpoint, p256dh, auth FROM push_subscriptions s"
                    " WHERE team_id = %s AND (s.clinician_id IS NULL"
                    "  OR EXISTS (SELECT 1 FROM clinician_teams ct JOIN clinicians c"
                    "   USING (clinician_id) WHERE ct.clinician_id = s.clinician_id"
                    "   AND ct.team_id = s.team_id AND c.active))",
                    (notice.team_id,),
                ).fetchall()
            ]
            with self._lock:
                for sub in subs:  # push_deliveries are per patient alert: not recorded there
                    self._alert_of.pop(sub.subscription_id, None)
            if subs:
                self.pusher.submit(subs, system_message(notice, self._base_url))

    def record(self, outcome: DeliveryOutcome) -> None:
        """Called on the push thread with each final outcome."""
        with self._lock:
            alert_id = self._alert_of.get(outcome.subscription_id)
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                if outcome.gone:
                    conn.execute(
                        "DELETE FROM push_subscriptions WHERE subscription_id = %s",
                        (outcome.subscription_id,),
                    )
                elif outcome.delivered:
                    conn.execute(
                        "UPDATE push_subscriptions SET last_success_at = now()"
                        " WHERE subscription_id = %s",
                        (outcome.subscription_id,),
                    )
                if alert_id is not None:
                    conn.execute(
                        "INSERT INTO push_deliveries (alert_id, subscription_id, delivered,"
                        " attempts, error) VALUES (%s, %s, %s, %s, %s)",
                        (
                            alert_id,
                            outcome.subscription_id,
                            outcome.delivered,
                            outcome.attempts,
                            outcome.error,
                        ),
                    )
        except psycopg.Error as exc:
            log.warning("could not record a push outcome (%s)", type(exc).__name__)
