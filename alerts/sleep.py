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


def _in_night(
    hour: NDArray[np.float64],
    start_h: float,
    end_h: float,
    worn_extends_h: float,
    worn: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Local ``start_h``-``end_h`` at ``hour``, reaching ``worn_extends_h`` further at
    either end where the overnight oximeter was worn (``worn``)."""
    night = k.in_hours(hour, start_h, end_h)
    wide = k.in_hours(hour, (start_h - worn_extends_h) % 24, (end_h + worn_extends_h) % 24)
    return np.asarray(night | (wide & worn), dtype=np.bool_)


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
    if worn_extends_h <= 0 or spo2 is None or spo2.present.shape[1] < WORN_BINS:
        return night_now(rnd, start_h, end_h)
    worn = spo2.present[:, -WORN_BINS:].sum(axis=1) >= WORN_MIN_BINS
    hour = k.local_hour(rnd.now_ms, rnd.offsets_s)
    return _in_night(hour, start_h, end_h, worn_extends_h, worn)


def asleep_when_taken(
    rnd: Round,
    start_h: float,
    end_h: float,
    worn_extends_h: float,
    short: Window,
    metrics: tuple[str, ...],
) -> dict[str, NDArray[np.bool_]]:
    """Per metric, whether each patient's latest reading of it in ``short`` was taken in
    their night (as ``asleep_now`` would have said then; False with no reading). A
    reading keeps being scored for hours after it was taken: the saturation of an oximeter
    taken off at 04:50 is a sleeping one at 07:00 too, and a spot check at 21:30 an awake
    one at 23:00; judged by the clock, the same reading opened an alert when the night
    ended."""
    spo2 = metric_of(short, "spo2_pct").present
    # SpO2 bins up to and including each bin (a leading 0: none before the first)
    seen = np.concatenate(
        [np.zeros((spo2.shape[0], 1), dtype=np.int64), np.cumsum(spo2, axis=1)], axis=1
    )
    rows = np.arange(spo2.shape[0])
    out = {}
    for metric in metrics:
        last, has = k.last_present(metric_of(short, metric).present)
        at = np.clip(last, 0, None)
        hour = k.local_hour(short.bin_starts_ms()[at], rnd.offsets_s)
        # the overnight oximeter worn then: SpO2 in most of the bins up to that reading
        worn = seen[rows, at + 1] - seen[rows, np.clip(at + 1 - WORN_BINS, 0, None)]
        night = _in_night(hour, start_h, end_h, worn_extends_h, worn >= WORN_MIN_BINS)
        out[metric] = np.asarray(night & has, dtype=np.bool_)
    return out
