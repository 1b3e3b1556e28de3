"""Each patient's limit for a rule now: the protocol's, on NEWS2 SpO2 scale 2 the
scale-2 one, a clinician's override, no closer than the rules allow to the patient's
usual value, and at the patient's night the limit of their own nights."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.evaluation_round import Round
from alerts.protocol import ConfirmedRule, SustainedRule, UsualSpec
from alerts.sleep import asleep_now
from alerts.window import Window


def news2_scale_override(rnd: Round) -> NDArray[np.float64]:
    """A clinician's per-patient choice of NEWS2 SpO2 scale (override ``news2.spo2_scale``);
    NaN where none."""
    return rnd.overridden("news2", "spo2_scale", np.full(len(rnd.ids), np.nan))


def scaled_threshold(rnd: Round, rule: SustainedRule | ConfirmedRule) -> NDArray[np.float64]:
    """The rule's limit per patient: the scale-2 limit for patients on NEWS2 SpO2 scale 2
    (their target is 88-92%), then any clinician's override."""
    base = np.full(len(rnd.ids), rule.threshold, dtype=np.float64)
    if rule.scale2_threshold is not None:
        scale2 = rnd.ctx.spo2_scale2[rnd.mask] | (news2_scale_override(rnd) == 2)
        base = np.where(scale2, rule.scale2_threshold, base)
    return rnd.overridden(rule.id, "threshold", base)


def night_threshold(
    rnd: Round, rule: SustainedRule, usual_night: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """The limit at the patient's night: ``below_usual_by`` beyond their usual night
    value (only ever more lenient than the day's limit), or ``unknown_offset`` beyond the
    day's limit while no earlier night is known."""
    threshold = scaled_threshold(rnd, rule)
    night = rule.night
    if night is None:
        return threshold
    usual = usual_night if usual_night is not None else np.full(len(rnd.ids), np.nan)
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
    """A limit no closer than ``usual.below_by`` to the patient's usual value
    (alerts/usual.py), never beyond ``usual.floor``: a patient whose saturation runs at
    90 % is not alerted on their usual value, and is judged at worst like a scale-2 one."""
    if rule.usual is None:
        return threshold
    return own_limit(threshold, usual, rule.usual, low=not k.is_high(rule.direction))


def own_limit(
    threshold: NDArray[np.float64], usual: NDArray[np.float64], spec: UsualSpec, low: bool
) -> NDArray[np.float64]:
    """``threshold``, moved to ``spec.below_by`` beyond each patient's usual value where
    that is nearer, never beyond ``spec.floor`` (a limit below: only ever lowered; above:
    only ever raised); unchanged where the usual is unknown."""
    relative = usual - spec.below_by if low else usual + spec.below_by
    bounded = np.maximum(relative, spec.floor) if low else np.minimum(relative, spec.floor)
    lenient = np.minimum(threshold, bounded) if low else np.maximum(threshold, bounded)
    return np.where(np.isnan(usual), threshold, lenient)


def sustained_limits(
    rnd: Round,
    rule: SustainedRule,
    usual_night: NDArray[np.float64] | None,
    short: Window | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Threshold and duration per patient now: by day the (scaled, overridden) limit; at
    the patient's night, the night limit and duration (see NightSpec)."""
    threshold = scaled_threshold(rnd, rule)
    duration = np.full(len(rnd.ids), rule.duration_s, dtype=np.int64)
    if rule.night is None:
        return threshold, duration
    spo2 = short.metrics.get("spo2_pct") if short is not None else None
    n = rule.night
    asleep = asleep_now(rnd, n.start_h, n.end_h, n.worn_extends_h, spo2)
    at_night = night_threshold(rnd, rule, usual_night)
    return (
        np.where(asleep, at_night, threshold),
        np.where(asleep, rule.night.duration_s, duration).astype(np.int64),
    )
