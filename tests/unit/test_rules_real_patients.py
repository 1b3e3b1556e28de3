"""Kernels added for real patients (issue 17), on hand-built windows with exact answers:
inclusive thresholds, settled readings, spot-check confirmation, the patient's usual
value, weight loss, local night, irregular-pulse flags."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from alerts.protocol import RiseRule, builtin_protocols
from alerts.rules import (
    awake_bins,
    beyond,
    confirmed,
    fall_over,
    flagged_count,
    in_hours,
    local_hour,
    rise_over,
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


def test_usual_value_from_first_day_and_hospital_nearer_the_change_watched() -> None:
    # hourly bins from t=0; discharge at 0; first 24 h: 140, 150, 145 -> median 145
    values = [140.0, NAN, 150.0, 145.0] + [NAN] * 30 + [100.0]
    w = series(values, values, values, values)
    starts = np.arange(len(values), dtype=np.int64) * HOUR_MS
    discharged = np.array([0, 0, -1, 0], dtype=np.int64)
    entered = np.array([NAN, 130.0, NAN, 160.0])
    rise = usual_value(w, starts, discharged, 86_400, 2, entered, "above")
    fall = usual_value(w, starts, discharged, 86_400, 2, entered, "below")
    # unknown discharge: from the first reading; both known: for a rise the lower, for a
    # fall the higher (the ward's 160 and the home cuff's 145: 115 is 45 below one of them)
    assert rise.tolist() == [145.0, 130.0, 145.0, 145.0]
    assert fall.tolist() == [145.0, 145.0, 145.0, 160.0]
    # one reading on the first day: the first two within two days; none more: the
    # hospital's value alone
    sparse = series(
        [36.1] + [NAN] * 27 + [36.5] + [NAN] * 30,
        [140.0] + [NAN] * 58,
        [140.0] + [NAN] * 58,
    )
    hours = np.arange(59, dtype=np.int64) * HOUR_MS
    alone = usual_value(sparse, hours, np.array([0, 0, 0]), 86_400, 2, np.array([NAN, NAN, 150.0]))
    assert alone[0] == pytest.approx(36.3)
    assert np.isnan(alone[1])
    assert alone[2] == 150.0


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


@pytest.mark.parametrize(
    "protocol", ["cardiac_surgery", "digestive_surgery", "orthopaedic_surgery"]
)
def test_weight_gain_over_3_days_compares_with_the_weighing_three_days_before(
    protocol: str,
) -> None:
    """A heart failure's weighings: 83.3 kg one morning, 85.4 three days later at a
    slightly later hour (72 h apart in hourly bins, 72.4 h in the case that showed it):
    2.1 kg over 3 days is above the guideline's 2 kg, and the shipped rule must see the
    first weighing, not only the 83.8 of the next day."""
    rule = next(r for r in builtin_protocols()[protocol].rules if r.id == "weight_gain")
    assert isinstance(rule, RiseRule)
    hourly = [NAN] * 85
    for hour, kg in ((12, 83.3), (36, 83.8), (59, 84.4), (84, 85.4)):
        hourly[hour] = kg
    r = rise_over(series(hourly), 3600, rule.window_s, np.array([rule.rise_above]))
    assert r.firing.tolist() == [True]
    assert r.value[0] == pytest.approx(2.1)


def test_usual_pulse_is_learned_from_waking_hours() -> None:
    """A night oximeter's first day: 9 sleeping hours at 55/min and 4 waking hours at
    72/min. The usual pulse is the waking one, else a day's 80/min at rest would count
    as 25/min above it."""
    hours = np.arange(24, dtype=np.int64) * HOUR_MS  # from midnight UTC
    row = [NAN] * 24
    for h in range(9):  # 22:00-07:00 at UTC+2 is 20:00-05:00 UTC
        row[(20 + h) % 24] = 55.0
    for h in (8, 11, 14, 17):
        row[h] = 72.0
    w = series(row, row)
    awake = awake_bins(hours, np.array([7200, 7200], dtype=np.int64))
    assert awake[0].sum() == 15
    usual = usual_value(w, hours, np.array([0, 0]), 86_400, 2, np.array([NAN, NAN]), "above", awake)
    assert usual.tolist() == [72.0, 72.0]
    asleep_too = usual_value(series(row), hours, np.array([0]), 86_400, 2, np.array([NAN]))
    assert asleep_too[0] == 55.0
