"""The patient model: reproducible from its seed, physiologically plausible, with a
circadian rhythm, a post-operative recovery, device noise and artifacts, and a hook for
complications that shifts the truth."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import mean, pstdev, stdev
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from firmware_sim.ieee11073 import Special
from firmware_sim.physiology import (
    DAY_MS,
    HOUR_MS,
    TRUTH_METRICS,
    ArtifactRates,
    Baseline,
    Patient,
    derive_rng,
)

from vitals.catalogue import metric

SURGERY = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SURGERY_MS = int(SURGERY.timestamp() * 1000)


def patient(key: str = "p-001", seed: int = 7, tz: ZoneInfo | None = None) -> Patient:
    return Patient(key, seed, SURGERY, tz or ZoneInfo("UTC"))


def number(value: float | Special) -> float:
    assert not isinstance(value, Special)
    return value


def hours(days: float, step_h: float = 1.0, from_day: float = 1.0) -> list[int]:
    start = SURGERY_MS + int(from_day * DAY_MS)
    return [start + int(i * step_h * HOUR_MS) for i in range(int(days * 24 / step_h))]


def test_same_seed_and_key_give_the_same_patient() -> None:
    a, b = patient(), patient()
    assert a.base == b.base
    assert a.rec == b.rec
    for t in hours(2, 0.5):
        assert a.vitals(t) == b.vitals(t)
    ra, rb = np.random.default_rng(1), np.random.default_rng(1)
    for t in hours(1):
        assert a.measure_oximeter(t, ra) == b.measure_oximeter(t, rb)
        assert a.measure_cuff(t, ra) == b.measure_cuff(t, rb)


def test_other_seed_or_key_gives_another_patient() -> None:
    assert patient(seed=8).base != patient().base
    assert patient(key="p-002").base != patient().base


def test_truth_does_not_depend_on_the_order_it_is_asked_in() -> None:
    times = hours(3, 0.25)
    forward = [patient().vitals(t) for t in times]
    p = patient()
    backward = [p.vitals(t) for t in reversed(times)]
    assert forward == backward[::-1]


def test_derived_generators_are_independent_per_purpose() -> None:
    a = derive_rng(1, "k", 2, 0, 100).random(4)
    assert np.array_equal(a, derive_rng(1, "k", 2, 0, 100).random(4))
    assert not np.array_equal(a, derive_rng(1, "k", 2, 0, 101).random(4))
    assert not np.array_equal(a, derive_rng(1, "j", 2, 0, 100).random(4))


PLAUSIBLE_UNEVENTFUL = {
    "heart_rate_bpm": (40, 140),
    "spo2_pct": (88, 100),
    "temp_c": (35.5, 38.2),
    "bp_systolic_mmhg": (80, 200),
    "bp_diastolic_mmhg": (40, 120),
    "bp_mean_mmhg": (55, 145),
    "resp_rate_per_min": (8, 28),
    "glucose_mmol_l": (3.5, 14),
    "pain_score": (0, 10),
}


@pytest.mark.parametrize("seed", range(12))
def test_an_uneventful_recovery_stays_in_plausible_ranges(seed: int) -> None:
    p = Patient(f"p-{seed:03d}", seed, SURGERY, ZoneInfo("Europe/Paris"))
    for t in hours(10, 0.5, from_day=0.5):
        for name, value in p.vitals(t).items():
            assert metric(name).is_plausible(value), (name, value)
            if name in PLAUSIBLE_UNEVENTFUL:
                low, high = PLAUSIBLE_UNEVENTFUL[name]
                assert low <= value <= high, (seed, name, value)
        assert p.truth("bp_diastolic_mmhg", t) < p.truth("bp_mean_mmhg", t)
        assert p.truth("bp_mean_mmhg", t) < p.truth("bp_systolic_mmhg", t)
    weight = p.truth("weight_kg", SURGERY_MS)
    assert abs(weight - p.base.weight_kg) < 5


def _at_local_hour(p: Patient, days: range, hour: float) -> list[int]:
    tz = p.tz
    start = SURGERY.astimezone(tz).date()
    return [
        int(
            (
                datetime.combine(start + timedelta(days=d), datetime.min.time(), tz)
                + timedelta(hours=hour)
            ).timestamp()
            * 1000
        )
        for d in days
    ]


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_circadian_rhythm_follows_local_time(tz: str) -> None:
    days = range(3, 9)
    gaps: dict[str, list[float]] = {"temp_c": [], "heart_rate_bpm": [], "bp_systolic_mmhg": []}
    for seed in range(6):
        p = Patient(f"c-{seed}", seed, SURGERY, ZoneInfo(tz))
        night = _at_local_hour(p, days, 3.5)  # deep in the night
        evening = _at_local_hour(p, days, 17.5)  # temperature peak, awake
        for name in gaps:
            gaps[name].append(
                mean(p.truth(name, t) for t in evening) - mean(p.truth(name, t) for t in night)
            )
        assert all(p.is_asleep(t) for t in night)
        assert not any(p.is_asleep(t) for t in evening)
    assert all(0.2 < g < 1.0 for g in gaps["temp_c"]), gaps["temp_c"]
    assert all(g > 5 for g in gaps["heart_rate_bpm"]), gaps["heart_rate_bpm"]
    assert all(g > 8 for g in gaps["bp_systolic_mmhg"]), gaps["bp_systolic_mmhg"]


def test_recovery_settles_over_days() -> None:
    for seed in range(8):
        p = Patient(f"r-{seed}", seed, SURGERY)

        def daily_mean(name: str, day: int, p: Patient = p) -> float:
            return mean(p.truth(name, t) for t in hours(1, 0.5, from_day=day))

        assert daily_mean("heart_rate_bpm", 1) > daily_mean("heart_rate_bpm", 12) + 2
        assert daily_mean("temp_c", 1) > daily_mean("temp_c", 12)
        assert daily_mean("spo2_pct", 1) < daily_mean("spo2_pct", 12)
        assert daily_mean("pain_score", 1) > daily_mean("pain_score", 12) + 1
        day1 = p.expected_steps(SURGERY_MS + DAY_MS, SURGERY_MS + 2 * DAY_MS)
        day14 = p.expected_steps(SURGERY_MS + 14 * DAY_MS, SURGERY_MS + 15 * DAY_MS)
        assert day1 < 0.6 * day14
        assert 0.5 * p.base.daily_steps < day14 < 1.5 * p.base.daily_steps


def test_weight_loses_the_operation_s_fluid_and_wanders_from_day_to_day() -> None:
    """The post-operative excess goes over days (the patient's weight back to their own),
    and first-morning weight wanders about 1 % from day to day (Cheuvront et al. 2004):
    without the wander no well patient's weight would ever fall or rise enough to test
    the weight rules on."""
    lost: list[float] = []
    settled: list[float] = []
    day_to_day: list[float] = []
    for seed in range(40):
        p = Patient(f"w-{seed}", seed, SURGERY)
        mornings = _at_local_hour(p, range(1, 31), 7.5)
        weights = [p.truth("weight_kg", t) for t in mornings]
        lost.append(weights[0] - weights[19])
        settled.append(weights[29] - p.base.weight_kg)
        day_to_day.extend(100 * (b - a) / p.base.weight_kg for a, b in pairwise(weights[15:]))
    assert mean(lost) > 0.7  # 1.8 kg on average at the operation, half gone in 3 days
    assert abs(mean(settled)) < 0.3
    assert 0.4 < stdev(day_to_day) < 1.2, stdev(day_to_day)


def test_one_person_s_home_temperatures_spread_as_published() -> None:
    """Self-measured temperatures of healthy adults at home have a within-person SD of
    0.40 °C (95 % CI 0.36-0.44; Frazer et al. 2019): a well patient's readings twice a day
    (08:00 and 19:00 local), days 4-14, spread about as much. Too narrow a spread makes
    the temperature rules look better on the simulator than on patients."""
    spreads: list[float] = []
    for seed in range(30):
        p = Patient(f"t-{seed}", seed, SURGERY)
        rng = derive_rng(seed, "t", 1)
        times = _at_local_hour(p, range(4, 15), 8.0) + _at_local_hour(p, range(4, 15), 19.0)
        values = [p.measure_temperature(t, rng).value for t in times]
        spreads.append(stdev(v for v in values if not isinstance(v, Special)))  # no 'Lo'
    assert 0.32 < mean(spreads) < 0.46, mean(spreads)


class Fever:
    """A test complication: +1.5 C and +20 bpm from onset, systolic -25 mmHg."""

    def __init__(self, onset_ms: int) -> None:
        self.onset_ms = onset_ms

    def delta(self, metric: str, t_ms: int) -> float:
        if t_ms < self.onset_ms:
            return 0.0
        return {"temp_c": 1.5, "heart_rate_bpm": 20.0, "bp_systolic_mmhg": -25.0}.get(metric, 0)


def test_deviations_add_to_the_truth_from_their_onset() -> None:
    onset = SURGERY_MS + 3 * DAY_MS
    plain, sick = patient(), patient()
    sick.add_deviation(Fever(onset))
    for t in hours(4):
        for name in TRUTH_METRICS:
            gap = sick.truth(name, t) - plain.truth(name, t)
            expected = Fever(onset).delta(name, t)
            if name == "bp_mean_mmhg":
                expected = Fever(onset).delta("bp_systolic_mmhg", t) / 3
            assert gap == pytest.approx(expected, abs=1e-9), (name, t)


def test_oximeter_noise_and_motion_artifacts() -> None:
    p = patient()
    rng = np.random.default_rng(3)
    awake = [t for t in hours(3, 0.05) if not p.is_asleep(t) and p.activity(t) > 0.2]
    readings = [p.measure_oximeter(t, rng) for t in awake]
    clean = [r for r in readings if not r.motion and not isinstance(r.spo2.value, Special)]
    errors = [number(r.spo2.value) - min(100.0, r.spo2.truth) for r in clean]
    assert abs(mean(errors)) < 0.3
    assert 0.6 < pstdev(errors) < 1.6
    moving = [r for r in readings if r.motion]
    assert 0.02 < len(moving) / len(readings) < 0.3
    assert any(r.spo2.value is Special.NAN for r in moving)  # dropouts
    low = [
        r
        for r in moving
        if not isinstance(r.spo2.value, Special) and r.spo2.value < r.spo2.truth - 4
    ]
    assert low  # spurious desaturations
    assert all(r.spo2.value is not Special.NAN for r in readings if not r.motion)


def test_device_failures_are_specials() -> None:
    p = Patient(
        "f-1",
        1,
        SURGERY,
        artifacts=ArtifactRates(cuff_failure=1.0, thermometer_low=1.0, scale_unsuccessful=1.0),
    )
    rng = np.random.default_rng(0)
    t = SURGERY_MS + 2 * DAY_MS
    cuff = p.measure_cuff(t, rng)
    assert {cuff.systolic.value, cuff.diastolic.value, cuff.mean.value} == {Special.NAN}
    assert p.measure_temperature(t, rng).value is Special.NEGATIVE_INFINITY
    assert p.measure_weight(t, rng).value is Special.NAN
    assert math.isfinite(p.measure_weight(t, rng).truth)


def test_cuff_artifacts_read_high_and_pain_is_an_integer_score() -> None:
    def cuff_patient(loose: float) -> Patient:
        rates = ArtifactRates(cuff_loose=loose, cuff_movement=0.0, cuff_failure=0.0)
        return Patient("a-1", 1, SURGERY, artifacts=rates)

    t = SURGERY_MS + 2 * DAY_MS
    loose = [cuff_patient(1.0).measure_cuff(t, np.random.default_rng(i)) for i in range(200)]
    fitted = [cuff_patient(0.0).measure_cuff(t, np.random.default_rng(i)) for i in range(200)]
    assert all(r.cuff_loose for r in loose)
    assert not any(r.cuff_loose for r in fitted)
    bias = mean(number(r.systolic.value) for r in loose) - mean(
        number(r.systolic.value) for r in fitted
    )
    assert 8 < bias < 20
    p = patient()
    pains = {p.measure_pain(t + i * HOUR_MS, np.random.default_rng(i)).value for i in range(50)}
    assert pains <= {float(n) for n in range(11)}


def test_baseline_draws_look_like_adults() -> None:
    draws = [Baseline.draw(np.random.default_rng(i)) for i in range(300)]
    assert 65 < mean(b.heart_rate_bpm for b in draws) < 75
    assert 120 < mean(b.bp_systolic_mmhg for b in draws) < 145
    assert all(b.bp_systolic_mmhg - b.bp_diastolic_mmhg >= 30 for b in draws)
    assert 36.5 < mean(b.temp_c for b in draws) < 36.9
    assert all(18 <= b.weight_kg / b.height_m**2 <= 41 for b in draws)
