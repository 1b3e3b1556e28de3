"""Rules that work on spot checks as on continuous data: confirmed limits (a single
abnormal spot reading asks for a re-measurement before it escalates), changes from the
patient's usual value, the sepsis screen and the rhythm rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts import news2 as n2
from alerts import rules as k
from alerts.evaluation_round import HOUR_S, MINUTE_S, Round, run_start_ms
from alerts.lifecycle import Finding
from alerts.limits import own_limit, scaled_threshold, usual_limited
from alerts.protocol import ConfirmedRule, RelativeRule, RhythmRule, Rule, SepsisScreenRule
from alerts.window import metric_of

SPOT_SETTLE_S = 900  # the pulse a sepsis screen or a rhythm rule judges: its 15-min median


def spot_findings(
    rnd: Round, rules: list[Rule], usual: Mapping[str, NDArray[np.float64]]
) -> list[Finding]:
    """Rules that work on spot checks as on continuous data: confirmed limits, changes
    from the patient's usual value (``usual``, per metric), the sepsis screen and the
    rhythm rule."""
    confirm = [r for r in rules if isinstance(r, ConfirmedRule | RelativeRule)]
    sepsis = [r for r in rules if isinstance(r, SepsisScreenRule)]
    rhythm = [r for r in rules if isinstance(r, RhythmRule)]
    if not (confirm or sepsis or rhythm):
        return []
    ids = rnd.ids
    # one window per metric, each as long as its own rules need (a thermometer's 8 h of
    # 1-minute bins is cheap, a patch's pulse over as long is not)
    spans: dict[str, int] = {}
    for r in confirm:
        need = r.freshness_s + r.max_gap_s + r.spot_gap_s + r.settle_s
        spans[r.metric] = max(spans.get(r.metric, 0), need)
    if rhythm:
        spans["rr_irregularity"] = max(r.duration_s + r.max_gap_s for r in rhythm)
        spans["heart_rate_bpm"] = max(spans.get("heart_rate_bpm", 0), 2 * SPOT_SETTLE_S)
    wins = {m: rnd.window([m], span, MINUTE_S) for m, span in spans.items()}

    out: list[Finding] = []
    for rule in confirm:
        if isinstance(rule, ConfirmedRule):
            threshold = scaled_threshold(rnd, rule)
            if rule.usual is not None:
                threshold = usual_limited(threshold, usual[rule.metric], rule)
            direction: k.Direction = rule.direction
        else:
            base = usual[rule.metric]
            change_abs = rnd.param(rule.id, "change_abs", rule.change_abs)
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
        out += rnd.findings(rule, res.firing, evidence, run_start_ms(win, res.since_bin), prio)

    for srule in sepsis:
        # the latest temperature, and the pulse as its 15-min median, within freshness
        sw = rnd.window(["temp_c", "heart_rate_bpm"], srule.freshness_s, 300)
        temp, t_has = k.latest_within(metric_of(sw, "temp_c"), 300, srule.freshness_s)
        pulse, p_has = n2.latest(
            metric_of(sw, "heart_rate_bpm"), 300, srule.freshness_s, SPOT_SETTLE_S
        )
        hr_above = rnd.param(srule.id, "hr_above", srule.hr_above)
        base = usual["heart_rate_bpm"]
        cold = np.full(len(ids), srule.temp_at_or_below)
        if srule.cold_usual is not None:
            cold = own_limit(cold, usual["temp_c"], srule.cold_usual, low=True)
        with np.errstate(invalid="ignore"):
            febrile = (temp >= srule.temp_at_or_above) | (temp <= cold)
            fast = (pulse > hr_above) | (pulse >= base + srule.hr_rise_above_usual)
        firing = t_has & p_has & febrile & fast
        out += rnd.findings(srule, firing, {"temp_c": temp, "pulse": pulse, "usual_pulse": base})

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
        flagged = _flagged(rnd, rrule)
        firing = irr.firing | (flagged >= rrule.min_flagged)
        fast = hr_has & (np.nan_to_num(hr_now, nan=0.0) > rrule.fast_hr_above)
        prio = [rrule.priority if f else rrule.slow_priority for f in fast.tolist()]
        out += rnd.findings(
            rrule,
            firing,
            {"irregularity": irr.value, "irregular_readings": flagged, "pulse": hr_now},
            run_start_ms(wins["rr_irregularity"], irr.since_bin),
            prio,
        )
    return out


def _flagged(rnd: Round, rule: RhythmRule) -> NDArray[np.int64]:
    """Hours of the trailing window with a pulse reading flagged irregular (a cuff's)."""
    win = rnd.window(["heart_rate_bpm"], rule.flag_window_s, HOUR_S)
    return k.flagged_count(metric_of(win, "heart_rate_bpm"), HOUR_S, rule.flag_window_s)
