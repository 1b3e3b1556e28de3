"""Scoring the alerts of a replay against the cohort's ground truth.

- A complication is detected when an alert RELATED to it opens (or a cleared one comes
  back, or its priority rises: the team hears of it again) at or after the onset and
  within the complication's deadline. Related: the rule watches one of the metrics the
  complication changes (``GroundTruth.metrics``; a shock index watches pulse and
  systolic pressure), or, for NEWS2, one of the parameters that scored at that moment
  (the finding's ``scored_params``) is one of them. A NEWS2 of 3 from a COPD patient's
  usual saturation is not the detection of their bleed. Any clinical alert in the same
  window is reported too ("any alert"), to tell a late or unrelated detection from none.
- A technical event is detected by an alert of one of its expected rules, or by the
  patient's open missing-data alert when the expected rule's metric joined it
  (``also_missing``: one missing-data alert per patient).
- Time to alert is measured from the onset, and from the moment the signal became
  abnormal by the protocol's own definition: for a clinical event, the first moment the
  readings that reached the database after the onset met the condition of one of the
  expected rules (beyond a threshold for the rule's duration, a weight rise beyond the
  weight rule's limit, a cuff's pulse over systolic pressure beyond the shock index
  limit); for a technical event, the moment the rule's own condition is met (silence
  longer than allowed, a battery reading under the limit, the gateway offline for the
  allowed time). An alert raised before any of those conditions was met (NEWS2 adding
  up several moderate signs, a trend, a deviation from the patient's baseline) counts
  as zero.
- A missed clinical event is told apart by whether a single reliable reading after
  its onset, taken in waking hours (07:00-22:00 at home: a sleeping saturation is judged
  against the patient's own nights) and arrived before its deadline, was beyond the
  fixed limit of a related spot-check rule (the limits made for a single reading: SpO2
  under 90, pulse over 110, systolic under 90, temperature 38.0 or above, above 37.5
  confirmed) or a cuff's shock index beyond its limit: ``beyond_limit_ms``. A miss
  with such a reading is the engine's; one without had no reading past a fixed limit
  in time (a change from the patient's own usual, which the relative rules judge, is
  not counted: their limits are the engine's choice).
- False clinical alerts are the clinical alerts opened for patients whose body does
  well: uneventful recoveries and the technical scenarios (their physiology is an
  uneventful recovery too). Clinical alerts before the onset of a complication are
  counted apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from firmware_sim.scenarios import GroundTruth
from numpy.typing import NDArray

from alerts.protocol import (
    BatteryRule,
    ConfirmedRule,
    GatewayOfflineRule,
    MissingDataRule,
    News2Rule,
    Protocol,
    RhythmRule,
    RiseRule,
    Rule,
    SepsisScreenRule,
    ShockIndexRule,
    SustainedRule,
)
from alerts.rules import beyond
from alerts.window_sql import UNRELIABLE
from bench.alert_quality.cohort import GATEWAY_WILL_S, Member, Readings
from bench.alert_quality.replay import AlertRecord
from vitals.catalogue import BY_NAME

DAY_MS = 86_400_000


@dataclass(frozen=True)
class EventOutcome:
    patient_id: int
    protocol: str
    condition: str
    category: str
    has_patch: bool
    onset_ms: int
    abnormal_ms: int | None
    alert_ms: int | None
    rule_id: str | None
    deadline_ms: int
    any_alert_ms: int | None = None  # first clinical alert of any rule in the window
    any_rule_id: str | None = None
    groups: dict[str, str] = field(default_factory=dict)  # subgroup per dimension
    beyond_limit_ms: int | None = None  # clinical: first single reading past a fixed limit

    @property
    def detected(self) -> bool:
        return self.alert_ms is not None

    @property
    def minutes_from_onset(self) -> float | None:
        return None if self.alert_ms is None else (self.alert_ms - self.onset_ms) / 60_000

    @property
    def minutes_from_abnormal(self) -> float | None:
        if self.alert_ms is None:
            return None
        start = self.abnormal_ms if self.abnormal_ms is not None else self.onset_ms
        return max(0.0, (self.alert_ms - start) / 60_000)


@dataclass(frozen=True)
class FalseAlert:
    patient_id: int
    protocol: str
    scenario: str
    rule_id: str
    priority: str
    opened_ms: int
    before_onset: bool
    late: bool = False  # opened for an episode over before its readings arrived
    night: bool = False  # opened between 22:00 and 07:00 in the patient's home
    groups: dict[str, str] = field(default_factory=dict)
    scored: tuple[str, ...] = ()  # NEWS2: the parameters that scored at its opening


@dataclass(frozen=True)
class Score:
    events: list[EventOutcome]
    false_alerts: list[FalseAlert]  # clinical alerts for bodies doing well, or pre-onset
    technical_alerts: list[AlertRecord]  # all technical alerts, for their rate
    well_patient_days: dict[str, float]  # protocol -> patient-days of well bodies
    all_patient_days: dict[str, float]
    protocol_of: dict[int, str]  # patient id -> protocol
    # (dimension, subgroup) -> patient-days of well bodies, e.g. ("kit", "spot")
    well_days_by_group: dict[tuple[str, str], float] = field(default_factory=dict)


def _visible(r: Readings) -> NDArray[np.bool_]:
    return np.asarray(np.isfinite(r.value) & ((r.flags & UNRELIABLE) == 0), dtype=np.bool_)


def _first_shock(r: Readings, rule: ShockIndexRule, after_ms: int) -> int | None:
    """Arrival of the first cuff measurement at or after ``after_ms`` whose pulse over
    systolic pressure is beyond the rule's limit."""
    ok = _visible(r) & (r.measured_ms >= after_ms)
    hr = ok & (r.metric_id == BY_NAME["heart_rate_bpm"].metric_id)
    sbp = ok & (r.metric_id == BY_NAME["bp_systolic_mmhg"].metric_id)
    pulse = {
        (int(d), int(t)): float(v)
        for d, t, v in zip(r.device[hr], r.measured_ms[hr], r.value[hr], strict=True)
    }
    hits = [
        int(a)
        for d, t, v, a in zip(
            r.device[sbp], r.measured_ms[sbp], r.value[sbp], r.arrival_ms[sbp], strict=True
        )
        if v > 0 and (int(d), int(t)) in pulse and pulse[(int(d), int(t))] / v > rule.threshold
    ]
    return min(hits) if hits else None


