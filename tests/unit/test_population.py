"""The realistic post-operative population: prevalences as published, and the bodies and
devices behaving as the literature says (apnoea dips deeper with obesity, a beta-blocked
bleed with a flat pulse, a standard cuff over-reading on a large arm, AF irregular)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from statistics import mean

import numpy as np
import pytest
from firmware_sim.ieee11073 import Special
from firmware_sim.physiology import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    AtrialFibrillation,
    Patient,
    derive_rng,
)
from firmware_sim.population import Profile, Requirements, draw_profile
from firmware_sim.scenarios import COMPLICATIONS, FollowUp, Shift, realistic_plan

SURGERY = datetime(2026, 9, 12, 8, tzinfo=UTC)
SURGERY_MS = int(SURGERY.timestamp() * 1000)


@pytest.fixture(scope="module")
def crowd() -> list[Profile]:
    return [draw_profile(derive_rng(3, f"p{i}", 12)) for i in range(4000)]


def share(xs: list[bool]) -> float:
    return sum(xs) / len(xs)


def test_prevalences_are_those_of_a_european_surgical_population(crowd: list[Profile]) -> None:
    assert 0.42 < share([p.female for p in crowd]) < 0.56
    assert 60 < mean(p.age_years for p in crowd) < 68
    assert 0.17 < share([p.obese for p in crowd]) < 0.30  # Eurostat 17 %, surgery heavier
    assert 0.05 < share([p.copd for p in crowd]) < 0.15  # BOLD ~10 % over 40
    assert 0.10 < share([p.osa for p in crowd]) < 0.35  # Peppard 2013 .. HypnoLaus 2015
    assert 0.10 < share([p.beta_blocker for p in crowd]) < 0.30
    assert 0.30 < share([p.hypertension for p in crowd]) < 0.60
    assert 0.01 < share([p.low_bp for p in crowd]) < 0.08
    assert 0.20 < share([p.kit == "patch" for p in crowd]) < 0.30
    assert share([p.kit != "patch" for p in crowd]) > 0.5  # most kits: no RR sensor
    osa = [p for p in crowd if p.osa]
    assert 0.12 < share([p.osa_diagnosed for p in osa]) < 0.27  # 81 % undiagnosed
    # OSA goes with obesity (Peppard 2000): several times more common at BMI >= 30
    assert share([p.osa for p in crowd if p.obese]) > 2 * share(
        [p.osa for p in crowd if not p.obese]
    )
    # beta-blockers: most cardiac surgery patients, few young ones
    cardiac = [p.beta_blocker for p in crowd if p.surgery == "cardiac"]
    young = [p.beta_blocker for p in crowd if p.age_years < 50 and p.surgery != "cardiac"]
    assert share(cardiac) > 0.5 > 0.1 > share(young)


def test_scenario_requirements_condition_the_draw() -> None:
    for i in range(50):
        rng = derive_rng(1, f"r{i}", 12)
        slow = draw_profile(rng, COMPLICATIONS["sepsis_slow"].needs)
        assert slow.age_years >= 70
        bb = draw_profile(rng, COMPLICATIONS["bleeding_beta_blocked"].needs)
        assert bb.beta_blocker
        assert bb.hypertension
        ileo = draw_profile(rng, Requirements(surgery="digestive", ileostomy=True))
        assert ileo.surgery == "digestive"
        assert ileo.ileostomy


def _profile(**changes: object) -> Profile:
    base = draw_profile(derive_rng(7, "base", 12))
    healthy = replace(
        base,
        age_years=55.0,
        bmi_kg_m2=25.0,
        copd=False,
        copd_hypoxaemic=False,
        osa_ahi_per_h=2.0,
        ohs=False,
        beta_blocker=False,
        hypertension=False,
        low_bp=False,
        standard_cuff_large_arm=False,
        nail_polish=False,
        dark_skin=False,
        poor_perfusion=False,
        blunted_fever=False,
        thermometer_bias_c=0.0,
    )
    return replace(healthy, **changes)  # type: ignore[arg-type]


def _night_spo2(p: Patient, night: int) -> list[float]:
    """True SpO2 every 30 s through the patient's sleep on post-operative night ``night``."""
    evening = (SURGERY + timedelta(days=night - 1)).date()
    bed, wake = p.night(evening)
    return [p.truth("spo2_pct", t) for t in range(bed + 20 * MINUTE_MS, wake, 30_000)]


def test_apnoea_dips_are_deeper_with_obesity_and_worst_on_the_third_night() -> None:
    lean = Patient("osa", 3, SURGERY, profile=_profile(bmi_kg_m2=25.0, osa_ahi_per_h=30.0))
    obese = Patient("osa", 3, SURGERY, profile=_profile(bmi_kg_m2=40.0, osa_ahi_per_h=30.0))
    for p in (lean, obese):
        p.base = replace(p.base, spo2_pct=96.0)  # same starting point, only the BMI differs
    lean_n3, obese_n3 = _night_spo2(lean, 3), _night_spo2(obese, 3)
    assert np.percentile(obese_n3, 5) < np.percentile(lean_n3, 5) - 2
    below_90 = [mean(v < 90 for v in _night_spo2(obese, n)) for n in (3, 9)]
    assert below_90[0] > below_90[1]  # post-operative night 3 (Chung 2014) vs night 9


def test_older_healthy_sleepers_spend_about_a_tenth_of_sleep_below_93() -> None:
    shares = []
    for i in range(8):
        p = Patient(f"old{i}", 4, SURGERY, profile=_profile(age_years=68.0))
        shares.append(mean(v < 93 for v in _night_spo2(p, 8)))
    assert 0.02 < mean(shares) < 0.30  # Gries & Brooks 1996: about 10 %


