"""Whether each patient is in their night now, or was when a reading was taken: the rules
judge a sleeping saturation and pulse against the patient's own nights, not against the
day's limits."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.evaluation_round import Round
from alerts.window import MetricWindow, Window, metric_of

# the overnight oximeter is worn while it streams: a reading in most of the last minutes
WORN_BINS = 15
WORN_MIN_BINS = 10


def night_now(rnd: Round, start_h: float, end_h: float) -> NDArray[np.bool_]:
    """Local ``start_h``-``end_h`` now, per patient."""
    return k.in_hours(k.local_hour(rnd.now_ms, rnd.offsets_s), start_h, end_h)


def asleep_now(
    rnd: Round,
    start_h: float,
    end_h: float,
    worn_extends_h: float,
    spo2: MetricWindow | None,
) -> NDArray[np.bool_]:
    """The patient's night now: local ``start_h``-``end_h``, reaching ``worn_extends_h``
    further at either end while the overnight oximeter is worn (SpO2 in most of the last
    ``WORN_BINS`` one-minute bins of ``spo2``): bedtimes and rising times vary by hours
    (Roenneberg 2007), a spot check by day is one reading, not a stream."""
    night = night_now(rnd, start_h, end_h)
    if worn_extends_h <= 0 or spo2 is None or spo2.present.shape[1] < WORN_BINS:
        return night
    wide = night_now(rnd, (start_h - worn_extends_h) % 24, (end_h + worn_extends_h) % 24)
    worn = spo2.present[:, -WORN_BINS:].sum(axis=1) >= WORN_MIN_BINS
    return np.asarray(night | (wide & worn), dtype=np.bool_)


def asleep_when_taken(
    rnd: Round,
    start_h: float,
    end_h: float,
    worn_extends_h: float,
    short: Window,
    metric: str,
) -> NDArray[np.bool_]:
    """Whether each patient's latest reading of ``metric`` in ``short`` was taken in their
    night (as ``asleep_now`` would have said then; False with no reading). A reading
    keeps being scored for hours after it was taken: the saturation of an oximeter taken
    off at 04:50 is a sleeping one at 07:00 too, and a spot check at 21:30 an awake one at
    23:00; judged by the clock, the same reading opened an alert when the night ended."""
    m = metric_of(short, metric)
    last, has = k.last_present(m.present)
    at = np.clip(last, 0, None)
    taken_ms = short.bin_starts_ms()[at]
    hour = ((taken_ms // 1000 + rnd.offsets_s) % 86_400) / 3600.0
    night = k.in_hours(hour, start_h, end_h)
    spo2 = short.metrics.get("spo2_pct")
    if worn_extends_h > 0 and spo2 is not None:
        wide = k.in_hours(hour, (start_h - worn_extends_h) % 24, (end_h + worn_extends_h) % 24)
        # the overnight oximeter worn then: SpO2 in most of the bins up to that reading
        seen = np.cumsum(spo2.present, axis=1)
        rows = np.arange(len(at))
        before = at - WORN_BINS
        earlier = np.where(before >= 0, seen[rows, np.clip(before, 0, None)], 0)
        worn = seen[rows, at] - earlier >= WORN_MIN_BINS
        night = night | (wide & worn)
    return np.asarray(night & has, dtype=np.bool_)
