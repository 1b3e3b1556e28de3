"""Beat-to-beat intervals of each heart-rate patch, held until their minute is over and
then published as that minute's rhythm summary (``rr_rmssd_ms``, ``rr_irregularity``,
see ``vitals.rhythm``); the intervals themselves never leave the gateway.

A Heart Rate Measurement carries no time: its last interval ended when it was received,
the earlier ones before it. A minute is summarised once a beat of a later minute arrives
(a patch that stops sending leaves its last minute unsummarised: too few beats anyway to
say anything about the rhythm). Memory is bounded to the minutes not yet summarised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from vitals.rhythm import MINUTE_MS, summarise_rr


@dataclass(frozen=True, slots=True)
class RhythmReading:
    metric: str
    time_ms: int
    value: float


@dataclass
class _Beats:
    times_ms: list[int] = field(default_factory=list)
    rr_ms: list[float] = field(default_factory=list)


class RhythmBuffer:
    """Per device, the intervals of the minute(s) still going on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_device: dict[str, _Beats] = {}

    def add(self, device: str, rx_ms: int, rr_ms: tuple[float, ...]) -> list[RhythmReading]:
        """Take a notification's intervals; return the summaries of the minutes it closed."""
        if not rr_ms:
            return []
        rr = np.asarray(rr_ms, dtype=np.float64)
        # the last interval ended at reception; each earlier one ended one interval before
        ends = rx_ms - np.concatenate([np.cumsum(rr[::-1])[::-1][1:], [0.0]])
        with self._lock:
            beats = self._by_device.setdefault(device, _Beats())
            beats.times_ms += ends.astype(np.int64).tolist()
            beats.rr_ms += rr.tolist()
            current = rx_ms // MINUTE_MS * MINUTE_MS
            t = np.asarray(beats.times_ms, dtype=np.int64)
            done = t < current
            if not done.any():
                return []
            closed_t, closed_rr = t[done], np.asarray(beats.rr_ms)[done]
            beats.times_ms = t[~done].tolist()
            beats.rr_ms = np.asarray(beats.rr_ms)[~done].tolist()
        summary = summarise_rr(closed_t, closed_rr)
        out = []
        for minute, rmssd, irr in zip(
            summary.minute_ms.tolist(),
            summary.rmssd_ms.tolist(),
            summary.irregularity.tolist(),
            strict=True,
        ):
            # stamped at the minute's end (no later than now): never "late" on arrival
            at = min(minute + MINUTE_MS - 1, rx_ms)
            out += [
                RhythmReading("rr_rmssd_ms", at, round(rmssd, 1)),
                RhythmReading("rr_irregularity", at, round(irr, 4)),
            ]
        return out
