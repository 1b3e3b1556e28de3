"""Rule kernels: each evaluates one rule for all the patients of a protocol at once, as
numpy operations over (patients x bins) windows; no loop over patients or readings.

Gaps are explicit: a bin without a reading is absent (``present`` False), never a NaN
that might compare false and pass silently. Comparisons with thresholds are strict
(``above`` means >, ``below`` means <) unless the rule says ``at_or_above`` (>=) or
``at_or_below`` (<=), as clinical definitions such as fever (>= 38.0 °C) are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from alerts.window import MetricWindow

F = NDArray[np.float64]
B = NDArray[np.bool_]
I = NDArray[np.int64]  # noqa: E741
Direction = Literal["above", "below", "at_or_above", "at_or_below"]


def beyond(values: F, threshold: F, direction: Direction) -> B:
    """Where ``values`` are past ``threshold`` (broadcast) in the rule's direction."""
    with np.errstate(invalid="ignore"):
        if direction == "above":
            return np.asarray(values > threshold, dtype=np.bool_)
        if direction == "below":
            return np.asarray(values < threshold, dtype=np.bool_)
        if direction == "at_or_above":
            return np.asarray(values >= threshold, dtype=np.bool_)
        return np.asarray(values <= threshold, dtype=np.bool_)


def is_high(direction: Direction) -> bool:
    return direction in ("above", "at_or_above")


@dataclass(frozen=True)
class RuleResult:
    firing: B  # (P,)
    value: F  # (P,) the evidence: worst value, slope, rise, deviation, seconds...
    since_bin: I  # (P,) first bin of the condition, -1 when not firing


def last_present(present: B) -> tuple[I, B]:
    """Per row, the last bin with a reading (-1 if none), and whether there is one."""
    n = present.shape[1]
    has: B = np.asarray(present.any(axis=1), dtype=np.bool_)
    last: I = np.where(has, n - 1 - np.argmax(present[:, ::-1], axis=1), -1).astype(np.int64)
    return last, has


def _runs(
    metric: MetricWindow,
    bin_s: int,
    direction: Direction,
    threshold: F,
    max_gap_s: int,
) -> tuple[I, B, I]:
    """What both sustained kernels stand on: bin indices, where the condition holds, and
    per bin the last break before it (a reading outside the condition, or a gap longer
    than ``max_gap_s``; -1 if none). ``threshold`` is per patient (P,) or per bin (P, T)."""
    present, values = metric.present, metric.values
    p, n = present.shape
    idx = np.broadcast_to(np.arange(n), (p, n))
    thr = threshold[:, None] if threshold.ndim == 1 else threshold
    cond = present & beyond(values, thr, direction)
    last_seen = np.maximum.accumulate(np.where(present, idx, -1), axis=1)
    gap_bins = idx - last_seen  # absent bins since the previous reading (0 on a reading)
    long_gap = ~present & (gap_bins * bin_s > max_gap_s)
    breaks = np.maximum.accumulate(np.where((present & ~cond) | long_gap, idx, -1), axis=1)
    return idx, cond, breaks


def sustained(
    metric: MetricWindow,
    bin_s: int,
    direction: Direction,
    threshold: F,
    duration_s: int | I,
    max_gap_s: int,
) -> RuleResult:
    """The condition held at every reading over the trailing ``duration_s`` that ends at
    the latest reading, that reading no older than ``max_gap_s``, and no stretch without
    readings inside the run longer than ``max_gap_s`` (a longer gap breaks the run)."""
    present, values = metric.present, metric.values
    p, n = present.shape
    idx, cond, breaks = _runs(metric, bin_s, direction, threshold, max_gap_s)
    lp, has = last_present(present)
    rows = np.arange(p)
    lp_safe = np.maximum(lp, 0)
    brk = breaks[rows, lp_safe]
    # first reading after the break
    after = present & (idx > brk[:, None])
    since = np.where(after.any(axis=1), np.argmax(after, axis=1), -1)
    run_s = (lp - since + 1) * bin_s
    recent = (n - 1 - lp) * bin_s <= max_gap_s
    firing = has & recent & cond[rows, lp_safe] & (since >= 0) & (run_s >= duration_s)
    in_run = present & (idx >= since[:, None]) & (idx <= lp[:, None])
    if is_high(direction):
        worst = np.where(in_run, values, -np.inf).max(axis=1)
    else:
        worst = np.where(in_run, values, np.inf).min(axis=1)
    return RuleResult(firing, np.where(firing, worst, np.nan), np.where(firing, since, -1))


