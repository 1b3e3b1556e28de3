"""Fluid overload: a weight gain with a sign of congestion (``CongestionRule``).

A slow gain of half a kilogram a day stays under the guideline's 2 kg over 3 days until
the decompensation is days old; a smaller gain counts here when the saturation or the
resting pulse has moved from the patient's usual at the same time. Both signs are judged
on waking readings, as the usual value they are compared with was learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.protocol import CongestionRule
from alerts.window import MetricWindow

F = NDArray[np.float64]
B = NDArray[np.bool_]
MIN_SIGN_BINS = 2  # one stray spot reading is not a sign


@dataclass(frozen=True)
class Congestion:
    firing: B
    rise_kg: F
    spo2_pct: F  # the recent waking median
    pulse_bpm: F


def congestion(
    rule: CongestionRule,
    weight: MetricWindow,
    spo2: MetricWindow,
    pulse: MetricWindow,
    awake: B,
    bin_s: int,
    rise_above: F,
    usual_spo2: F,
    usual_pulse: F,
) -> Congestion:
    """Per patient, over windows of ``bin_s`` bins that end now: the weight's rise over
    its lowest of ``rule.window_s``, and each sign's median over its window's waking bins
    (``awake``, the signs' window: ``rule.signs_s``)."""
    rise = k.rise_over(weight, bin_s, rule.window_s, rise_above)

    def waking_median(metric: MetricWindow) -> F:
        mask = metric.present & awake
        median = k.masked_median(metric.values, mask)
        return np.where(mask.sum(axis=1) >= MIN_SIGN_BINS, median, np.nan)

    spo2_now, pulse_now = waking_median(spo2), waking_median(pulse)
    with np.errstate(invalid="ignore"):
        low = spo2_now <= usual_spo2 - rule.spo2_below_usual_by
        fast = pulse_now >= usual_pulse + rule.hr_above_usual_by
    firing = rise.firing & (low | fast)
    return Congestion(firing, rise.value, spo2_now, pulse_now)
