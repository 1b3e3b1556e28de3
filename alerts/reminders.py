"""The patient's reminders: a Web Push to their phone at the local times their protocol
sets (the morning blood pressure and temperature, the evening questionnaire), sent by the
alerts engine's process, which holds the VAPID key, the push sender and a periodic tick.

Each reminder of each local day is claimed once in ``patient_reminders`` (its primary
key) in a committed transaction before it is pushed, so a restart never claims it again;
one claimed but not settled when the process stopped is pushed again after the restart
(at least once to the push service), with the same RFC 8030 ``Topic`` and notification
tag, so the phone shows it once. A reminder already answered (every metric measured
since ``lead_s`` before it) is recorded and not sent; one that can no longer be sent on
time (``late_s``) is recorded as expired.

The payload names the reminder and nothing else: no value, no name, no patient id; the
patient app's service worker shows it in the patient's language."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from alerts.phone_pushes import PHONE_ACTIVE as _PHONE_ACTIVE
from alerts.phone_pushes import InFlight, record_outcome
from alerts.protocol import Protocol, Reminder
from alerts.webpush import DeliveryOutcome, PushNotifier, PushSubscription
from vitals.catalogue import BY_NAME
from vitals.device_kinds import KIND_METRICS

log = logging.getLogger(__name__)

Key = tuple[int, str, date]  # patient, reminder, local day


@dataclass(frozen=True)
class Claimed:
    patient_id: int
    reminder_id: str
    local_date: date
    due_at: datetime


def topic_of(key: Key) -> str:
    """RFC 8030 Topic (at most 32 URL-safe characters): one per reminder and day."""
    digest = hashlib.sha256(f"{key[0]}/{key[1]}/{key[2].isoformat()}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def payload_of(key: Key, app_url: str) -> dict[str, str]:
    return {
        "kind": "reminder",
        "reminder": key[1],
        "url": app_url,
        "tag": f"reminder-{key[1]}-{key[2].isoformat()}",
    }


def due_today(reminder: Reminder, zone: str, now: datetime) -> tuple[date, datetime] | None:
    """The patient's local day and the reminder's time in it (UTC), when it is due now
    (at or after its time, less than ``late_s`` after)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("Europe/Paris")
    local_now = now.astimezone(tz)
    hours, minutes = (int(p) for p in reminder.at.split(":"))
    local_due = local_now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    due = local_due.astimezone(UTC)
    if due <= now < due + timedelta(seconds=reminder.late_s):
        return local_now.date(), due
    return None