def test_a_beta_blocked_bleed_keeps_the_pulse_flat() -> None:
    """Systolic from the patient's own 145 to about 100 without crossing 90, and a pulse
    that barely moves under a beta-blocker."""
    onset = SURGERY_MS + 4 * DAY_MS
    bleed = Shift(onset, 4 * HOUR_MS, {"heart_rate_bpm": 40.0, "bp_systolic_mmhg": -45.0})
    after = onset + 6 * HOUR_MS

    def rise(profile: Profile, metric: str) -> float:
        sick = Patient("b", 5, SURGERY, deviations=[bleed], profile=profile)
        well = Patient("b", 5, SURGERY, profile=profile)
        return sick.truth(metric, after) - well.truth(metric, after)

    blocked = _profile(beta_blocker=True, hypertension=True)
    free = _profile(hypertension=True)
    assert rise(blocked, "bp_systolic_mmhg") == pytest.approx(-45)
    assert rise(free, "heart_rate_bpm") == pytest.approx(40)
    assert rise(blocked, "heart_rate_bpm") <= 20
    treated = Patient("b", 5, SURGERY, deviations=[bleed], profile=blocked)
    assert treated.base.bp_systolic_mmhg > 125  # a treated hypertensive's own pressure


def test_a_standard_cuff_on_an_obese_arm_reads_high() -> None:
    obese = Patient("c", 6, SURGERY, profile=_profile(bmi_kg_m2=38.0, standard_cuff_large_arm=True))
    fitted = Patient("c", 6, SURGERY, profile=_profile(bmi_kg_m2=38.0))
    t0 = SURGERY_MS + 3 * DAY_MS

    def bias(p: Patient) -> float:
        errs = []
        for i in range(200):
            r = p.measure_cuff(t0 + i * HOUR_MS, np.random.default_rng(i))
            if not isinstance(r.systolic.value, Special) and not r.cuff_loose:
                errs.append(r.systolic.value - r.systolic.truth)
        return mean(errs)

    assert 10 < bias(obese) <= 22
    assert abs(bias(fitted)) < 2


def _rmssd_ms(rr: list[float]) -> float:
    return 1000 * float(np.sqrt(np.mean(np.diff(rr) ** 2)))


def test_atrial_fibrillation_rr_intervals_are_irregular_and_sinus_ones_are_not() -> None:
    onset = SURGERY_MS + 3 * DAY_MS
    af = AtrialFibrillation(onset, onset + DAY_MS, 125.0)
    p = Patient("af", 8, SURGERY, deviations=[af], profile=_profile(age_years=60.0))
    rng = np.random.default_rng(1)
    sinus = [p.rr_intervals(onset - k * HOUR_MS, 60, rng) for k in range(1, 13)]
    fib = [p.rr_intervals(onset + k * HOUR_MS, 60, rng) for k in range(1, 13)]
    sinus_rmssd = [_rmssd_ms(rr) for rr in sinus]
    fib_rmssd = [_rmssd_ms(rr) for rr in fib]
    assert 8 < np.median(sinus_rmssd) < 60  # Nunan 2010 / Umetani 1998
    assert np.median(fib_rmssd) > 90
    assert min(fib_rmssd) > 2 * max(sinus_rmssd)
    # sinus intervals follow each other (correlated); AF intervals do not
    lag1 = [float(np.corrcoef(rr[:-1], rr[1:])[0, 1]) for rr in sinus]
    lag1_af = [float(np.corrcoef(rr[:-1], rr[1:])[0, 1]) for rr in fib]
    assert np.median(lag1) > 0.4 > 0.2 > abs(float(np.median(lag1_af)))
    # and the rate is the ventricular rate
    assert 110 < 60 / np.mean(np.concatenate(fib)) < 140
    # a cuff flags the irregular pulse during AF, seldom in sinus rhythm
    flags_af = [p.measure_cuff(onset + k * 600_000, rng).irregular for k in range(100)]
    flags_sinus = [p.measure_cuff(onset - (k + 1) * 600_000, rng).irregular for k in range(100)]
    assert sum(flags_af) > 75
    assert sum(flags_sinus) < 15


def test_every_complication_records_the_metrics_it_changes() -> None:
    start = SURGERY_MS + 2 * DAY_MS
    follow = FollowUp(SURGERY_MS, start, start + 14 * DAY_MS)
    for name, c in COMPLICATIONS.items():
        profile = draw_profile(derive_rng(2, name, 12), c.needs)
        plan = realistic_plan(name, 2, "k", follow, profile)
        for truth in plan.truths:
            assert follow.start_ms < truth.onset_ms <= follow.end_ms - DAY_MS
            if truth.category == "clinical":
                assert truth.metrics
                assert truth.detect_within_s > 0
                sick = Patient("k", 2, SURGERY, deviations=plan.deviations, profile=profile)
                well = Patient("k", 2, SURGERY, profile=profile)
                t = truth.onset_ms + truth.detect_within_s * 500  # halfway to the deadline
                changed = {
                    m
                    for m in (
                        "heart_rate_bpm",
                        "bp_systolic_mmhg",
                        "spo2_pct",
                        "temp_c",
                        "weight_kg",
                        "pain_score",  # what the patient reports first (wound, calf)
                    )
                    if abs(sick.truth(m, t) - well.truth(m, t)) > 0.3
                }
                assert changed, name
                assert changed <= set(truth.metrics), (name, changed)
