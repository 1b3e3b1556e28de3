"""The scenario library: each scenario is reproducible from its seed, does to the body or
the kit what it says, and records a ground truth an evaluation can score against."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from firmware_sim.devices import DeviceKind
from firmware_sim.physiology import DAY_MS, HOUR_MS, MINUTE_MS, Patient
from firmware_sim.scenarios import SCENARIOS, FollowUp, plan

from bench.alert_quality.cohort import Member, members, simulate
from vitals.catalogue import BY_NAME

SEED = 5
START_MS = 1_789_344_000_000  # 2026-09-14 00:00 UTC
FOLLOW = FollowUp(START_MS - 2 * DAY_MS, START_MS, START_MS + 14 * DAY_MS)


def _patient(name: str, key: str = "s1") -> tuple[Patient, Patient]:
    """The same patient with and without the scenario's deviations."""
    from datetime import UTC, datetime

    surgery = datetime.fromtimestamp(FOLLOW.surgery_ms / 1000, UTC)
    p = plan(name, SEED, key, FOLLOW)
    return Patient(key, SEED, surgery, deviations=p.deviations), Patient(key, SEED, surgery)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_is_reproducible_and_keeps_onset_inside_follow_up(name: str) -> None:
    a, b = plan(name, SEED, "k1", FOLLOW), plan(name, SEED, "k1", FOLLOW)
    assert a.truths == b.truths
    assert a.disruption == b.disruption
    other = plan(name, SEED + 1, "k1", FOLLOW)
    for truth in a.truths:
        assert FOLLOW.start_ms < truth.onset_ms <= FOLLOW.end_ms - DAY_MS
        assert truth.expected_rules
        assert truth.detect_within_s > 0
    if a.truths:
        assert other.truths[0].onset_ms != a.truths[0].onset_ms  # seeds give other courses
    assert (name == "uneventful") == (not a.truths)


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="sepsis"):
        plan("appendicitis", SEED, "k", FOLLOW)


def test_sepsis_fever_from_day_three_with_tachycardia_and_fast_breathing() -> None:
    sick, well = _patient("sepsis")
    onset = plan("sepsis", SEED, "s1", FOLLOW).truths[0].onset_ms
    assert onset >= FOLLOW.surgery_ms + 3 * DAY_MS
    before = onset - HOUR_MS
    assert sick.truth("temp_c", before) == well.truth("temp_c", before)
    later = onset + 2 * DAY_MS
    assert sick.truth("temp_c", later) - well.truth("temp_c", later) >= 1.7
    assert sick.truth("heart_rate_bpm", later) - well.truth("heart_rate_bpm", later) >= 28
    assert sick.truth("resp_rate_per_min", later) - well.truth("resp_rate_per_min", later) >= 7


def test_bleeding_raises_heart_rate_as_pressure_falls() -> None:
    sick, well = _patient("bleeding")
    onset = plan("bleeding", SEED, "s1", FOLLOW).truths[0].onset_ms
    t = onset + 6 * HOUR_MS
    assert sick.truth("heart_rate_bpm", t) - well.truth("heart_rate_bpm", t) >= 35
    assert well.truth("bp_systolic_mmhg", t) - sick.truth("bp_systolic_mmhg", t) >= 38


def test_embolism_desaturates_within_minutes() -> None:
    sick, well = _patient("pulmonary_embolism")
    onset = plan("pulmonary_embolism", SEED, "s1", FOLLOW).truths[0].onset_ms
    t = onset + 20 * MINUTE_MS
    assert well.truth("spo2_pct", t) - sick.truth("spo2_pct", t) >= 8
    assert sick.truth("heart_rate_bpm", t) - well.truth("heart_rate_bpm", t) >= 30


