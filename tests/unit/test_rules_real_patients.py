"""Kernels added for real patients (issue 17), on hand-built windows with exact answers:
inclusive thresholds, settled readings, spot-check confirmation, the patient's usual
value, weight loss, local night, irregular-pulse flags."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from alerts.rules import (
    beyond,
    confirmed,
    fall_over,
    flagged_count,
    in_hours,
    local_hour,
    settled,
    sustained,
    usual_value,
)
from alerts.window import MetricWindow

NAN = np.nan
HOUR_MS = 3_600_000


def series(*rows: Sequence[float]) -> MetricWindow:
    values = np.array(rows, dtype=np.float64)
    present = ~np.isnan(values)
    return MetricWindow(np.where(present, values, 0.0), present)


def test_inclusive_directions() -> None:
    v = np.array([37.9, 38.0, 38.1])
    assert beyond(v, np.array(38.0), "above").tolist() == [False, False, True]
    assert beyond(v, np.array(38.0), "at_or_above").tolist() == [False, True, True]
    assert beyond(v, np.array(38.0), "at_or_below").tolist() == [True, True, False]
    # a single spot thermometer reading of exactly 38.0 is a fever
    r = sustained(series([37.2, NAN, NAN, 38.0]), 60, "at_or_above", np.array([38.0]), 60, 21600)
    assert r.firing.tolist() == [True]


def test_settled_takes_the_median_of_the_span_ending_at_each_reading() -> None:
    w = settled(series([95, 95, 80, 95, 95, NAN, 90]), 3)
    # bin 2 (an 80 between 95s): median(95, 95, 80) = 95; bin 6 alone after a gap: itself
    assert w.values[0, 2] == 95.0
    assert w.values[0, 3] == 95.0
    assert w.values[0, 6] == pytest.approx(92.5)  # median of 95 (bin 4) and 90
    assert w.present.tolist() == series([95, 95, 80, 95, 95, NAN, 90]).present.tolist()
    # a true fall settles within the span
    fall = settled(series([95, 86, 86, 86]), 3)
    assert fall.values[0].tolist() == [95.0, 90.5, 86.0, 86.0]


def _confirm(w: MetricWindow, thr: float = 90.0, **kw: int) -> tuple[list[bool], list[bool]]:
    params = {
        "run_s": 600,
        "max_gap_s": 3600,
        "freshness_s": 3600,
        "spot_gap_s": 600,
        "remeasure_after_s": 120,
        "deadline_s": 1800,
    } | kw
    r = confirmed(w, 60, "below", np.full(w.values.shape[0], thr), **params)
    return r.firing.tolist(), r.requested.tolist()


def test_a_single_abnormal_spot_reading_asks_for_confirmation() -> None:
    # systolic 85 alone, the previous reading 20 minutes before (normal)
    w = series([120] + [NAN] * 19 + [85])
    assert _confirm(w) == ([True], [True])


def test_a_remeasurement_confirms_and_a_normal_one_clears() -> None:
    confirmed_ = series([120] + [NAN] * 19 + [85, NAN, NAN, 86])
    assert _confirm(confirmed_) == ([True], [False])
    too_soon = series([120] + [NAN] * 19 + [85, 86])  # the same measurement's next bin
    assert _confirm(too_soon) == ([True], [True])
    cleared = series([120] + [NAN] * 19 + [85, NAN, NAN, 112])
    assert _confirm(cleared) == ([False], [False])


def test_no_confirmation_within_the_deadline_escalates() -> None:
    w = series([120] + [NAN] * 19 + [85] + [NAN] * 29)  # 30 minutes since, nothing more
    assert _confirm(w) == ([True], [False])
    w = series([120] + [NAN] * 19 + [85] + [NAN] * 28)  # 29 minutes since
    assert _confirm(w) == ([True], [True])
    stale = series([120] + [NAN] * 19 + [85] + [NAN] * 61)  # past freshness: gone
    assert _confirm(stale) == ([False], [False])


def test_continuous_data_needs_the_run_not_a_confirmation() -> None:
    # one reading a minute: below 90 for 5 minutes after normal ones, not 10: silent
    dense = series([95] * 10 + [88] * 5)
    assert _confirm(dense) == ([False], [False])
    dense_long = series([95] * 10 + [88] * 10)
    assert _confirm(dense_long) == ([True], [False])


def test_many_patients_at_once_match_one_at_a_time() -> None:
    rows: list[list[float]] = [
        [120] + [NAN] * 19 + [85],
        [120] + [NAN] * 19 + [85, NAN, NAN, 86],
        [95.0] * 10 + [88.0] * 10,
        [95] * 20 + [NAN],
    ]
    width = max(len(r) for r in rows)
    padded = [[NAN] * (width - len(r)) + r for r in rows]
    together = _confirm(series(*padded))
    alone = [_confirm(series(r)) for r in padded]
    assert together == ([a[0][0] for a in alone], [a[1][0] for a in alone])


def test_usual_value_from_hospital_else_first_day() -> None:
    # hourly bins from t=0; discharge at 0; first 24 h: 140, 150, 145 -> median 145
    values = [140.0, NAN, 150.0, 145.0] + [NAN] * 30 + [100.0]
    w = series(values, values, values)
    starts = np.arange(len(values), dtype=np.int64) * HOUR_MS
    usual = usual_value(
        w,
        starts,
        np.array([0, 0, -1], dtype=np.int64),
        86_400,
        2,
        np.array([NAN, 130.0, NAN]),
    )
    assert usual.tolist() == [145.0, 130.0, 145.0]  # unknown discharge: from first reading
    few = usual_value(
        series([140.0] + [NAN] * 30), starts[:31], np.array([0]), 86_400, 2, np.array([NAN])
    )
    assert np.isnan(few[0])


def test_weight_loss_by_kilograms_or_percent_whichever_is_less() -> None:
    w = series([70.0, 70.2, 69.0, 68.0], [50.0, 49.6, 49.2, 48.7], [70.0, 69.5, NAN, NAN])
    r = fall_over(w, 3600, 4 * 3600, np.full(3, 2.0), 2.0)
    # 70.2 -> 68.0 = 2.2 > min(2.0, 1.404); 50 -> 48.7 = 1.3 > min(2, 1.0); 0.5 < 1.4
    assert r.firing.tolist() == [True, True, False]
    assert r.value[0] == pytest.approx(2.2)
    gain = fall_over(series([68.0, 70.5]), 3600, 7200, np.array([2.0]), None)
    assert gain.firing.tolist() == [False]  # the highest must come before the latest


def test_local_night_crosses_midnight() -> None:
    # 2026-01-15 23:30 UTC; Paris is UTC+1 in winter -> 00:30 local; New York 18:30
    at_ms = 1_768_519_800_000
    hour = local_hour(at_ms, np.array([3600, -5 * 3600], dtype=np.int64))
    assert hour.tolist() == pytest.approx([0.5, 18.5])
    assert in_hours(hour, 22.0, 7.0).tolist() == [True, False]


def test_flagged_count_counts_bins_with_an_irregular_pulse() -> None:
    present = np.ones((2, 4), dtype=np.bool_)
    irregular = np.array([[True, False, True, True], [False] * 4])
    w = MetricWindow(np.full((2, 4), 80.0), present, irregular)
    assert flagged_count(w, 3600, 3 * 3600).tolist() == [2, 0]
    assert flagged_count(MetricWindow(w.values, present), 3600, 3 * 3600).tolist() == [0, 0]
