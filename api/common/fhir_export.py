"""FHIR R4 export of a patient's follow-up: a ``collection`` Bundle holding the
pseudonymised Patient, the enrolled Devices and vital-signs Observations (category
vital-signs, LOINC codes, UCUM units; blood pressure as the 85354-9 panel with systolic
and diastolic components; a value the device could not give carries dataAbsentReason).

Spot measurements (blood pressure, temperature, weight) are exported one Observation per
reading. A metric recorded continuously (more than ``RAW_LIMIT`` readings in the period:
a night of oximetry at 1 Hz) is exported as hourly summaries: an Observation over the
hour (effectivePeriod) whose value is the mean, with the count, minimum and maximum in
its note, so the file stays readable by the physician's software. Each hourly summary
carries the vital-signs profile and its minimum and maximum as components (a short
desaturation is not averaged away). Beside the readings: the procedure, the discharge
medications and instructions as the team wrote them, and the clinical alerts with what
the team did (DetectedIssue with its mitigations)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.common.labels import RULE_TITLES  # the protocols' English titles
from store.flavour import Flavour
from store.trends import trend
from vitals.catalogue import BY_NAME
from vitals.flags import ReadingFlag

# above this many readings in the period a metric is exported as hourly summaries
RAW_LIMIT = 500
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
SEVERITY = {"high": "high", "medium": "moderate", "low": "low"}
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORY_NAMES = {
    "vital-signs": "Vital Signs",
    "laboratory": "Laboratory",
    "survey": "Survey",
    "activity": "Activity",
    "procedure": "Procedure",
}
# metrics outside the vital signs, in the complete export; a device's own state (battery)
# and the rhythm analysis computed from a patch are filed under "procedure"
CATEGORIES = {
    "glucose_mmol_l": "laboratory",
    "pain_score": "survey",
    "steps_count": "activity",
    "battery_pct": "procedure",
    "rr_rmssd_ms": "procedure",
    "rr_irregularity": "procedure",
}
VITAL_SIGNS = ("heart_rate_bpm", "spo2_pct", "temp_c", "resp_rate_per_min", "weight_kg")
# the vital-signs profile asks for 2708-6 beside the pulse-oximetry code
EXTRA_CODINGS = {
    "spo2_pct": [
        {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}
    ]
}
BP_PANEL = "85354-9"


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _category(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": CATEGORY_NAMES[code]}]}


def _code(metric: str) -> dict[str, Any]:
    m = BY_NAME[metric]
    coding = (
        {"system": LOINC, "code": m.loinc, "display": m.label_en}
        if m.loinc
        else {"system": "urn:postop:metric", "code": m.name, "display": m.label_en}
    )
    return {"coding": [coding, *EXTRA_CODINGS.get(metric, [])], "text": m.label_en}


def _quantity(metric: str, value: float) -> dict[str, Any]:
    m = BY_NAME[metric]
    return {"value": round(value, 2), "unit": m.ucum, "system": UCUM, "code": m.ucum}


def _absent(flags: int) -> dict[str, Any]:
    f = ReadingFlag(flags)
    code = (
        "not-a-number"
        if ReadingFlag.NOT_A_NUMBER in f
        else "positive-infinity"
        if ReadingFlag.ABOVE_RANGE in f
        else "negative-infinity"
        if ReadingFlag.BELOW_RANGE in f
        else "error"
    )
    return {"coding": [{"system": ABSENT, "code": code}]}


def _value(metric: str, value: float | None, flags: int) -> dict[str, Any]:
    if value is None:
        return {"dataAbsentReason": _absent(flags)}
    return {"valueQuantity": _quantity(metric, value)}


def bundle(
    conn: psycopg.Connection,
    flavour: Flavour,
    patient_id: int,
    start: datetime,
    end: datetime,
    complete: bool = False,
) -> dict[str, Any]:
    """The follow-up between ``start`` and ``end``. ``complete`` (the patient's own export,
    L1111-7): every reading of every metric as its own Observation, never hourly
    summaries, and the technical alerts too (as Flags on the device)."""
    row = conn.execute(
        "SELECT pseudonym, language, home_country FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    pseudonym, language, country = row
    patient_ref = f"Patient/{pseudonym}"
    entries: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pseudonym,
            "identifier": [{"system": "urn:postop:pseudonym", "value": pseudonym}],
            "communication": [
                {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}}
            ],
            **({"address": [{"country": country}]} if country else {}),
        }
    ]
    for device_id, kind in conn.execute(
        "SELECT DISTINCT d.device_id, d.kind FROM enrollments e JOIN devices d USING (device_id)"
        " WHERE e.patient_id = %s AND e.valid && tstzrange(%s, %s) ORDER BY 1",
        (patient_id, start, end),
    ):
        entries.append(
            {
                "resourceType": "Device",
                "id": _safe_id(device_id),
                "identifier": [{"system": "urn:postop:device", "value": device_id}],
                "type": {"text": kind},
                "patient": {"reference": patient_ref},
            }
        )
    counter = iter(range(1, 10**9))

    def observation(body: dict[str, Any], category: str = "vital-signs") -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": f"{pseudonym}-obs-{next(counter)}",
            "status": "final",
            "category": [_category(category)],
            "subject": {"reference": patient_ref},
            **body,
        }

    metrics = (
        [m for m in BY_NAME if m not in ("bp_systolic_mmhg", "bp_diastolic_mmhg")]
        if complete
        else list(VITAL_SIGNS)
    )
    for metric in metrics:
        mid = BY_NAME[metric].metric_id
        count = _count(conn, patient_id, mid, start, end)
        if count == 0:
            continue
        if complete or count <= RAW_LIMIT:
            for at, value, flags, device_id in conn.execute(
                "SELECT time, value, flags, device_id FROM vitals WHERE patient_id = %s"
                " AND metric_id = %s AND time >= %s AND time < %s ORDER BY time",
                (patient_id, mid, start, end),
            ):
                entries.append(
                    observation(
                        {
                            "code": _code(metric),
                            "effectiveDateTime": _iso(at),
                            "device": {"reference": f"Device/{_safe_id(device_id)}"},
                            **_value(metric, value, flags),
                        },
                        CATEGORIES.get(metric, "vital-signs"),
                    )
                )
        else:
            for t, n, avg, lo, hi in _hourly(conn, flavour, patient_id, mid, start, end):
                entries.append(
                    observation(
                        {
                            "code": _code(metric),
                            "effectivePeriod": {
                                "start": _iso(t),
                                "end": _iso(t + timedelta(hours=1)),
                            },
                            **(
                                {"valueQuantity": _quantity(metric, avg)}
                                if avg is not None
                                else {"dataAbsentReason": _absent(ReadingFlag.NOT_A_NUMBER)}
                            ),
                            "meta": {"profile": [VITAL_SIGNS_PROFILE]},
                            **(
                                {"component": _spread(metric, lo, hi)}
                                if lo is not None and hi is not None
                                else {}
                            ),
                            "note": [
                                {
                                    "text": f"hourly mean of {n} readings"
                                    + (f", min {lo:g}, max {hi:g}" if avg is not None else "")
                                }
                            ],
                        }
                    )
                )
    entries += [observation(o) for o in _blood_pressure(conn, patient_id, start, end)]
    entries += _care(conn, patient_id, patient_ref, pseudonym)
    entries += _alerts(conn, patient_id, patient_ref, pseudonym, start, end)
    if complete:
        entries += _technical(conn, patient_id, patient_ref, pseudonym, start, end)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _iso(end),
        "entry": [
            {"fullUrl": f"urn:postop:{e['resourceType']}/{e['id']}", "resource": e} for e in entries
        ],
    }


def _safe_id(device_id: str) -> str:
    # FHIR ids: [A-Za-z0-9\-\.]{1,64}
    return "".join(c if c.isalnum() or c in "-." else "-" for c in device_id)[:64]


def _count(
    conn: psycopg.Connection, patient_id: int, mid: int, start: datetime, end: datetime
) -> int:
    row = conn.execute(
        "SELECT count(*) FROM vitals WHERE patient_id = %s AND metric_id = %s"
        " AND time >= %s AND time < %s",
        (patient_id, mid, start, end),
    ).fetchone()
    return int(row[0]) if row else 0


def _hourly(
    conn: psycopg.Connection,
    flavour: Flavour,
    patient_id: int,
    mid: int,
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, int, float | None, float | None, float | None]]:
    span_h = max(1, math.ceil((end - start).total_seconds() / 3600))  # 1-hour buckets
    _, buckets = trend(conn, flavour, patient_id, [mid], start, end, span_h)
    return [(b.bucket, b.n, b.value_avg, b.value_min, b.value_max) for b in buckets]


def _blood_pressure(
    conn: psycopg.Connection, patient_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One panel per cuff measurement: systolic and diastolic taken at the same instant."""
    sys_id = BY_NAME["bp_systolic_mmhg"].metric_id
    dia_id = BY_NAME["bp_diastolic_mmhg"].metric_id
    rows = conn.execute(
        "SELECT time, device_id, max(value) FILTER (WHERE metric_id = %s),"
        " max(flags) FILTER (WHERE metric_id = %s), max(value) FILTER (WHERE metric_id = %s),"
        " max(flags) FILTER (WHERE metric_id = %s)"
        " FROM vitals WHERE patient_id = %s AND metric_id IN (%s, %s)"
        " AND time >= %s AND time < %s GROUP BY 1, 2 ORDER BY 1",
        (sys_id, sys_id, dia_id, dia_id, patient_id, sys_id, dia_id, start, end),
    ).fetchall()
    out = []
    for at, device_id, sys_v, sys_f, dia_v, dia_f in rows:
        components = []
        for metric, value, flags in (
            ("bp_systolic_mmhg", sys_v, sys_f),
            ("bp_diastolic_mmhg", dia_v, dia_f),
        ):
            if value is None and flags is None:
                continue  # this half was not sent at all
            components.append({"code": _code(metric), **_value(metric, value, flags or 0)})
        out.append(
            {
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": BP_PANEL,
                            "display": "Blood pressure panel with all children optional",
                        }
                    ],
                    "text": "Blood pressure",
                },
                "effectiveDateTime": _iso(at),
                "device": {"reference": f"Device/{_safe_id(device_id)}"},
                "component": components,
            }
        )
    return out


