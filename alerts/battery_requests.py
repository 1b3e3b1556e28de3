"""Low-battery requests (issue 17): a low battery is first the patient's job. When a
device's latest battery level is at or below its protocol's battery rule ``below_pct``,
the engine asks the patient's phone to charge that device (or change its batteries); the
team's ``battery_low`` alert waits for ``critical_pct``, so the team hears of a battery
only when the patient did not act (or it fails faster than anyone could).

Run after each engine round for the round's patients, with the re-measurement requests
(``phone_requests`` holds what they share). One request per device per low-battery
episode: a patient message (no clinician, no alert; one open per patient and device)
claimed in a committed row before its Web Push, so a restart never asks twice; one
claimed but not settled is pushed again with the same Topic. None while the patient has
no enrolled phone. Done once the device reports a level above the limit again; the
patient app then no longer shows it. The payload names the request kind (the device's
type: ``vitals.battery``) and nothing else: no level, no device id."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.phone_requests import ROUND_PATIENTS, PhoneRequests, Request
from alerts.protocol import BatteryRule, Protocol
from alerts.webpush import PushNotifier
from vitals.battery import CHARGE_KIND, CHARGE_OTHER
from vitals.catalogue import BY_NAME

log = logging.getLogger(__name__)

BATTERY = BY_NAME["battery_pct"].metric_id


@dataclass(frozen=True)
class Limit:
    """A protocol's battery rule, as the request reads it."""

    below_pct: float
    freshness_s: int


def limits_of(protocols: Mapping[str, Protocol]) -> dict[str, Limit]:
    """protocol -> its battery rule's limit (a protocol without one asks nothing)."""
    return {
        name: Limit(rule.below_pct, rule.freshness_s)
        for name, proto in protocols.items()
        for rule in proto.rules
        if isinstance(rule, BatteryRule)
    }


_LATEST = (
    "(SELECT v.value FROM vitals v WHERE v.patient_id = m.patient_id"
    " AND v.device_id = m.device_id AND v.metric_id = %(battery)s AND v.value IS NOT NULL"
    " ORDER BY v.time DESC LIMIT 1)"
)

# the episode is over: the device reported a level above the limit again
_CLOSE = f"""
UPDATE patient_messages m SET done_at = %(now)s, done_reason = 'charged'
WHERE m.device_id IS NOT NULL AND m.done_at IS NULL AND {_LATEST} > m.limit_pct
"""

# each device's latest fresh level, of followed patients with an enrolled phone, whose
# device has no open request
_CANDIDATES = """
SELECT l.patient_id, p.protocol, l.device_id, d.kind, l.value, l.time
FROM (SELECT DISTINCT ON (v.patient_id, v.device_id) v.patient_id, v.device_id, v.value, v.time
      FROM vitals v
      WHERE v.metric_id = %(battery)s AND v.value IS NOT NULL AND v.time >= %(since)s
        {patients}
      ORDER BY v.patient_id, v.device_id, v.time DESC) l
JOIN patients p USING (patient_id)
LEFT JOIN devices d ON d.device_id = l.device_id
WHERE (p.follow_up_ended_at IS NULL OR p.follow_up_ended_at > %(now)s)
  AND EXISTS (SELECT 1 FROM patient_credentials c WHERE c.patient_id = l.patient_id
              AND c.revoked_at IS NULL AND c.expires_at > %(now)s)
  AND NOT EXISTS (SELECT 1 FROM patient_messages m WHERE m.device_id = l.device_id
                  AND m.patient_id = l.patient_id AND m.done_at IS NULL)
"""

# the claim: committed before the push
_CLAIM = """
INSERT INTO patient_messages (patient_id, kind, sent_at, device_id, limit_pct)
VALUES (%(patient)s, %(kind)s, %(now)s, %(device)s, %(limit)s)
ON CONFLICT (patient_id, device_id) WHERE device_id IS NOT NULL AND done_at IS NULL
DO NOTHING
RETURNING message_id
"""

_UNPUSHED = """
SELECT message_id, patient_id, kind FROM patient_messages
WHERE device_id IS NOT NULL AND push_outcome IS NULL AND done_at IS NULL
"""


class BatteryRequests(PhoneRequests):
    """Called by the engine after each round (``__call__``)."""

    push_kind = "battery"
    unpushed_sql = _UNPUSHED
    urgency = "normal"  # hours remain before the team's critical level

    def __init__(
        self,
        conninfo: str,
        protocols: Mapping[str, Protocol],
        pusher: PushNotifier | None,
        app_url: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        super().__init__(conninfo, pusher, app_url, clock_ms)
        self._limits = limits_of(protocols)

    def __call__(
        self, conn: psycopg.Connection, patient_ids: Sequence[int] | None, now_ms: int
    ) -> list[Request]:
        """Close the requests of devices charged since, ask for the devices newly low,
        push again those a stopped process left unsettled; returns the requests made."""
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        if not self._limits:
            return []
        freshness_s = max(limit.freshness_s for limit in self._limits.values())
        params: dict[str, object] = {
            "now": now,
            "ids": list(patient_ids or []),
            "battery": BATTERY,
            "since": now - timedelta(seconds=freshness_s),
        }
        only = patient_ids is not None
        conn.execute(_CLOSE + (ROUND_PATIENTS.format(col="m.patient_id") if only else ""), params)
        candidates = _CANDIDATES.format(
            patients=ROUND_PATIENTS.format(col="v.patient_id") if only else ""
        )
        made: list[Request] = []
        for patient_id, protocol, device_id, device_kind, level, at in conn.execute(
            candidates, params
        ).fetchall():
            limit = self._limits.get(str(protocol))
            if limit is None or level > limit.below_pct:
                continue
            if at < now - timedelta(seconds=limit.freshness_s):
                continue
            kind = CHARGE_KIND.get(str(device_kind), CHARGE_OTHER)
            row = conn.execute(
                _CLAIM,
                {
                    "patient": patient_id,
                    "kind": kind,
                    "now": now,
                    "device": device_id,
                    "limit": limit.below_pct,
                },
            ).fetchone()
            if row is not None:
                made.append(Request(int(row[0]), int(patient_id), kind))
        self.push_claimed(conn, made, now)
        if made:
            log.info("%d low-battery request(s) sent to patients' phones", len(made))
        return made