def _first_sustained(r: Readings, rule: SustainedRule, after_ms: int) -> int | None:
    """When the rule's own condition was first met by readings measured at or after
    ``after_ms``: every reading beyond the threshold for ``duration_s`` (a run counts
    one minute per reading's bin, as the rule does), no gap over ``max_gap_s``; the time
    is the arrival of the reading that completed the run."""
    sel = (
        _visible(r) & (r.measured_ms >= after_ms) & (r.metric_id == BY_NAME[rule.metric].metric_id)
    )
    order = np.argsort(r.measured_ms[sel], kind="stable")
    t = r.measured_ms[sel][order].tolist()
    v = r.value[sel][order]
    arrived = r.arrival_ms[sel][order].tolist()
    beyond = (v > rule.threshold if rule.direction == "above" else v < rule.threshold).tolist()
    start: int | None = None
    for k, hit in enumerate(beyond):
        if not hit:
            start = None
            continue
        if start is None or t[k] - t[k - 1] > rule.max_gap_s * 1000:
            start = k
        if t[k] - t[start] + 60_000 >= rule.duration_s * 1000:
            return int(max(arrived[start : k + 1]))
    return None


def _first_rise(r: Readings, rule: RiseRule, after_ms: int) -> int | None:
    """Arrival of the first reading at or after ``after_ms`` above the lowest reading of
    its trailing window (earlier readings too) by more than the rule's limit."""
    metric = _visible(r) & (r.metric_id == BY_NAME[rule.metric].metric_id)
    sel = metric & (r.measured_ms >= after_ms)
    ta, va = r.measured_ms[metric], r.value[metric]
    for m, v, a in zip(r.measured_ms[sel], r.value[sel], r.arrival_ms[sel], strict=True):
        low = va[(ta >= m - rule.window_s * 1000) & (ta <= m)].min()
        if v - low > rule.rise_above:
            return int(a)
    return None


def _first_crossing(
    r: Readings, rules: Sequence[SustainedRule | RiseRule | ShockIndexRule], after_ms: int
) -> int | None:
    """When the first of these rules' own conditions was met after ``after_ms``."""
    times = []
    for rule in rules:
        if isinstance(rule, ShockIndexRule):
            times.append(_first_shock(r, rule, after_ms))
        elif isinstance(rule, SustainedRule):
            times.append(_first_sustained(r, rule, after_ms))
        else:
            times.append(_first_rise(r, rule, after_ms))
    found = [t for t in times if t is not None]
    return min(found) if found else None


