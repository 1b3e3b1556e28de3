"""The dashboard: every followed patient of the clinician's teams, the one needing
attention first. Order: the most urgent open alert (priority, then unacknowledged before
acknowledged), then the NEWS2 band, then how stale the data is (never received first),
then the pseudonym."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from api.common import patient_asked
from api.common.schemas import LatestValue, OpenAlertBrief, PatientSummary, PendingAccessRequest
from store.access_requests import legal_today, open_access_requests
from vitals.catalogue import BY_ID, BY_NAME

_PRIORITY = {"high": 3, "medium": 2, "low": 1}
BATTERY_ID = BY_NAME["battery_pct"].metric_id
SHOWN_METRICS = [
    m.metric_id for m in BY_ID.values() if m.name != "battery_pct" and m.name != "steps_count"
]

_PATIENTS = """
SELECT p.patient_id, p.pseudonym, p.time_zone, p.protocol, p.follow_up_ended_at,
       s.score, s.band, s.complete
FROM patients p LEFT JOIN patient_news2 s USING (patient_id)
WHERE p.team_id = ANY(%(teams)s)
  AND (p.follow_up_ended_at IS NULL OR p.follow_up_ended_at > now() - interval '2 days'
       -- a request of access often comes after the follow-up: it stays until answered
       OR EXISTS (SELECT 1 FROM access_requests r WHERE r.patient_id = p.patient_id
                  AND r.fulfilled_at IS NULL))
"""

_ALERTS = """
SELECT patient_id, alert_id, rule_id, priority, state, opened_at, condition_cleared_at,
       coalesce((evidence ->> 'confirmation_requested')::boolean, false)
FROM alerts WHERE state <> 'resolved' AND patient_id = ANY(%(patients)s)
"""

# one index probe per patient and metric (vitals_patient_metric_time_idx)
_LATEST = """
SELECT p, m, v.time, v.value
FROM unnest(%(patients)s::bigint[]) AS p
CROSS JOIN unnest(%(metrics)s::smallint[]) AS m
CROSS JOIN LATERAL (
    SELECT time, value FROM vitals
    WHERE patient_id = p AND metric_id = m AND time > now() - interval '30 days'
    ORDER BY time DESC LIMIT 1
) v
"""

# the lowest latest battery among each patient's enrolled devices
_BATTERY = """
SELECT e.patient_id, min(b.value)
FROM enrollments e
CROSS JOIN LATERAL (
    SELECT value FROM vitals
    WHERE patient_id = e.patient_id AND device_id = e.device_id AND metric_id = %(battery)s
      AND time > now() - interval '2 days'
    ORDER BY time DESC LIMIT 1
) b
WHERE e.patient_id = ANY(%(patients)s) AND e.valid @> now()
GROUP BY 1
"""

# every gateway of the patient's current devices online? (NULL when none reported yet)
_GATEWAYS = """
SELECT e.patient_id, bool_and(g.online)
FROM enrollments e JOIN devices d USING (device_id)
JOIN gateway_status g ON g.gateway_id = d.gateway_id
WHERE e.patient_id = ANY(%(patients)s) AND e.valid @> now()
GROUP BY 1
"""


def attention_key(summary: PatientSummary) -> tuple[Any, ...]:
    urgent = max(
        (_PRIORITY[a.priority] * 2 + (a.state == "active") for a in summary.alerts), default=0
    )
    stale = summary.seconds_since_last_reading
    return (
        -urgent,
        -(summary.news2_band if summary.news2_band is not None else -1),
        -(stale if stale is not None else float("inf")),
        summary.pseudonym,
    )


def dashboard(conn: psycopg.Connection, team_ids: list[int]) -> list[PatientSummary]:
    now = datetime.now(UTC)
    patients = conn.execute(_PATIENTS, {"teams": team_ids}).fetchall()
    ids = [int(r[0]) for r in patients]
    if not ids:
        return []
    params = {"patients": ids, "metrics": SHOWN_METRICS, "battery": BATTERY_ID}
    alerts: dict[int, list[OpenAlertBrief]] = {}
    for pid, aid, rule, prio, state, opened, cleared, requested in conn.execute(_ALERTS, params):
        alerts.setdefault(pid, []).append(
            OpenAlertBrief(
                alert_id=aid,
                rule_id=rule,
                priority=prio,
                state=state,
                opened_at=opened,
                condition_cleared_at=cleared,
                confirmation_requested=requested,
            )
        )
    for pid, briefs in alerts.items():
        awaiting = [b for b in briefs if b.confirmation_requested]
        if awaiting:  # read under the dashboard's audit row, as the patient page does
            asked = patient_asked.of_alerts(
                conn,
                pid,
                [
                    {
                        "alert_id": b.alert_id,
                        "state": b.state,
                        "evidence": {"confirmation_requested": True},
                        "condition_cleared_at": b.condition_cleared_at,
                    }
                    for b in awaiting
                ],
            )
            alerts[pid] = [
                b.model_copy(update={"patient_asked": asked.get(b.alert_id)}) for b in briefs
            ]
    latest: dict[int, list[LatestValue]] = {}
    for pid, mid, at, value in conn.execute(_LATEST, params):
        m = BY_ID[int(mid)]
        latest.setdefault(pid, []).append(
            LatestValue(metric=m.name, unit=m.ucum, value=value, measured_at=at)
        )
    battery: dict[int, float] = dict(conn.execute(_BATTERY, params).fetchall())
    online: dict[int, bool] = dict(conn.execute(_GATEWAYS, params).fetchall())
    requests = open_access_requests(conn, ids)
    today = legal_today(now)
    out = []
    for pid, pseudonym, tz, protocol, ended, score, band, complete in patients:
        values = sorted(latest.get(pid, []), key=lambda v: BY_NAME[v.metric].metric_id)
        last = max((v.measured_at for v in values), default=None)
        out.append(
            PatientSummary(
                patient_id=pid,
                pseudonym=pseudonym,
                time_zone=tz,
                protocol=protocol,
                attention_rank=0,
                alerts=sorted(
                    alerts.get(pid, []), key=lambda a: (-_PRIORITY[a.priority], a.opened_at)
                ),
                news2_score=score,
                news2_band=band,
                news2_complete=complete,
                last_reading_at=last,
                seconds_since_last_reading=(now - last).total_seconds() if last else None,
                latest=values,
                battery_min_pct=battery.get(pid),
                gateways_online=online.get(pid),
                follow_up_ended=ended is not None and ended <= now,
                access_requests=[
                    PendingAccessRequest(
                        request_id=r.request_id,
                        kind=r.kind,  # type: ignore[arg-type]
                        received_on=r.received_on,
                        due_on=r.due_on,
                        overdue=r.overdue(today),
                    )
                    for r in requests.get(pid, [])
                ],
            )
        )
    out.sort(key=attention_key)
    return [s.model_copy(update={"attention_rank": i}) for i, s in enumerate(out)]


def open_system_alerts(conn: psycopg.Connection, team_ids: list[int]) -> list[dict[str, Any]]:
    """The teams' open system-level technical alerts (no data from any gateway...): the
    dashboard shows them above every patient, since they silence every patient's rules."""
    rows = conn.execute(
        "SELECT system_alert_id, kind, priority, opened_at, evidence FROM system_alerts"
        " WHERE team_id = ANY(%s) AND resolved_at IS NULL ORDER BY opened_at",
        (team_ids,),
    ).fetchall()
    return [
        {"id": r[0], "kind": r[1], "priority": r[2], "opened_at": r[3], "evidence": r[4]}
        for r in rows
    ]
