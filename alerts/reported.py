"""Findings of the rules on what the patient reports (``alerts.reported_protocol``).

Answers are readings of patient-reported metrics, read through the same source and
windows as the vitals: hourly bins over a few days (one questionnaire a day), and the
patient's first answers since discharge for ``reported_new``. Every rule is one array
operation over all the protocol's patients.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from alerts import news2 as n2
from alerts import rules as k
from alerts.evaluation_round import HOUR_S, MINUTE_S, Round
from alerts.lifecycle import Finding
from alerts.reported_protocol import (
    CalfPulseRule,
    ReportedHighRule,
    ReportedNewRule,
    ReportedRiseRule,
    WoundInfectionRule,
)
from alerts.usual import baseline_span_s, usual_values
from alerts.window import MetricWindow, Window, metric_of

F = NDArray[np.float64]
B = NDArray[np.bool_]
PULSE_SETTLE_S = 900  # the pulse judged: its 15-minute median, as the sepsis screen's
ReportedRule = (
    ReportedHighRule | ReportedRiseRule | WoundInfectionRule | CalfPulseRule | ReportedNewRule
)


def latest_and_previous(
    metric: MetricWindow, bin_s: int, freshness_s: int, min_gap_s: int, previous_within_s: int
) -> tuple[F, B, F, B]:
    """Per patient: the latest answer (within ``freshness_s``) and the latest earlier
    answer given at least ``min_gap_s`` and at most ``previous_within_s`` before it."""
    present, values = metric.present, metric.values
    p, n = present.shape
    rows = np.arange(p)
    last, has = k.last_present(present)
    fresh = has & ((n - 1 - last) * bin_s < freshness_s)
    latest = np.where(fresh, values[rows, np.maximum(last, 0)], np.nan)
    idx = np.arange(n)[None, :]
    gap = max(1, min_gap_s // bin_s)
    reach = max(gap, previous_within_s // bin_s)
    earlier = present & (idx <= (last - gap)[:, None]) & (idx >= (last - reach)[:, None])
    prev_idx, has_prev = k.last_present(earlier)
    has_prev = has_prev & fresh
    previous = np.where(has_prev, values[rows, np.maximum(prev_idx, 0)], np.nan)
    return latest.astype(np.float64), fresh, previous.astype(np.float64), has_prev


def evaluate_reported(rnd: Round, rules: Sequence[object]) -> list[Finding]:
    """Findings of every reported-answer rule of one protocol for its patients."""
    mine = [r for r in rules if isinstance(r, ReportedRule)]
    if not mine:
        return []
    span = max(
        [
            r.freshness_s + (r.previous_within_s if isinstance(r, ReportedRiseRule) else 0)
            for r in mine
        ]
    )
    answers = sorted({m for r in mine for m in r.reported})
    win = rnd.window(answers, span + HOUR_S, HOUR_S)
    out: list[Finding] = []
    for rule in mine:
        if isinstance(rule, ReportedHighRule):
            out += _high(rnd, rule, win)
        elif isinstance(rule, ReportedRiseRule):
            out += _rise(rnd, rule, win)
        elif isinstance(rule, WoundInfectionRule):
            out += _wound(rnd, rule, win)
        elif isinstance(rule, CalfPulseRule):
            out += _calf(rnd, rule, win)
        else:
            out += _new(rnd, rule, win)
    return out


def _worst_latest(rule: ReportedRule, win: Window, names: Sequence[str]) -> tuple[F, B]:
    """The highest of the latest answers to these items (within freshness)."""
    stacked = [k.latest_within(metric_of(win, m), HOUR_S, rule.freshness_s) for m in names]
    values = np.stack([np.where(h, v, -np.inf) for v, h in stacked])
    has: B = np.asarray(np.stack([h for _, h in stacked]).any(axis=0), dtype=np.bool_)
    worst: F = np.where(has, values.max(axis=0), np.nan).astype(np.float64)
    return worst, has


def _high(rnd: Round, rule: ReportedHighRule, win: Window) -> list[Finding]:
    limit = rnd.param(rule.id, "at_or_above", rule.at_or_above)
    worst, has = _worst_latest(rule, win, rule.answers)
    firing = has & (np.nan_to_num(worst, nan=-np.inf) >= limit)
    return rnd.findings(rule, firing, {"value": worst, "threshold": limit})


def _rise(rnd: Round, rule: ReportedRiseRule, win: Window) -> list[Finding]:
    step = rnd.param(rule.id, "rise_by", rule.rise_by)
    best_rise = np.full(len(rnd.ids), -np.inf)
    best_value = np.full(len(rnd.ids), np.nan)
    for name in rule.answers:
        latest, _, previous, has_prev = latest_and_previous(
            metric_of(win, name), HOUR_S, rule.freshness_s, rule.min_gap_s, rule.previous_within_s
        )
        rise = np.where(has_prev, latest - previous, -np.inf)
        better = rise > best_rise
        best_rise = np.where(better, rise, best_rise)
        best_value = np.where(better, latest, best_value)
    firing = best_rise >= step
    shown = np.where(np.isfinite(best_rise), best_rise, np.nan)
    return rnd.findings(rule, firing, {"value": best_value, "rise": shown})


def _wound(rnd: Round, rule: WoundInfectionRule, win: Window) -> list[Finding]:
    signs = np.zeros(len(rnd.ids), dtype=np.int64)
    for name in rule.signs:
        value, has = k.latest_within(metric_of(win, name), HOUR_S, rule.freshness_s)
        signs += (has & (np.nan_to_num(value) >= 1)).astype(np.int64)
    felt, felt_has = k.latest_within(metric_of(win, rule.fever_answer), HOUR_S, rule.freshness_s)
    feverish = felt_has & (np.nan_to_num(felt) >= 1)
    tw = metric_of(rnd.window(["temp_c"], rule.temp_freshness_s, 300), "temp_c")
    t_has = tw.present.any(axis=1)
    hottest = np.where(t_has, np.where(tw.present, tw.values, -np.inf).max(axis=1), np.nan)
    febrile = t_has & (np.nan_to_num(hottest, nan=-np.inf) >= rule.temp_at_or_above)
    firing = (signs > 0) & (febrile | feverish)
    return rnd.findings(
        rule,
        firing,
        {"signs_reported": signs, "temp_c": hottest, "fever_reported": feverish},
    )


def _calf(rnd: Round, rule: CalfPulseRule, win: Window) -> list[Finding]:
    calf, has = k.latest_within(metric_of(win, rule.answer), HOUR_S, rule.freshness_s)
    reported = has & (np.nan_to_num(calf) >= 1)
    pw = rnd.window(["heart_rate_bpm"], rule.hr_freshness_s, MINUTE_S)
    pulse, p_has = n2.latest(
        metric_of(pw, "heart_rate_bpm"), MINUTE_S, rule.hr_freshness_s, PULSE_SETTLE_S
    )
    # the lower of the hospital's and the first day's waking pulse (a rise is watched for)
    usual = usual_values(rnd, [], {"heart_rate_bpm"})["heart_rate_bpm"]
    hr_above = rnd.param(rule.id, "hr_above", rule.hr_above)
    with np.errstate(invalid="ignore"):
        fast = (pulse > hr_above) | (pulse >= usual + rule.hr_rise_above_usual)
    firing = reported & p_has & fast
    return rnd.findings(rule, firing, {"pulse": pulse, "usual_pulse": usual})


def _new(rnd: Round, rule: ReportedNewRule, win: Window) -> list[Finding]:
    latest, has = k.latest_within(metric_of(win, rule.answer), HOUR_S, rule.freshness_s)
    ids, now_ms = rnd.ids, rnd.now_ms
    limit = rnd.param(rule.id, "at_or_above", rule.at_or_above)
    discharged = rnd.discharged_ms()
    known = discharged >= 0
    # the patient's answers since their discharge (at most the usual values' 30 days)
    span = baseline_span_s(rnd) + HOUR_S
    long = metric_of(rnd.window([rule.answer], span, HOUR_S), rule.answer)
    n = long.present.shape[1]
    start_ms = now_ms - n * HOUR_S * 1000
    bin_start = start_ms + np.arange(n, dtype=np.int64) * HOUR_S * 1000
    after = bin_start[None, :] >= np.where(known, discharged, -1)[:, None]
    sel = long.present & after
    first_idx = np.argmax(sel, axis=1)
    has_first = sel.any(axis=1)
    first = np.where(has_first, long.values[np.arange(len(ids)), first_idx], np.nan)
    latest_idx, _ = k.last_present(sel)
    # the first answer is the baseline only when a later one exists: a patient whose
    # very first answer is breathlessness has it new since the hospital
    only_one = has_first & (latest_idx == first_idx)
    baseline = np.where(only_one | ~has_first, 0.0, first)
    value = np.nan_to_num(latest, nan=-np.inf)
    firing = has & (value >= limit) & (value > baseline)
    prio = [rule.priority] * len(ids)
    if rule.high_at_or_above is not None:
        prio = ["high" if v >= rule.high_at_or_above else rule.priority for v in value.tolist()]
    return rnd.findings(
        rule, firing, {"at_rest": value >= (rule.high_at_or_above or np.inf)}, None, prio
    )