def _beyond_limit_ms(
    truth: GroundTruth, proto: Protocol, r: Readings, scale2: bool, tz: str = "UTC"
) -> int | None:
    """Arrival of the first reliable waking reading measured after the onset beyond the
    fixed threshold of a related spot-check rule (a sustained rule's threshold is made
    for a run, not for one reading), or of a cuff measurement whose shock index is
    beyond its limit."""
    times: list[int] = []
    for rule in proto.rules:
        if not related(truth, rule):
            continue
        if isinstance(rule, ShockIndexRule):
            hit = _first_shock(r, rule, truth.onset_ms)
            times += [hit] if hit is not None else []
        elif isinstance(rule, ConfirmedRule):
            limit = rule.scale2_threshold if scale2 and rule.scale2_threshold else rule.threshold
            sel = (
                _visible(r)
                & (r.measured_ms >= truth.onset_ms)
                & (r.metric_id == BY_NAME[rule.metric].metric_id)
            )
            past = beyond(r.value[sel], np.full(int(sel.sum()), limit), rule.direction)
            awake = [
                int(a)
                for a, t in zip(r.arrival_ms[sel][past], r.measured_ms[sel][past], strict=True)
                if not _at_night(int(t), tz)
            ]
            times += [min(awake)] if awake else []
    return min(times) if times else None


def rule_metrics(rule: Rule) -> frozenset[str]:
    """The metrics a rule watches (NEWS2: see ``scored_params``; technical rules on a
    metric's silence watch that metric)."""
    if isinstance(rule, ShockIndexRule):
        return frozenset({"heart_rate_bpm", "bp_systolic_mmhg"})
    if isinstance(rule, SepsisScreenRule):
        return frozenset({"temp_c", "heart_rate_bpm"})
    if isinstance(rule, RhythmRule):
        # the patch's irregularity, or the cuff's pulse readings flagged irregular
        return frozenset({"rr_irregularity", "rr_rmssd_ms", "heart_rate_bpm"})
    names: set[str] = set()
    one = getattr(rule, "metric", None)
    if isinstance(one, str):
        names.add(one)
    many = getattr(rule, "metrics", None)
    if isinstance(many, list | tuple | set | frozenset):
        names |= {str(m) for m in many}
    return frozenset(names)


def related(truth: GroundTruth, rule: Rule | None, scored: Sequence[str] = ()) -> bool:
    """Whether an alert of ``rule`` (NEWS2: with these parameters scoring) is about the
    complication ``truth``."""
    if truth.category != "clinical" or not truth.metrics:
        return rule is not None and rule.id in truth.expected_rules
    if rule is None or rule.category != "clinical":
        return False  # a silent oximeter is not a sign of the patient's heart failure
    watched = frozenset(scored) if isinstance(rule, News2Rule) else rule_metrics(rule)
    return bool(watched & frozenset(truth.metrics))