def test_fluid_overload_gains_about_a_kilogram_a_day() -> None:
    sick, well = _patient("fluid_overload")
    onset = plan("fluid_overload", SEED, "s1", FOLLOW).truths[0].onset_ms
    gain = [
        sick.truth("weight_kg", onset + d * DAY_MS) - well.truth("weight_kg", onset + d * DAY_MS)
        for d in (1, 2, 3)
    ]
    assert 0.3 < gain[0] < gain[1] < gain[2]
    assert gain[2] >= 2.0


def _member(scenario: str, days: float = 5) -> Member:
    """A cohort member forced to a scenario, with a patch."""
    m = members(12, days, SEED)[0]
    follow = FollowUp(m.start_ms - 2 * DAY_MS, m.start_ms, m.end_ms)
    p = plan(scenario, SEED, m.key, follow)
    kinds = (*m.kinds, DeviceKind.HR_PATCH.value) if "hr-patch" not in m.kinds else m.kinds
    return replace(m, scenario=scenario, truths=p.truths, offline=p.disruption.offline, kinds=kinds)


def test_a_patient_who_stops_measuring_sends_nothing_more() -> None:
    m = _member("stopped_measuring")
    r = simulate(m, SEED)
    onset = m.truths[0].onset_ms
    assert (r.measured_ms < onset).sum() > 1000
    assert not (r.arrival_ms >= onset).any()


def test_a_failing_battery_drains_then_its_device_falls_silent() -> None:
    m = _member("failing_battery")
    r = simulate(m, SEED)
    onset = m.truths[0].onset_ms
    ox = m.kinds.index(DeviceKind.OXIMETER.value)
    battery = (r.device == ox) & (r.metric_id == BY_NAME["battery_pct"].metric_id)
    after = battery & (r.measured_ms >= onset)
    assert after.any()
    assert r.value[after].min() < 15
    assert np.all(np.diff(r.value[after]) <= 1)  # draining, never recharged
    last = int(r.measured_ms[r.device == ox].max())
    assert last < onset + 15 * HOUR_MS  # silent once empty
    assert (r.measured_ms[r.device != ox] > last + DAY_MS).any()  # the rest of the kit goes on


def test_an_offline_home_delivers_its_readings_when_back() -> None:
    m = _member("home_offline")
    assert m.offline is not None
    start, end = m.offline
    r = simulate(m, SEED)
    # a patch's rhythm summary is stamped with its minute and sent once the minute is over
    rhythm = np.isin(
        r.metric_id, [BY_NAME[n].metric_id for n in ("rr_rmssd_ms", "rr_irregularity")]
    )
    during = (r.measured_ms >= start) & (r.measured_ms < end - MINUTE_MS)
    assert (during & ~rhythm).sum() > 100  # measured as usual...
    assert np.all(r.arrival_ms[during & ~rhythm] == end)  # ...and delivered when back
    assert np.all(r.arrival_ms[during & rhythm] >= end)
    latency = r.arrival_ms - r.measured_ms
    assert np.all(latency[~during & ~rhythm] < 60_000)
    # (a summary of the minute before the outage is sent once it began: held too)
    late = ~during & rhythm
    assert np.all((latency[late] < 2 * 60_000) | (r.arrival_ms[late] == end))


def test_real_patients_skip_measurements_at_irregular_times() -> None:
    m = _member("uneventful", days=10)
    r = simulate(m, SEED)
    temps = np.sort(r.measured_ms[r.metric_id == BY_NAME["temp_c"].metric_id])
    local = ZoneInfo(m.tz)
    per_day = Counter(datetime.fromtimestamp(t / 1000, local).date() for t in temps.tolist())
    whole_days = sorted(per_day)[1:-1]  # the first and last days are cut by the follow-up
    slots = 3 * len(whole_days)
    taken = sum(per_day[d] for d in whole_days)
    assert taken < slots  # some were forgotten...
    assert taken >= 0.7 * slots  # ...most were not
    hours = (temps % DAY_MS) / HOUR_MS
    assert np.std(hours - np.round(hours)) > 0.2  # not on the hour
