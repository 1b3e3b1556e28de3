"""The end-of-monitoring report: made when a follow-up ends, in French (the record), in the
home physician's language (their latest share link's, else the patient's) and in
English. It gives the monitoring period, a chart of each measured metric, every alert
with what the team did, the team's notes, the technical incidents (devices, home hub)
and adherence (readings received against readings expected, per metric). Each edition is
a PDF for print and a FHIR DocumentReference carrying it; the home physician downloads
them from the shared page and the team can make them again ("send again")."""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import psycopg
from babel.support import NullTranslations

from api.common import documents, patient_data
from api.common.charts import ChartPoint, chart_locale, trend_chart
from api.common.documents import Edition
from api.common.i18n import locale_for
from api.common.pdf import page_css, render_pdf
from api.common.reader import Reader
from api.common.share_links import SHARE_LANGUAGES, default_units
from api.common.share_text import METRICS, OTHER_RULE, PRIORITIES, RULES
from store.flavour import Flavour
from store.trends import trend
from vitals.catalogue import BY_NAME
from vitals.device_kinds import KIND_METRICS

log = logging.getLogger(__name__)
# Readings a day the team asks for, per spot metric: a starting point for the clinicians
# to review. Continuous recordings (an oximeter or a patch) have no count to expect:
# their adherence is the days with readings.
SPOT_PER_DAY = {
    "bp_systolic_mmhg": 2,
    "bp_diastolic_mmhg": 2,
    "heart_rate_bpm": 2,
    "temp_c": 2,
    "weight_kg": 1,
    "glucose_mmol_l": 3,
    "pain_score": 1,
}
CONTINUOUS_KINDS = frozenset({"oximeter", "pulse_oximeter", "hr-patch", "hr_patch"})
NOT_SHOWN = frozenset({"battery_pct", "bp_mean_mmhg", "rr_rmssd_ms", "rr_irregularity"})
LOINC_SUMMARY_OF_EPISODE = "34133-9"
CHART_POINTS = 240


@dataclass(frozen=True, slots=True)
class DocumentTools:
    """What making a document needs from the app: its templates and the shared pages'
    catalogs (built once at start-up)."""

    templates: jinja2.Environment
    catalogs: dict[str, NullTranslations]

    def reader(self, language: str, country: str | None, units: str, zone: str) -> Reader:
        catalog = self.catalogs.get(language, self.catalogs["en"])
        return Reader(language, locale_for(language, country), units, zone, catalog)


@dataclass(frozen=True, slots=True)
class Adherence:
    metric: str
    received: int
    expected: int | None  # None: a continuous recording
    days_with_readings: int
    days_monitored: int


