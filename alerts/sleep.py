"""Whether each patient is in their night now: the rules judge a sleeping saturation and
pulse against the patient's own nights, not against the day's limits."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.evaluation_round import Round
from alerts.window import MetricWindow

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
