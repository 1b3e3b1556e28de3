"""Findings of the rules on what the patient reports (``alerts.reported_protocol``).

Answers are readings of patient-reported metrics, read through the same source and
windows as the vitals: hourly bins over a few days (one questionnaire a day), and the
patient's first answers since discharge for ``reported_new``. Every rule is one array
operation over all the protocol's patients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts import news2 as n2
from alerts import rules as k
from alerts.context import PatientContext
from alerts.lifecycle import Finding
from alerts.reported_protocol import (
    CalfPulseRule,
    ReportedHighRule,
    ReportedNewRule,
    ReportedRiseRule,
    WoundInfectionRule,
)
from alerts.source import ReadingSource
from alerts.window import MetricWindow, Window

F = NDArray[np.float64]
B = NDArray[np.bool_]
I64 = NDArray[np.int64]
HOUR_S = 3600
MINUTE_S = 60
FIRST_ANSWERS_MAX_S = 30 * 86_400  # how far back a patient's first answers are looked for
PULSE_SETTLE_S = 900  # the pulse judged: its 15-minute median, as the sepsis screen's
ReportedRule = (
    ReportedHighRule | ReportedRiseRule | WoundInfectionRule | CalfPulseRule | ReportedNewRule
)


def _metric(window: Window, name: str) -> MetricWindow:
    found = window.metrics.get(name)
    if found is not None:
        return found
    shape = (len(window.patient_ids), window.n_bins)
    return MetricWindow(np.zeros(shape), np.zeros(shape, dtype=np.bool_))


def _param(ctx: PatientContext, ids: I64, rule_id: str, name: str, default: float) -> F:
    """The rule's parameter per patient, a clinician's override where there is one."""
    out = np.full(len(ids), default, dtype=np.float64)
    for i, pid in enumerate(ids.tolist()):
        value = ctx.overrides.get((pid, rule_id, name))
        if value is not None:
            out[i] = value
    return out


def _findings(
    ids: I64,
    rule: ReportedRule,
    firing: B,
    evidence: Mapping[str, NDArray[Any]],
    priority: Sequence[str] | None = None,
) -> list[Finding]:
    out = []
    for i, pid in enumerate(ids.tolist()):
        ev = {key: _plain(arr[i]) for key, arr in evidence.items()} if firing[i] else {}
        prio = priority[i] if priority is not None else rule.priority
        out.append(Finding(pid, rule.id, bool(firing[i]), prio, rule.category, ev, None))  # type: ignore[arg-type]
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


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


def evaluate_reported(
    source: ReadingSource,
    ctx: PatientContext,
    mask: B,
    ids: I64,
    rules: Sequence[object],
    now_ms: int,
) -> list[Finding]:
    """Findings of every reported-answer rule of one protocol for its patients."""
    mine = [r for r in rules if isinstance(r, ReportedRule)]
    if not mine:
        return []
    pids = ids.tolist()
    span = max(
        [
            r.freshness_s + (r.previous_within_s if isinstance(r, ReportedRiseRule) else 0)
            for r in mine
        ]
    )
    answers = sorted({m for r in mine for m in r.reported})
    win = source.window(pids, answers, now_ms, span + HOUR_S, HOUR_S)
    out: list[Finding] = []
    for rule in mine:
        if isinstance(rule, ReportedHighRule):
            out += _high(ctx, ids, rule, win)
        elif isinstance(rule, ReportedRiseRule):
            out += _rise(ctx, ids, rule, win)
        elif isinstance(rule, WoundInfectionRule):
            out += _wound(source, ids, rule, win, now_ms)
        elif isinstance(rule, CalfPulseRule):
            out += _calf(source, ctx, mask, ids, rule, win, now_ms)
        else:
            out += _new(source, ctx, mask, ids, rule, win, now_ms)
    return out


def _worst_latest(rule: ReportedRule, win: Window, names: Sequence[str]) -> tuple[F, B]:
    """The highest of the latest answers to these items (within freshness)."""
    stacked = [k.latest_within(_metric(win, m), HOUR_S, rule.freshness_s) for m in names]
    values = np.stack([np.where(h, v, -np.inf) for v, h in stacked])
    has: B = np.asarray(np.stack([h for _, h in stacked]).any(axis=0), dtype=np.bool_)
    worst: F = np.where(has, values.max(axis=0), np.nan).astype(np.float64)
    return worst, has


def _high(ctx: PatientContext, ids: I64, rule: ReportedHighRule, win: Window) -> list[Finding]:
    limit = _param(ctx, ids, rule.id, "at_or_above", rule.at_or_above)
    worst, has = _worst_latest(rule, win, rule.answers)
    firing = has & (np.nan_to_num(worst, nan=-np.inf) >= limit)
    return _findings(ids, rule, firing, {"value": worst, "threshold": limit})


def _rise(ctx: PatientContext, ids: I64, rule: ReportedRiseRule, win: Window) -> list[Finding]:
    step = _param(ctx, ids, rule.id, "rise_by", rule.rise_by)
    best_rise = np.full(len(ids), -np.inf)
    best_value = np.full(len(ids), np.nan)
    for name in rule.answers:
        latest, _, previous, has_prev = latest_and_previous(
            _metric(win, name), HOUR_S, rule.freshness_s, rule.min_gap_s, rule.previous_within_s
        )
        rise = np.where(has_prev, latest - previous, -np.inf)
        better = rise > best_rise
        best_rise = np.where(better, rise, best_rise)
        best_value = np.where(better, latest, best_value)
    firing = best_rise >= step
    shown = np.where(np.isfinite(best_rise), best_rise, np.nan)
    return _findings(ids, rule, firing, {"value": best_value, "rise": shown})


def _wound(
    source: ReadingSource, ids: I64, rule: WoundInfectionRule, win: Window, now_ms: int
) -> list[Finding]:
    signs = np.zeros(len(ids), dtype=np.int64)
    for name in rule.signs:
        value, has = k.latest_within(_metric(win, name), HOUR_S, rule.freshness_s)
        signs += (has & (np.nan_to_num(value) >= 1)).astype(np.int64)
    felt, felt_has = k.latest_within(_metric(win, rule.fever_answer), HOUR_S, rule.freshness_s)
    feverish = felt_has & (np.nan_to_num(felt) >= 1)
    tw = _metric(
        source.window(ids.tolist(), ["temp_c"], now_ms, rule.temp_freshness_s, 300), "temp_c"
    )
    t_has = tw.present.any(axis=1)
    hottest = np.where(t_has, np.where(tw.present, tw.values, -np.inf).max(axis=1), np.nan)
    febrile = t_has & (np.nan_to_num(hottest, nan=-np.inf) >= rule.temp_at_or_above)
    firing = (signs > 0) & (febrile | feverish)
    return _findings(
        ids,
        rule,
        firing,
        {"signs_reported": signs, "temp_c": hottest, "fever_reported": feverish},
    )


def _usual_pulse(source: ReadingSource, ctx: PatientContext, mask: B, ids: I64, now_ms: int) -> F:
    """The patient's usual pulse: the lower of the hospital's and the median of the first
    day's waking hours after discharge (a rise is what the calf rule watches for)."""
    discharged = ctx.discharged_ms[mask]
    known = discharged >= 0
    first = int(discharged[known].min()) if known.any() else now_ms - FIRST_ANSWERS_MAX_S * 1000
    span = min(max(now_ms - first, HOUR_S), FIRST_ANSWERS_MAX_S)
    win = source.window(ids.tolist(), ["heart_rate_bpm"], now_ms, span, HOUR_S)
    bin_start = win.bin_starts_ms()
    return k.usual_value(
        _metric(win, "heart_rate_bpm"),
        bin_start,
        discharged,
        86_400,
        2,
        ctx.discharge_hr_bpm[mask],
        "above",
        k.awake_bins(bin_start, ctx.utc_offset_s(now_ms)[mask]),
    )