def report_languages(conn: psycopg.Connection, patient_id: int) -> list[str]:
    """French, the home physician's language, English (each once)."""
    row = conn.execute(
        "SELECT p.language, (SELECT l.language FROM share_links l WHERE l.patient_id ="
        " p.patient_id AND l.revoked_at IS NULL ORDER BY l.created_at DESC LIMIT 1)"
        " FROM patients p WHERE p.patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    physician = row[1] or row[0]
    out = ["fr"]
    for lang in (physician, "en"):
        if lang in SHARE_LANGUAGES and lang not in out:
            out.append(lang)
    return out


def _physician_units(conn: psycopg.Connection, patient_id: int, country: str | None) -> str:
    row = conn.execute(
        "SELECT units FROM share_links WHERE patient_id = %s AND revoked_at IS NULL"
        " ORDER BY created_at DESC LIMIT 1",
        (patient_id,),
    ).fetchone()
    return str(row[0]) if row else default_units(country)


def period(conn: psycopg.Connection, patient_id: int) -> tuple[datetime, datetime] | None:
    """From the discharge or first enrollment to the end of the follow-up; None while it
    goes on."""
    row = conn.execute(
        "SELECT follow_up_ended_at FROM patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    end: datetime = row[0]
    start = patient_data.follow_up_start(conn, patient_id) or end - timedelta(days=30)
    return min(start, end), end


def make_reports(
    conn: psycopg.Connection,
    flavour: Flavour,
    tools: DocumentTools,
    patient_id: int,
    actor: str,
) -> list[int]:
    """Make and store every edition (replacing the previous ones); the ids made."""
    began = time.perf_counter()
    span = period(conn, patient_id)
    assert span is not None, "the follow-up has not ended"
    start, end = span
    content = _content(conn, flavour, patient_id, start, end)
    editions = []
    charts: dict[tuple[str, str, str], str] = {}  # the editions share most charts
    for language in report_languages(conn, patient_id):
        units = "metric" if language == "fr" else content["physician_units"]
        reader = tools.reader(language, content["country"], units, content["zone"])
        pdf = render_report(tools, reader, content, charts)
        editions.append(
            Edition(language, pdf, document_reference(content["pseudonym"], language, pdf, span))
        )
    ids = documents.store_reports(conn, patient_id, editions, start, end, actor)
    log.info(
        "end-of-monitoring report of patient %s: %d editions, %d bytes, %.2f s",
        patient_id,
        len(editions),
        sum(len(e.pdf) for e in editions),
        time.perf_counter() - began,
    )
    return ids


def render_report(
    tools: DocumentTools,
    reader: Reader,
    content: dict[str, Any],
    drawn: dict[tuple[str, str, str], str] | None = None,
) -> bytes:
    """One edition's PDF; ``drawn`` keeps the charts already drawn for another edition
    (same metric, units and date locale)."""
    drawn = {} if drawn is None else drawn
    span = (content["start"], content["end"])
    charts = []
    for metric, pts in content["series"]:
        key = (metric, reader.units, chart_locale(reader.locale))
        if key not in drawn:
            drawn[key] = trend_chart(
                _points(reader, metric, pts),
                _bands(reader, metric, content),
                span,
                reader.zone,
                reader.locale,
            )
        charts.append((metric, drawn[key]))
    title = reader.t("End-of-monitoring report")
    html = tools.templates.get_template("documents/report.html").render(
        t=reader.t,
        r=reader,
        lang=reader.language,
        dir=reader.direction,
        css=page_css(reader.language, f"{content['team']} — {title}", reader.t("Page")),
        title=title,
        charts=charts,
        rules=RULES,
        other_rule=OTHER_RULE,
        metrics=METRICS,
        priorities=PRIORITIES,
        **content,
    )
    return render_pdf(html)


def _points(reader: Reader, metric: str, pts: list[Any]) -> list[ChartPoint]:
    return [
        ChartPoint(
            b.bucket,
            reader.value(metric, b.value_avg),
            reader.value(metric, b.value_min),
            reader.value(metric, b.value_max),
        )
        for b in pts
    ]


def _bands(reader: Reader, metric: str, content: dict[str, Any]) -> list[float]:
    return [v for v in (reader.value(metric, x) for x in content["bands"].get(metric, [])) if v]


def document_reference(
    pseudonym: str, language: str, pdf: bytes, span: tuple[datetime, datetime]
) -> dict[str, Any]:
    """FHIR R4 DocumentReference of one edition; its PDF is attached when served."""
    start, end = span
    return {
        "resourceType": "DocumentReference",
        "id": f"{pseudonym}-end-of-monitoring-{language}",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": LOINC_SUMMARY_OF_EPISODE,
                    "display": "Summary of episode note",
                }
            ],
            "text": "End-of-monitoring report",
        },
        "subject": {"reference": f"Patient/{pseudonym}"},
        "date": _iso(end),
        "description": "Remote monitoring after surgery: end-of-monitoring report",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": language,
                    "size": len(pdf),
                    # FHIR's attachment hash is SHA-1, base64
                    "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode(),  # noqa: S324
                    "title": f"end-of-monitoring-{language}.pdf",
                    "creation": _iso(end),
                }
            }
        ],
        "context": {"period": {"start": _iso(start), "end": _iso(end)}},
    }


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _content(
    conn: psycopg.Connection, flavour: Flavour, patient_id: int, start: datetime, end: datetime
) -> dict[str, Any]:
    """What every edition shows (language-free)."""
    row = conn.execute(
        "SELECT p.pseudonym, p.procedure, p.surgery_date, p.discharged_at, p.time_zone,"
        " p.home_country, t.name, t.contact_name, t.contact_phone, t.contact_email"
        " FROM patients p JOIN care_teams t USING (team_id) WHERE p.patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    pseudonym, procedure, surgery_date, discharged_at, zone, country = row[:6]
    alerts = [
        a for a in reversed(patient_data.alerts(conn, patient_id, 10_000)) if a.opened_at <= end
    ]
    adherence = _adherence(conn, patient_id, start, end, zone)
    metrics = [a.metric for a in adherence if a.received > 0]
    series = []
    if metrics:
        span_points = CHART_POINTS
        _, buckets = trend(
            conn,
            flavour,
            patient_id,
            [BY_NAME[m].metric_id for m in metrics],
            start,
            end,
            span_points,
        )
        by_metric: dict[int, list[Any]] = {}
        for b in buckets:
            by_metric.setdefault(b.metric_id, []).append(b)
        series = [(m, by_metric.get(BY_NAME[m].metric_id, [])) for m in metrics]
    return {
        "pseudonym": pseudonym,
        "procedure": procedure,
        "surgery_date": surgery_date,
        "discharged_at": discharged_at,
        "zone": zone,
        "country": country,
        "team": row[6],
        "contact": {"person": row[7], "phone": row[8], "email": row[9]},
        "start": start,
        "end": end,
        "days": max(1, math.ceil((end - start).total_seconds() / 86400)),
        "clinical": [a for a in alerts if a.kind == "clinical"],
        "technical": [a for a in alerts if a.kind == "technical"],
        "notes": [n for n in reversed(patient_data.notes(conn, patient_id))],
        "adherence": adherence,
        "series": series,
        "bands": patient_data.reference_bands(conn, patient_id, metrics),
        "physician_units": _physician_units(conn, patient_id, country),
        "made_at": datetime.now(end.tzinfo),
    }


def _adherence(
    conn: psycopg.Connection, patient_id: int, start: datetime, end: datetime, zone: str
) -> list[Adherence]:
    """Per metric the kit measured: readings received and expected, and the patient's
    local days with readings among the days a device for it was enrolled."""
    tz = ZoneInfo(zone)
    monitored: dict[str, set[date]] = {}
    continuous: set[str] = set()
    for kind, lower, upper in conn.execute(
        "SELECT d.kind, greatest(lower(e.valid), %s), least(coalesce(upper(e.valid), %s), %s)"
        " FROM enrollments e JOIN devices d USING (device_id) WHERE e.patient_id = %s"
        " AND e.valid && tstzrange(%s, %s)",
        (start, end, end, patient_id, start, end),
    ):
        enrolled_days = _local_days(lower, upper, tz)
        for metric in KIND_METRICS.get(kind, ()):
            if metric in NOT_SHOWN:
                continue
            monitored.setdefault(metric, set()).update(enrolled_days)
            if kind in CONTINUOUS_KINDS:
                continuous.add(metric)
    counts = {
        str(name): (int(n), int(days))
        for name, n, days in conn.execute(
            "SELECT m.name, count(*), count(DISTINCT (v.time AT TIME ZONE %s)::date)"
            " FROM vitals v JOIN metrics m USING (metric_id) WHERE v.patient_id = %s"
            " AND v.time >= %s AND v.time <= %s AND v.value IS NOT NULL GROUP BY m.name",
            (zone, patient_id, start, end),
        )
    }
    names = [
        m
        for m in patient_data.CHART_METRICS
        if m not in NOT_SHOWN and (m in monitored or m in counts)
    ]
    out = []
    for m in names:
        received, days_with = counts.get(m, (0, 0))
        days = len(monitored.get(m, set())) or days_with
        expected = None if m in continuous else SPOT_PER_DAY.get(m, 1) * days
        out.append(Adherence(m, received, expected, days_with, days))
    return out


def _local_days(lower: datetime, upper: datetime, tz: ZoneInfo) -> set[date]:
    first = lower.astimezone(tz).date()
    last = (upper - timedelta(microseconds=1)).astimezone(tz).date()
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}
