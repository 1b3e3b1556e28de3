"""NEWS2 (Royal College of Physicians, 2017), vectorised over patients.

Measured values are first rounded to the chart's resolution (whole numbers for
respiration, SpO2, systolic pressure and pulse; one decimal for temperature; half up),
then scored band by band exactly as the chart prints them. A parameter without a fresh
value scores 0 but makes the result incomplete: the caller sees ``complete`` and decides
(an incomplete NEWS2 is never presented as a full one).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from alerts.rules import masked_median
from alerts.window import MetricWindow

F = NDArray[np.float64]
B = NDArray[np.bool_]


class News2Band(IntEnum):
    LOW = 0
    LOW_MEDIUM = 1  # total 0-4 with a single parameter scoring 3
    MEDIUM = 2  # total 5-6
    HIGH = 3  # total 7 or more


@dataclass(frozen=True)
class News2Result:
    scores: NDArray[np.int64]  # (P, 7): RR, SpO2, air/O2, SBP, pulse, consciousness, temp
    total: NDArray[np.int64]
    band: NDArray[np.int64]
    complete: B


def _round_half_up(x: F, decimals: int = 0) -> F:
    scale = 10.0**decimals
    return np.floor(x * scale + 0.5) / scale


def _bands(x: F, edges: list[float], scores: list[int]) -> NDArray[np.int64]:
    """Score by the first upper edge the value does not exceed (edges ascending)."""
    idx = np.searchsorted(np.asarray(edges), x, side="left")
    return np.asarray(scores, dtype=np.int64)[idx]


def score_resp_rate(rr: F) -> NDArray[np.int64]:
    return _bands(_round_half_up(rr), [8, 11, 20, 24], [3, 1, 0, 2, 3])


def score_spo2_scale1(spo2: F) -> NDArray[np.int64]:
    return _bands(_round_half_up(spo2), [91, 93, 95], [3, 2, 1, 0])


def score_spo2_scale2(spo2: F, on_oxygen: B) -> NDArray[np.int64]:
    s = _round_half_up(spo2)
    low = _bands(s, [83, 85, 87, 92], [3, 2, 1, 0, 0])
    high_on_o2 = _bands(s, [94, 96], [1, 2, 3])
    return np.where((s >= 93) & on_oxygen, high_on_o2, low)


def score_systolic(sbp: F) -> NDArray[np.int64]:
    return _bands(_round_half_up(sbp), [90, 100, 110, 219], [3, 2, 1, 0, 3])


def score_pulse(pulse: F) -> NDArray[np.int64]:
    return _bands(_round_half_up(pulse), [40, 50, 90, 110, 130], [3, 1, 0, 1, 2, 3])


def score_temp(temp_c: F) -> NDArray[np.int64]:
    t = _round_half_up(temp_c, 1)
    # edges nudged by half a resolution step so that 35.0 / 36.0 / 38.0 / 39.0 fall low
    return _bands(t, [35.05, 36.05, 38.05, 39.05], [3, 1, 0, 1, 2])


def news2(
    *,
    resp_rate: F,
    resp_rate_present: B,
    spo2: F,
    spo2_present: B,
    on_oxygen: B,
    systolic: F,
    systolic_present: B,
    pulse: F,
    pulse_present: B,
    consciousness_alert: B,
    temp_c: F,
    temp_present: B,
    spo2_scale2: B,
) -> News2Result:
    def scored(score: NDArray[np.int64], present: B) -> NDArray[np.int64]:
        return np.where(present, score, 0)  # absent scores 0; ``complete`` says so

    spo2_score = np.where(spo2_scale2, score_spo2_scale2(spo2, on_oxygen), score_spo2_scale1(spo2))
    with np.errstate(invalid="ignore"):  # absent values may be NaN; masked just below
        scores = np.stack(
            [
                scored(score_resp_rate(resp_rate), resp_rate_present),
                scored(spo2_score, spo2_present),
                np.where(on_oxygen, 2, 0),
                scored(score_systolic(systolic), systolic_present),
                scored(score_pulse(pulse), pulse_present),
                np.where(consciousness_alert, 0, 3),
                scored(score_temp(temp_c), temp_present),
            ],
            axis=1,
        ).astype(np.int64)
    total = scores.sum(axis=1)
    band = np.select(
        [total >= 7, total >= 5, (scores == 3).any(axis=1)],
        [News2Band.HIGH, News2Band.MEDIUM, News2Band.LOW_MEDIUM],
        News2Band.LOW,
    ).astype(np.int64)
    complete = resp_rate_present & spo2_present & systolic_present & pulse_present & temp_present
    return News2Result(scores, total, band, complete)


def latest(metric: MetricWindow, bin_s: int, freshness_s: int, settle_s: int = 0) -> tuple[F, B]:
    """Each patient's most recent present value within the trailing ``freshness_s``; with
    ``settle_s``, the median of the readings over that span ending at the most recent one,
    so that one minute of motion artifact on a continuous oximeter does not score red (a
    spot reading, alone in its span, counts as it is)."""
    n_bins = metric.present.shape[1]
    recent = max(1, min(n_bins, freshness_s // bin_s))
    window = metric.present[:, n_bins - recent :]
    has: B = np.asarray(window.any(axis=1), dtype=np.bool_)
    last = recent - 1 - np.argmax(window[:, ::-1], axis=1)
    values = metric.values[:, n_bins - recent :]
    settle_bins = settle_s // bin_s
    if settle_bins > 1:
        j = np.arange(recent)[None, :]
        span = window & (j <= last[:, None]) & (j > (last - settle_bins)[:, None])
        picked = masked_median(values, span)
    else:
        picked = values[np.arange(has.shape[0]), last]
    out: F = np.where(has, picked, np.nan).astype(np.float64)
    return out, has
