"""Rule kernels: each evaluates one rule for all the patients of a protocol at once, as
numpy operations over (patients x bins) windows; no loop over patients or readings.

Gaps are explicit: a bin without a reading is absent (``present`` False), never a NaN
that might compare false and pass silently. Comparisons with thresholds are strict
(``above`` means >, ``below`` means <).
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
    direction: Literal["above", "below"],
    threshold: F,
    max_gap_s: int,
) -> tuple[I, B, I]:
    """What both sustained kernels stand on: bin indices, where the condition holds, and
    per bin the last break before it (a reading outside the condition, or a gap longer
    than ``max_gap_s``; -1 if none)."""
    present, values = metric.present, metric.values
    p, n = present.shape
    idx = np.broadcast_to(np.arange(n), (p, n))
    thr = threshold[:, None]
    cond = present & ((values > thr) if direction == "above" else (values < thr))
    last_seen = np.maximum.accumulate(np.where(present, idx, -1), axis=1)
    gap_bins = idx - last_seen  # absent bins since the previous reading (0 on a reading)
    long_gap = ~present & (gap_bins * bin_s > max_gap_s)
    breaks = np.maximum.accumulate(np.where((present & ~cond) | long_gap, idx, -1), axis=1)
    return idx, cond, breaks


def sustained(
    metric: MetricWindow,
    bin_s: int,
    direction: Literal["above", "below"],
    threshold: F,
    duration_s: int,
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
    if direction == "above":
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
    direction: Literal["above", "below"],
    threshold: F,
    duration_s: int,
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
        worst = float(span.max() if direction == "above" else span.min())
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


def missing_data(metric: MetricWindow, bin_s: int, max_silence_s: int, counted_s: F) -> RuleResult:
    """No reading of a metric for longer than ``max_silence_s``, silence counted from the
    latest of the last reading and the start of counting (``counted_s`` ago: the first
    enrolment of a device measuring it; NaN where none does, which never fires)."""
    n = metric.present.shape[1]
    lp, has = last_present(metric.present)
    in_window_s = np.where(has, (n - 1 - lp) * bin_s, n * bin_s).astype(np.float64)
    measured = ~np.isnan(counted_s)
    silent_s = np.where(measured, np.minimum(in_window_s, np.nan_to_num(counted_s)), np.nan)
    firing = measured & (np.nan_to_num(silent_s) > max_silence_s)
    return RuleResult(firing, silent_s, np.full(len(lp), -1, dtype=np.int64))


def below_value(value: F, present: B, threshold: float) -> RuleResult:
    firing = present & (np.where(present, value, np.inf) < threshold)
    return RuleResult(firing, value, np.full(len(value), -1, dtype=np.int64))


def rate_above(bad: F, total: F, min_total: int, rate: float) -> RuleResult:
    enough = total >= min_total
    share = np.where(enough, bad / np.where(enough, total, 1.0), np.nan)
    firing = enough & (share > rate)
    return RuleResult(firing, share, np.full(len(bad), -1, dtype=np.int64))
