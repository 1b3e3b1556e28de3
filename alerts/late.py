"""Episodes that began and ended before their readings arrived (a home offline for hours,
a device's memory synced later). Every live rule judges the present, so such an episode
would show on the chart only. For the patients ingest marked as having late readings, the
sustained and shock-index rules are replayed since the earliest of them at the live
engine's one-minute bins; each episode found there that the live engine could not have
seen becomes a ``LateEpisode`` (the store opens an alert for it unless one covered it).
NEWS2 is not replayed: its extremes are sustained rules of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.context import PatientContext
from alerts.evaluation_round import MINUTE_S, Round
from alerts.limits import night_threshold, scaled_threshold
from alerts.protocol import ConfirmedRule, Priority, Protocol, ShockIndexRule, SustainedRule
from alerts.rules import Direction
from alerts.source import ReadingSource
from alerts.usual import usual_nights
from alerts.window import MetricWindow, Window, metric_of

# how far back a late batch is examined: a gateway's outbox holds days, not weeks, and
# an episode older than this is history for the chart, not an alert
LOOKBACK_MAX_S = 7 * 86_400


@dataclass(frozen=True, slots=True)
class LateEpisode:
    patient_id: int
    rule_id: str
    priority: Priority
    onset_ms: int  # first reading of the run
    ended_ms: int  # end of the minute of its last reading
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class _Runs:
    """A rule as runs of a condition: what ``sustained_episodes`` replays."""

    rule: SustainedRule | ConfirmedRule | ShockIndexRule
    metric: MetricWindow
    direction: Direction
    threshold: NDArray[np.float64]  # (P,) or, with night limits, (P, T)
    duration_s: int | NDArray[np.int64]  # or (P, T), as the threshold
    max_gap_s: int
    evidence: str


def late_episodes(
    source: ReadingSource,
    ctx: PatientContext,
    protocols: Mapping[str, Protocol],
    late_since_ms: Mapping[int, int],
    now_ms: int,
) -> list[LateEpisode]:
    """Past episodes of these patients' sustained and shock-index rules that involve their
    late readings (ended at or after the earliest of them) and are over now (one still
    going on is the live engine's: it fires at once)."""
    out: list[LateEpisode] = []
    for name in sorted(set(ctx.protocols)):
        proto = protocols.get(name)
        rules = (
            [
                r
                for r in proto.rules
                if isinstance(r, SustainedRule | ConfirmedRule | ShockIndexRule)
            ]
            if proto
            else []
        )
        if not rules:
            continue
        ids = ctx.patient_ids[ctx.subset(name)]
        since = np.asarray([late_since_ms.get(int(p), now_ms) for p in ids], dtype=np.int64)
        # bins on whole minutes: the same run gets the same onset in every round; from
        # far enough before the first late reading to see a run that began earlier
        end_ms = -(-now_ms // (MINUTE_S * 1000)) * MINUTE_S * 1000
        lead_s = max(_lead_s(r) for r in rules)
        start_ms = max(int(since.min()) - lead_s * 1000, end_ms - LOOKBACK_MAX_S * 1000)
        span_s = max(MINUTE_S, (end_ms - start_ms) // 1000)
        metrics = {r.metric for r in rules if isinstance(r, SustainedRule | ConfirmedRule)}
        if any(isinstance(r, ShockIndexRule) for r in rules):
            metrics |= {"heart_rate_bpm", "bp_systolic_mmhg"}
        win = source.window(ids.tolist(), sorted(metrics), end_ms, span_s, MINUTE_S)
        rnd = Round(source, ctx, ctx.subset(name), now_ms)
        night_rules = [r for r in rules if isinstance(r, SustainedRule) and r.night is not None]
        usual = usual_nights(rnd, night_rules) if night_rules else {}
        for rule in rules:
            out += _episodes(win, _runs(win, rule, rnd, usual), ids, since)
    return out


def _lead_s(rule: SustainedRule | ConfirmedRule | ShockIndexRule) -> int:
    if isinstance(rule, ConfirmedRule):
        return rule.run_s + rule.max_gap_s + rule.settle_s
    if isinstance(rule, SustainedRule):
        night = rule.night.duration_s if rule.night else 0
        return max(rule.duration_s, night) + rule.max_gap_s + rule.settle_s
    return rule.freshness_s + MINUTE_S


def _runs(
    win: Window,
    rule: SustainedRule | ConfirmedRule | ShockIndexRule,
    rnd: Round,
    usual_night: dict[str, NDArray[np.float64]],
) -> _Runs:
    if isinstance(rule, SustainedRule):
        # as live: the settled readings, the limit per patient, and at the patient's
        # night the night limit and duration, bin by bin
        threshold = scaled_threshold(rnd, rule)
        duration: int | NDArray[np.int64] = rule.duration_s
        if rule.night is not None:
            day_ms = win.bin_start_ms(0) + np.arange(win.n_bins, dtype=np.int64) * MINUTE_S * 1000
            offsets = rnd.ctx.utc_offset_s(win.end_ms)[rnd.mask]
            hours = (((day_ms[None, :] // 1000) + offsets[:, None]) % 86_400) / 3600.0
            asleep = k.in_hours(hours, rule.night.start_h, rule.night.end_h)
            night_thr = night_threshold(rnd, rule, usual_night.get(rule.metric))
            threshold = np.where(asleep, night_thr[:, None], threshold[:, None])
            duration = np.where(asleep, rule.night.duration_s, rule.duration_s)
        return _Runs(
            rule,
            k.settled(metric_of(win, rule.metric), rule.settle_s // MINUTE_S),
            rule.direction,
            threshold,
            duration,
            rule.max_gap_s,
            "value",
        )
    if isinstance(rule, ConfirmedRule):
        # continuous data only: a run that lasted ``run_s`` (a spot reading that arrives
        # late is the latest one: the live rule asks for its confirmation at once)
        return _Runs(
            rule,
            k.settled(metric_of(win, rule.metric), rule.settle_s // MINUTE_S),
            rule.direction,
            scaled_threshold(rnd, rule),
            rule.run_s,
            rule.max_gap_s,
            "value",
        )
    # the live rule fires on the latest cuff measurement (pulse and pressure in one bin)
    # while it is fresh (in the last freshness_s // 60 bins): as runs, one measurement is
    # enough and a gap beyond that freshness ends the episode
    hr, sbp = metric_of(win, "heart_rate_bpm"), metric_of(win, "bp_systolic_mmhg")
    both = hr.present & sbp.present & (sbp.values > 0)
    ratio = np.where(both, hr.values / np.where(both, sbp.values, 1.0), 0.0)
    return _Runs(
        rule,
        MetricWindow(ratio, both),
        "above",
        np.full(len(rnd.ids), rule.threshold),
        MINUTE_S,
        (rule.freshness_s // MINUTE_S - 1) * MINUTE_S,
        "shock_index",
    )


def _episodes(
    win: Window, runs: _Runs, ids: NDArray[np.int64], since: NDArray[np.int64]
) -> list[LateEpisode]:
    n_bins, start_ms, bin_ms = win.n_bins, win.bin_start_ms(0), MINUTE_S * 1000
    latest, _ = k.last_present(runs.metric.present)
    out: list[LateEpisode] = []
    for e in k.sustained_episodes(
        runs.metric, MINUTE_S, runs.direction, runs.threshold, runs.duration_s, runs.max_gap_s
    ):
        ended_ms = start_ms + (e.last_bin + 1) * bin_ms
        if ended_ms <= since[e.row]:
            continue  # over before the late readings began: the live engine judged it
        recent = (n_bins - 1 - e.last_bin) * MINUTE_S <= runs.max_gap_s
        if e.last_bin == latest[e.row] and recent:
            continue  # still going on: the live rule fires for it
        out.append(
            LateEpisode(
                patient_id=int(ids[e.row]),
                rule_id=runs.rule.id,
                priority=runs.rule.priority,
                onset_ms=start_ms + e.since_bin * bin_ms,
                ended_ms=ended_ms,
                evidence={
                    runs.evidence: e.worst,
                    "threshold": float(
                        runs.threshold[e.row]
                        if runs.threshold.ndim == 1
                        else runs.threshold[e.row, e.since_bin]
                    ),
                    "late": True,
                },
            )
        )
    return out
