"""Reading one patient's record: identity-free details, devices, alert timeline with
evidence, clinicians' notes, trend series and threshold overrides. Callers have checked
access and written the audit row."""

from __future__ import annotations

from datetime import datetime

import psycopg

from api.common import patient_asked
from api.common.labels import KIND_METRICS
from api.common.schemas import (
    AccessOut,
    AlertEventOut,
    AlertOut,
    EnrollmentOut,
    NoteOut,
    OverrideOut,
    PatientOut,
    PhysicianContact,
    ShareLinkOut,
    TrendPoint,
    Trends,
    TrendSeries,
    UsualValues,
)
from store.flavour import Flavour
from store.trends import trend
from vitals.catalogue import BY_ID, BY_NAME, MetricKind

# how actors appear: clinicians by name, the engine as "system"
_ACTOR = (
    "coalesce((SELECT c.display_name FROM clinicians c"
    " WHERE 'clinician:' || c.clinician_id = {col}), {col})"
)

# what the trend charts show, in this order, when the patient has such readings
CHART_METRICS = (
    "spo2_pct",
    "heart_rate_bpm",
    "resp_rate_per_min",
    "bp_systolic_mmhg",
    "bp_diastolic_mmhg",
    "temp_c",
    "weight_kg",
    "pain_score",
    "pain_movement_score",
    "glucose_mmol_l",
    "steps_count",
)


def reported(metric: str) -> bool:
    """Whether ``metric`` is an answer of the patient's questionnaire."""
    return BY_NAME[metric].kind is MetricKind.PATIENT_REPORTED


def enrollments(conn: psycopg.Connection, patient_id: int) -> list[EnrollmentOut]:
    rows = conn.execute(
        "SELECT e.enrollment_id, e.device_id, d.kind, d.gateway_id, lower(e.valid),"
        " upper(e.valid), i.model, i.firmware_revision, i.battery_pct, i.last_seen,"
        " i.clock_skew_s FROM enrollments e JOIN devices d USING (device_id)"
        " LEFT JOIN device_info i USING (device_id)"
        " WHERE e.patient_id = %s ORDER BY lower(e.valid) DESC, e.device_id",
        (patient_id,),
    ).fetchall()
    return [
        EnrollmentOut(
            enrollment_id=r[0],
            device_id=r[1],
            kind=r[2],
            gateway_id=r[3],
            start=r[4],
            end=r[5],
            model=r[6],
            firmware_revision=r[7],
            battery_pct=r[8],
            last_seen=r[9],
            clock_skew_s=r[10],
        )
        for r in rows
    ]


