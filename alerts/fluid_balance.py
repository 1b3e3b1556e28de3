"""A weight change too small to alert alone that comes with a sign in the circulation.

Fluid overload (``CongestionRule``): a slow gain of half a kilogram a day stays under the
guideline's 2 kg over 3 days until the decompensation is days old; a smaller gain counts
when the saturation or the resting pulse has moved from the patient's usual at the same
time. Dehydration (``DepletionRule``): a loss of a kilogram is within the day-to-day
wander of a morning weight, but with a pulse faster or a pressure lower than the
patient's usual it is lost circulating volume. Signs are judged on waking readings, as
the usual value they are compared with was learned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.evaluation_round import HOUR_S, Round
from alerts.lifecycle import Finding
from alerts.protocol import CongestionRule, DepletionRule, Rule
from alerts.window import MetricWindow, metric_of

F = NDArray[np.float64]
B = NDArray[np.bool_]
MIN_SIGN_BINS = 2  # one stray spot reading is not a sign
# the evidence key of each sign a weight change is read with, and "usual_" + it: the
# patient's usual
SIGN_EVIDENCE = {"spo2_pct": "spo2", "heart_rate_bpm": "pulse", "bp_systolic_mmhg": "sbp"}


@dataclass(frozen=True)
class WeightWithSigns:
    firing: B
    change_kg: F  # the gain (congestion) or the loss (depletion)
    signs: dict[str, F]  # per sign's metric, the recent waking median


def waking_median(metric: MetricWindow, awake: B) -> F:
    """Per patient, the median of the waking bins; NaN with fewer than two of them."""
    mask = metric.present & awake
    median = k.masked_median(metric.values, mask)
    return np.where(mask.sum(axis=1) >= MIN_SIGN_BINS, median, np.nan)


def weight_with_signs(
    rule: CongestionRule | DepletionRule,
    weight: MetricWindow,
    signs: Mapping[str, MetricWindow],
    awake: B,
    bin_s: int,
    limit_kg: F,
    usual: Mapping[str, F],
) -> WeightWithSigns:
    """Per patient, over windows of ``bin_s`` bins that end now: the weight's rise over
    its lowest of ``rule.window_s`` (congestion) or fall under its highest (depletion,
    as the weight-loss rule measures it) beyond ``limit_kg``, and each sign's median over
    the bins ``awake`` marks (the waking ones of the signs' ``rule.signs_s``), moved from
    the patient's usual by ``rule.sign_moves`` (negative: below it)."""
    if isinstance(rule, CongestionRule):
        change = k.rise_over(weight, bin_s, rule.window_s, limit_kg)
    else:
        change = k.fall_over(weight, bin_s, rule.window_s, limit_kg, rule.fall_pct_above)
    now = {name: waking_median(signs[name], awake) for name in rule.sign_moves}
    moved = np.zeros(len(limit_kg), dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        for name, by in rule.sign_moves.items():
            if by < 0:
                moved |= now[name] <= usual[name] + by
            else:
                moved |= now[name] >= usual[name] + by
    return WeightWithSigns(change.firing & moved, change.value, now)


def fluid_balance_findings(rnd: Round, rules: list[Rule], usual: Mapping[str, F]) -> list[Finding]:
    """Fluid overload (a gain) and dehydration (a loss), the signs judged against
    ``usual``. One window of weights and one of signs serve every such rule (each reads
    its own trailing part of them)."""
    found = [r for r in rules if isinstance(r, CongestionRule | DepletionRule)]
    if not found:
        return []
    span = max(r.window_s for r in found) + HOUR_S
    weight = metric_of(rnd.window(["weight_kg"], span, HOUR_S), "weight_kg")
    names = sorted({name for r in found for name in r.sign_moves})
    win = rnd.window(names, max(r.signs_s for r in found), HOUR_S)
    awake = k.awake_bins(win.bin_starts_ms(), rnd.offsets_s)
    bins = np.arange(awake.shape[1])
    signs = {name: metric_of(win, name) for name in names}
    out: list[Finding] = []
    for rule in found:
        recent = awake & (bins >= awake.shape[1] - rule.signs_s // HOUR_S)[None, :]
        gain = isinstance(rule, CongestionRule)
        param = "rise_above" if gain else "fall_above"
        limit = rnd.param(rule.id, param, getattr(rule, param))
        res = weight_with_signs(rule, weight, signs, recent, HOUR_S, limit, usual)
        evidence = {"weight_rise" if gain else "weight_fall": res.change_kg}
        for name in rule.sign_moves:
            evidence[SIGN_EVIDENCE[name]] = res.signs[name]
            evidence[f"usual_{SIGN_EVIDENCE[name]}"] = usual[name]
        out += rnd.findings(rule, res.firing, evidence)
    return out
