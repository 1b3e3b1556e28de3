"""Rules on the kit's own state: a metric not measured for too long (after the
patient's reminder, if it has one), a home gateway offline, a device's battery low, too
many readings refused as implausible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.evaluation_round import Round
from alerts.lifecycle import Finding
from alerts.protocol import (
    BatteryRule,
    GatewayOfflineRule,
    ImplausibleRateRule,
    MissingDataRule,
    Protocol,
    Rule,
)
from alerts.reminder_times import latest_due_ms
from alerts.window import Window, metric_of

MISSING_BIN_S = 300


def kit_findings(rnd: Round, proto: Protocol) -> list[Finding]:
    """Findings of the protocol's missing-data, gateway, battery and implausible-rate
    rules."""
    rules: list[Rule] = proto.rules
    out: list[Finding] = []
    missing_rules = [r for r in rules if isinstance(r, MissingDataRule)]
    if missing_rules:
        span = max(r.span_s for r in missing_rules) + MISSING_BIN_S
        win = rnd.window({r.metric for r in missing_rules}, span, MISSING_BIN_S)
        missing = [_missing(rnd, rule, win, proto) for rule in missing_rules]
        out += _one_per_reminder(missing_rules, missing)
    for rule in rules:
        if isinstance(rule, GatewayOfflineRule):
            since = rnd.source.gateway_offline_since_ms(rnd.ids, rnd.now_ms)
            offline_s = np.where(np.isnan(since), 0.0, (rnd.now_ms - since) / 1000)
            firing = offline_s >= rule.after_s
            out += rnd.findings(rule, firing, {"offline_s": offline_s})
        elif isinstance(rule, BatteryRule):
            out += _battery(rnd, rule)
        elif isinstance(rule, ImplausibleRateRule):
            bad, good = rnd.source.implausible_counts(
                rnd.ids, rnd.now_ms - rule.window_s * 1000, rnd.now_ms
            )
            res = k.rate_above(bad, bad + good, rule.min_readings, rule.rate_above)
            out += rnd.findings(rule, res.firing, {"implausible": bad, "stored": good})
    return out


def _battery(rnd: Round, rule: BatteryRule) -> list[Finding]:
    """Below ``below_pct`` and, if the rule sets one, at or below ``critical_pct``."""
    level = rnd.source.lowest_battery_pct(rnd.ids, rnd.now_ms - rule.freshness_s * 1000, rnd.now_ms)
    limit = rule.below_pct
    if rule.critical_pct is not None:
        limit = min(limit, np.nextafter(rule.critical_pct, np.inf))
    res = k.below_value(level, ~np.isnan(level), limit)
    return rnd.findings(rule, res.firing, {"battery_pct": level})


def _missing(rnd: Round, rule: MissingDataRule, win: Window, proto: Protocol) -> list[Finding]:
    """Silence counts from the first enrolment of a device that measures the metric (no
    such device: nothing is missing), and not before discharge (a patient just home has
    nothing to miss yet). With ``waking_hours_only``, only the silence outside the patient's
    local night counts toward the limit (offset at ``now_ms``: a DST change within the
    window shifts the night by an hour at most). The evidence is the real silence, found
    beyond the window.

    With a ``reminder``, the rule waits for the patient's reminder plus its grace period:
    it fires only while the latest reminder whose grace has run out went unanswered (no
    reading since ``lead_s`` before it; a reminder before counting began asks nothing)."""
    ctx, mask, ids, now_ms = rnd.ctx, rnd.mask, rnd.ids, rnd.now_ms
    discharged = rnd.discharged_ms()
    if ctx.measuring_since_ms is None:  # not recorded: expected from discharge
        first = np.zeros(len(ids), dtype=np.int64)
    else:
        enrolled = ctx.measuring_since_ms.get(rule.metric)
        first = enrolled[mask] if enrolled is not None else np.full(len(ids), -1, np.int64)
    start_ms = np.where(first >= 0, np.maximum(first, discharged), -1)
    counted_s = np.where(start_ms >= 0, (now_ms - start_ms) / 1000, np.nan).astype(np.float64)
    awake = None
    if rule.waking_hours_only:
        awake = ~k.bins_in_hours(
            win.end_ms, win.bin_s, win.n_bins, rnd.offsets_s, rule.night_start_h, rule.night_end_h
        )
    res = k.missing_data(
        metric_of(win, rule.metric), MISSING_BIN_S, rule.max_silence_s, counted_s, awake
    )
    firing = res.firing
    priority = None
    if rule.raised_after_s is not None:
        # a silence that lasts a whole waking day is more than a forgotten check: it
        # raises the alert (and notifies again, even one acknowledged for an earlier gap)
        longer = k.missing_data(
            metric_of(win, rule.metric), MISSING_BIN_S, rule.raised_after_s, counted_s, awake
        )
        priority = [rule.raised_priority if x else rule.priority for x in longer.firing.tolist()]
    last_ms = np.full(len(ids), np.nan)
    evidence: dict[str, NDArray[Any]] = {}
    if rule.reminder is not None and firing.any():
        reminder = proto.reminder(rule.reminder)
        due_ms = latest_due_ms(now_ms, rnd.offsets_s, reminder.at_s, rule.reminder_grace_s)
        last_ms[firing] = rnd.source.last_reading_ms(ids[firing], rule.metric, now_ms)
        answered = np.nan_to_num(last_ms, nan=-np.inf) >= due_ms - reminder.lead_s * 1000
        missed = (start_ms >= 0) & (due_ms >= start_ms) & ~answered
        firing = firing & missed
        evidence = {"reminder_missed": missed, "reminder_due_ms": due_ms}
    elif firing.any():
        last_ms[firing] = rnd.source.last_reading_ms(ids[firing], rule.metric, now_ms)
    silent_from_ms = np.fmax(last_ms, start_ms.astype(np.float64))
    silent_s = np.where(firing, (now_ms - silent_from_ms) / 1000, res.value)
    onset = np.where(firing, silent_from_ms, -1).astype(np.int64)
    evidence = {"silent_s": silent_s, "last_reading_ms": last_ms, **evidence}
    return rnd.findings(rule, firing, evidence, onset, priority)


def _one_per_reminder(
    rules: Sequence[MissingDataRule], findings: Sequence[list[Finding]]
) -> list[Finding]:
    """One alert for one unanswered reminder: when the morning reminder asked for a blood
    pressure and a temperature and neither came, the first of its rules (protocol order)
    fires and names the others' metrics (``also_missing``); they stay quiet for that
    patient. The team has one patient to call, not two alerts to acknowledge. A metric
    still missing once the first one came fires on its own."""
    out: list[Finding] = []
    first_of: dict[str, int] = {}  # reminder -> index of its first rule
    for i, rule in enumerate(rules):
        if rule.reminder is not None:
            first_of.setdefault(rule.reminder, i)
    also: dict[tuple[int, int], list[str]] = {}  # (first rule, patient) -> other metrics
    folded = [list(f) for f in findings]
    for i, rule in enumerate(rules):
        lead = first_of.get(rule.reminder) if rule.reminder is not None else None
        if lead is None or lead == i:
            continue
        for j, f in enumerate(folded[i]):
            if f.firing and folded[lead][j].firing:
                also.setdefault((lead, j), []).append(rule.metric)
                folded[i][j] = replace(f, firing=False, onset_ms=None)
    for (lead, j), metrics in also.items():
        f = folded[lead][j]
        folded[lead][j] = replace(f, evidence={**f.evidence, "also_missing": ",".join(metrics)})
    for group in folded:
        out += group
    return out
