"""The scenario library: seeded, reproducible courses of a recovery at home, each with its
ground truth (what happened, when, and which alerts a good system should raise by when).

A scenario turns a seed and the follow-up's dates into a ``Plan``: the ``Deviation``s it
adds to the patient's physiology (complications), the ``Disruption`` it causes to the
kit (the patient stops measuring, a battery fails, the home goes offline), the schedule
the patient keeps, and the ``GroundTruth`` records an evaluation scores alerts against.
Rule ids in the ground truth are the default protocols' vocabulary (alerts/protocols/).

Shapes follow the clinical picture, with seeded spreads so a cohort is not one curve:
- infection / sepsis: fever climbing from post-operative day 3 or later, tachycardia and
  faster breathing following it, blood pressure sagging late;
- bleeding: heart rate rising as systolic pressure falls over a few hours;
- pulmonary embolism: desaturation and tachycardia within minutes;
- fluid overload / heart failure: weight up about a kilogram a day, breathing faster,
  saturation drifting down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from firmware_sim.devices import DeviceKind, Disruption, Schedule
from firmware_sim.physiology import DAY_MS, HOUR_MS, MINUTE_MS, Deviation, derive_rng

Category = Literal["clinical", "technical"]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What really happened: ``condition`` from ``onset_ms``, seen in ``metrics``; a good
    system raises one of ``expected_rules`` within ``detect_within_s`` of the onset."""

    condition: str
    category: Category
    onset_ms: int
    expected_rules: tuple[str, ...]
    detect_within_s: int
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    scenario: str
    deviations: tuple[Deviation, ...] = ()
    disruption: Disruption = field(default_factory=Disruption)
    schedule: Schedule = field(default_factory=Schedule)
    truths: tuple[GroundTruth, ...] = ()


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The dates a scenario is placed in: surgery, start and end of home monitoring."""

    surgery_ms: int
    start_ms: int
    end_ms: int


def _ramp(t_ms: int, onset_ms: int, rise_ms: int) -> float:
    """0 before the onset, rising smoothly to 1 over ``rise_ms``, then 1."""
    if t_ms <= onset_ms:
        return 0.0
    x = min(1.0, (t_ms - onset_ms) / rise_ms)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True, slots=True)
class Shift:
    """A complication as target shifts per metric reached over ``rise_ms`` after the onset;
    metrics listed in ``lag_ms`` start that much later (a late fall in blood pressure)."""

    onset_ms: int
    rise_ms: int
    shifts: Mapping[str, float]
    lag_ms: Mapping[str, int] = field(default_factory=dict)

    def delta(self, metric: str, t_ms: int) -> float:
        shift = self.shifts.get(metric)
        if shift is None:
            return 0.0
        return shift * _ramp(t_ms, self.onset_ms + self.lag_ms.get(metric, 0), self.rise_ms)


# --- the schedule real patients keep ----------------------------------------------------

IRREGULAR = Schedule(jitter_min=45.0, skip_p=0.12)


def _onset(rng: np.random.Generator, f: FollowUp, first_day: float, last_day: float) -> int:
    """An onset between post-operative days, kept inside the monitored follow-up (at
    least a day before its end, so there is time to detect it)."""
    low = max(f.start_ms + 6 * HOUR_MS, f.surgery_ms + int(first_day * DAY_MS))
    high = min(f.end_ms - DAY_MS, f.surgery_ms + int(last_day * DAY_MS))
    high = max(high, low + HOUR_MS)
    minute = int(rng.integers(low // MINUTE_MS, high // MINUTE_MS))
    return minute * MINUTE_MS


def uneventful(rng: np.random.Generator, f: FollowUp) -> Plan:
    """A recovery without complication, measured as real patients do: at irregular times,
    some measurements forgotten, with the usual motion artifacts and bad cuff readings."""
    return Plan("uneventful", schedule=IRREGULAR)


def sepsis(rng: np.random.Generator, f: FollowUp) -> Plan:
    onset = _onset(rng, f, 3.0, 7.0)
    rise = int(rng.uniform(18, 36) * HOUR_MS)
    shift = Shift(
        onset,
        rise,
        {
            "temp_c": float(rng.uniform(1.7, 2.5)),
            "heart_rate_bpm": float(rng.uniform(28, 42)),
            "resp_rate_per_min": float(rng.uniform(7, 11)),
            "bp_systolic_mmhg": -float(rng.uniform(10, 25)),
            "bp_diastolic_mmhg": -float(rng.uniform(5, 12)),
            "spo2_pct": -float(rng.uniform(1, 3)),
        },
        {"bp_systolic_mmhg": rise // 2, "bp_diastolic_mmhg": rise // 2},
    )
    truth = GroundTruth(
        "sepsis",
        "clinical",
        onset,
        ("fever", "hr_high", "rr_high", "news2", "temp_rising", "hr_above_baseline", "shock_index"),
        36 * 3600,
        ("temp_c", "heart_rate_bpm", "resp_rate_per_min"),
    )
    return Plan("sepsis", (shift,), schedule=IRREGULAR, truths=(truth,))


def bleeding(rng: np.random.Generator, f: FollowUp) -> Plan:
    onset = _onset(rng, f, 1.0, 10.0)
    shift = Shift(
        onset,
        int(rng.uniform(2, 6) * HOUR_MS),
        {
            "heart_rate_bpm": float(rng.uniform(35, 50)),
            "bp_systolic_mmhg": -float(rng.uniform(38, 55)),
            "bp_diastolic_mmhg": -float(rng.uniform(18, 28)),
            "resp_rate_per_min": float(rng.uniform(4, 8)),
            "spo2_pct": -float(rng.uniform(0.5, 2)),
        },
    )
    truth = GroundTruth(
        "bleeding",
        "clinical",
        onset,
        ("hr_high", "hr_critical", "sbp_low", "news2", "hr_above_baseline", "shock_index"),
        12 * 3600,
        ("heart_rate_bpm", "bp_systolic_mmhg"),
    )
    return Plan("bleeding", (shift,), schedule=IRREGULAR, truths=(truth,))


def pulmonary_embolism(rng: np.random.Generator, f: FollowUp) -> Plan:
    onset = _onset(rng, f, 2.0, 12.0)
    shift = Shift(
        onset,
        int(rng.uniform(5, 20) * MINUTE_MS),
        {
            "spo2_pct": -float(rng.uniform(8, 13)),
            "heart_rate_bpm": float(rng.uniform(32, 48)),
            "resp_rate_per_min": float(rng.uniform(8, 13)),
            "bp_systolic_mmhg": -float(rng.uniform(5, 15)),
        },
    )
    truth = GroundTruth(
        "pulmonary_embolism",
        "clinical",
        onset,
        ("spo2_critical", "spo2_low", "hr_high", "hr_critical", "rr_high", "news2"),
        6 * 3600,
        ("spo2_pct", "heart_rate_bpm"),
    )
    return Plan("pulmonary_embolism", (shift,), schedule=IRREGULAR, truths=(truth,))


def fluid_overload(rng: np.random.Generator, f: FollowUp) -> Plan:
    onset = _onset(rng, f, 2.0, 6.0)
    days = float(rng.uniform(3.5, 5))
    shift = Shift(
        onset,
        int(days * DAY_MS),
        {
            "weight_kg": float(rng.uniform(0.9, 1.2)) * days,
            "resp_rate_per_min": float(rng.uniform(3, 6)),
            "spo2_pct": -float(rng.uniform(2, 4)),
            "heart_rate_bpm": float(rng.uniform(6, 12)),
        },
    )
    truth = GroundTruth(
        "fluid_overload",
        "clinical",
        onset,
        ("weight_gain", "spo2_low", "rr_high", "news2"),
        4 * 86_400,
        ("weight_kg",),
    )
    return Plan("fluid_overload", (shift,), schedule=IRREGULAR, truths=(truth,))


def stops_measuring(rng: np.random.Generator, f: FollowUp) -> Plan:
    """The patient gives up: every device falls silent (the patch taken off too)."""
    onset = _onset(rng, f, 3.0, 12.0)
    truth = GroundTruth(
        "stopped_measuring", "technical", onset, ("no_spo2", "no_weight"), 12 * 3600
    )
    return Plan(
        "stopped_measuring",
        disruption=Disruption(silent_from_ms=onset),
        schedule=IRREGULAR,
        truths=(truth,),
    )


def failing_battery(rng: np.random.Generator, f: FollowUp) -> Plan:
    """The oximeter's battery fails: it drains within hours and the device falls silent."""
    onset = _onset(rng, f, 3.0, 12.0)
    truth = GroundTruth(
        "failing_battery", "technical", onset, ("battery_low", "no_spo2"), 30 * 3600
    )
    return Plan(
        "failing_battery",
        disruption=Disruption(
            failing_battery=DeviceKind.OXIMETER,
            battery_fails_ms=onset,
            battery_hours_to_empty=float(rng.uniform(6, 14)),
        ),
        schedule=IRREGULAR,
        truths=(truth,),
    )


def home_offline(rng: np.random.Generator, f: FollowUp) -> Plan:
    """The home's internet is down for about a day; the gateway keeps every reading and
    delivers it when the connection is back."""
    onset = _onset(rng, f, 3.0, 11.0)
    end = onset + int(rng.uniform(20, 28) * HOUR_MS)
    truth = GroundTruth("home_offline", "technical", onset, ("gateway_offline",), 3600)
    return Plan(
        "home_offline",
        disruption=Disruption(offline=(onset, end)),
        schedule=IRREGULAR,
        truths=(truth,),
    )


SCENARIOS: dict[str, Callable[[np.random.Generator, FollowUp], Plan]] = {
    "uneventful": uneventful,
    "sepsis": sepsis,
    "bleeding": bleeding,
    "pulmonary_embolism": pulmonary_embolism,
    "fluid_overload": fluid_overload,
    "stopped_measuring": stops_measuring,
    "failing_battery": failing_battery,
    "home_offline": home_offline,
}


def plan(name: str, seed: int, key: str, follow_up: FollowUp) -> Plan:
    """Scenario ``name`` for one patient: the same (seed, key, dates) give the same plan."""
    try:
        build = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return build(derive_rng(seed, key, 7), follow_up)
