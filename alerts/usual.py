"""Each patient's usual values: what the rules that know the patient compare a reading
with (a pressure falling from the patient's own, a pulse rising from it, a saturation at
night against their own nights)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.evaluation_round import HOUR_S, Round
from alerts.protocol import (
    USUAL_FIELDS,
    ConfirmedRule,
    CongestionRule,
    DepletionRule,
    RelativeRule,
    Rule,
    SepsisScreenRule,
    SustainedRule,
)
from alerts.window import metric_of

BASELINE_MAX_S = 30 * 86_400  # how far back, at most, the first days after discharge are
NIGHTS_S = 7 * 86_400  # earlier nights that make a patient's usual night
NIGHT_EXCLUDE_S = 12 * 3600  # tonight is not part of the usual night it is judged against


def usual_metrics(rules: list[Rule]) -> set[str]:
    """The metrics whose usual value some rule compares with: relative rules, limits
    that follow the usual, the sepsis screen's pulse (and temperature when its cold
    limit follows the usual), the signs of a weight change."""
    metrics = {
        r.metric
        for r in rules
        if isinstance(r, RelativeRule) or (isinstance(r, ConfirmedRule) and r.usual is not None)
    }
    for r in rules:
        if isinstance(r, SepsisScreenRule):
            metrics |= {"heart_rate_bpm"} | ({"temp_c"} if r.cold_usual is not None else set())
        elif isinstance(r, CongestionRule | DepletionRule):
            metrics |= set(r.sign_moves)
    return metrics


def baseline_span_s(rnd: Round, unknown_s: int = BASELINE_MAX_S) -> int:
    """From the earliest discharge of these patients (at most ``BASELINE_MAX_S``, at
    least an hour): the window their first days after discharge are in; ``unknown_s``
    when no discharge is known."""
    discharged = rnd.discharged_ms()
    known = discharged >= 0
    first = int(discharged[known].min()) if known.any() else rnd.now_ms - unknown_s * 1000
    return min(max(rnd.now_ms - first, HOUR_S), BASELINE_MAX_S)


def usual_values(
    rnd: Round, rules: list[Rule], metrics: set[str], waking_only: bool = True
) -> dict[str, NDArray[np.float64]]:
    """Per metric, each patient's usual value (the hospital's, and the first day's or
    the span the metric's relative rules set: the nearer to the change watched for, see
    ``rules.usual_value``); ``waking_only``: learned from waking hours, as the spot
    checks it judges are taken."""
    if not metrics:
        return {}
    relative = [r for r in rules if isinstance(r, RelativeRule)]
    discharged = rnd.discharged_ms()
    win = rnd.window(sorted(metrics), baseline_span_s(rnd), HOUR_S)
    bin_start = win.bin_starts_ms()
    # the direction each metric's changes are watched in (a pulse rising: sepsis screen,
    # calf rule and relative rules alike; a pressure falling)
    watch: dict[str, k.Direction] = {r.metric: r.direction for r in relative}
    awake = k.awake_bins(bin_start, rnd.offsets_s) if waking_only else None
    out = {}
    for metric in metrics:
        field = USUAL_FIELDS.get(metric)
        entered = getattr(rnd.ctx, field)[rnd.mask] if field else np.full(len(rnd.ids), np.nan)
        # each metric learned over its own relative rules' span: two temperatures a day
        # need two days for a usual value, a cuff's first day is enough for a pressure
        own = [r for r in relative if r.metric == metric]
        out[metric] = k.usual_value(
            metric_of(win, metric),
            bin_start,
            discharged,
            max(r.usual_s for r in own) if own else 86_400,
            min(r.min_usual_points for r in own) if own else 2,
            entered,
            watch.get(metric, "above"),
            awake,
        )
    return out


def usual_nights(rnd: Round, rules: list[SustainedRule]) -> dict[str, NDArray[np.float64]]:
    """Per metric, each patient's usual value at night: the median of the hourly means of
    their earlier nights (the last 7 days, tonight excluded); NaN with too few hours."""
    metrics = sorted({r.metric for r in rules})
    win = rnd.window(metrics, NIGHTS_S, HOUR_S)
    mid_ms = win.bin_starts_ms() + HOUR_S // 2 * 1000
    hours = (((mid_ms[None, :] // 1000) + rnd.offsets_s[:, None]) % 86_400) / 3600.0
    out = {}
    for metric in metrics:
        spec = next(r.night for r in rules if r.metric == metric and r.night is not None)
        night = k.in_hours(hours, spec.start_h, spec.end_h)
        earlier = (mid_ms < rnd.now_ms - NIGHT_EXCLUDE_S * 1000)[None, :]
        m = metric_of(win, metric)
        sel = m.present & night & earlier
        med = k.masked_median(m.values, sel)
        out[metric] = np.where(sel.sum(axis=1) >= spec.min_usual_hours, med, np.nan)
    return out
