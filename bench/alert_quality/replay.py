"""Replaying a cohort through the alerts engine's own code, minute by minute of simulated
time: ``alerts.evaluate`` finds, ``alerts.lifecycle.plan`` decides, and this module
applies the decisions in memory as ``alerts.alert_store`` would in the database.

A home back online after an outage delivers its readings at once; as ingest and the
engine do, the episodes that began and ended meanwhile are looked for then
(``alerts.late.late_episodes``) and become late alerts unless one covered them.

The care team is simulated too, because the lifecycle depends on it: a high-priority
alert latches until someone acknowledges it, and an acknowledged alert resolves once its
condition has cleared. Here every alert is acknowledged after a priority's response delay
(``ACK_AFTER_S``); nobody changes thresholds or calls the patient in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from alerts.context import PatientContext
from alerts.evaluate import evaluate
from alerts.full_set import full_set_asks
from alerts.late import late_episodes
from alerts.lifecycle import (
    AutoResolve,
    ConditionCleared,
    ConditionReturned,
    Escalate,
    EvidenceChanged,
    Open,
    OpenAlert,
    Policy,
    RaisePriority,
    missing_named,
    plan,
)
from alerts.protocol import Protocol
from bench.alert_quality.battery import Charger
from bench.alert_quality.cohort import Member
from bench.alert_quality.remeasure import Responder
from bench.alert_quality.source import ArraySource

ACK_AFTER_S = {"high": 10 * 60, "medium": 30 * 60, "low": 4 * 3600}


@dataclass
class AlertRecord:
    """One alert over its life: opened, and each time its condition came back or its
    priority went up (a clinician hears of it again), until resolved."""

    patient_id: int
    rule_id: str
    category: str
    priority: str
    opened_ms: int
    onset_ms: int | None
    renewed_ms: list[int] = field(default_factory=list)
    resolved_ms: int | None = None
    late: bool = False  # for an episode over before its readings arrived
    # NEWS2: the parameters that scored, at the opening and at each renewal (same order
    # as (opened_ms, *renewed_ms)); empty for other rules
    scored: list[tuple[str, ...]] = field(default_factory=list)
    # missing data: (time, rule) each time another missing rule's metric joined this
    # alert (named in ``also_missing``; the team sees it on the open alert)
    joined: list[tuple[int, str]] = field(default_factory=list)


def _scored(evidence: Mapping[str, object]) -> tuple[str, ...]:
    found = evidence.get("scored_params")
    return tuple(str(found).split(",")) if found else ()


def _also(evidence: Mapping[str, object], key: str = "also_missing") -> str | None:
    """The ``also_missing`` (or ``still_missing``) evidence as the database returns it."""
    found = evidence.get(key)
    return None if found is None else str(found)


def _joins(
    before: OpenAlert | None,
    rule_id: str,
    evidence: Mapping[str, object],
    policy: Policy,
    now: int,
) -> list[tuple[int, str]]:
    """The missing metrics newly named by a missing-data alert's evidence (its own rule's
    metric included when it is missing again), as their rules."""
    rule_of = {m: r for r, m in policy.missing_metrics.items()}
    named = missing_named(rule_id, _also(evidence), _also(evidence, "still_missing"), policy)
    if before is not None:
        named -= missing_named(rule_id, before.also_missing, before.still_missing, policy)
    return [(now, rule_of[m]) for m in sorted(named) if m in rule_of]


def _known(values: list[float | None]) -> NDArray[np.float64]:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _context(members: Sequence[Member]) -> PatientContext:
    """What the hospital entered for each patient: protocol, discharge time, the NEWS2
    SpO2 scale 2 for COPD patients prescribed a target of 88-92 %, the ward's last
    systolic pressure, pulse and weight, a beta-blocker on the prescription, a sleep
    apnoea only when it was diagnosed (most are not), and where the patient lives."""
    n = len(members)
    profiles = [m.profile for m in members]
    return PatientContext(
        patient_ids=np.asarray([m.index for m in members], dtype=np.int64),
        team_ids=np.zeros(n, dtype=np.int64),
        protocols=tuple(m.protocol for m in members),
        discharged_ms=np.asarray([m.start_ms for m in members], dtype=np.int64),
        spo2_scale2=np.asarray(
            [m.profile is not None and m.profile.copd_hypoxaemic for m in members],
            dtype=np.bool_,
        ),
        on_oxygen=np.zeros(n, dtype=np.bool_),
        overrides={},
        discharge_sbp_mmhg=_known([m.discharge_sbp_mmhg for m in members]),
        discharge_hr_bpm=_known([m.discharge_hr_bpm for m in members]),
        discharge_weight_kg=_known([m.discharge_weight_kg for m in members]),
        beta_blocker=np.asarray([p is not None and p.beta_blocker for p in profiles]),
        sleep_apnoea=np.asarray(
            [p is not None and (p.osa_diagnosed or p.ohs) for p in profiles], dtype=np.bool_
        ),
        time_zones=tuple(m.tz for m in members),
    )


def replay(
    members: Sequence[Member],
    source: ArraySource,
    protocols: Mapping[str, Protocol],
    step_s: int = 60,
    responder: Responder | None = None,
    charger: Charger | None = None,
) -> list[AlertRecord]:
    """Every alert the engine raises for these members over their follow-up; with a
    ``responder``, the patients re-measure when a rule asks them to confirm a reading;
    with a ``charger``, they charge a device when the phone says its battery is low."""
    ctx = _context(members)
    policies = {}
    for m in members:
        proto = protocols[m.protocol]
        policies[m.index] = Policy.of(proto)
    start = min(m.start_ms for m in members)
    end = max(m.end_ms for m in members)
    open_now: dict[int, OpenAlert] = {}  # alert id -> state
    records: dict[int, AlertRecord] = {}
    next_id = 1
    for now in range(start + step_s * 1000, end + 1, step_s * 1000):
        findings = evaluate(source, ctx, protocols, now)
        if responder is not None:
            for patient_id, more in responder.respond(findings, now).items():
                source.add(patient_id, more)
            asks = full_set_asks(source, ctx, protocols, now)
            for patient_id, more in responder.respond_full_sets(asks, now).items():
                source.add(patient_id, more)
        if charger is not None:
            charger.respond(source, now)
        watched = {(a.patient_id, a.rule_id) for a in open_now.values()}
        relevant = [f for f in findings if f.firing or (f.patient_id, f.rule_id) in watched]
        for action in plan(relevant, list(open_now.values()), now, policies):
            if isinstance(action, ConditionReturned | RaisePriority | EvidenceChanged):
                # an alert that comes back or rises is heard again with all it names; an
                # evidence update, with what it adds
                records[action.alert.alert_id].joined += _joins(
                    open_now[action.alert.alert_id]
                    if isinstance(action, EvidenceChanged)
                    else None,
                    action.alert.rule_id,
                    action.finding.evidence,
                    policies[action.alert.patient_id],
                    now,
                )
            if isinstance(action, Open):
                f = action.finding
                open_now[next_id] = OpenAlert(
                    next_id,
                    f.patient_id,
                    f.rule_id,
                    f.priority,
                    "active",
                    now,
                    None,
                    0,
                    None,
                    also_missing=_also(f.evidence),
                    still_missing=_also(f.evidence, "still_missing"),
                )
                records[next_id] = AlertRecord(
                    f.patient_id,
                    f.rule_id,
                    f.category,
                    f.priority,
                    now,
                    f.onset_ms,
                    scored=[_scored(f.evidence)],
                    joined=_joins(None, f.rule_id, f.evidence, policies[f.patient_id], now),
                )
                next_id += 1
                continue
            a = action.alert
            if isinstance(action, ConditionCleared):
                open_now[a.alert_id] = replace(open_now[a.alert_id], condition_cleared_ms=now)
            elif isinstance(action, ConditionReturned):
                open_now[a.alert_id] = replace(
                    open_now[a.alert_id],
                    condition_cleared_ms=None,
                    also_missing=_also(action.finding.evidence),
                    still_missing=_also(action.finding.evidence, "still_missing"),
                )
                records[a.alert_id].renewed_ms.append(now)
                records[a.alert_id].scored.append(_scored(action.finding.evidence))
            elif isinstance(action, RaisePriority):
                open_now[a.alert_id] = replace(
                    open_now[a.alert_id],
                    priority=action.finding.priority,
                    also_missing=_also(action.finding.evidence),
                    still_missing=_also(action.finding.evidence, "still_missing"),
                )
                records[a.alert_id].priority = action.finding.priority
                records[a.alert_id].renewed_ms.append(now)
                records[a.alert_id].scored.append(_scored(action.finding.evidence))
            elif isinstance(action, EvidenceChanged):
                open_now[a.alert_id] = replace(
                    open_now[a.alert_id],
                    also_missing=_also(action.finding.evidence),
                    still_missing=_also(action.finding.evidence, "still_missing"),
                )
            elif isinstance(action, AutoResolve):
                del open_now[a.alert_id]
                records[a.alert_id].resolved_ms = now
            elif isinstance(action, Escalate) and a.alert_id in open_now:
                open_now[a.alert_id] = replace(
                    open_now[a.alert_id], escalation_tier=action.tier, escalated_ms=now
                )
        back = [m for m in members if m.offline and now - step_s * 1000 < m.offline[1] <= now]
        if back:
            next_id = _open_late(back, source, protocols, now, open_now, records, next_id)
        for alert_id, a in list(open_now.items()):
            if a.state == "active" and now - a.opened_ms >= ACK_AFTER_S[a.priority] * 1000:
                open_now[alert_id] = replace(a, state="acknowledged")
    return list(records.values())


def _open_late(
    back: Sequence[Member],
    source: ArraySource,
    protocols: Mapping[str, Protocol],
    now: int,
    open_now: dict[int, OpenAlert],
    records: dict[int, AlertRecord],
    next_id: int,
) -> int:
    """Late alerts for homes whose outage just ended, as the engine opens them (the same
    coverage rule as ``alerts.alert_store.open_late``); returns the next alert id."""
    marks = {m.index: m.offline[0] for m in back if m.offline}
    for e in late_episodes(source, _context(back), protocols, marks, now):
        covered = any(
            r.patient_id == e.patient_id
            and r.rule_id == e.rule_id
            and (
                alert_id in open_now
                or (
                    (r.onset_ms if r.onset_ms is not None else r.opened_ms) <= e.ended_ms
                    and r.resolved_ms is not None
                    and r.resolved_ms >= e.onset_ms
                )
            )
            for alert_id, r in records.items()
        )
        if covered:
            continue
        open_now[next_id] = OpenAlert(
            next_id,
            e.patient_id,
            e.rule_id,
            e.priority,
            "active",
            now,
            e.ended_ms,
            0,
            None,
            late=True,
        )
        records[next_id] = AlertRecord(
            e.patient_id,
            e.rule_id,
            "clinical",
            e.priority,
            now,
            e.onset_ms,
            late=True,
            scored=[_scored(e.evidence)],
        )
        next_id += 1
    return next_id