def _calf(
    source: ReadingSource,
    ctx: PatientContext,
    mask: B,
    ids: I64,
    rule: CalfPulseRule,
    win: Window,
    now_ms: int,
) -> list[Finding]:
    calf, has = k.latest_within(_metric(win, rule.answer), HOUR_S, rule.freshness_s)
    reported = has & (np.nan_to_num(calf) >= 1)
    pw = source.window(ids.tolist(), ["heart_rate_bpm"], now_ms, rule.hr_freshness_s, MINUTE_S)
    pulse, p_has = n2.latest(
        _metric(pw, "heart_rate_bpm"), MINUTE_S, rule.hr_freshness_s, PULSE_SETTLE_S
    )
    usual = _usual_pulse(source, ctx, mask, ids, now_ms)
    hr_above = _param(ctx, ids, rule.id, "hr_above", rule.hr_above)
    with np.errstate(invalid="ignore"):
        fast = (pulse > hr_above) | (pulse >= usual + rule.hr_rise_above_usual)
    firing = reported & p_has & fast
    return _findings(ids, rule, firing, {"pulse": pulse, "usual_pulse": usual})


def _new(
    source: ReadingSource,
    ctx: PatientContext,
    mask: B,
    ids: I64,
    rule: ReportedNewRule,
    win: Window,
    now_ms: int,
) -> list[Finding]:
    latest, has = k.latest_within(_metric(win, rule.answer), HOUR_S, rule.freshness_s)
    limit = _param(ctx, ids, rule.id, "at_or_above", rule.at_or_above)
    discharged = ctx.discharged_ms[mask]
    known = discharged >= 0
    first_ms = int(discharged[known].min()) if known.any() else now_ms - FIRST_ANSWERS_MAX_S * 1000
    span = min(max(now_ms - first_ms, HOUR_S), FIRST_ANSWERS_MAX_S) + HOUR_S
    long = _metric(source.window(ids.tolist(), [rule.answer], now_ms, span, HOUR_S), rule.answer)
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
    return _findings(
        ids, rule, firing, {"at_rest": value >= (rule.high_at_or_above or np.inf)}, prio
    )
