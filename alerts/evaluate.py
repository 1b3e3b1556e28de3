"""From protocols, committed readings and patient context to findings: for each protocol,
the windows its rules need are loaded once for all its patients, and every rule is one
array operation over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts import news2 as n2
from alerts import rules as k
from alerts.context import PatientContext
from alerts.fluid_balance import weight_with_signs
from alerts.lifecycle import RANK, Finding
from alerts.protocol import (
    USUAL_FIELDS,
    BaselineRule,
    BatteryRule,
    ConfirmedRule,
    CongestionRule,
    DepletionRule,
    FallRule,
    GatewayOfflineRule,
    ImplausibleRateRule,
    MissingDataRule,
    News2Rule,
    Protocol,
    RelativeRule,
    RhythmRule,
    RiseRule,
    Rule,
    SepsisScreenRule,
    ShockIndexRule,
    SustainedRule,
    TrendRule,
)
from alerts.reminder_times import latest_due_ms
from alerts.reported import evaluate_reported
from alerts.source import ReadingSource
from alerts.window import MetricWindow, Window

MINUTE_S = 60
HOUR_S = 3600
MISSING_BIN_S = 300
BASELINE_MAX_S = 30 * 86_400
NEWS2_METRICS = ("resp_rate_per_min", "spo2_pct", "bp_systolic_mmhg", "heart_rate_bpm", "temp_c")
# the NEWS2 parameters in the order of ``news2.News2Result.scores``: a finding's evidence
# ``scored_params`` lists those that scored (which signs made the score)
NEWS2_SCORED_AS = (
    "resp_rate_per_min",
    "spo2_pct",
    "on_oxygen",
    "bp_systolic_mmhg",
    "heart_rate_bpm",
    "consciousness",
    "temp_c",
)
NIGHTS_S = 7 * 86_400  # earlier nights that make a patient's usual night
NIGHT_EXCLUDE_S = 12 * 3600  # tonight is not part of the usual night it is judged against
SPOT_SETTLE_S = 900  # the pulse a sepsis screen or a rhythm rule judges: its 15-min median
# the overnight oximeter is worn while it streams: a reading in most of the last minutes
WORN_BINS = 15
WORN_MIN_BINS = 10
# asleep, a pulse at the patient's usual night less this margin scores as NEWS2's 51/min
PULSE_NORMAL_FLOOR = 51.0
NIGHT_PULSE_MARGIN = 5.0
# the top of NEWS2's normal respiratory band (12-20/min)
RESP_NORMAL_TOP = 20.0
# the evidence key of each sign a weight change is read with (alerts.fluid_balance), and
# "usual_" + it: the patient's usual
SIGN_EVIDENCE = {"spo2_pct": "spo2", "heart_rate_bpm": "pulse", "bp_systolic_mmhg": "sbp"}


def metric_of(window: Window, name: str) -> MetricWindow:
    """The metric's arrays, all absent when no patient has any reading of it."""
    found = window.metrics.get(name)
    if found is not None:
        return found
    shape = (len(window.patient_ids), window.n_bins)
    return MetricWindow(np.zeros(shape, dtype=np.float64), np.zeros(shape, dtype=np.bool_))


def rule_param(
    ctx: PatientContext, ids: NDArray[np.int64], rule: Rule, name: str, default: float
) -> NDArray[np.float64]:
    """A rule parameter per patient: the protocol's value unless a clinician overrode it."""
    out = np.full(len(ids), default, dtype=np.float64)
    for i, pid in enumerate(ids.tolist()):
        override = ctx.overrides.get((pid, rule.id, name))
        if override is not None:
            out[i] = override
    return out


def _findings(
    ids: NDArray[np.int64],
    rule: Rule,
    firing: NDArray[np.bool_],
    evidence: Mapping[str, NDArray[Any]],
    onset_ms: NDArray[np.int64] | None = None,
    priority: Sequence[str] | None = None,
) -> list[Finding]:
    out = []
    for i, pid in enumerate(ids.tolist()):
        # evidence matters only where the rule fires (a cleared condition needs none):
        # skipping it for the quiet majority keeps a round cheap
        ev = {key: _plain(arr[i]) for key, arr in evidence.items()} if firing[i] else {}
        onset = int(onset_ms[i]) if onset_ms is not None and onset_ms[i] >= 0 else None
        prio = priority[i] if priority is not None else rule.priority
        out.append(
            Finding(
                pid,
                rule.id,
                bool(firing[i]),
                prio,  # type: ignore[arg-type]
                rule.category,
                ev,
                onset,
            )
        )
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _onset(window: Window, since_bin: NDArray[np.int64]) -> NDArray[np.int64]:
    start = window.end_ms - window.n_bins * window.bin_s * 1000
    return np.where(since_bin >= 0, start + since_bin * window.bin_s * 1000, -1)


@dataclass(frozen=True, slots=True)
class News2Score:
    """A patient's latest NEWS2, kept for the dashboard's ordering even when no alert fires."""

    patient_id: int
    total: int
    band: int
    complete: bool


