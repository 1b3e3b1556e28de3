"""The per-minute RR summary shared by the gateway and the evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from vitals.rhythm import summarise_rr


def _beats(rr: np.ndarray, start_ms: int = 0) -> np.ndarray:
    return (start_ms + np.cumsum(rr)).astype(np.int64)


def test_regular_rhythm_exact_numbers() -> None:
    # alternating 1000/1020 ms: every successive difference is 20 ms
    rr = np.tile([1000.0, 1020.0], 40)
    out = summarise_rr(_beats(rr), rr)
    assert out.minute_ms.tolist() == [0]  # the first minute only has enough beats
    assert out.rmssd_ms[0] == pytest.approx(20.0)
    assert out.irregularity[0] == pytest.approx(20.0 / 1010.0, rel=1e-3)


def test_atrial_fibrillation_is_irregular_and_sinus_is_not() -> None:
    rng = np.random.default_rng(1)
    n = 900
    sinus = 857 + 40 * np.sin(np.arange(n) / 4) + rng.normal(0, 8, n)
    af = np.clip(rng.normal(500, 110, n), 300, 1500)
    s = summarise_rr(_beats(sinus), sinus)
    a = summarise_rr(_beats(af), af)
    assert (s.irregularity < 0.05).all()
    assert (a.irregularity > 0.15).all()


def test_a_few_ectopic_beats_are_trimmed() -> None:
    rr = np.full(70, 900.0)
    rr[30] = 500.0  # premature beat, then its compensatory pause
    rr[31] = 1300.0
    out = summarise_rr(_beats(rr), rr)
    assert out.rmssd_ms[0] == 0.0


def test_artefacts_break_the_succession_and_sparse_minutes_are_dropped() -> None:
    rr = np.full(70, 800.0)
    rr[10] = 3000.0  # a dropped beat: neither difference around it counts
    out = summarise_rr(_beats(rr), rr)
    assert out.beats.tolist() == [69]
    assert out.rmssd_ms[0] == 0.0
    few = np.full(20, 800.0)
    assert len(summarise_rr(_beats(few), few).minute_ms) == 0


def test_order_of_input_does_not_matter() -> None:
    rng = np.random.default_rng(2)
    rr = rng.uniform(600, 1000, 300)
    t = _beats(rr)
    perm = rng.permutation(len(rr))
    a, b = summarise_rr(t, rr), summarise_rr(t[perm], rr[perm])
    assert np.array_equal(a.minute_ms, b.minute_ms)
    assert np.allclose(a.irregularity, b.irregularity)
