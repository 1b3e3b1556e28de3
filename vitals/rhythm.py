"""Beat-to-beat (RR) intervals of a heart-rate patch, summarised per minute: the one
function the gateway (which publishes the summaries as readings) and the alert quality
evaluation (which simulates them) share, so both see the same numbers.

Atrial fibrillation makes successive RR intervals differ at random; sinus rhythm, even
with respiratory sinus arrhythmia, changes them smoothly. The index is the RMSSD (root
mean square of successive differences) over the mean RR, the "normalised RMSSD" of Dash
et al. (Ann Biomed Eng 2009), above about 0.1 in AF. Isolated ectopic beats give two
large differences each; the largest tenth of the differences of a minute are left out
so a few ectopics do not look like AF (Dash trims the extreme intervals for the same
reason). Intervals outside 250-2000 ms (240-30 /min) are artefacts or dropped beats and
break the succession.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MINUTE_MS = 60_000
RR_MIN_MS = 250.0
RR_MAX_MS = 2000.0
MIN_BEATS = 30  # a minute with fewer usable intervals says nothing about the rhythm
TRIM_FRACTION = 0.1


@dataclass(frozen=True)
class RhythmMinutes:
    """One row per minute that had enough beats (ascending)."""

    minute_ms: NDArray[np.int64]  # start of the minute, UTC epoch ms
    beats: NDArray[np.int64]  # usable RR intervals in the minute
    mean_rr_ms: NDArray[np.float64]
    rmssd_ms: NDArray[np.float64]  # trimmed, see the module docstring
    irregularity: NDArray[np.float64]  # rmssd_ms / mean_rr_ms


def summarise_rr(
    beat_ms: NDArray[np.int64] | NDArray[np.float64],
    rr_ms: NDArray[np.float64],
    min_beats: int = MIN_BEATS,
) -> RhythmMinutes:
    """Per-minute RMSSD and irregularity of RR intervals ``rr_ms`` that ended at
    ``beat_ms`` (epoch ms; any order). Successive differences are taken between
    consecutive usable intervals of the same minute only."""
    t = np.asarray(beat_ms, dtype=np.int64)
    rr = np.asarray(rr_ms, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, rr = t[order], rr[order]
    ok = (rr >= RR_MIN_MS) & (rr <= RR_MAX_MS)
    minute = t // MINUTE_MS
    # successive pairs: both usable, same minute
    pair = ok[1:] & ok[:-1] & (minute[1:] == minute[:-1])
    diff = np.abs(np.diff(rr))[pair]
    pair_minute = minute[1:][pair]
    minutes, beats = np.unique(minute[ok], return_counts=True)
    rr_sum = np.bincount(
        np.searchsorted(minutes, minute[ok]), weights=rr[ok], minlength=len(minutes)
    )
    mean_rr = rr_sum / np.maximum(beats, 1)
    # trim the largest TRIM_FRACTION of each minute's differences: sort by (minute, diff)
    # and keep each difference whose rank within its minute is below the cut
    idx = np.searchsorted(minutes, pair_minute)
    order = np.lexsort((diff, idx))
    idx, diff = idx[order], diff[order]
    n_pairs = np.bincount(idx, minlength=len(minutes))
    first = np.concatenate([[0], np.cumsum(n_pairs)[:-1]])
    rank = np.arange(len(idx)) - first[idx]
    keep_n = np.ceil(n_pairs * (1 - TRIM_FRACTION)).astype(np.int64)
    kept = rank < keep_n[idx]
    sq = np.bincount(idx[kept], weights=diff[kept] ** 2, minlength=len(minutes))
    cnt = np.bincount(idx[kept], minlength=len(minutes))
    rmssd = np.sqrt(sq / np.maximum(cnt, 1))
    enough = (beats >= min_beats) & (cnt > 0)
    return RhythmMinutes(
        minute_ms=(minutes[enough] * MINUTE_MS).astype(np.int64),
        beats=beats[enough].astype(np.int64),
        mean_rr_ms=mean_rr[enough],
        rmssd_ms=rmssd[enough],
        irregularity=rmssd[enough] / mean_rr[enough],
    )
