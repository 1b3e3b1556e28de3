"""Full-set requests (issue 17): the engine asks the patient's phone for all their
measurements now when one waking reading is off and the others are not fresh
(``alerts.full_set`` finds them; the protocol's ``full_set`` says when).

Run after each engine round for the round's patients, with the other phone requests
(``phone_requests`` holds what they share). A patient message (no clinician, no alert,
no device; one open per patient) claimed in a committed row before its Web Push, so a
restart never asks twice; none while the patient has no enrolled phone, the follow-up
has ended, or one was sent in the protocol's last ``every_s`` (a patient asked every
hour stops answering). Done once a reading of the first metric asked for arrives
(``measured``), or lapsed after ``expires_s`` (``expired``); the patient app then no
longer shows it. The payload names the request kind and nothing else: no value, no
name."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.context import followed_patients
from alerts.full_set import full_set_asks
from alerts.phone_requests import ROUND_PATIENTS, PhoneRequests, Request
from alerts.protocol import FullSet, Protocol
from alerts.source import SqlSource
from alerts.webpush import PushNotifier
from vitals.catalogue import BY_NAME
from vitals.remeasure import FULL_SET_KIND

log = logging.getLogger(__name__)

_MEASURED = (
    "EXISTS (SELECT 1 FROM vitals v WHERE v.patient_id = m.patient_id"
    " AND v.metric_id = m.metric_id AND v.time >= m.measure_after AND v.value IS NOT NULL)"
)

# answered, or lapsed after its protocol's expires_s (the protocol the patient has now)
_CLOSE = f"""
UPDATE patient_messages m SET done_at = %(now)s,
       done_reason = CASE WHEN {_MEASURED} THEN 'measured' ELSE 'expired' END
FROM patients p
LEFT JOIN unnest(%(protocols)s::text[], %(expires)s::int[]) AS e(protocol, expires_s)
       ON e.protocol = p.protocol
WHERE p.patient_id = m.patient_id AND m.kind = %(kind)s AND m.done_at IS NULL
  AND ({_MEASURED}
       OR m.sent_at <= %(now)s - make_interval(secs => COALESCE(e.expires_s, 0)))
"""

# the claim: a phone enrolled, the follow-up on, none sent within every_s; committed
# before the push
_CLAIM = """
INSERT INTO patient_messages (patient_id, kind, sent_at, metric_id, measure_after)
SELECT %(patient)s, %(kind)s, %(now)s, %(metric)s, %(now)s
FROM patients p
WHERE p.patient_id = %(patient)s
  AND (p.follow_up_ended_at IS NULL OR p.follow_up_ended_at > %(now)s)
  AND EXISTS (SELECT 1 FROM patient_credentials c WHERE c.patient_id = p.patient_id
              AND c.revoked_at IS NULL AND c.expires_at > %(now)s)
  AND NOT EXISTS (SELECT 1 FROM patient_messages o WHERE o.patient_id = p.patient_id
                  AND o.kind = %(kind)s AND o.sent_at > %(since)s)
ON CONFLICT (patient_id) WHERE kind = 'measure_vitals' AND done_at IS NULL DO NOTHING
RETURNING message_id
"""

_UNPUSHED = f"""
SELECT message_id, patient_id, kind FROM patient_messages
WHERE kind = '{FULL_SET_KIND}' AND push_outcome IS NULL AND done_at IS NULL
"""


class FullSetRequests(PhoneRequests):
    """Called by the engine after each round (``__call__``)."""

    push_kind = "full_set"
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
        self._protocols = {n: p for n, p in protocols.items() if p.full_set is not None}

    def __call__(
        self, conn: psycopg.Connection, patient_ids: Sequence[int] | None, now_ms: int
    ) -> list[Request]:
        """Close the requests answered or lapsed, ask the phones of the patients a
        reading is off for, push again those a stopped process left unsettled; returns
        the requests made now."""
        if not self._protocols:
            return []
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        names = sorted(self._protocols)
        params: dict[str, object] = {
            "now": now,
            "ids": list(patient_ids or []),
            "kind": FULL_SET_KIND,
            "protocols": names,
            "expires": [self._spec(n).expires_s for n in names],
        }
        only = patient_ids is not None
        conn.execute(_CLOSE + (ROUND_PATIENTS.format(col="m.patient_id") if only else ""), params)
        ctx = followed_patients(conn, patient_ids)
        made: list[Request] = []
        if len(ctx.patient_ids):
            for ask in full_set_asks(SqlSource(conn), ctx, self._protocols, now_ms):
                every = timedelta(seconds=self._spec(ask.protocol).every_s)
                row = conn.execute(
                    _CLAIM,
                    {
                        "patient": ask.patient_id,
                        "kind": FULL_SET_KIND,
                        "now": now,
                        "metric": BY_NAME[ask.missing[0]].metric_id,
                        "since": now - every,
                    },
                ).fetchone()
                if row is not None:
                    made.append(Request(int(row[0]), ask.patient_id, FULL_SET_KIND))
        self.push_claimed(conn, made, now)
        if made:
            log.info("%d full-set request(s) sent to patients' phones", len(made))
        return made

    def _spec(self, protocol: str) -> FullSet:
        spec = self._protocols[protocol].full_set
        assert spec is not None
        return spec