def _spread(metric: str, lo: float, hi: float) -> list[dict[str, Any]]:
    """The hour's minimum and maximum, as components coded like the value itself."""
    return [
        {
            "code": {**_code(metric), "text": f"{BY_NAME[metric].label_en}, hourly {word}"},
            "valueQuantity": _quantity(metric, value),
        }
        for word, value in (("minimum", lo), ("maximum", hi))
    ]


def _care(
    conn: psycopg.Connection, patient_id: int, patient_ref: str, pseudonym: str
) -> list[dict[str, Any]]:
    """What the team wrote at discharge: the procedure, medications and instructions."""
    row = conn.execute(
        "SELECT procedure, surgery_date, medications, discharge_instructions, discharged_at"
        " FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    procedure, surgery_date, medications, instructions, discharged_at = row
    out: list[dict[str, Any]] = []
    if procedure:
        out.append(
            {
                "resourceType": "Procedure",
                "id": f"{pseudonym}-procedure",
                "status": "completed",
                "code": {"text": procedure},
                "subject": {"reference": patient_ref},
                **({"performedDateTime": surgery_date.isoformat()} if surgery_date else {}),
            }
        )
    if medications:
        out.append(
            {
                "resourceType": "MedicationStatement",
                "id": f"{pseudonym}-medications",
                "status": "active",
                "medicationCodeableConcept": {"text": medications},
                "subject": {"reference": patient_ref},
                **({"effectiveDateTime": _iso(discharged_at)} if discharged_at else {}),
                "note": [{"text": "discharge medications, as the care team wrote them"}],
            }
        )
    if instructions:
        out.append(
            {
                "resourceType": "CarePlan",
                "id": f"{pseudonym}-discharge",
                "status": "active",
                "intent": "plan",
                "title": "Discharge instructions",
                "description": instructions,
                "subject": {"reference": patient_ref},
            }
        )
    return out


def _alerts(
    conn: psycopg.Connection,
    patient_id: int,
    patient_ref: str,
    pseudonym: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """The clinical alerts of the period and what the team did about each (device and
    connection problems are the team's business, as on the shared page)."""
    published: dict[str, str] = dict(
        conn.execute(
            "SELECT DISTINCT pp.rule_id, pp.rule_title FROM protocol_params pp"
            " JOIN patients p ON p.protocol = pp.protocol WHERE p.patient_id = %s",
            (patient_id,),
        ).fetchall()
    )
    rows = conn.execute(
        "SELECT a.alert_id, a.rule_id, a.priority, a.opened_at, a.state,"
        " a.acknowledged_at, a.resolved_at, a.resolution_note, a.resolved_by = 'system'"
        " FROM alerts a WHERE a.patient_id = %s AND a.kind = 'clinical'"
        " AND a.opened_at >= %s AND a.opened_at < %s ORDER BY a.opened_at",
        (patient_id, start, end),
    ).fetchall()
    out = []
    for alert_id, rule_id, priority, opened, state, acked, resolved, note, auto in rows:
        mitigation = []
        if acked is not None:
            mitigation.append({"action": {"text": "seen by the care team"}, "date": _iso(acked)})
        if resolved is not None:
            what = "ended by itself: values back to normal" if auto else "closed by the care team"
            mitigation.append(
                {
                    "action": {"text": what + (f": {note}" if note and not auto else "")},
                    "date": _iso(resolved),
                }
            )
        out.append(
            {
                "resourceType": "DetectedIssue",
                "id": f"{pseudonym}-alert-{alert_id}",
                "status": "final" if state == "resolved" else "preliminary",
                "code": {
                    "text": published.get(rule_id) or RULE_TITLES.get(rule_id, "Clinical alert")
                },
                "severity": SEVERITY[priority],
                "patient": {"reference": patient_ref},
                "identifiedDateTime": _iso(opened),
                **({"mitigation": mitigation} if mitigation else {}),
            }
        )
    return out


def _technical(
    conn: psycopg.Connection,
    patient_id: int,
    patient_ref: str,
    pseudonym: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """Device and connection problems of the period, as Flags (a warning about the kit,
    active while the team had it open)."""
    rows = conn.execute(
        "SELECT alert_id, rule_id, opened_at, resolved_at FROM alerts WHERE patient_id = %s"
        " AND kind = 'technical' AND opened_at >= %s AND opened_at < %s ORDER BY opened_at",
        (patient_id, start, end),
    ).fetchall()
    return [
        {
            "resourceType": "Flag",
            "id": f"{pseudonym}-technical-{alert_id}",
            "status": "inactive" if resolved is not None else "active",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                            "code": "admin",
                            "display": "Administrative",
                        }
                    ]
                }
            ],
            "code": {"text": RULE_TITLES.get(rule_id, "Device or connection problem")},
            "subject": {"reference": patient_ref},
            "period": {"start": _iso(opened), **({"end": _iso(resolved)} if resolved else {})},
        }
        for alert_id, rule_id, opened, resolved in rows
    ]
