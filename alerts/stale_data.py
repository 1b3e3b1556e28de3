"""A technical alert for the whole system: no reading from ANY home gateway has arrived
for ``stale_after_s`` while gateways are enrolled. Then every rule is blind (a dead broker
sends no last will, so no "gateway offline" alert fires either); the care teams whose
homes are enrolled must hear it. It is one alert per team (``system_alerts``), not one
per patient: shown on the team's dashboard and pushed to all of the team's browsers.
Evaluated on the engine's tick, from the database alone."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)

KIND = "no_data_from_any_gateway"
PRIORITY = "high"  # blind monitoring: every patient's alerts are silenced by it

_STATE = """
WITH live AS (
    SELECT p.team_id, d.gateway_id, lower(e.valid) AS enrolled_from
    FROM enrollments e JOIN devices d USING (device_id) JOIN patients p USING (patient_id)
    WHERE e.valid @> %(now)s
      AND (p.follow_up_ended_at IS NULL OR p.follow_up_ended_at > %(now)s)
)
SELECT coalesce(array_agg(DISTINCT team_id), '{}'), count(DISTINCT gateway_id),
       (SELECT max(last_batch_at) FROM gateway_progress
        WHERE gateway_id IN (SELECT gateway_id FROM live)),
       min(enrolled_from)
FROM live
"""


@dataclass(frozen=True, slots=True)
class SystemNotice:
    system_alert_id: int
    team_id: int
    kind: str
    priority: str
    silent_s: float


def check_stale_data(
    conn: psycopg.Connection, now_ms: int, stale_after_s: float, watching_since_ms: int
) -> list[SystemNotice]:
    """Open the alert for each affected team (returned, to be pushed) or resolve it once
    readings arrive again. Silence counts from the latest of: the last batch ingest
    committed from an enrolled gateway, the first current enrolment, and when this engine
    started watching (it cannot vouch for a time it was not running)."""
    now_s = now_ms / 1000
    with conn.transaction():
        row = conn.execute(_STATE, {"now": datetime.fromtimestamp(now_s, UTC)}).fetchone()
        assert row is not None
        teams, gateways, last_batch, first_enrolled = row
        since_s = max(
            last_batch.timestamp() if last_batch is not None else 0.0,
            first_enrolled.timestamp() if first_enrolled is not None else 0.0,
            watching_since_ms / 1000,
        )
        silent_s = now_s - since_s
        firing = gateways > 0 and silent_s > stale_after_s
        affected = [int(t) for t in teams] if firing else []
        resolved = conn.execute(
            "UPDATE system_alerts SET resolved_at = to_timestamp(%s)"
            " WHERE kind = %s AND resolved_at IS NULL AND NOT team_id = ANY(%s)"
            " RETURNING team_id",
            (now_s, KIND, affected),
        ).fetchall()
        if resolved:
            log.info(
                "readings arrive again: stale-data alert resolved for %d team(s)", len(resolved)
            )
        evidence = {
            "silent_s": round(silent_s),
            "gateways": int(gateways),
            "last_batch_ms": int(last_batch.timestamp() * 1000) if last_batch else None,
        }
        opened = conn.execute(
            "INSERT INTO system_alerts (team_id, kind, priority, opened_at, evidence)"
            " SELECT t, %s, %s, to_timestamp(%s), %s FROM unnest(%s::bigint[]) AS t"
            " ON CONFLICT (team_id, kind) WHERE resolved_at IS NULL DO NOTHING"
            " RETURNING system_alert_id, team_id",
            (KIND, PRIORITY, now_s, Jsonb(evidence), affected),
        ).fetchall()
        # open dashboards show the banner when it changes, after commit (ids only)
        for team_id in sorted({int(r[0]) for r in resolved} | {int(r[1]) for r in opened}):
            conn.execute(
                "SELECT pg_notify('system_alerts_changed', %s)",
                (json.dumps({"team_id": team_id}),),
            )
    if opened:
        log.error(
            "no reading from any of %d enrolled gateway(s) for %.0f s: technical alert opened"
            " for %d care team(s)",
            gateways,
            silent_s,
            len(opened),
        )
    return [SystemNotice(int(a), int(t), KIND, PRIORITY, silent_s) for a, t in opened]
