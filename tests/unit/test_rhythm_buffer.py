"""The gateway's per-minute rhythm summary of a patch's RR intervals."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.rhythm_buffer import RhythmBuffer
from vitals.rhythm import summarise_rr


def test_a_minute_is_summarised_once_a_later_beat_arrives() -> None:
    buf = RhythmBuffer()
    t0 = 1_700_000_040_000  # a minute boundary
    rng = np.random.default_rng(3)
    rr = np.clip(rng.normal(600, 130, 200), 300, 1500)  # irregular, ~100/min
    ends = t0 + np.cumsum(rr).astype(np.int64)
    out = []
    for i in range(0, len(rr), 2):  # two intervals per notification, as patches send
        out += buf.add("patch-1", int(ends[min(i + 1, len(rr) - 1)]), tuple(rr[i : i + 2]))
    minutes = sorted({r.time_ms // 60_000 for r in out})
    assert [m * 60_000 for m in minutes] == [t0, t0 + 60_000]  # the third is still going
    expected = summarise_rr(ends, rr)
    irr = [r.value for r in out if r.metric == "rr_irregularity"]
    assert irr == pytest.approx(expected.irregularity[:2].round(4).tolist(), abs=0.02)
    assert min(irr) > 0.1  # irregular, as atrial fibrillation
    assert all(r.time_ms <= int(ends[-1]) for r in out)


def test_no_intervals_no_summary_and_devices_kept_apart() -> None:
    buf = RhythmBuffer()
    assert buf.add("a", 60_000, ()) == []
    assert buf.add("a", 61_000, (800.0,)) == []
    assert buf.add("b", 125_000, (800.0,)) == []  # another device: a's minute not closed