class ReminderSender:
    def __init__(
        self,
        conninfo: str,
        protocols: Mapping[str, Protocol],
        pusher: PushNotifier | None,
        app_url: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._conninfo = conninfo
        self._protocols = protocols
        self.pusher = pusher
        self._app_url = app_url
        self._clock_ms = clock_ms
        self._in_flight: InFlight[Key] = InFlight()

    def once(self, conn: psycopg.Connection) -> list[Claimed]:
        """Claim and push the reminders due now; push again those a stopped process
        left unsettled; returns what it claimed."""
        now = datetime.fromtimestamp(self._clock_ms() / 1000, UTC)
        claimed: list[Claimed] = []
        for patient_id, protocol, zone in conn.execute(
            "SELECT patient_id, protocol, time_zone FROM patients p"
            " WHERE (follow_up_ended_at IS NULL OR follow_up_ended_at > %s)"
            "   AND EXISTS (SELECT 1 FROM patient_push_subscriptions s"
            f"               WHERE s.patient_id = p.patient_id AND {_PHONE_ACTIVE})",
            (now, now),
        ).fetchall():
            proto = self._protocols.get(str(protocol))
            for reminder in proto.reminders if proto else []:
                due = due_today(reminder, str(zone), now)
                if due is None:
                    continue
                asks = reminder.questionnaire or bool(
                    set(reminder.metrics) & self._kit_metrics(conn, int(patient_id), now)
                )
                if not asks:
                    continue  # nothing of the patient's kit measures what it asks for
                done = self._answered(conn, int(patient_id), reminder, due[1])
                row = conn.execute(
                    "INSERT INTO patient_reminders (patient_id, reminder_id, local_date, due_at,"
                    " claimed_at, outcome, settled_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s THEN %s END)"
                    " ON CONFLICT DO NOTHING RETURNING patient_id",
                    (
                        patient_id,
                        reminder.id,
                        due[0],
                        due[1],
                        now,
                        "already_done" if done else None,
                        done,
                        now,
                    ),
                ).fetchone()
                if row is not None and not done:
                    claimed.append(Claimed(int(patient_id), reminder.id, due[0], due[1]))
        self._settle_expired(conn, now)
        for item in claimed + self._left_unsettled(conn, now, claimed):
            self._push(conn, (item.patient_id, item.reminder_id, item.local_date), now)
        return claimed

    @staticmethod
    def _kit_metrics(conn: psycopg.Connection, patient_id: int, at: datetime) -> set[str]:
        """What the devices enrolled for the patient at ``at`` measure."""
        kinds = conn.execute(
            "SELECT DISTINCT d.kind FROM enrollments e JOIN devices d USING (device_id)"
            " WHERE e.patient_id = %s AND e.valid @> %s",
            (patient_id, at),
        ).fetchall()
        return {m for (kind,) in kinds for m in KIND_METRICS.get(str(kind), ())}

    def _answered(
        self, conn: psycopg.Connection, patient_id: int, reminder: Reminder, due: datetime
    ) -> bool:
        """Every metric of the reminder that the patient's kit measures, measured since
        ``lead_s`` before it. (The questionnaire's answers are not looked at: that
        reminder is always sent.)"""
        wanted = set(reminder.metrics) & self._kit_metrics(conn, patient_id, due)
        if not wanted or reminder.questionnaire:
            return False
        row = conn.execute(
            "SELECT count(DISTINCT metric_id) FROM vitals WHERE patient_id = %s"
            " AND metric_id = ANY(%s) AND value IS NOT NULL AND time >= %s",
            (
                patient_id,
                [BY_NAME[m].metric_id for m in wanted],
                due - timedelta(seconds=reminder.lead_s),
            ),
        ).fetchone()
        return row is not None and int(row[0]) >= len(wanted)

    def _late_s(self, conn: psycopg.Connection, patient_id: int, reminder_id: str) -> int:
        row = conn.execute(
            "SELECT protocol FROM patients WHERE patient_id = %s", (patient_id,)
        ).fetchone()
        proto = self._protocols.get(str(row[0])) if row else None
        found = [r for r in proto.reminders if r.id == reminder_id] if proto else []
        return found[0].late_s if found else 0

    def _left_unsettled(
        self, conn: psycopg.Connection, now: datetime, claimed: list[Claimed]
    ) -> list[Claimed]:
        """Reminders claimed but never settled by a process that stopped, still on time."""
        mine = {(c.patient_id, c.reminder_id, c.local_date) for c in claimed}
        mine |= self._in_flight.busy()
        out = []
        for patient_id, reminder_id, local_date, due_at in conn.execute(
            "SELECT patient_id, reminder_id, local_date, due_at FROM patient_reminders"
            " WHERE outcome IS NULL AND due_at <= %s",
            (now,),
        ).fetchall():
            key = (int(patient_id), str(reminder_id), local_date)
            late = timedelta(seconds=self._late_s(conn, key[0], key[1]))
            if key not in mine and now < due_at + late:
                out.append(Claimed(key[0], key[1], key[2], due_at))
        return out

    def _settle_expired(self, conn: psycopg.Connection, now: datetime) -> None:
        busy = self._in_flight.busy()
        for patient_id, reminder_id, local_date, due_at in conn.execute(
            "SELECT patient_id, reminder_id, local_date, due_at FROM patient_reminders"
            " WHERE outcome IS NULL",
        ).fetchall():
            key = (int(patient_id), str(reminder_id), local_date)
            late = timedelta(seconds=self._late_s(conn, key[0], key[1]))
            if key not in busy and now >= due_at + late:
                self._settle(conn, key, "expired", now)

    def _push(self, conn: psycopg.Connection, key: Key, now: datetime) -> None:
        subs = [
            PushSubscription(int(sid), str(endpoint), str(p256dh), str(auth))
            for sid, endpoint, p256dh, auth in conn.execute(
                "SELECT subscription_id, endpoint, p256dh, auth FROM patient_push_subscriptions s"
                f" WHERE patient_id = %s AND {_PHONE_ACTIVE} ORDER BY subscription_id",
                (key[0], now),
            ).fetchall()
        ]
        if not subs or self.pusher is None:
            self._settle(conn, key, "no_subscription", now)
            return
        self._in_flight.start(key, subs)
        self.pusher.submit(
            subs, payload_of(key, self._app_url), topic=topic_of(key), urgency="normal"
        )

    @staticmethod
    def _settle(conn: psycopg.Connection, key: Key, outcome: str, now: datetime) -> None:
        conn.execute(
            "UPDATE patient_reminders SET outcome = %s, settled_at = %s"
            " WHERE patient_id = %s AND reminder_id = %s AND local_date = %s"
            "   AND outcome IS NULL",
            (outcome, now, *key),
        )

    def record(self, outcome: DeliveryOutcome) -> None:
        """Called on the push thread with each final outcome: a reminder is delivered
        when any of the patient's phones got it, failed when none did."""
        now = datetime.fromtimestamp(self._clock_ms() / 1000, UTC)
        record_outcome(self._conninfo, self._in_flight, outcome, now, self._settle, "a reminder")

    def run(self, stop: threading.Event, every_s: float) -> None:
        """Look every ``every_s`` until ``stop``; a database outage is waited out."""
        while not stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    while not stop.is_set():
                        claimed = self.once(conn)
                        if claimed:
                            log.info("%d reminder(s) sent to patients' phones", len(claimed))
                        stop.wait(every_s)
            except psycopg.OperationalError as exc:
                log.warning("reminders: database unavailable (%s); retrying", type(exc).__name__)
                stop.wait(2.0)
