"""From protocols, committed readings and patient context to findings: for each protocol,
the windows its rules need are loaded once for all its patients, and every rule is one
array operation over all of them. The rules on limits held over time (sustained, shock
index, trends over hours and days, the deviation from a baseline) are here; the others
each have a module of their own, given the same ``Round``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.context import PatientContext
from alerts.evaluation_round import HOUR_S, MINUTE_S, Round, run_start_ms
from alerts.fluid_balance import fluid_balance_findings
from alerts.kit_rules import kit_findings
from alerts.lifecycle import Finding
from alerts.limits import sustained_limits, usual_limited
from alerts.news2_rule import NEWS2_METRICS, News2Score, news2_findings
from alerts.protocol import (
    BaselineRule,
    FallRule,
    News2Rule,
    Protocol,
    RiseRule,
    Rule,
    ShockIndexRule,
    SustainedRule,
    TrendRule,
)
from alerts.reported import evaluate_reported
from alerts.source import ReadingSource
from alerts.spot_rules import spot_findings
from alerts.usual import baseline_span_s, usual_metrics, usual_nights, usual_values
from alerts.window import Window, metric_of

__all__ = ["News2Score", "evaluate"]


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
        rnd = Round(source, ctx, ctx.subset(name), now_ms)
        findings += _evaluate_protocol(rnd, proto, scores)
    return findings


def _evaluate_protocol(
    rnd: Round, proto: Protocol, scores: list[News2Score] | None
) -> list[Finding]:
    rules = proto.rules
    out = _short_rules(rnd, rules, scores)
    out += _long_rules(rnd, rules)
    # each patient's usual values, once for the rules that compare with them
    usual = usual_values(rnd, rules, usual_metrics(rules))
    out += fluid_balance_findings(rnd, rules, usual)
    out += _baseline_rules(rnd, rules)
    out += spot_findings(rnd, rules, usual)
    out += evaluate_reported(rnd, rules)  # the patient's answers
    out += kit_findings(rnd, proto)
    return out


def _short_span(rules: list[Rule]) -> tuple[set[str], int]:
    """The metrics and span of the one-minute window the sustained rules, NEWS2 and the
    shock index read."""
    metrics = {r.metric for r in rules if isinstance(r, SustainedRule)}
    span = max(
        [
            max(r.duration_s, r.night.duration_s if r.night else 0) + r.max_gap_s + r.settle_s
            for r in rules
            if isinstance(r, SustainedRule)
        ]
        + [r.freshness_s for r in rules if isinstance(r, News2Rule | ShockIndexRule)]
        + [HOUR_S]
    )
    if any(isinstance(r, News2Rule) for r in rules):
        metrics |= set(NEWS2_METRICS)
        span = max(
            [span] + [r.night_spo2_settle_s + HOUR_S for r in rules if isinstance(r, News2Rule)]
        )
    if any(isinstance(r, ShockIndexRule) for r in rules):
        metrics |= {"heart_rate_bpm", "bp_systolic_mmhg"}
    return metrics, span


def _short_rules(rnd: Round, rules: list[Rule], scores: list[News2Score] | None) -> list[Finding]:
    """Sustained limits, NEWS2 and the shock index, on one-minute bins."""
    metrics, span = _short_span(rules)
    short = rnd.window(metrics, span, MINUTE_S)
    night_rules = [r for r in rules if isinstance(r, SustainedRule) and r.night is not None]
    usual_night = usual_nights(rnd, night_rules) if night_rules else {}
    usual_day = _usual_days(rnd, rules)
    out: list[Finding] = []
    for rule in rules:
        if isinstance(rule, SustainedRule):
            threshold, duration = sustained_limits(rnd, rule, usual_night.get(rule.metric), short)
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
            out += rnd.findings(
                rule,
                res.firing,
                {"value": res.value, "threshold": threshold},
                run_start_ms(short, res.since_bin),
            )
        elif isinstance(rule, News2Rule):
            out += news2_findings(rnd, rule, short, scores, usual_night, usual_day)
        elif isinstance(rule, ShockIndexRule):
            hr, sbp = metric_of(short, "heart_rate_bpm"), metric_of(short, "bp_systolic_mmhg")
            ratio, has = k.paired_ratio(hr, sbp, MINUTE_S, rule.freshness_s)
            firing = has & (np.where(has, ratio, 0.0) > rule.threshold)
            out += rnd.findings(rule, firing, {"shock_index": ratio})
    return out


def _usual_days(rnd: Round, rules: list[Rule]) -> dict[str, NDArray[np.float64]]:
    """How low (or fast) each patient runs over whole days, their nights included: what
    NEWS2's allowances and the sustained rules' own limits were tuned on."""
    wanted = {r.metric for r in rules if isinstance(r, SustainedRule) and r.usual is not None}
    for r in rules:
        if isinstance(r, News2Rule):
            if r.spo2_usual_allowance:
                wanted.add("spo2_pct")
            if r.resp_rate_usual_allowance:
                wanted.add("resp_rate_per_min")
    return usual_values(rnd, [], wanted, waking_only=False)


def _long_rules(rnd: Round, rules: list[Rule]) -> list[Finding]:
    """Trends, rises and falls over hours and days, on hourly bins."""
    long_rules = [r for r in rules if isinstance(r, TrendRule | RiseRule | FallRule)]
    if not long_rules:
        return []
    span = max(r.window_s for r in long_rules) + HOUR_S
    long = rnd.window({r.metric for r in long_rules}, span, HOUR_S)
    out: list[Finding] = []
    for rule in long_rules:
        if isinstance(rule, TrendRule):
            limit = rnd.param(rule.id, "slope_per_h_above", rule.slope_per_h_above)
            res = k.rule_trend(
                metric_of(long, rule.metric), HOUR_S, rule.window_s, rule.min_points, limit
            )
            out += rnd.findings(rule, res.firing, {"slope_per_h": res.value})
        elif isinstance(rule, RiseRule):
            limit = rnd.param(rule.id, "rise_above", rule.rise_above)
            res = k.rise_over(metric_of(long, rule.metric), HOUR_S, rule.window_s, limit)
            out += rnd.findings(rule, res.firing, {"rise": res.value})
        else:
            limit = rnd.param(rule.id, "fall_above", rule.fall_above)
            res = k.fall_over(
                metric_of(long, rule.metric), HOUR_S, rule.window_s, limit, rule.fall_pct_above
            )
            out += rnd.findings(rule, res.firing, {"fall": res.value})
    return out


def _baseline_rules(rnd: Round, rules: list[Rule]) -> list[Finding]:
    """A deviation from the patient's own baseline of their first days after discharge."""
    base_rules = [r for r in rules if isinstance(r, BaselineRule)]
    if not base_rules:
        return []
    discharged = rnd.discharged_ms()
    known = discharged >= 0
    # no discharge known: no baseline either (an hour's window, read for nothing)
    span = baseline_span_s(rnd, unknown_s=HOUR_S)
    base: Window = rnd.window({r.metric for r in base_rules}, span, HOUR_S)
    bin_start = base.bin_starts_ms()
    out: list[Finding] = []
    for rule in base_rules:
        until = np.where(known, discharged + int(rule.baseline_days * 86_400_000), -1)
        bmask = (bin_start[None, :] >= discharged[:, None]) & (bin_start[None, :] < until[:, None])
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
        out += rnd.findings(rule, res.firing, {"deviation": res.value})
    return out
