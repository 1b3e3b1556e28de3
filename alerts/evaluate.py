"""From protocols, committed readings and patient context to findings: for each protocol,
the windows its rules need are loaded once for all its patients, and every rule is one
array operation over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts import news2 as n2
from alerts import rules as k
from alerts.context import PatientContext
from alerts.lifecycle import RANK, Finding
from alerts.protocol import (
    BaselineRule,
    BatteryRule,
    GatewayOfflineRule,
    ImplausibleRateRule,
    MissingDataRule,
    News2Rule,
    Protocol,
    RiseRule,
    Rule,
    ShockIndexRule,
    SustainedRule,
    TrendRule,
)
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
    priority: list[str] | None = None,
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
        [r.duration_s + r.max_gap_s for r in rules if isinstance(r, SustainedRule)]
        + [r.freshness_s for r in rules if isinstance(r, News2Rule | ShockIndexRule)]
        + [HOUR_S]
    )
    if any(isinstance(r, News2Rule) for r in rules):
        short_metrics |= set(NEWS2_METRICS)
    if any(isinstance(r, ShockIndexRule) for r in rules):
        short_metrics |= {"heart_rate_bpm", "bp_systolic_mmhg"}
    short = source.window(pids, sorted(short_metrics), now_ms, short_span, MINUTE_S)

    for rule in rules:
        if isinstance(rule, SustainedRule):
            threshold = rule_param(ctx, ids, rule, "threshold", rule.threshold)
            res = k.sustained(
                metric_of(short, rule.metric),
                MINUTE_S,
                rule.direction,
                threshold,
                rule.duration_s,
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
            out += _news2(ctx, mask, ids, rule, short, scores)
        elif isinstance(rule, ShockIndexRule):
            hr, sbp = metric_of(short, "heart_rate_bpm"), metric_of(short, "bp_systolic_mmhg")
            ratio, has = k.paired_ratio(hr, sbp, MINUTE_S, rule.freshness_s)
            firing = has & (np.where(has, ratio, 0.0) > rule.threshold)
            out += _findings(ids, rule, firing, {"shock_index": ratio})

    long_rules = [r for r in rules if isinstance(r, TrendRule | RiseRule)]
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
            else:
                limit = rule_param(ctx, ids, rule, "rise_above", rule.rise_above)
                res = k.rise_over(metric_of(long, rule.metric), HOUR_S, rule.window_s, limit)
                out += _findings(ids, rule, res.firing, {"rise": res.value})

    base_rules = [r for r in rules if isinstance(r, BaselineRule)]
    if base_rules:
        discharged = ctx.discharged_ms[mask]
        known = discharged >= 0
        first = int(discharged[known].min()) if known.any() else now_ms
        span = min(max(now_ms - first, HOUR_S), BASELINE_MAX_S)
        base = source.window(pids, sorted({r.metric for r in base_rules}), now_ms, span, HOUR_S)
        start_ms = base.end_ms - base.n_bins * HOUR_S * 1000
        bin_start = start_ms + np.arange(base.n_bins, dtype=np.int64) * HOUR_S * 1000
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

    missing_rules = [r for r in rules if isinstance(r, MissingDataRule)]
    if missing_rules:
        span = max(r.max_silence_s for r in missing_rules) + MISSING_BIN_S
        win = source.window(
            pids, sorted({r.metric for r in missing_rules}), now_ms, span, MISSING_BIN_S
        )
        discharged = ctx.discharged_ms[mask]
        for rule in missing_rules:
            # silence counts from discharge: a patient just home has nothing to miss yet
            # (unknown discharge: from whenever, the safer side)
            expected = (discharged < 0) | (now_ms - discharged > rule.max_silence_s * 1000)
            res = k.missing_data(
                metric_of(win, rule.metric), MISSING_BIN_S, rule.max_silence_s, expected
            )
            out += _findings(ids, rule, res.firing, {"silent_s": res.value})

    for rule in rules:
        if isinstance(rule, GatewayOfflineRule):
            since = source.gateway_offline_since_ms(ids, now_ms)
            offline_s = np.where(np.isnan(since), 0.0, (now_ms - since) / 1000)
            firing = offline_s >= rule.after_s
            out += _findings(ids, rule, firing, {"offline_s": offline_s})
        elif isinstance(rule, BatteryRule):
            level = source.lowest_battery_pct(ids, now_ms - rule.freshness_s * 1000, now_ms)
            res = k.below_value(level, ~np.isnan(level), rule.below_pct)
            out += _findings(ids, rule, res.firing, {"battery_pct": level})
        elif isinstance(rule, ImplausibleRateRule):
            bad, good = source.implausible_counts(ids, now_ms - rule.window_s * 1000, now_ms)
            res = k.rate_above(bad, bad + good, rule.min_readings, rule.rate_above)
            out += _findings(ids, rule, res.firing, {"implausible": bad, "stored": good})
    return out


def _news2(
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    ids: NDArray[np.int64],
    rule: News2Rule,
    short: Window,
    scores: list[News2Score] | None,
) -> list[Finding]:
    latest = {
        m: n2.latest(metric_of(short, m), MINUTE_S, rule.freshness_s, rule.settle_s)
        for m in NEWS2_METRICS
    }
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
        spo2_scale2=ctx.spo2_scale2[mask],
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
    by_band = {
        n2.News2Band.LOW_MEDIUM: rule.low_medium,
        n2.News2Band.MEDIUM: rule.medium,
        n2.News2Band.HIGH: rule.high,
    }
    priorities: list[str] = []
    firing = np.zeros(len(ids), dtype=np.bool_)
    for i, band in enumerate(result.band.tolist()):
        prio = by_band.get(n2.News2Band(band))
        ok = bool(result.complete[i]) or not rule.require_complete
        firing[i] = prio is not None and ok
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
