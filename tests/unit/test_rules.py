"""Rule kernels on constructed series: gaps, boundaries, flapping, stale data, per-patient
thresholds, and many patients at once giving the same answers as one at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from alerts.rules import (
    baseline_deviation,
    below_value,
    bins_in_hours,
    missing_data,
    paired_ratio,
    rate_above,
    rise_over,
    rule_trend,
    sustained,
    sustained_episodes,
)
from alerts.window import MetricWindow

NAN = np.nan


def series(*rows: list[float]) -> MetricWindow:
    """One patient per row; NaN marks a bin without a reading."""
    values = np.array(rows, dtype=np.float64)
    present = ~np.isnan(values)
    return MetricWindow(np.where(present, values, 0.0), present)


def low_spo2(
    w: MetricWindow, thr: float = 90.0, duration_s: int = 300, gap_s: int = 120
) -> list[bool]:
    r = sustained(w, 60, "below", np.full(w.values.shape[0], thr), duration_s, gap_s)
    return [bool(x) for x in r.firing]


def test_sustained_fires_after_the_duration_and_reports_onset_and_worst() -> None:
    w = series([95, 95, 88, 87, 86, 88, 87])  # 5 low minutes at the end
    r = sustained(w, 60, "below", np.array([90.0]), 300, 120)
    assert bool(r.firing[0])
    assert int(r.since_bin[0]) == 2
    assert r.value[0] == 86.0
    assert low_spo2(series([95, 95, 95, 88, 87, 86, 88])) == [False]  # only 4 minutes


def test_short_gap_keeps_the_run_long_gap_breaks_it() -> None:
    assert low_spo2(series([88, 88, NAN, 88, 88, 88])) == [True]  # 1-minute gap
    assert low_spo2(series([88, 88, NAN, NAN, NAN, 88, 88, 88])) == [False]  # 3 minutes


def test_data_that_stopped_does_not_fire() -> None:
    assert low_spo2(series([88, 88, 88, 88, 88, 88, NAN, NAN, NAN])) == [False]


def test_threshold_is_strict() -> None:
    assert low_spo2(series([90, 90, 90, 90, 90, 90])) == [False]
    assert low_spo2(series([89.9, 89.9, 89.9, 89.9, 89.9])) == [True]


def test_flapping_signal_never_sustains() -> None:
    assert low_spo2(series([88, 92] * 10)) == [False]


def test_per_patient_thresholds_and_batch_equals_one_by_one() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(91, 2, size=(50, 30))
    values[rng.random((50, 30)) < 0.2] = np.nan
    w = series(*values.tolist())
    thr = rng.uniform(89, 93, size=50)
    batch = sustained(w, 60, "below", thr, 300, 120)
    for i in range(50):
        one = sustained(series(values[i].tolist()), 60, "below", thr[i : i + 1], 300, 120)
        assert bool(one.firing[0]) == bool(batch.firing[i])
        assert int(one.since_bin[0]) == int(batch.since_bin[i])


def test_trend_rise_missing_battery_and_rate() -> None:
    temp = series([36.8, NAN, 37.0, 37.3, NAN, 37.6, 37.9], [37.0] * 7)
    r = rule_trend(temp, 3600, 7 * 3600, 4, np.array([0.1, 0.1]))
    assert [bool(x) for x in r.firing] == [True, False]
    assert abs(r.value[1]) < 1e-9
    weight = series([70.0, 70.5, 71.4, 72.3], [70.0, NAN, NAN, NAN])
    rise = rise_over(weight, 86_400, 4 * 86_400, np.array([2.0, 2.0]))  # day 0 to day 3
    assert [bool(x) for x in rise.firing] == [True, False]
    quiet = series([97, NAN, NAN, NAN, NAN, NAN, NAN], [97] * 7)
    gone = missing_data(quiet, 300, 1500, np.array([86_400.0, 86_400.0]))
    assert [bool(x) for x in gone.firing] == [True, False]
    # silence counts from the first enrolment of a measuring device; none: never fires
    empty = series([NAN] * 7, [NAN] * 7)
    fresh = missing_data(empty, 300, 1500, np.array([600.0, NAN]))
    assert fresh.firing.tolist() == [False, False]
    assert fresh.value[0] == 600.0
    assert np.isnan(fresh.value[1])
    assert below_value(
        np.array([12.0, 50.0, NAN]), np.array([True, True, False]), 15
    ).firing.tolist() == [True, False, False]
    assert rate_above(
        np.array([5.0, 1.0, 9.0]), np.array([20.0, 20.0, 9.0]), 10, 0.2
    ).firing.tolist() == [True, False, False]


def test_baseline_deviation_is_robust_and_silent_during_baseline() -> None:
    base = [70, 72, 71, 69, 70, 150, 71, 70]  # one wild outlier in the baseline
    w = series([*base, 95, 96], [*base, 73, 72])
    mask = np.zeros((2, 10), dtype=np.bool_)
    mask[:, :8] = True
    r = baseline_deviation(w, mask, 3600, 7200, 4.0, 5, "above", 3.0)
    assert [bool(x) for x in r.firing] == [True, False]
    during = np.ones((2, 10), dtype=np.bool_)
    assert not baseline_deviation(w, during, 3600, 7200, 4.0, 5, "above", 3.0).firing.any()


def test_shock_index_pairs_pulse_and_pressure_of_one_measurement() -> None:
    # patient 0: a cuff reading at bin 2 (pulse 115 over 95); patient 1: pulse from a
    # patch alone, no pressure; patient 2: the only pair is older than the freshness
    pulse = series([80, NAN, 115, 90], [120, 125, 130, 128], [118, NAN, NAN, NAN])
    sbp = series([NAN, NAN, 95, NAN], [NAN, NAN, NAN, NAN], [90, NAN, NAN, NAN])
    ratio, has = paired_ratio(pulse, sbp, 60, 180)
    assert has.tolist() == [True, False, False]
    assert ratio[0] == 115 / 95
    assert np.isnan(ratio[1])
    assert np.isnan(ratio[2])


def test_past_episodes_are_found_with_their_times_and_worst() -> None:
    # two runs long enough (bins 1-6 with a 1-minute gap, bins 10-15), one too short,
    # and data that stopped long ago: every episode is over when the window ends
    w = series(
        [95, 88, 87, NAN, 85, 88, 89, 95, 88, 95, 86, 86, 86, 86, 84, 86, 95, NAN, NAN],
        [95, 95, 88, 88, 95, 95, 95, 95, 95, 95, 95, 95, 95, 95, 95, 95, 95, 95, 95],
    )
    found = sustained_episodes(w, 60, "below", np.array([90.0, 90.0]), 300, 120)
    assert [(e.row, e.since_bin, e.fired_bin, e.last_bin, e.worst) for e in found] == [
        (0, 1, 5, 6, 85.0),
        (0, 10, 14, 15, 84.0),
    ]
    assert low_spo2(w) == [False, False]  # judged now, neither fires


def test_episodes_agree_with_the_live_rule_at_every_bin() -> None:
    """Evaluated live at any bin k, ``sustained`` fires exactly when the latest reading up to
    k is recent and falls inside one of the episodes found over the whole window."""
    rng = np.random.default_rng(7)
    values = np.where(rng.random((40, 90)) < 0.5, 86.0, 95.0)
    values[rng.random((40, 90)) < 0.15] = NAN
    w = series(*values.tolist())
    thr = np.full(40, 90.0)
    episodes = sustained_episodes(w, 60, "below", thr, 180, 120)
    for k in range(90):
        part = MetricWindow(w.values[:, : k + 1], w.present[:, : k + 1])
        live = sustained(part, 60, "below", thr, 180, 120).firing
        for row in range(40):
            seen = np.nonzero(part.present[row])[0]
            lp = int(seen[-1]) if len(seen) else -1
            recent = lp >= 0 and (k - lp) * 60 <= 120
            inside = any(e.row == row and e.fired_bin <= lp <= e.last_bin for e in episodes)
            assert bool(live[row]) == (recent and inside), (row, k)


# --- missing data over waking hours only (issue 17) ---

MIDNIGHT_UTC_MS = 1_768_435_200_000  # 2026-01-15T00:00:00Z: winter, Paris UTC+1
HOUR_MS = 3_600_000


def _silent_since(end_ms: int, last_ms: list[int], n_bins: int) -> MetricWindow:
    """One SpO2 reading per patient at ``last_ms`` (5-min bins ending at ``end_ms``)."""
    start_ms = end_ms - n_bins * 300_000
    rows = []
    for at in last_ms:
        row = [NAN] * n_bins
        row[(at - start_ms) // 300_000] = 97.0
        rows.append(row)
    return series(*rows)


def _awake(end_ms: int, n_bins: int, zones: list[str]) -> np.ndarray:
    offsets = np.array(
        [
            int(ZoneInfo(z).utcoffset(datetime.fromtimestamp(end_ms / 1000, UTC)).total_seconds())  # type: ignore[union-attr]
            for z in zones
        ],
        dtype=np.int64,
    )
    return ~bins_in_hours(end_ms, 300, n_bins, offsets, 22.0, 7.0)


def test_spot_check_silent_overnight_does_not_fire_but_the_same_silence_by_day_does() -> None:
    n = 24 * 12
    # Paris: last reading at 20:00 local (19:00 UTC), now 08:00 local the next morning
    night_end = MIDNIGHT_UTC_MS + 7 * HOUR_MS
    night = _silent_since(night_end, [MIDNIGHT_UTC_MS - 5 * HOUR_MS], n)
    counted = np.array([5 * 86_400.0])
    overnight = missing_data(night, 300, 8 * 3600, counted, _awake(night_end, n, ["Europe/Paris"]))
    assert overnight.firing.tolist() == [False]
    assert overnight.value.tolist() == [12 * 3600.0 - 300]  # the real silence, as always
    # the same 12 h of silence by day (07:00 to 19:00 local): all of it waking, it fires
    day_end = MIDNIGHT_UTC_MS + 18 * HOUR_MS
    day = _silent_since(day_end, [MIDNIGHT_UTC_MS + 6 * HOUR_MS], n)
    by_day = missing_data(day, 300, 8 * 3600, counted, _awake(day_end, n, ["Europe/Paris"]))
    assert by_day.firing.tolist() == [True]
    assert by_day.value.tolist() == [12 * 3600.0 - 300]
    # without the waking-hours option, the overnight silence fires as before
    assert missing_data(night, 300, 8 * 3600, counted).firing.tolist() == [True]


def test_waking_silence_follows_each_patients_own_time_zone() -> None:
    # the same instants for both: last reading 12:00 UTC, now 00:00 UTC the next day
    n = 24 * 12
    end = MIDNIGHT_UTC_MS + 24 * HOUR_MS
    win = _silent_since(end, [MIDNIGHT_UTC_MS + 12 * HOUR_MS] * 2, n)
    awake = _awake(end, n, ["Europe/Paris", "Asia/Shanghai"])
    counted = np.array([5 * 86_400.0] * 2)
    res = missing_data(win, 300, 8 * 3600, counted, awake)
    # Paris (13:00 -> 01:00): 9 h awake, 13:00-22:00, fires; Shanghai (20:00 -> 08:00):
    # 2 h before its night and 1 h after, does not
    assert res.firing.tolist() == [True, False]
    assert ((awake & (np.arange(n) > 144)).sum(axis=1) * 300).tolist() == [
        9 * 3600 - 300,
        3 * 3600 - 300,
    ]
    # silence counts from the start of counting (first enrolment), waking hours only:
    # enrolled 10 h ago in Paris (15:00 local) -> 7 h awake: not yet
    fresh = missing_data(
        _silent_since(end, [MIDNIGHT_UTC_MS], n), 300, 8 * 3600, np.array([10 * 3600.0]), awake[:1]
    )
    assert fresh.firing.tolist() == [False]
    assert fresh.value.tolist() == [10 * 3600.0]