@dataclass(frozen=True)
class Episode:
    """A past run of a sustained condition that lasted long enough to fire."""

    row: int  # the patient's row in the window
    since_bin: int  # first reading of the run
    fired_bin: int  # where the rule would first have fired, live
    last_bin: int  # last reading of the run
    worst: float


def sustained_episodes(
    metric: MetricWindow,
    bin_s: int,
    direction: Direction,
    threshold: F,
    duration_s: int | I,
    max_gap_s: int,
) -> list[Episode]:
    """Every run in the window where ``sustained`` would have fired, had it been evaluated
    at that bin: for readings that arrived late, after the run had ended. Same run rules
    as ``sustained`` (strict threshold, gaps up to ``max_gap_s`` tolerated)."""
    present, values = metric.present, metric.values
    p, n = present.shape
    idx, cond, breaks = _runs(metric, bin_s, direction, threshold, max_gap_s)
    # the first reading after each bin's last break: where its run began
    next_present = np.minimum.accumulate(np.where(present, idx, n)[:, ::-1], axis=1)[:, ::-1]
    padded = np.concatenate([next_present, np.full((p, 1), n)], axis=1)
    since = np.take_along_axis(padded, breaks + 1, axis=1)
    firing = cond & ((idx - since + 1) * bin_s >= duration_s)
    out: list[Episode] = []
    for row, col in zip(*np.nonzero(firing), strict=True):
        start = int(since[row, col])
        if out and out[-1].row == row and out[-1].since_bin == start:
            continue  # the same run, still going
        run = np.nonzero(cond[row] & (since[row] == start))[0]
        last = int(run[-1])
        span = values[row, start : last + 1][present[row, start : last + 1]]
        worst = float(span.max() if is_high(direction) else span.min())
        out.append(Episode(int(row), start, int(col), last, worst))
    return out


