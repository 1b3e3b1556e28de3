"""Re-measurement requests (issue 17): an alert opened by a single abnormal spot reading
(a ``confirmed`` or ``relative`` rule, evidence ``confirmation_requested``) asks the
patient's phone to measure that metric now, so that the confirmation the rule waits for
comes within minutes rather than at the next planned check.

Run after each engine round for the round's patients. One request per alert, and one
open at a time per patient and kind (a 38.6 °C spot reading opens ``fever`` and
``low_grade_fever``: the patient is asked once, for the earliest alert, and the
re-measurement answers both): a patient message (no clinician; the alert's id, unique)
claimed in a committed row before its Web Push, so a restart never asks twice; one
claimed but not settled when the process stopped is pushed again with the same RFC 8030
``Topic`` and notification tag. No
request while the patient has no enrolled phone (a credential not revoked nor expired),
nor when a reading of the metric taken ``remeasure_after_s`` or more after the spot
reading has already arrived. A request is done once such a reading arrives or the alert
resolves or its condition clears; the patient app then no longer shows it.

The payload names the request kind (``vitals.remeasure``) and nothing else: no value, no
name, no patient id; the patient app's service worker words it in the patient's
language."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.phone_requests import ROUND_PATIENTS, PhoneRequests, Request
from alerts.protocol import ConfirmedRule, Protocol, RelativeRule
from alerts.webpush import PushNotifier
from vitals.catalogue import BY_NAME
from vitals.remeasure import REQUEST_KIND

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asked:
    """What a rule asks the patient to measure, and when a reading counts as the
    re-measurement."""

    metric: str
    remeasure_after_s: int


def asks_of(protocols: Mapping[str, Protocol]) -> dict[tuple[str, str], Asked]:
    """(protocol, rule) -> what its spot-check alerts ask for."""
    return {
        (name, rule.id): Asked(rule.metric, rule.remeasure_after_s)
        for name, proto in protocols.items()
        for rule in proto.rules
        if isinstance(rule, ConfirmedRule | RelativeRule)
    }


# open alerts awaiting a confirmation, of patients with an enrolled phone, not yet asked
_CANDIDATES = """
SELECT a.alert_id, a.patient_id, p.protocol, a.rule_id,
       COALESCE(a.condition_onset_at, a.opened_at)
FROM alerts a JOIN patients p USING (patient_id)
WHERE a.state <> 'resolved' AND NOT a.late AND a.condition_cleared_at IS NULL
  AND a.evidence @> '{"confirmation_requested": true}'
  AND (p.follow_up_ended_at IS NULL OR p.follow_up_ended_at > %(now)s)
  AND EXISTS (SELECT 1 FROM patient_credentials c WHERE c.patient_id = a.patient_id
              AND c.revoked_at IS NULL AND c.expires_at > %(now)s)
  AND NOT EXISTS (SELECT 1 FROM patient_messages m WHERE m.alert_id = a.alert_id)
"""

_MEASURED = (
    "EXISTS (SELECT 1 FROM vitals v WHERE v.patient_id = {m}.patient_id"
    " AND v.metric_id = {m}.metric_id AND v.time >= {m}.measure_after"
    " AND v.value IS NOT NULL)"
)

# the claim: committed before the push; nothing when the re-measurement is already in
_CLAIM = f"""
INSERT INTO patient_messages (patient_id, kind, sent_at, alert_id, metric_id, measure_after)
SELECT * FROM (VALUES (%(patient)s::bigint, %(kind)s, %(now)s::timestamptz, %(alert)s::bigint,
                       %(metric)s::smallint, %(after)s::timestamptz))
       AS r(patient_id, kind, sent_at, alert_id, metric_id, measure_after)
WHERE NOT {_MEASURED.format(m="r")}
  AND NOT EXISTS (SELECT 1 FROM patient_messages o WHERE o.patient_id = r.patient_id
                  AND o.kind = r.kind AND o.alert_id IS NOT NULL AND o.done_at IS NULL)
ON CONFLICT (alert_id) WHERE alert_id IS NOT NULL DO NOTHING
RETURNING message_id
"""

_CLOSE = f"""
UPDATE patient_messages m SET done_at = %(now)s,
       done_reason = CASE WHEN {_MEASURED.format(m="m")} THEN 'measured' ELSE 'alert_closed' END
FROM alerts a
WHERE a.alert_id = m.alert_id AND m.done_at IS NULL
  AND ({_MEASURED.format(m="m")} OR a.state = 'resolved' OR a.condition_cleared_at IS NOT NULL)
"""

_UNPUSHED = """
SELECT message_id, patient_id, kind FROM patient_messages
WHERE alert_id IS NOT NULL AND push_outcome IS NULL AND done_at IS NULL
"""


class RemeasureRequests(PhoneRequests):
    """Called by the engine after each round (``__call__``)."""

    push_kind = "remeasure"
    unpushed_sql = _UNPUSHED

    def __init__(
        self,
        conninfo: str,
        protocols: Mapping[str, Protocol],
        pusher: PushNotifier | None,
        app_url: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        super().__init__(conninfo, pusher, app_url, clock_ms)
        self._asks = asks_of(protocols)

    def __call__(
        self, conn: psycopg.Connection, patient_ids: Sequence[int] | None, now_ms: int
    ) -> list[Request]:
        """Close the requests answered or moot, ask for the new ones, push again those a
        stopped process left unsettled; returns the requests made now."""
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        params: dict[str, object] = {"now": now, "ids": list(patient_ids or [])}
        close, candidates = _CLOSE, _CANDIDATES
        if patient_ids is not None:
            close += ROUND_PATIENTS.format(col="m.patient_id")
            candidates += ROUND_PATIENTS.format(col="a.patient_id")
        conn.execute(close, params)
        candidates += " ORDER BY a.alert_id"
        made: list[Request] = []
        for alert_id, patient_id, protocol, rule_id, onset in conn.execute(
            candidates, params
        ).fetchall():
            asked = self._asks.get((str(protocol), str(rule_id)))
            kind = REQUEST_KIND.get(asked.metric) if asked else None
            if asked is None or kind is None:
                continue
            row = conn.execute(
                _CLAIM,
                {
                    "patient": patient_id,
                    "kind": kind,
                    "now": now,
                    "alert": alert_id,
                    "metric": BY_NAME[asked.metric].metric_id,
                    "after": onset + timedelta(seconds=asked.remeasure_after_s),
                },
                prepare=False,
            ).fetchone()
            if row is not None:
                made.append(Request(int(row[0]), int(patient_id), kind))
        self.push_claimed(conn, made, now)
        if made:
            log.info("%d re-measurement request(s) sent to patients' phones", len(made))
        return made
