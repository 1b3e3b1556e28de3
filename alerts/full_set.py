"""Which patients' phones should ask for a full set of measurements now (a protocol's
``full_set``): a waking reading is off (a pulse over 90 and well above the patient's
usual, a pressure well below it, a raised temperature) while the readings that would say
whether it matters are not fresh. A ward nurse who finds one abnormal observation takes
the others at once; at home, without asking, the temperature that shows a sepsis may come
the next morning. Pure: the engine's sender (``full_set_requests``) writes and pushes the
requests, the alert-quality replay answers them with simulated readings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from alerts import rules as k
from alerts.context import PatientContext
from alerts.evaluation_round import MINUTE_S, Round
from alerts.protocol import FullSet, FullSetTrigger, Protocol
from alerts.source import ReadingSource
from alerts.usual import usual_values
from alerts.window import metric_of


@dataclass(frozen=True)
class FullSetAsk:
    """One patient's phone should ask for a full set: ``missing`` are the metrics with
    no fresh reading, in the protocol's order (the first is the one whose reading ends
    the request); ``trigger`` the metric whose reading was off."""

    patient_id: int
    protocol: str
    trigger: str
    value: float
    usual: float
    missing: tuple[str, ...]


def _past(
    values: NDArray[np.float64], usual: NDArray[np.float64], t: FullSetTrigger
) -> NDArray[np.bool_]:
    """Whether each value passes every limit the trigger gives (an unknown usual fails a
    limit on the usual: no request for a change nobody can measure)."""
    ok = np.isfinite(values)
    v = np.where(ok, values, np.nan)
    with np.errstate(invalid="ignore"):
        if t.above is not None:
            ok &= v > t.above
        if t.at_or_above is not None:
            ok &= v >= t.at_or_above
        if t.below is not None:
            ok &= v < t.below
        if t.above_usual_by is not None:
            ok &= np.isfinite(usual) & (v >= usual + t.above_usual_by)
        if t.below_usual_by is not None:
            ok &= np.isfinite(usual) & (v <= usual - t.below_usual_by)
    return np.asarray(ok, dtype=np.bool_)


def full_set_asks(
    source: ReadingSource,
    ctx: PatientContext,
    protocols: Mapping[str, Protocol],
    now_ms: int,
) -> list[FullSetAsk]:
    """The patients (awake now, in their local time) whose phone should ask for a full
    set; the sender decides whether it may (a phone enrolled, none asked lately)."""
    out: list[FullSetAsk] = []
    awake_now = ~k.in_hours(k.local_hour(now_ms, ctx.utc_offset_s(now_ms)), *k.USUAL_NIGHT_H)
    for name in sorted(set(ctx.protocols)):
        proto = protocols.get(name)
        if proto is None or proto.full_set is None:
            continue
        mask = ctx.subset(name) & awake_now
        if mask.any():
            out += _asks(source, ctx, mask, name, proto, proto.full_set, now_ms)
    return out


def _asks(
    source: ReadingSource,
    ctx: PatientContext,
    mask: NDArray[np.bool_],
    name: str,
    proto: Protocol,
    spec: FullSet,
    now_ms: int,
) -> list[FullSetAsk]:
    rnd = Round(source, ctx, mask, now_ms)
    pids = rnd.pids
    triggers = {t.metric for t in spec.triggers}
    usual = usual_values(rnd, proto.rules, triggers)
    span = max(spec.within_s, spec.fresh_s) + spec.settle_s
    win = rnd.window(triggers | set(spec.asks), span, MINUTE_S)
    fresh = {m: k.latest_within(metric_of(win, m), MINUTE_S, spec.fresh_s)[1] for m in spec.asks}
    settle_bins = spec.settle_s // MINUTE_S
    found: list[FullSetAsk] = []
    taken: set[int] = set()
    for t in spec.triggers:
        latest, has = k.latest_within(
            k.settled(metric_of(win, t.metric), settle_bins), MINUTE_S, spec.within_s
        )
        off = has & _past(latest, usual[t.metric], t)
        for i in np.flatnonzero(off).tolist():
            missing = tuple(m for m in spec.asks if not fresh[m][i])
            if not missing or pids[i] in taken:
                continue
            taken.add(pids[i])
            found.append(
                FullSetAsk(
                    int(pids[i]),
                    name,
                    t.metric,
                    float(latest[i]),
                    float(usual[t.metric][i]),
                    missing,
                )
            )
    return found