def _trailing(metric: MetricWindow, bin_s: int, window_s: int) -> tuple[F, B]:
    n = metric.present.shape[1]
    k = max(1, min(n, window_s // bin_s))
    return metric.values[:, n - k :], metric.present[:, n - k :]


def rule_trend(
    metric: MetricWindow, bin_s: int, window_s: int, min_points: int, slope_per_h_above: F
) -> RuleResult:
    """Least-squares slope per hour over the readings of the trailing window."""
    values, present = _trailing(metric, bin_s, window_s)
    m = present.astype(np.float64)
    x = np.arange(values.shape[1], dtype=np.float64) * bin_s / 3600.0
    y = np.where(present, values, 0.0)
    cnt = m.sum(axis=1)
    sx, sy = (m * x).sum(axis=1), (m * y).sum(axis=1)
    sxx, sxy = (m * x * x).sum(axis=1), (m * x * y).sum(axis=1)
    denom = cnt * sxx - sx * sx
    valid = (cnt >= min_points) & (denom > 0)
    slope = np.where(valid, (cnt * sxy - sx * sy) / np.where(valid, denom, 1.0), np.nan)
    firing = valid & (slope > slope_per_h_above)
    return RuleResult(firing, slope, np.full(len(cnt), -1, dtype=np.int64))


def rise_over(metric: MetricWindow, bin_s: int, window_s: int, rise_above: F) -> RuleResult:
    """Latest reading minus the lowest one in the trailing window (e.g. weight gain)."""
    values, present = _trailing(metric, bin_s, window_s)
    lp, _ = last_present(present)
    enough = present.sum(axis=1) >= 2
    latest = values[np.arange(len(lp)), np.maximum(lp, 0)]
    lowest = np.where(present, values, np.inf).min(axis=1)
    rise = np.where(enough, latest - lowest, np.nan)
    firing = enough & (rise > rise_above)
    return RuleResult(firing, rise, np.full(len(lp), -1, dtype=np.int64))


def paired_ratio(
    numerator: MetricWindow, denominator: MetricWindow, bin_s: int, freshness_s: int
) -> tuple[F, B]:
    """The ratio in the latest bin where both metrics were read, if within ``freshness_s``
    (a cuff gives pulse and systolic pressure in one measurement, hence one bin)."""
    both = numerator.present & denominator.present
    p, n = both.shape
    recent = max(1, min(n, freshness_s // bin_s))
    window = both[:, n - recent :]
    has: B = np.asarray(window.any(axis=1), dtype=np.bool_)
    last = n - 1 - np.argmax(window[:, ::-1], axis=1)
    rows = np.arange(p)
    den = denominator.values[rows, last]
    ok = has & (den > 0)
    ratio = np.where(ok, numerator.values[rows, last] / np.where(ok, den, 1.0), np.nan)
    return ratio.astype(np.float64), ok


def masked_median(values: F, mask: B) -> F:
    """Row medians over the masked-in cells (NaN for an empty row), by one sort: masked
    cells sort last as NaN, and each row's median sits at its count's middle."""
    data = np.sort(np.where(mask, values, np.nan), axis=1)
    n = mask.sum(axis=1)
    lo = np.clip((n - 1) // 2, 0, None)[:, None]
    hi = np.clip(n // 2, 0, None)[:, None]
    if data.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    mid = (np.take_along_axis(data, lo, axis=1) + np.take_along_axis(data, hi, axis=1)) / 2
    return np.where(n > 0, mid[:, 0], np.nan)


def baseline_deviation(
    metric: MetricWindow,
    baseline_mask: B,
    bin_s: int,
    recent_s: int,
    k: float,
    min_baseline_points: int,
    direction: Literal["above", "below"],
    min_scale: float,
) -> RuleResult:
    """Robust z-score of the recent median against the patient's own baseline (median and
    MAD of the baseline bins, the MAD scaled to a standard deviation and floored at
    ``min_scale``); silent while the patient is still in the baseline period."""
    present, values = metric.present, metric.values
    base = present & baseline_mask
    enough = base.sum(axis=1) >= min_baseline_points
    med = masked_median(values, base)
    mad = masked_median(np.abs(values - med[:, None]), base) * 1.4826
    scale = np.maximum(np.nan_to_num(mad, nan=min_scale), min_scale)
    n = present.shape[1]
    recent_bins = max(1, min(n, recent_s // bin_s))
    recent_mask = np.zeros_like(present)
    recent_mask[:, n - recent_bins :] = True
    recent = present & recent_mask & ~baseline_mask
    recent_med = masked_median(values, recent)
    valid = enough & recent.any(axis=1)
    z = np.where(valid, (recent_med - np.nan_to_num(med)) / scale, np.nan)
    firing = valid & ((z > k) if direction == "above" else (z < -k))
    return RuleResult(firing, z, np.full(present.shape[0], -1, dtype=np.int64))


def missing_data(
    metric: MetricWindow,
    bin_s: int,
    max_silence_s: int,
    counted_s: F,
    counts: B | None = None,
) -> RuleResult:
    """No reading of a metric for longer than ``max_silence_s``, silence counted from the
    latest of the last reading and the start of counting (``counted_s`` ago: the first
    enrolment of a device measuring it; NaN where none does, which never fires).

    ``counts`` (P, T), when given, marks the bins whose silence counts (the patient's
    waking hours): the rule then fires on more than ``max_silence_s`` of counted silence,
    while the evidence stays the real silence."""
    n = metric.present.shape[1]
    lp, has = last_present(metric.present)
    in_window_s = np.where(has, (n - 1 - lp) * bin_s, n * bin_s).astype(np.float64)
    measured = ~np.isnan(counted_s)
    silent_s = np.where(measured, np.minimum(in_window_s, np.nan_to_num(counted_s)), np.nan)
    if counts is None:
        judged_s = np.nan_to_num(silent_s)
    else:
        # bins after the last reading and no older than the start of counting
        age_s = (n - 1 - np.arange(n, dtype=np.int64)) * bin_s
        after = np.arange(n)[None, :] > lp[:, None]
        since_start = age_s[None, :] < np.nan_to_num(counted_s)[:, None]
        judged_s = (counts & after & since_start).sum(axis=1).astype(np.float64) * bin_s
    firing = measured & (judged_s > max_silence_s)
    return RuleResult(firing, silent_s, np.full(len(lp), -1, dtype=np.int64))


def below_value(value: F, present: B, threshold: float) -> RuleResult:
    firing = present & (np.where(present, value, np.inf) < threshold)
    return RuleResult(firing, value, np.full(len(value), -1, dtype=np.int64))


def rate_above(bad: F, total: F, min_total: int, rate: float) -> RuleResult:
    enough = total >= min_total
    share = np.where(enough, bad / np.where(enough, total, 1.0), np.nan)
    firing = enough & (share > rate)
    return RuleResult(firing, share, np.full(len(bad), -1, dtype=np.int64))


def settled(metric: MetricWindow, settle_bins: int) -> MetricWindow:
    """Each reading replaced by the median of the readings over the ``settle_bins`` bins
    ending at it: a dip of a few tens of seconds (motion, an apnoea) on a continuous
    oximeter no longer counts as a fall; a spot reading, alone in its span, is itself."""
    if settle_bins <= 1:
        return metric
    p = metric.present.shape[0]
    pad = settle_bins - 1
    vals = np.concatenate([np.full((p, pad), np.nan), metric.values], axis=1)
    pres = np.concatenate([np.zeros((p, pad), dtype=np.bool_), metric.present], axis=1)
    view = np.lib.stride_tricks.sliding_window_view(np.where(pres, vals, np.nan), settle_bins, 1)
    data = np.sort(view, axis=2)  # NaN (absent) sort last
    cnt = np.lib.stride_tricks.sliding_window_view(pres, settle_bins, 1).sum(axis=2)
    lo = np.clip((cnt - 1) // 2, 0, None)[..., None]
    hi = np.clip(cnt // 2, 0, None)[..., None]
    mid = (np.take_along_axis(data, lo, axis=2) + np.take_along_axis(data, hi, axis=2))[..., 0] / 2
    values = np.where(metric.present, mid, metric.values)
    return MetricWindow(values.astype(np.float64), metric.present, metric.irregular)


@dataclass(frozen=True)
class ConfirmResult:
    firing: B  # (P,)
    requested: B  # (P,) firing on a single spot reading: a re-measurement is asked for
    value: F  # (P,) the worst value of the run
    since_bin: I  # (P,) first reading of the run, -1 when not firing
    readings: I  # (P,) readings in the run


def confirmed(
    metric: MetricWindow,
    bin_s: int,
    direction: Direction,
    threshold: F,
    run_s: int,
    max_gap_s: int,
    freshness_s: int,
    spot_gap_s: int,
    remeasure_after_s: int,
    deadline_s: int,
) -> ConfirmResult:
    """A condition that fires on continuous data and on spot checks alike.

    The run is the latest readings past the threshold, with no reading inside the limit
    between them and no gap longer than ``max_gap_s``; its latest reading must be at most
    ``freshness_s`` old. Continuous data (the run began right after other readings) fire
    once the run lasted ``run_s``, as a sustained rule. A run that began with a spot
    reading (nothing in the ``spot_gap_s`` before it) fires at once but as a request for
    confirmation (``requested``); it is confirmed by a second reading past the threshold
    at least ``remeasure_after_s`` after the first (a re-measurement), or, failing one,
    once ``deadline_s`` has passed since the first (the safer side: unconfirmed is not
    dismissed). A reading back inside the limit ends the run."""
    present, values = metric.present, metric.values
    p, n = present.shape
    idx, cond, breaks = _runs(metric, bin_s, direction, threshold, max_gap_s)
    lp, has = last_present(present)
    rows = np.arange(p)
    lp_safe = np.maximum(lp, 0)
    brk = breaks[rows, lp_safe]
    after = present & (idx > brk[:, None]) & (idx <= lp_safe[:, None])
    since = np.where(after.any(axis=1), np.argmax(after, axis=1), -1)
    since_safe = np.maximum(since, 0)
    # the reading before the run, and how long before its first reading it came
    before = present & (idx < since_safe[:, None])
    prev = np.where(before.any(axis=1), n - 1 - np.argmax(before[:, ::-1], axis=1), -1)
    spot_start = (prev < 0) | ((since - prev) * bin_s > spot_gap_s)
    fresh = (n - 1 - lp) * bin_s <= freshness_s
    live = has & fresh & cond[rows, lp_safe] & (since >= 0)
    run_len_s = (lp - since + 1) * bin_s
    remeasured = (lp - since) * bin_s >= remeasure_after_s
    overdue = (n - since) * bin_s >= deadline_s
    dense_ok = run_len_s >= run_s
    firing = live & (dense_ok | spot_start)
    requested = firing & spot_start & ~dense_ok & ~remeasured & ~overdue
    in_run = present & (idx >= since[:, None]) & (idx <= lp[:, None])
    if is_high(direction):
        worst = np.where(in_run, values, -np.inf).max(axis=1)
    else:
        worst = np.where(in_run, values, np.inf).min(axis=1)
    return ConfirmResult(
        firing,
        requested,
        np.where(firing, worst, np.nan),
        np.where(firing, since, -1),
        np.where(firing, in_run.sum(axis=1), 0).astype(np.int64),
    )


def usual_value(
    metric: MetricWindow,
    bin_start_ms: I,
    from_ms: I,
    span_s: int,
    min_points: int,
    entered: F,
    watch: Direction = "above",
    awake: B | None = None,
) -> F:
    """The patient's own usual value: the median of the readings (spot checks count) of
    their first ``span_s`` from ``from_ms`` (discharge; -1 when unknown: from their first
    reading in the window), or, when that span holds fewer than ``min_points``, of their
    first ``min_points`` readings within twice the span (a thermometer used twice a day,
    one reading forgotten, still gets a usual temperature), and the one the hospital
    entered (``entered``, NaN if none). When both are known, the one a change in the
    ``watch`` direction departs from soonest (a rise: the lower; a fall: the higher):
    the ward's pressure and the home cuff's first day are both the patient's usual, and a
    bleed that begins on the first day at home lowers the learned one. ``awake`` (per
    patient and bin) keeps the waking hours only: a night oximeter's sleeping pulse would
    otherwise make most of a first day's hours, and a day's pulse is judged against it."""
    present = metric.present if awake is None else metric.present & awake
    first, has = last_present(present[:, ::-1])
    n = present.shape[1]
    first_ms = np.where(has, bin_start_ms[np.clip(n - 1 - first, 0, n - 1)], -1)
    start = np.where(from_ms >= 0, from_ms, first_ms)
    after = present & (bin_start_ms[None, :] >= start[:, None]) & (start >= 0)[:, None]
    base = after & (bin_start_ms[None, :] < (start + span_s * 1000)[:, None])
    longer = after & (bin_start_ms[None, :] < (start + 2 * span_s * 1000)[:, None])
    firsts = longer & (np.cumsum(longer, axis=1) <= min_points)
    use = np.where((base.sum(axis=1) < min_points)[:, None], firsts, base)
    learned = np.where(use.sum(axis=1) >= min_points, masked_median(metric.values, use), np.nan)
    both = np.fmin(learned, entered) if is_high(watch) else np.fmax(learned, entered)
    return np.asarray(both, dtype=np.float64)


def fall_over(
    metric: MetricWindow, bin_s: int, window_s: int, fall_above: F, fall_pct_above: float | None
) -> RuleResult:
    """Highest reading of the trailing window minus the latest one (e.g. weight loss),
    beyond ``fall_above`` or, if given, ``fall_pct_above`` percent of that highest
    reading, whichever is smaller; the highest must come before the latest."""
    values, present = _trailing(metric, bin_s, window_s)
    lp, _ = last_present(present)
    rows = np.arange(len(lp))
    idx = np.arange(values.shape[1])[None, :]
    earlier = present & (idx < lp[:, None])
    enough = earlier.any(axis=1)
    latest = values[rows, np.maximum(lp, 0)]
    highest = np.where(earlier, values, -np.inf).max(axis=1)
    fall = np.where(enough, highest - latest, np.nan)
    limit = fall_above
    if fall_pct_above is not None:
        limit = np.minimum(fall_above, np.where(enough, highest, np.inf) * fall_pct_above / 100)
    firing = enough & (np.nan_to_num(fall, nan=-np.inf) > limit)
    return RuleResult(firing, fall, np.full(len(lp), -1, dtype=np.int64))


def local_hour(at_ms: int | I, utc_offset_s: I) -> F:
    """Each patient's local time of day at ``at_ms`` (one moment, or one per patient), in
    hours [0, 24)."""
    return np.asarray(((at_ms // 1000 + utc_offset_s) % 86_400) / 3600.0, dtype=np.float64)


def in_hours(hour: F, start_h: float, end_h: float) -> B:
    """Whether ``hour`` is within [start_h, end_h), the span possibly crossing midnight."""
    if start_h <= end_h:
        return np.asarray((hour >= start_h) & (hour < end_h), dtype=np.bool_)
    return np.asarray((hour >= start_h) | (hour < end_h), dtype=np.bool_)


# the local night a usual waking value leaves out (the protocols' default night)
USUAL_NIGHT_H = (22.0, 7.0)


def awake_bins(bin_start_ms: I, utc_offset_s: I, night: tuple[float, float] = USUAL_NIGHT_H) -> B:
    """Per patient and bin, whether the bin's middle is outside the patient's local night."""
    width_ms = int(bin_start_ms[1] - bin_start_ms[0]) if len(bin_start_ms) > 1 else 0
    mid_s = (bin_start_ms + width_ms // 2) // 1000
    hours = ((mid_s[None, :] + utc_offset_s[:, None]) % 86_400) / 3600.0
    return ~in_hours(hours, *night)


def bins_in_hours(
    end_ms: int, bin_s: int, n_bins: int, utc_offset_s: I, start_h: float, end_h: float
) -> B:
    """(P, T): whether each bin of a window ending at ``end_ms`` starts within the local
    hours [start_h, end_h) of each patient (``utc_offset_s`` per patient)."""
    starts_s = end_ms // 1000 - (n_bins - np.arange(n_bins, dtype=np.int64)) * bin_s
    hour = ((starts_s[None, :] + utc_offset_s[:, None]) % 86_400) / 3600.0
    return in_hours(np.asarray(hour, dtype=np.float64), start_h, end_h)


def latest_within(metric: MetricWindow, bin_s: int, freshness_s: int) -> tuple[F, B]:
    """Each patient's most recent reading within the trailing ``freshness_s``."""
    values, present = _trailing(metric, bin_s, freshness_s)
    lp, has = last_present(present)
    out = np.where(has, values[np.arange(len(lp)), np.maximum(lp, 0)], np.nan)
    return out.astype(np.float64), has


def flagged_count(metric: MetricWindow, bin_s: int, window_s: int) -> I:
    """Bins of the trailing ``window_s`` with a reading flagged as an irregular pulse."""
    if metric.irregular is None:
        return np.zeros(metric.present.shape[0], dtype=np.int64)
    n = metric.present.shape[1]
    k = max(1, min(n, window_s // bin_s))
    return np.asarray(metric.irregular[:, n - k :].sum(axis=1), dtype=np.int64)