def _abnormal_ms(truth: GroundTruth, proto: Protocol, r: Readings) -> int | None:
    if truth.category == "clinical":
        limits = [
            x
            for x in proto.rules
            if isinstance(x, SustainedRule | RiseRule | ShockIndexRule)
            and (related(truth, x) if truth.metrics else x.id in truth.expected_rules)
        ]
        return _first_crossing(r, limits, truth.onset_ms)
    rules = [x for x in proto.rules if x.id in truth.expected_rules]
    times: list[int] = []
    for rule in rules:
        if isinstance(rule, MissingDataRule):
            # the first silence longer than allowed, counted from the last reading before
            # the onset; the silence after the final reading is open-ended
            arrivals = np.sort(r.arrival_ms[r.metric_id == BY_NAME[rule.metric].metric_id])
            points = np.concatenate(
                (
                    arrivals[arrivals < truth.onset_ms][-1:],
                    arrivals[arrivals >= truth.onset_ms],
                )
            )
            limit = rule.max_silence_s * 1000
            if len(points) == 0:
                times.append(truth.onset_ms + limit)
                continue
            gaps = np.diff(np.append(points, np.iinfo(np.int64).max // 2))
            first = int(np.argmax(gaps > limit))
            times.append(max(truth.onset_ms, int(points[first]) + limit))
        elif isinstance(rule, BatteryRule):
            sel = (
                (r.metric_id == BY_NAME["battery_pct"].metric_id)
                & (r.measured_ms >= truth.onset_ms)
                & (r.value < rule.below_pct)
            )
            if sel.any():
                times.append(int(r.arrival_ms[sel].min()))
        elif isinstance(rule, GatewayOfflineRule):
            times.append(truth.onset_ms + (GATEWAY_WILL_S + rule.after_s) * 1000)
    return min(times) if times else None


def _detection(
    truth: GroundTruth,
    records: Sequence[AlertRecord],
    rules: Mapping[str, Rule],
    any_alert: bool = False,
) -> tuple[int | None, str | None]:
    """The first related alert (``any_alert``: the first clinical alert of any rule)
    heard in [onset, deadline], and its rule."""
    deadline = truth.onset_ms + truth.detect_within_s * 1000
    best: tuple[int, str] | None = None
    for rec in records:
        if any_alert and rec.category != "clinical":
            continue
        times = (rec.opened_ms, *rec.renewed_ms)
        scored = rec.scored + [()] * (len(times) - len(rec.scored))
        for t, params in zip(times, scored, strict=True):
            if not truth.onset_ms <= t <= deadline or (best is not None and t >= best[0]):
                continue
            if any_alert or related(truth, rules.get(rec.rule_id), params):
                best = (t, rec.rule_id)
        if any_alert:
            continue
        # a missing metric folded into the patient's open missing-data alert (named on it)
        for t, rule_id in rec.joined:
            if not truth.onset_ms <= t <= deadline or (best is not None and t >= best[0]):
                continue
            if related(truth, rules.get(rule_id)):
                best = (t, rule_id)
    return (best[0], best[1]) if best else (None, None)


def _groups(m: Member) -> dict[str, str]:
    groups = {"protocol": m.protocol}
    if m.profile is not None:
        groups |= m.profile.subgroups()
    else:
        groups["kit"] = "patch" if m.has_patch else "no patch"
    return groups


def _at_night(t_ms: int, tz: str) -> bool:
    hour = datetime.fromtimestamp(t_ms / 1000, ZoneInfo(tz)).hour
    return hour >= 22 or hour < 7


def score(
    members: Sequence[Member],
    readings: Mapping[int, Readings],
    records: Sequence[AlertRecord],
    protocols: Mapping[str, Protocol],
) -> Score:
    by_patient: dict[int, list[AlertRecord]] = {}
    for rec in records:
        by_patient.setdefault(rec.patient_id, []).append(rec)
    events: list[EventOutcome] = []
    false_alerts: list[FalseAlert] = []
    well_days: dict[str, float] = {}
    all_days: dict[str, float] = {}
    group_days: dict[tuple[str, str], float] = {}
    for m in members:
        recs = by_patient.get(m.index, [])
        days = (m.end_ms - m.start_ms) / DAY_MS
        groups = _groups(m)
        rules = {r.id: r for r in protocols[m.protocol].rules}
        all_days[m.protocol] = all_days.get(m.protocol, 0.0) + days
        clinical_onsets = [t.onset_ms for t in m.truths if t.category == "clinical"]
        well = not clinical_onsets
        if well:
            well_days[m.protocol] = well_days.get(m.protocol, 0.0) + days
            for key in groups.items():
                group_days[key] = group_days.get(key, 0.0) + days
        for rec in recs:
            if rec.category != "clinical":
                continue
            if well or rec.opened_ms < min(clinical_onsets):
                false_alerts.append(
                    FalseAlert(
                        m.index,
                        m.protocol,
                        m.scenario,
                        rec.rule_id,
                        rec.priority,
                        rec.opened_ms,
                        not well,
                        rec.late,
                        _at_night(rec.opened_ms, m.tz),
                        groups,
                        rec.scored[0] if rec.scored else (),
                    )
                )
        for truth in m.truths:
            alert_ms, rule_id = _detection(truth, recs, rules)
            any_ms, any_rule = (
                _detection(truth, recs, rules, any_alert=True)
                if truth.category == "clinical"
                else (alert_ms, rule_id)
            )
            events.append(
                EventOutcome(
                    m.index,
                    m.protocol,
                    truth.condition,
                    truth.category,
                    m.has_patch,
                    truth.onset_ms,
                    _abnormal_ms(truth, protocols[m.protocol], readings[m.index]),
                    alert_ms,
                    rule_id,
                    truth.onset_ms + truth.detect_within_s * 1000,
                    any_ms,
                    any_rule,
                    groups,
                    _beyond_limit_ms(
                        truth,
                        protocols[m.protocol],
                        readings[m.index],
                        m.profile is not None and m.profile.copd_hypoxaemic,
                        m.tz,
                    )
                    if truth.category == "clinical"
                    else None,
                )
            )
    technical = [r for r in records if r.category == "technical"]
    protocol_of = {m.index: m.protocol for m in members}
    return Score(events, false_alerts, technical, well_days, all_days, protocol_of, group_days)
