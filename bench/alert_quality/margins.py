"""How far a missed deterioration's readings moved, and what catching it would cost.

A miss with no reading past a fixed limit (``score.beyond_limit_ms``) may still have
moved from the patient's own usual value: could a rule on that move have caught it? For
each metric the complication changes, this measures the furthest its readings went, the
complication's way, from the patient's usual (the median of their readings of the same
kind, waking or asleep, in the 48 h before the onset), among the readings measured after
the onset that reached the database before the deadline. Then the share of well
patient-days (patients without a complication, from their third day, each day against
their own previous 48 h) whose readings went as far the same way: a rule that caught
the miss on that move alone would fire on those days at the least, so the share is a
floor of its false alerts per well patient-day, to set against the budget (0.2 overall).
The second furthest reading is measured too, for a rule that wants a confirming one.

Dense series (a patch, an oximeter worn overnight) are taken as 5-minute medians, as the
rules judge them; a spot check is its own value. A yardstick for the report, not a rule:
a combination of moves can separate better than one (the report says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from firmware_sim.scenarios import Shift
from numpy.typing import NDArray

from alerts.rules import USUAL_NIGHT_H, in_hours, local_hour
from alerts.window_sql import UNRELIABLE
from bench.alert_quality.cohort import Member, Readings, member_plan
from bench.alert_quality.score import EventOutcome
from vitals.catalogue import BY_NAME

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
USUAL_MS = 48 * HOUR_MS  # the usual: the readings of the 48 h before
BIN_MS = 5 * 60_000  # dense series as 5-minute medians
# the metrics a complication moves that the kits measure (the rest: breathing rate, ...)
MEASURED = ("temp_c", "heart_rate_bpm", "bp_systolic_mmhg", "spo2_pct", "weight_kg")
# a weight is taken once a day, at any hour: judged against the weights before, not by
# waking or sleeping
STATELESS = frozenset({"weight_kg"})

Series = tuple[NDArray[np.int64], NDArray[np.float64]]  # (measured ms, value), in time order


@dataclass(frozen=True)
class MissMargin:
    """One metric of one missed deterioration: ``furthest`` and ``second`` are the changes
    from the usual (a fall is negative), None without a usual or a reading;
    ``well_share``: the share of well patient-days whose readings went as far."""

    patient_id: int
    condition: str
    metric: str
    asleep: bool
    readings: int
    furthest: float | None
    well_share: float | None
    second: float | None
    well_share_second: float | None


def directions(member: Member, seed: int) -> dict[str, int]:
    """Per measured metric the complication moves, +1 (up) or -1 (down), from its plan."""
    out: dict[str, int] = {}
    for d in member_plan(member, seed).deviations:
        if isinstance(d, Shift):
            for metric, shift in d.shifts.items():
                if metric in MEASURED and shift:
                    out.setdefault(metric, 1 if shift > 0 else -1)
    return out


def _asleep(t_ms: NDArray[np.int64], tz: str) -> NDArray[np.bool_]:
    """Whether each moment is in the local night (22:00-07:00 at home)."""
    zone = ZoneInfo(tz)
    hours = t_ms // HOUR_MS
    offset_s = {
        int(h): int(datetime.fromtimestamp(int(h) * 3600, zone).utcoffset().total_seconds())  # type: ignore[union-attr]
        for h in np.unique(hours)
    }
    offsets = np.asarray([offset_s[int(h)] for h in hours], dtype=np.int64)
    return in_hours(local_hour(t_ms, offsets), *USUAL_NIGHT_H)


def _series(
    r: Readings, tz: str, metric: str, asleep: bool, arrived_by_ms: int | None = None
) -> Series:
    """The reliable readings of ``metric`` in that state, dense runs as 5-minute medians."""
    sel = (
        (r.metric_id == BY_NAME[metric].metric_id)
        & np.isfinite(r.value)
        & ((r.flags & UNRELIABLE) == 0)
    )
    if arrived_by_ms is not None:
        sel &= r.arrival_ms <= arrived_by_ms
    t, v = r.measured_ms[sel], r.value[sel]
    if metric not in STATELESS and len(t):
        keep = _asleep(t, tz) == asleep
        t, v = t[keep], v[keep]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    bins, start = np.unique(t // BIN_MS, return_index=True)
    if len(bins) == len(t):
        return t, v
    parts = np.split(v, start[1:])
    return bins * BIN_MS, np.asarray([np.median(p) for p in parts], dtype=np.float64)


def _moves(s: Series, from_ms: int, to_ms: int, sign: int) -> tuple[float, float] | None:
    """The furthest and second furthest readings in [from_ms, to_ms) from the median of
    the 48 h before, signed; None without two readings to make a usual, or none after."""
    t, v = s
    base = v[(t >= from_ms - USUAL_MS) & (t < from_ms)]
    now = v[(t >= from_ms) & (t < to_ms)]
    if len(base) < 2 or not len(now):
        return None
    moved = np.sort(sign * (now - np.median(base)))[::-1]
    return float(moved[0]), float(moved[1]) if len(moved) > 1 else float("nan")


def _well_moves(
    well: Sequence[Member], readings: Mapping[int, Readings], metric: str, asleep: bool, sign: int
) -> NDArray[np.float64]:
    """Per well patient-day (from the third), the furthest and second furthest move;
    -inf for a day without one (no rule fires on a day without readings)."""
    rows: list[tuple[float, float]] = []
    for m in well:
        s = _series(readings[m.index], m.tz, metric, asleep)
        day = m.start_ms + 2 * DAY_MS
        while day + DAY_MS <= m.end_ms:
            got = _moves(s, day, day + DAY_MS, sign)
            rows.append(got if got else (-np.inf, -np.inf))
            day += DAY_MS
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def _share(well: NDArray[np.float64], value: float) -> float | None:
    if not np.isfinite(value) or not len(well):
        return None
    return float(np.mean(well >= value))


def miss_margins(
    members: Sequence[Member],
    readings: Mapping[int, Readings],
    events: Sequence[EventOutcome],
    moves: Mapping[int, Mapping[str, int]],
) -> list[MissMargin]:
    """The margins of every missed clinical event; ``moves``: per patient, the way each
    metric their complication changes moves (``directions``)."""
    by_id = {m.index: m for m in members}
    well = [m for m in members if not any(t.category == "clinical" for t in m.truths)]
    cost: dict[tuple[str, bool, int], NDArray[np.float64]] = {}
    out: list[MissMargin] = []
    for e in events:
        if e.category != "clinical" or e.detected:
            continue
        m = by_id[e.patient_id]
        for metric, sign in sorted(moves.get(m.index, {}).items()):
            for asleep in (False,) if metric in STATELESS else (False, True):
                s = _series(readings[m.index], m.tz, metric, asleep, e.deadline_ms)
                got = _moves(s, e.onset_ms, e.deadline_ms, sign)
                n = int(np.sum((s[0] >= e.onset_ms) & (s[0] < e.deadline_ms)))
                if asleep and not n:
                    continue  # no sleeping readings: nothing to tell
                if got is None:
                    out.append(MissMargin(m.index, e.condition, metric, asleep, n, *[None] * 4))
                    continue
                key = (metric, asleep, sign)
                if key not in cost:
                    cost[key] = _well_moves(well, readings, metric, asleep, sign)
                c = cost[key]
                out.append(
                    MissMargin(
                        m.index,
                        e.condition,
                        metric,
                        asleep,
                        n,
                        sign * got[0],
                        _share(c[:, 0], got[0]),
                        sign * got[1] if np.isfinite(got[1]) else None,
                        _share(c[:, 1], got[1]),
                    )
                )
    return out