def patient(conn: psycopg.Connection, patient_id: int) -> PatientOut:
    r = conn.execute(
        "SELECT patient_id, pseudonym, team_id, language, time_zone, home_country, procedure,"
        " surgery_date, discharged_at, follow_up_ended_at, protocol, home_physician_name,"
        " home_physician_email, home_physician_phone, discharge_sbp_mmhg, discharge_hr_bpm,"
        " discharge_weight_kg, beta_blocker, sleep_apnoea FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert r is not None  # access was checked
    return PatientOut(
        patient_id=r[0],
        pseudonym=r[1],
        team_id=r[2],
        language=r[3],
        time_zone=r[4],
        home_country=r[5],
        procedure=r[6],
        surgery_date=r[7],
        discharged_at=r[8],
        follow_up_ended_at=r[9],
        protocol=r[10],
        home_physician=PhysicianContact(name=r[11], email=r[12], phone=r[13]),
        usual_values=UsualValues(
            discharge_sbp_mmhg=r[14],
            discharge_hr_bpm=r[15],
            discharge_weight_kg=r[16],
            beta_blocker=r[17],
            sleep_apnoea=r[18],
        ),
        devices=enrollments(conn, patient_id),
    )


def alerts(conn: psycopg.Connection, patient_id: int, limit: int = 200) -> list[AlertOut]:
    rows = conn.execute(
        "SELECT alert_id, patient_id, rule_id, kind, priority, state, opened_at,"
        " condition_onset_at, acknowledged_at, "
        + _ACTOR.format(col="acknowledged_by")
        + ", resolved_at, "
        + _ACTOR.format(col="resolved_by")
        + ", resolution_note, escalation_tier, evidence, condition_cleared_at, late"
        " FROM alerts a WHERE patient_id = %s ORDER BY opened_at DESC LIMIT %s",
        (patient_id, limit),
    ).fetchall()
    ids = [r[0] for r in rows]
    events: dict[int, list[AlertEventOut]] = {}
    for aid, at, transition, actor, note, evidence in conn.execute(
        "SELECT alert_id, at, transition, "
        + _ACTOR.format(col="actor")
        + ", note, evidence FROM alert_events WHERE alert_id = ANY(%s) ORDER BY at, event_id",
        (ids,),
    ):
        events.setdefault(aid, []).append(
            AlertEventOut(at=at, transition=transition, actor=actor, note=note, evidence=evidence)
        )
    asked = patient_asked.of_alerts(
        conn,
        patient_id,
        [
            {
                "alert_id": r[0],
                "state": r[5],
                "evidence": r[14] or {},
                "condition_cleared_at": r[15],
            }
            for r in rows
        ],
    )
    return [
        AlertOut(
            alert_id=r[0],
            patient_id=r[1],
            rule_id=r[2],
            kind=r[3],
            priority=r[4],
            state=r[5],
            opened_at=r[6],
            condition_onset_at=r[7],
            condition_cleared_at=r[15],
            late=r[16],
            acknowledged_at=r[8],
            acknowledged_by=r[9],
            resolved_at=r[10],
            resolved_by=r[11],
            resolution_note=r[12],
            escalation_tier=r[13],
            evidence=r[14],
            events=events.get(r[0], []),
            patient_asked=asked.get(r[0]),
        )
        for r in rows
    ]


def notes(conn: psycopg.Connection, patient_id: int) -> list[NoteOut]:
    rows = conn.execute(
        "SELECT n.note_id, n.at, c.display_name, n.body FROM clinician_notes n"
        " JOIN clinicians c USING (clinician_id) WHERE n.patient_id = %s ORDER BY n.at DESC",
        (patient_id,),
    ).fetchall()
    return [NoteOut(note_id=r[0], at=r[1], author=r[2], body=r[3]) for r in rows]


def add_note(conn: psycopg.Connection, patient_id: int, clinician_id: int, body: str) -> NoteOut:
    row = conn.execute(
        "INSERT INTO clinician_notes (patient_id, clinician_id, body) VALUES (%s, %s, %s)"
        " RETURNING note_id, at, (SELECT display_name FROM clinicians WHERE clinician_id = %s)",
        (patient_id, clinician_id, body.strip(), clinician_id),
    ).fetchone()
    assert row is not None
    return NoteOut(note_id=row[0], at=row[1], author=row[2], body=body.strip())


def trends(
    conn: psycopg.Connection,
    flavour: Flavour,
    patient_id: int,
    metric_names: list[str],
    start: datetime,
    end: datetime,
    max_points: int,
) -> Trends:
    ids = [BY_NAME[n].metric_id for n in metric_names]
    plan, buckets = trend(conn, flavour, patient_id, ids, start, end, max_points)
    series: dict[int, list[TrendPoint]] = {i: [] for i in ids}
    for b in buckets:
        series[b.metric_id].append(
            TrendPoint(t=b.bucket, n=b.n, avg=b.value_avg, min=b.value_min, max=b.value_max)
        )
    return Trends(
        patient_id=patient_id,
        start=start,
        end=end,
        bucket_s=plan.bucket_s,
        source=plan.source,
        series=[
            TrendSeries(
                metric=BY_ID[i].name, label=BY_ID[i].label_en, unit=BY_ID[i].ucum, points=pts
            )
            for i, pts in series.items()
        ],
    )


def follow_up_start(conn: psycopg.Connection, patient_id: int) -> datetime | None:
    row = conn.execute(
        "SELECT least(p.discharged_at, (SELECT min(lower(valid)) FROM enrollments e"
        " WHERE e.patient_id = p.patient_id)) FROM patients p WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    return row[0] if row else None


def overrides(conn: psycopg.Connection, patient_id: int) -> list[OverrideOut]:
    rows = conn.execute(
        "SELECT pp.rule_id, pp.rule_title, pp.metric, pp.param, pp.default_value, o.value, "
        + _ACTOR.format(col="o.set_by")
        + ", o.set_at, o.reason FROM patients p"
        " JOIN protocol_params pp ON pp.protocol = p.protocol"
        " LEFT JOIN threshold_overrides o ON o.patient_id = p.patient_id"
        " AND o.rule_id = pp.rule_id AND o.param = pp.param"
        " WHERE p.patient_id = %s ORDER BY pp.rule_id, pp.param",
        (patient_id,),
    ).fetchall()
    return [
        OverrideOut(
            rule_id=r[0],
            rule_title=r[1],
            metric=r[2],
            param=r[3],
            default_value=r[4],
            value=r[5],
            set_by=r[6],
            set_at=r[7],
            reason=r[8],
        )
        for r in rows
    ]


def overridable(conn: psycopg.Connection, patient_id: int, rule_id: str, param: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM patients p JOIN protocol_params pp ON pp.protocol = p.protocol"
        " WHERE p.patient_id = %s AND pp.rule_id = %s AND pp.param = %s",
        (patient_id, rule_id, param),
    ).fetchone()
    return row is not None


def access_log(conn: psycopg.Connection, patient_id: int, limit: int = 200) -> list[AccessOut]:
    rows = conn.execute(
        "SELECT a.at, coalesce(c.display_name, CASE WHEN a.actor LIKE 'share_link:%%'"
        " THEN 'link ' || substr(a.actor, 12) || coalesce(' (' || l.recipient || ')', '') END,"
        " a.actor), a.action, a.detail,"
        " CASE WHEN c.clinician_id IS NOT NULL THEN c.role"
        " WHEN a.actor LIKE 'share_link:%%' THEN 'share_link'"
        " WHEN a.actor LIKE 'patient_app:%%' THEN 'patient' END"
        " FROM audit_log a"
        " LEFT JOIN clinicians c ON a.actor = 'clinician:' || c.clinician_id"
        " LEFT JOIN share_links l ON a.actor = 'share_link:' || l.link_id"
        " WHERE a.patient_id = %s ORDER BY a.at DESC, a.audit_id DESC LIMIT %s",
        (patient_id, limit),
    ).fetchall()
    return [AccessOut(at=r[0], who=r[1], action=r[2], detail=r[3], role=r[4]) for r in rows]


def share_links(conn: psycopg.Connection, patient_id: int) -> list[ShareLinkOut]:
    rows = conn.execute(
        "SELECT l.link_id, l.language, l.units, l.recipient, c.display_name, l.created_at,"
        " l.expires_at, CASE WHEN l.revoked_at IS NOT NULL THEN 'revoked'"
        " WHEN l.locked_at IS NOT NULL THEN 'locked' WHEN l.expires_at <= now() THEN 'expired'"
        " ELSE 'active' END, l.code_hash IS NOT NULL, l.last_used_at, l.uses"
        " FROM share_links l JOIN clinicians c ON c.clinician_id = l.created_by"
        " WHERE l.patient_id = %s ORDER BY l.created_at DESC",
        (patient_id,),
    ).fetchall()
    keys = (
        "link_id",
        "language",
        "units",
        "recipient",
        "created_by",
        "created_at",
        "expires_at",
        "state",
        "has_code",
        "last_used_at",
        "uses",
    )
    return [ShareLinkOut(**dict(zip(keys, r, strict=True))) for r in rows]


def kit_metrics(conn: psycopg.Connection, patient_id: int) -> set[str]:
    """What the patient's current devices measure (the page shows each one's last value,
    even when none has arrived)."""
    kinds = conn.execute(
        "SELECT DISTINCT d.kind FROM enrollments e JOIN devices d USING (device_id)"
        " WHERE e.patient_id = %s AND (upper_inf(e.valid) OR upper(e.valid) > now())",
        (patient_id,),
    ).fetchall()
    return {m for (kind,) in kinds for m in KIND_METRICS.get(kind, ())}


def latest_values(
    conn: psycopg.Connection, patient_id: int, metric_names: list[str]
) -> list[tuple[str, datetime | None, float | None]]:
    """The last reading of each metric (one index probe each), None when there is none."""
    ids = [BY_NAME[n].metric_id for n in metric_names if n in BY_NAME and n != "battery_pct"]
    found = {
        int(r[0]): (r[1], r[2])
        for r in conn.execute(
            "SELECT m, v.time, v.value FROM unnest(%s::smallint[]) AS m"
            " CROSS JOIN LATERAL (SELECT time, value FROM vitals WHERE patient_id = %s"
            " AND metric_id = m ORDER BY time DESC LIMIT 1) v",
            (ids, patient_id),
        )
    }
    order = sorted(ids)
    return [(BY_ID[i].name, *found.get(i, (None, None))) for i in order]


def rule_titles(conn: psycopg.Connection, protocol: str) -> dict[str, tuple[str, str | None]]:
    """The titles (and metrics) the alerts engine published for this protocol's rules."""
    rows = conn.execute(
        "SELECT DISTINCT ON (rule_id) rule_id, rule_title, metric FROM protocol_params"
        " WHERE protocol = %s ORDER BY rule_id",
        (protocol,),
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def reference_bands(
    conn: psycopg.Connection, patient_id: int, metric_names: list[str]
) -> dict[str, list[float]]:
    """The alert thresholds that apply to this patient (override, else protocol), per
    metric, drawn on the charts as reference lines."""
    out: dict[str, list[float]] = {}
    for o in overrides(conn, patient_id):
        if o.param != "threshold" or o.metric not in metric_names:
            continue
        value = o.value if o.value is not None else o.default_value
        out.setdefault(o.metric, [])
        if value not in out[o.metric]:
            out[o.metric].append(value)
    return out