def evaluate(
    source: ReadingSource,
    ctx: PatientContext,
    protocols: Mapping[str, Protocol],
    now_ms: int,
    scores: list[News2Score] | None = None,
) -> list[Finding]:
    """Findings of every rule for these patients; NEWS2 scores go to ``scores`` if given."""
    findings: list[Finding] = []
    for name in sorted(set(ctx.protocols)):
        proto = protocols.get(name)
        if proto is None:
            continue
        mask = ctx.subset(name)
        findings += _evaluate_protocol(source, ctx, mask, proto, now_ms, scores)
    return findings


def _evaluate_protocol(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    proto: Protocol,
    now_ms: int,
    scores: list[News2Score] | None,
) -> list[Finding]:
    ids = ctx.patient_ids[mask]
    pids = ids.tolist()
    rules = proto.rules
    out: list[Finding] = []

    short_metrics = {r.metric for r in rules if isinstance(r, SustainedRule)}
    short_span = max(
        [
            max(r.duration_s, r.night.duration_s if r.night else 0) + r.max_gap_s + r.settle_s
            for r in rules
            if isinstance(r, SustainedRule)
        ]
        + [r.freshness_s for r in rules if isinstance(r, News2Rule | ShockIndexRule)]
        + [HOUR_S]
    )
    if any(isinstance(r, News2Rule) for r in rules):
        short_metrics |= set(NEWS2_METRICS)
        short_span = max(
            [short_span]
            + [r.night_spo2_settle_s + HOUR_S for r in rules if isinstance(r, News2Rule)]
        )
    if any(isinstance(r, ShockIndexRule) for r in rules):
        short_metrics |= {"heart_rate_bpm", "bp_systolic_mmhg"}
    short = source.window(pids, sorted(short_metrics), now_ms, short_span, MINUTE_S)

    night_rules = [r for r in rules if isinstance(r, SustainedRule) and r.night is not None]
    usual_night: dict[str, NDArray[np.float64]] = {}
    if night_rules:
        usual_night = usual_nights(source, ctx, mask, pids, night_rules, now_ms)
    usual_rules = [r for r in rules if isinstance(r, SustainedRule) and r.usual is not None]
    usual_day: dict[str, NDArray[np.float64]] = {}
    news2_usual = {
        m
        for r in rules
        if isinstance(r, News2Rule)
        for m, allowance in (
            ("spo2_pct", r.spo2_usual_allowance),
            ("resp_rate_per_min", r.resp_rate_usual_allowance),
        )
        if allowance
    }
    if usual_rules or news2_usual:
        wanted = {r.metric for r in usual_rules} | news2_usual
        # how low (or fast) the patient runs over whole days, their nights included:
        # what NEWS2's allowances and the sustained rules' own limits were tuned on
        usual_day = usual_values(source, ctx, mask, pids, [], wanted, now_ms, waking_only=False)
    for rule in rules:
        if isinstance(rule, SustainedRule):
            threshold, duration = sustained_limits(
                ctx, mask, ids, rule, now_ms, usual_night.get(rule.metric), short
            )
            if rule.usual is not None:
                threshold = usual_limited(threshold, usual_day[rule.metric], rule)
            res = k.sustained(
                k.settled(metric_of(short, rule.metric), rule.settle_s // MINUTE_S),
                MINUTE_S,
                rule.direction,
                threshold,
                duration,
                rule.max_gap_s,
            )
            out += _findings(
                ids,
                rule,
                res.firing,
                {"value": res.value, "threshold": threshold},
                _onset(short, res.since_bin),
            )
        elif isinstance(rule, News2Rule):
            out += _news2(
                ctx,
                mask,
                ids,
                rule,
                short,
                scores,
                now_ms,
                usual_night.get("spo2_pct"),
                usual_day,
                usual_night.get("heart_rate_bpm"),
            )
        elif isinstance(rule, ShockIndexRule):
            hr, sbp = metric_of(short, "heart_rate_bpm"), metric_of(short, "bp_systolic_mmhg")
            ratio, has = k.paired_ratio(hr, sbp, MINUTE_S, rule.freshness_s)
            firing = has & (np.where(has, ratio, 0.0) > rule.threshold)
            out += _findings(ids, rule, firing, {"shock_index": ratio})

    long_rules = [r for r in rules if isinstance(r, TrendRule | RiseRule | FallRule)]
    if long_rules:
        span = max(r.window_s for r in long_rules) + HOUR_S
        long = source.window(pids, sorted({r.metric for r in long_rules}), now_ms, span, HOUR_S)
        for rule in long_rules:
            if isinstance(rule, TrendRule):
                limit = rule_param(ctx, ids, rule, "slope_per_h_above", rule.slope_per_h_above)
                res = k.rule_trend(
                    metric_of(long, rule.metric), HOUR_S, rule.window_s, rule.min_points, limit
                )
                out += _findings(ids, rule, res.firing, {"slope_per_h": res.value})
            elif isinstance(rule, RiseRule):
                limit = rule_param(ctx, ids, rule, "rise_above", rule.rise_above)
                res = k.rise_over(metric_of(long, rule.metric), HOUR_S, rule.window_s, limit)
                out += _findings(ids, rule, res.firing, {"rise": res.value})
            else:
                limit = rule_param(ctx, ids, rule, "fall_above", rule.fall_above)
                res = k.fall_over(
                    metric_of(long, rule.metric),
                    HOUR_S,
                    rule.window_s,
                    limit,
                    rule.fall_pct_above,
                )
                out += _findings(ids, rule, res.firing, {"fall": res.value})

    # each patient's usual values, once for the rules that compare with them
    usual = usual_values(source, ctx, mask, pids, rules, _usual_metrics(rules), now_ms)
    out += _fluid_balance(source, ctx, mask, ids, rules, now_ms, usual)

    base_rules = [r for r in rules if isinstance(r, BaselineRule)]
    if base_rules:
        discharged = ctx.discharged_ms[mask]
        known = discharged >= 0
        first = int(discharged[known].min()) if known.any() else now_ms
        span = min(max(now_ms - first, HOUR_S), BASELINE_MAX_S)
        base = source.window(pids, sorted({r.metric for r in base_rules}), now_ms, span, HOUR_S)
        bin_start = base.bin_starts_ms()
        for rule in base_rules:
            until = np.where(known, discharged + int(rule.baseline_days * 86_400_000), -1)
            bmask = (bin_start[None, :] >= discharged[:, None]) & (
                bin_start[None, :] < until[:, None]
            )
            res = k.baseline_deviation(
                metric_of(base, rule.metric),
                bmask,
                HOUR_S,
                rule.recent_s,
                rule.k,
                rule.min_baseline_points,
                rule.direction,
                rule.min_scale,
            )
            out += _findings(ids, rule, res.firing, {"deviation": res.value})

    out += _spot_rules(source, ctx, mask, ids, rules, now_ms, usual)
    out += evaluate_reported(source, ctx, mask, ids, rules, now_ms)  # the patient's answers

    missing_rules = [r for r in rules if isinstance(r, MissingDataRule)]
    if missing_rules:
        span = max(r.span_s for r in missing_rules) + MISSING_BIN_S
        win = source.window(
            pids, sorted({r.metric for r in missing_rules}), now_ms, span, MISSING_BIN_S
        )
        discharged = ctx.discharged_ms[mask]
        missing = [
            _missing(source, ctx, mask, ids, rule, win, discharged, now_ms, proto)
            for rule in missing_rules
        ]
        out += _one_per_reminder(missing_rules, missing)

    for rule in rules:
        if isinstance(rule, GatewayOfflineRule):
            since = source.gateway_offline_since_ms(ids, now_ms)
            offline_s = np.where(np.isnan(since), 0.0, (now_ms - since) / 1000)
            firing = offline_s >= rule.after_s
            out += _findings(ids, rule, firing, {"offline_s": offline_s})
        elif isinstance(rule, BatteryRule):
            out += _battery(source, ids, rule, now_ms)
        elif isinstance(rule, ImplausibleRateRule):
            bad, good = source.implausible_counts(ids, now_ms - rule.window_s * 1000, now_ms)
            res = k.rate_above(bad, bad + good, rule.min_readings, rule.rate_above)
            out += _findings(ids, rule, res.firing, {"implausible": bad, "stored": good})
    return out


def _battery(
    source: ReadingSource, ids: NDArray[np.int64], rule: BatteryRule, now_ms: int
) -> list[Finding]:
    """Below ``below_pct`` and, if the rule sets one, at or below ``critical_pct``."""
    level = source.lowest_battery_pct(ids, now_ms - rule.freshness_s * 1000, now_ms)
    limit = rule.below_pct
    if rule.critical_pct is not None:
        limit = min(limit, np.nextafter(rule.critical_pct, np.inf))
    res = k.below_value(level, ~np.isnan(level), limit)
    return _findings(ids, rule, res.firing, {"battery_pct": level})


def _missing(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rule: MissingDataRule,
    win: Window,
    discharged: NDArray[np.int64],
    now_ms: int,
    proto: Protocol,
) -> list[Finding]:
    """Silence counts from the first enrolment of a device that measures the metric (no
    such device: nothing is missing), and not before discharge (a patient just home has
    nothing to miss yet). With ``waking_hours_only``, only the silence outside the patient's
    local night counts toward the limit (offset at ``now_ms``: a DST change within the
    window shifts the night by an hour at most). The evidence is the real silence, found
    beyond the window.

    With a ``reminder``, the rule waits for the patient's reminder plus its grace period:
    it fires only while the latest reminder whose grace has run out went unanswered (no
    reading since ``lead_s`` before it; a reminder before counting began asks nothing)."""
    if ctx.measuring_since_ms is None:  # not recorded: expected from discharge
        first = np.zeros(len(ids), dtype=np.int64)
    else:
        enrolled = ctx.measuring_since_ms.get(rule.metric)
        first = enrolled[mask] if enrolled is not None else np.full(len(ids), -1, np.int64)
    start_ms = np.where(first >= 0, np.maximum(first, discharged), -1)
    counted_s = np.where(start_ms >= 0, (now_ms - start_ms) / 1000, np.nan).astype(np.float64)
    awake = None
    if rule.waking_hours_only:
        offsets = ctx.utc_offset_s(now_ms)[mask]
        awake = ~k.bins_in_hours(
            win.end_ms, win.bin_s, win.n_bins, offsets, rule.night_start_h, rule.night_end_h
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
        due_ms = latest_due_ms(
            now_ms, ctx.utc_offset_s(now_ms)[mask], reminder.at_s, rule.reminder_grace_s
        )
        last_ms[firing] = source.last_reading_ms(ids[firing], rule.metric, now_ms)
        answered = np.nan_to_num(last_ms, nan=-np.inf) >= due_ms - reminder.lead_s * 1000
        missed = (start_ms >= 0) & (due_ms >= start_ms) & ~answered
        firing = firing & missed
        evidence = {"reminder_missed": missed, "reminder_due_ms": due_ms}
    elif firing.any():
        last_ms[firing] = source.last_reading_ms(ids[firing], rule.metric, now_ms)
    silent_from_ms = np.fmax(last_ms, start_ms.astype(np.float64))
    silent_s = np.where(firing, (now_ms - silent_from_ms) / 1000, res.value)
    onset = np.where(firing, silent_from_ms, -1).astype(np.int64)
    evidence = {"silent_s": silent_s, "last_reading_ms": last_ms, **evidence}
    return _findings(ids, rule, firing, evidence, onset, priority)


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


def _news2(
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rule: News2Rule,
    short: Window,
    scores: list[News2Score] | None,
    now_ms: int,
    usual_night_spo2: NDArray[np.float64] | None,
    usual_day: dict[str, NDArray[np.float64]],
    usual_night_pulse: NDArray[np.float64] | None = None,
) -> list[Finding]:
    latest = {
        m: n2.latest(metric_of(short, m), MINUTE_S, rule.freshness_s, rule.settle_s)
        for m in NEWS2_METRICS
    }
    if rule.resp_rate_settle_s > rule.settle_s:
        # a patch's respiratory rate (talking, walking) over the longer span
        latest["resp_rate_per_min"] = n2.latest(
            metric_of(short, "resp_rate_per_min"),
            MINUTE_S,
            rule.freshness_s,
            rule.resp_rate_settle_s,
        )
    if rule.spo2_usual_allowance and "spo2_pct" in usual_day:
        # a patient whose own saturation runs low (COPD not on scale 2, an old lung):
        # their usual value is not a new sign; judged as lifted by how far it runs
        # below 96 % (at most the allowance); a fall from it still scores
        usual = usual_day["spo2_pct"]
        lift = np.nan_to_num(np.clip(96.0 - usual, 0.0, rule.spo2_usual_allowance))
        value, has = latest["spo2_pct"]
        latest["spo2_pct"] = (value + lift, has)
    if rule.resp_rate_usual_allowance and "resp_rate_per_min" in usual_day:
        # likewise a patient who breathes fast at rest from the first day (COPD): judged
        # as lowered by how far their usual rate runs above 20/min (at most the allowance)
        usual = usual_day["resp_rate_per_min"]
        drop = np.nan_to_num(np.clip(usual - RESP_NORMAL_TOP, 0.0, rule.resp_rate_usual_allowance))
        value, has = latest["resp_rate_per_min"]
        latest["resp_rate_per_min"] = (value - drop, has)
    asleep = asleep_now(
        ctx,
        mask,
        now_ms,
        rule.night_start_h,
        rule.night_end_h,
        rule.night_worn_extends_h,
        short.metrics.get("spo2_pct"),
    )
    if rule.night_spo2_settle_s > rule.settle_s:
        slow = n2.latest(
            metric_of(short, "spo2_pct"), MINUTE_S, rule.freshness_s, rule.night_spo2_settle_s
        )
        # asleep, the saturation is judged as the patient's own nights allow: raised by
        # how far their usual night runs below 96 % (at most the allowance), or by the
        # allowance for an unknown night
        usual = usual_night_spo2 if usual_night_spo2 is not None else np.full(len(ids), np.nan)
        deficit = np.clip(96.0 - usual, 0.0, rule.night_spo2_allowance)
        lift = np.where(np.isnan(usual), rule.night_spo2_unknown_allowance, deficit)
        day = latest["spo2_pct"]
        latest["spo2_pct"] = (np.where(asleep, slow[0] + lift, day[0]), day[1])
    if rule.night_pulse_allowance or rule.night_pulse_beta_blocker_allowance:
        # asleep, a slow pulse within the patient's own nights is their rest, not a sign:
        # raised toward 51/min by how far their usual night runs below 56 (a beta-blocked
        # patient's pulse, while their nights are unknown, by the beta-blocker allowance)
        usual_hr = usual_night_pulse if usual_night_pulse is not None else np.full(len(ids), np.nan)
        own = np.clip(
            PULSE_NORMAL_FLOOR + NIGHT_PULSE_MARGIN - usual_hr, 0.0, rule.night_pulse_allowance
        )
        unknown = np.where(ctx.beta_blocker[mask], rule.night_pulse_beta_blocker_allowance, 0.0)
        lift = np.where(np.isnan(usual_hr), unknown, own)
        pulse, has = latest["heart_rate_bpm"]
        raised = np.where(
            pulse < PULSE_NORMAL_FLOOR, np.minimum(pulse + lift, PULSE_NORMAL_FLOOR), pulse
        )
        latest["heart_rate_bpm"] = (np.where(asleep, raised, pulse), has)
    scale = news2_scale_override(ctx, ids)
    scale2 = np.where(np.isnan(scale), ctx.spo2_scale2[mask], scale == 2)
    result = n2.news2(
        resp_rate=latest["resp_rate_per_min"][0],
        resp_rate_present=latest["resp_rate_per_min"][1],
        spo2=latest["spo2_pct"][0],
        spo2_present=latest["spo2_pct"][1],
        on_oxygen=ctx.on_oxygen[mask],
        systolic=latest["bp_systolic_mmhg"][0],
        systolic_present=latest["bp_systolic_mmhg"][1],
        pulse=latest["heart_rate_bpm"][0],
        pulse_present=latest["heart_rate_bpm"][1],
        consciousness_alert=np.ones(len(ids), dtype=np.bool_),
        temp_c=latest["temp_c"][0],
        temp_present=latest["temp_c"][1],
        spo2_scale2=scale2,
    )
    if scores is not None:
        scores += [
            News2Score(int(pid), int(total), int(band), bool(complete))
            for pid, total, band, complete in zip(
                ids.tolist(),
                result.total.tolist(),
                result.band.tolist(),
                result.complete.tolist(),
                strict=True,
            )
        ]
    # asleep, a single red score from SpO2 alone is the sleeping saturation the SpO2
    # rules judge against the patient's own nights; it still counts in the total
    spo2_alone_asleep = np.zeros(len(ids), dtype=np.bool_)
    if not rule.night_spo2_single_opens:
        threes = result.scores == 3
        spo2_alone_asleep = asleep & threes[:, 1] & (threes.sum(axis=1) == 1)
    by_band = {
        n2.News2Band.LOW_MEDIUM: rule.low_medium,
        n2.News2Band.MEDIUM: rule.medium,
        n2.News2Band.HIGH: rule.high,
    }
    # a clinician may raise, per patient, the band from which NEWS2 opens an alert
    # (override ``alert_from_band``: 1 low-medium, 2 medium, 3 high), e.g. for a patient
    # whose chronic state already scores a 3
    from_band = _override(ctx, ids, rule.id, "alert_from_band", np.ones(len(ids)))
    priorities: list[str] = []
    firing = np.zeros(len(ids), dtype=np.bool_)
    for i, band in enumerate(result.band.tolist()):
        prio = by_band.get(n2.News2Band(band))
        ok = bool(result.complete[i]) or not rule.require_complete
        firing[i] = prio is not None and ok and band >= min(from_band[i], 3)
        if band == n2.News2Band.LOW_MEDIUM and spo2_alone_asleep[i]:
            firing[i] = False
        priorities.append(prio if prio is not None else "low")
    capped = [p if RANK[p] <= RANK[rule.priority] else rule.priority for p in priorities]
    scored = np.asarray(
        [
            ",".join(NEWS2_SCORED_AS[j] for j in np.flatnonzero(row).tolist())
            for row in (result.scores > 0)
        ],
        dtype=object,
    )
    return _findings(
        ids,
        rule,
        firing,
        {
            "score": result.total,
            "band": result.band,
            "complete": result.complete,
            "scored_params": scored,
        },
        None,
        capped,
    )


def scaled_threshold(
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rule: SustainedRule | ConfirmedRule,
) -> NDArray[np.float64]:
    """The rule's limit per patient: the scale-2 limit for patients on NEWS2 SpO2 scale 2
    (their target is 88-92%), then any clinician's override."""
    base = np.full(len(ids), rule.threshold, dtype=np.float64)
    if rule.scale2_threshold is not None:
        scale2 = ctx.spo2_scale2[mask] | (news2_scale_override(ctx, ids) == 2)
        base = np.where(scale2, rule.scale2_threshold, base)
    return _override(ctx, ids, rule.id, "threshold", base)


def _override(
    ctx: PatientContext, ids: NDArray[np.int64], rule_id: str, name: str, base: NDArray[np.float64]
) -> NDArray[np.float64]:
    out = base.copy()
    if ctx.overrides:
        for i, pid in enumerate(ids.tolist()):
            value = ctx.overrides.get((pid, rule_id, name))
            if value is not None:
                out[i] = value
    return out


def news2_scale_override(ctx: PatientContext, ids: NDArray[np.int64]) -> NDArray[np.float64]:
    """A clinician's per-patient choice of NEWS2 SpO2 scale (override ``news2.spo2_scale``);
    NaN where none."""
    return _override(ctx, ids, "news2", "spo2_scale", np.full(len(ids), np.nan))


def night_now(
    ctx: PatientContext, mask: NDArray[np.bool_], now_ms: int, start_h: float, end_h: float
) -> NDArray[np.bool_]:
    hour = k.local_hour(now_ms, ctx.utc_offset_s(now_ms)[mask])
    return k.in_hours(hour, start_h, end_h)


def asleep_now(
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    now_ms: int,
    start_h: float,
    end_h: float,
    worn_extends_h: float,
    spo2: MetricWindow | None,
) -> NDArray[np.bool_]:
    """The patient's night now: local ``start_h``-``end_h``, reaching ``worn_extends_h``
    further at either end while the overnight oximeter is worn (SpO2 in most of the last
    ``WORN_BINS`` one-minute bins of ``spo2``): bedtimes and rising times vary by hours
    (Roenneberg 2007), a spot check by day is one reading, not a stream."""
    night = night_now(ctx, mask, now_ms, start_h, end_h)
    if worn_extends_h <= 0 or spo2 is None or spo2.present.shape[1] < WORN_BINS:
        return night
    wide = night_now(
        ctx, mask, now_ms, (start_h - worn_extends_h) % 24, (end_h + worn_extends_h) % 24
    )
    worn = spo2.present[:, -WORN_BINS:].sum(axis=1) >= WORN_MIN_BINS
    return np.asarray(night | (wide & worn), dtype=np.bool_)


def night_threshold(
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rule: SustainedRule,
    usual_night: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    """The limit at the patient's night: ``below_usual_by`` beyond their usual night
    value (only ever more lenient than the day's limit), or ``unknown_offset`` beyond the
    day's limit while no earlier night is known."""
    threshold = scaled_threshold(ctx, mask, ids, rule)
    night = rule.night
    if night is None:
        return threshold
    usual = usual_night if usual_night is not None else np.full(len(ids), np.nan)
    low = not k.is_high(rule.direction)
    sign = -1.0 if low else 1.0
    relative = usual + sign * night.below_usual_by
    lenient = np.minimum(threshold, relative) if low else np.maximum(threshold, relative)
    return np.where(np.isnan(usual), threshold + sign * night.unknown_offset, lenient)


def usual_limited(
    threshold: NDArray[np.float64],
    usual: NDArray[np.float64],
    rule: SustainedRule | ConfirmedRule,
) -> NDArray[np.float64]:
    """A limit no closer than ``usual.below_by`` to the patient's usual value (their
    first day's median), never beyond ``usual.floor``: a patient whose saturation runs at
    90 % is not alerted on their usual value, and is judged at worst like a scale-2 one."""
    spec = rule.usual
    if spec is None:
        return threshold
    low = not k.is_high(rule.direction)
    relative = usual - spec.below_by if low else usual + spec.below_by
    bounded = np.maximum(relative, spec.floor) if low else np.minimum(relative, spec.floor)
    lenient = np.minimum(threshold, bounded) if low else np.maximum(threshold, bounded)
    return np.where(np.isnan(usual), threshold, lenient)


def sustained_limits(
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rule: SustainedRule,
    now_ms: int,
    usual_night: NDArray[np.float64] | None,
    short: Window | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Threshold and duration per patient now: by day the (scaled, overridden) limit; at
    the patient's night, the night limit and duration (see NightSpec)."""
    threshold = scaled_threshold(ctx, mask, ids, rule)
    duration = np.full(len(ids), rule.duration_s, dtype=np.int64)
    if rule.night is None:
        return threshold, duration
    spo2 = short.metrics.get("spo2_pct") if short is not None else None
    n = rule.night
    asleep = asleep_now(ctx, mask, now_ms, n.start_h, n.end_h, n.worn_extends_h, spo2)
    at_night = night_threshold(ctx, mask, ids, rule, usual_night)
    return (
        np.where(asleep, at_night, threshold),
        np.where(asleep, rule.night.duration_s, duration).astype(np.int64),
    )


def usual_nights(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    pids: list[int],
    rules: list[SustainedRule],
    now_ms: int,
) -> dict[str, NDArray[np.float64]]:
    """Per metric, each patient's usual value at night: the median of the hourly means of
    their earlier nights (the last 7 days, tonight excluded); NaN with too few hours."""
    metrics = sorted({r.metric for r in rules})
    win = source.window(pids, metrics, now_ms, NIGHTS_S, HOUR_S)
    mid_ms = win.bin_starts_ms() + HOUR_S // 2 * 1000
    offsets = ctx.utc_offset_s(now_ms)[mask]
    hours = (((mid_ms[None, :] // 1000) + offsets[:, None]) % 86_400) / 3600.0
    out = {}
    for metric in metrics:
        spec = next(r.night for r in rules if r.metric == metric and r.night is not None)
        night = k.in_hours(hours, spec.start_h, spec.end_h)
        earlier = (mid_ms < now_ms - NIGHT_EXCLUDE_S * 1000)[None, :]
        m = metric_of(win, metric)
        sel = m.present & night & earlier
        med = k.masked_median(m.values, sel)
        out[metric] = np.where(sel.sum(axis=1) >= spec.min_usual_hours, med, np.nan)
    return out


def _spot_rules(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rules: list[Rule],
    now_ms: int,
    usual: Mapping[str, NDArray[np.float64]],
) -> list[Finding]:
    """Rules that work on spot checks as on continuous data: confirmed limits, changes
    from the patient's usual value (``usual``, per metric), the sepsis screen and the
    rhythm rule."""
    confirm = [r for r in rules if isinstance(r, ConfirmedRule | RelativeRule)]
    sepsis = [r for r in rules if isinstance(r, SepsisScreenRule)]
    rhythm = [r for r in rules if isinstance(r, RhythmRule)]
    if not (confirm or sepsis or rhythm):
        return []
    pids = ids.tolist()
    # one window per metric, each as long as its own rules need (a thermometer's 8 h of
    # 1-minute bins is cheap, a patch's pulse over as long is not)
    spans: dict[str, int] = {}
    for r in confirm:
        need = r.freshness_s + r.max_gap_s + r.spot_gap_s + r.settle_s
        spans[r.metric] = max(spans.get(r.metric, 0), need)
    if rhythm:
        spans["rr_irregularity"] = max(r.duration_s + r.max_gap_s for r in rhythm)
        spans["heart_rate_bpm"] = max(spans.get("heart_rate_bpm", 0), 2 * SPOT_SETTLE_S)
    wins = {m: source.window(pids, [m], now_ms, span, MINUTE_S) for m, span in spans.items()}

    out: list[Finding] = []
    for rule in confirm:
        if isinstance(rule, ConfirmedRule):
            threshold = scaled_threshold(ctx, mask, ids, rule)
            if rule.usual is not None:
                threshold = usual_limited(threshold, usual[rule.metric], rule)
            direction: k.Direction = rule.direction
        else:
            base = usual[rule.metric]
            change_abs = _override(
                ctx, ids, rule.id, "change_abs", np.full(len(ids), rule.change_abs)
            )
            change = np.maximum(change_abs, base * rule.change_pct / 100)
            threshold = base + change if rule.direction == "above" else base - change
            direction = rule.direction
        win = wins[rule.metric]
        res = k.confirmed(
            k.settled(metric_of(win, rule.metric), rule.settle_s // MINUTE_S),
            MINUTE_S,
            direction,
            threshold,
            rule.run_s,
            rule.max_gap_s,
            rule.freshness_s,
            rule.spot_gap_s,
            rule.remeasure_after_s,
            rule.deadline_s,
        )
        evidence: dict[str, NDArray[Any]] = {
            "value": res.value,
            "threshold": threshold,
            "confirmation_requested": res.requested,
        }
        if isinstance(rule, RelativeRule):
            evidence["usual"] = usual[rule.metric]
        prio = [rule.requested_priority if r else rule.priority for r in res.requested.tolist()]
        out += _findings(ids, rule, res.firing, evidence, _onset(win, res.since_bin), prio)

    for srule in sepsis:
        # the latest temperature, and the pulse as its 15-min median, within freshness
        sw = source.window(pids, ["temp_c", "heart_rate_bpm"], now_ms, srule.freshness_s, 300)
        temp, t_has = k.latest_within(metric_of(sw, "temp_c"), 300, srule.freshness_s)
        pulse, p_has = n2.latest(
            metric_of(sw, "heart_rate_bpm"), 300, srule.freshness_s, SPOT_SETTLE_S
        )
        hr_above = _override(ctx, ids, srule.id, "hr_above", np.full(len(ids), srule.hr_above))
        base = usual["heart_rate_bpm"]
        with np.errstate(invalid="ignore"):
            febrile = (temp >= srule.temp_at_or_above) | (temp <= srule.temp_at_or_below)
            fast = (pulse > hr_above) | (pulse >= base + srule.hr_rise_above_usual)
        firing = t_has & p_has & febrile & fast
        out += _findings(ids, srule, firing, {"temp_c": temp, "pulse": pulse, "usual_pulse": base})

    if rhythm:
        hr_now, hr_has = n2.latest(
            metric_of(wins["heart_rate_bpm"], "heart_rate_bpm"),
            MINUTE_S,
            2 * SPOT_SETTLE_S,
            SPOT_SETTLE_S,
        )
    for rrule in rhythm:
        irr = k.sustained(
            metric_of(wins["rr_irregularity"], "rr_irregularity"),
            MINUTE_S,
            "above",
            np.full(len(ids), rrule.irregularity_above),
            rrule.duration_s,
            rrule.max_gap_s,
        )
        flagged = _flagged(source, pids, rrule, now_ms)
        firing = irr.firing | (flagged >= rrule.min_flagged)
        fast = hr_has & (np.nan_to_num(hr_now, nan=0.0) > rrule.fast_hr_above)
        prio = [rrule.priority if f else rrule.slow_priority for f in fast.tolist()]
        out += _findings(
            ids,
            rrule,
            firing,
            {"irregularity": irr.value, "irregular_readings": flagged, "pulse": hr_now},
            _onset(wins["rr_irregularity"], irr.since_bin),
            prio,
        )
    return out


def _usual_metrics(rules: list[Rule]) -> set[str]:
    """The metrics whose usual value some rule compares with: relative rules, limits
    that follow the usual, the sepsis screen's pulse, the signs of congestion."""
    metrics = {
        r.metric
        for r in rules
        if isinstance(r, RelativeRule) or (isinstance(r, ConfirmedRule) and r.usual is not None)
    }
    if any(isinstance(r, SepsisScreenRule) for r in rules):
        metrics.add("heart_rate_bpm")
    for r in rules:
        if isinstance(r, CongestionRule | DepletionRule):
            metrics |= set(r.sign_moves)
    return metrics


def _fluid_balance(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rules: list[Rule],
    now_ms: int,
    usual: Mapping[str, NDArray[np.float64]],
) -> list[Finding]:
    """A weight change with a sign (``alerts.fluid_balance``): fluid overload (a gain)
    and dehydration (a loss), the signs judged against ``usual``. One window of weights
    and one of signs serve every such rule (each reads its own trailing part of them)."""
    found = [r for r in rules if isinstance(r, CongestionRule | DepletionRule)]
    if not found:
        return []
    pids = ids.tolist()
    span = max(r.window_s for r in found) + HOUR_S
    weight = metric_of(source.window(pids, ["weight_kg"], now_ms, span, HOUR_S), "weight_kg")
    names = sorted({name for r in found for name in r.sign_moves})
    win = source.window(pids, names, now_ms, max(r.signs_s for r in found), HOUR_S)
    awake = k.awake_bins(win.bin_starts_ms(), ctx.utc_offset_s(now_ms)[mask])
    bins = np.arange(awake.shape[1])
    signs = {name: metric_of(win, name) for name in names}
    out: list[Finding] = []
    for rule in found:
        recent = awake & (bins >= awake.shape[1] - rule.signs_s // HOUR_S)[None, :]
        gain = isinstance(rule, CongestionRule)
        param = "rise_above" if gain else "fall_above"
        limit = rule_param(ctx, ids, rule, param, getattr(rule, param))
        res = weight_with_signs(rule, weight, signs, recent, HOUR_S, limit, usual)
        evidence = {"weight_rise" if gain else "weight_fall": res.change_kg}
        for name in rule.sign_moves:
            evidence[SIGN_EVIDENCE[name]] = res.signs[name]
            evidence[f"usual_{SIGN_EVIDENCE[name]}"] = usual[name]
        out += _findings(ids, rule, res.firing, evidence)
    return out


def _flagged(
    source: ReadingSource, pids: list[int], rule: RhythmRule, now_ms: int
) -> NDArray[np.int64]:
    """Hours of the trailing window with a pulse reading flagged irregular (a cuff's)."""
    win = source.window(pids, ["heart_rate_bpm"], now_ms, rule.flag_window_s, HOUR_S)
    return k.flagged_count(metric_of(win, "heart_rate_bpm"), HOUR_S, rule.flag_window_s)


def usual_values(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    pids: list[int],
    rules: list[Rule],
    metrics: set[str],
    now_ms: int,
    waking_only: bool = True,
) -> dict[str, NDArray[np.float64]]:
    """Per metric, each patient's usual value (hospital's and first day's: the nearer to
    the change watched for, see ``rules.usual_value``); ``waking_only``: learned from
    waking hours, as the spot checks it judges are taken."""
    if not metrics:
        return {}
    relative = [r for r in rules if isinstance(r, RelativeRule)]
    usual_s = max([r.usual_s for r in relative] + [86_400])
    min_points = min([r.min_usual_points for r in relative] + [2])
    discharged = ctx.discharged_ms[mask]
    known = discharged >= 0
    first = int(discharged[known].min()) if known.any() else now_ms - BASELINE_MAX_S * 1000
    span = min(max(now_ms - first, HOUR_S), BASELINE_MAX_S)
    win = source.window(pids, sorted(metrics), now_ms, span, HOUR_S)
    bin_start = win.bin_starts_ms()
    # the direction each metric's changes are watched in (a pulse rising: sepsis screen,
    # calf rule and relative rules alike; a pressure falling)
    watch: dict[str, k.Direction] = {r.metric: r.direction for r in relative}
    awake = k.awake_bins(bin_start, ctx.utc_offset_s(now_ms)[mask]) if waking_only else None
    out = {}
    for metric in metrics:
        field = USUAL_FIELDS.get(metric)
        entered = getattr(ctx, field)[mask] if field else np.full(len(pids), np.nan)
        out[metric] = k.usual_value(
            metric_of(win, metric),
            bin_start,
            discharged,
            usual_s,
            min_points,
            entered,
            watch.get(metric, "above"),
            awake,
        )
    return out
