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
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from firmware_sim.devices import DeviceKind, Disruption, Schedule
from firmware_sim.physiology import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    AtrialFibrillation,
    Deviation,
    derive_rng,
)
from firmware_sim.population import Profile, Requirements

Category = Literal["clinical", "technical"]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What really happened: ``condition`` from ``onset_ms``, changing ``metrics`` (the
    related parameters: an alert is about this condition when its rule watches one of
    them); a good system raises a related alert (technical events: one of
    ``expected_rules``) within ``detect_within_s`` of the onset."""

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
        ("temp_c", "heart_rate_bpm", "resp_rate_per_min", "bp_systolic_mmhg", "spo2_pct"),
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
        ("heart_rate_bpm", "bp_systolic_mmhg", "resp_rate_per_min"),
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
        ("spo2_pct", "heart_rate_bpm", "resp_rate_per_min", "bp_systolic_mmhg"),
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
        ("weight_kg", "spo2_pct", "resp_rate_per_min", "heart_rate_bpm"),
    )
    return Plan("fluid_overload", (shift,), schedule=IRREGULAR, truths=(truth,))


def stops_measuring(rng: np.random.Generator, f: FollowUp) -> Plan:
    """The patient gives up: every device falls silent (the patch taken off too)."""
    onset = _onset(rng, f, 3.0, 12.0)
    # any missing-data rule says it, the reminder-linked ones (issue 20) included: a
    # patient whose missing-data alert is already open hears of it through them
    missing = ("no_spo2", "no_weight", "no_bp", "no_temp")
    truth = GroundTruth("stopped_measuring", "technical", onset, missing, 12 * 3600)
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


# --- the realistic population's complications ---------------------------------------------
#
# Each one is drawn for a patient of ``population`` (its ``needs`` condition the draw:
# a slow sepsis in an older patient, a bleed under a beta-blocker, dehydration with an
# ileostomy) and records as ground truth the metrics it changes: an alert is related to
# it when its rule watches one of them (or a NEWS2 score needed one of them to score).
# The body's response goes through the patient's own gains (a beta-blocker keeps the
# pulse flat, an older patient's fever stays low), so the shifts below are what an
# unmedicated adult would show.

# metrics that change with the heart's rhythm rather than its rate (beat-to-beat
# irregularity summaries computed from a patch's RR intervals); alerts on them are
# related to atrial fibrillation
RHYTHM_METRICS: tuple[str, ...] = ("rr_rmssd_ms", "rr_irregularity")
BP_METRICS = ("bp_systolic_mmhg", "bp_diastolic_mmhg", "bp_mean_mmhg")
CLINICAL_RULES = (
    "fever",
    "hr_high",
    "hr_critical",
    "sbp_low",
    "news2",
    "spo2_low",
    "spo2_critical",
    "rr_high",
    "weight_gain",
    "shock_index",
    "temp_rising",
    "hr_above_baseline",
)


@dataclass(frozen=True)
class Complication:
    """A complication of the realistic cohort: what it needs of the patient, and how to
    build its plan for a patient who has it."""

    needs: Requirements
    build: Callable[[np.random.Generator, FollowUp, Profile], Plan]


def schedule_for(profile: Profile) -> Schedule:
    """When this patient measures: kit, adherence and thermometer habit decide.

    Spot-check kits have the oximeter used by day only; kits with night oximetry (and
    patch kits) have it worn most nights. Poor adherence: a third of spot measurements
    forgotten, wider timing, the oximeter left off one night in two (assumption).

    Asked to measure again (the cuff's movement error, the phone's request to confirm a
    reading), 8 patients in 10 do, within 5-30 min, and half of those with poor
    adherence (assumption: no study of the response to such prompts was found; 73 % of
    telemonitored hypertensives kept to their schedule of readings, Kerby et al. 2012,
    J Clin Hypertens)."""
    poor = profile.poor_adherence
    night = {"spot": 0.0, "night_oximetry": 0.9, "patch": 0.9}[profile.kit]
    temps = (8.25, 20.25) if profile.temperature_checks == 2 else (8.25, 14.25, 20.25)
    spots = (9.0, 14.0, 20.0) if profile.kit == "spot" else (9.0, 13.0, 17.0, 21.0)
    return Schedule(
        oximeter_night_p=night * (0.5 if poor else 1.0),
        oximeter_spot_checks_h=spots,
        temperature_h=temps,
        jitter_min=70.0 if poor else 45.0,
        skip_p=0.33 if poor else 0.12,
        remeasure_p=0.5 if poor else 0.8,
    )


def _truth(condition: str, onset: int, within_h: float, metrics: tuple[str, ...]) -> GroundTruth:
    return GroundTruth(condition, "clinical", onset, CLINICAL_RULES, int(within_h * 3600), metrics)


def _sepsis(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Sepsis from an anastomotic leak, wound or pneumonia: fever climbing over a day or
    so, tachycardia and faster breathing following, pressure sagging late (Sepsis-3:
    Singer et al. 2016, JAMA; qSOFA respiratory rate >= 22, systolic <= 100)."""
    onset = _onset(rng, f, 3.0, 8.0)
    rise = int(rng.uniform(14, 30) * HOUR_MS)
    shift = Shift(
        onset,
        rise,
        {
            "temp_c": float(rng.uniform(1.5, 2.4)),
            "heart_rate_bpm": float(rng.uniform(25, 40)),
            "resp_rate_per_min": float(rng.uniform(6, 10)),
            "bp_systolic_mmhg": -float(rng.uniform(15, 30)),
            "bp_diastolic_mmhg": -float(rng.uniform(6, 12)),
            "spo2_pct": -float(rng.uniform(1, 3)),
        },
        {"bp_systolic_mmhg": rise // 2, "bp_diastolic_mmhg": rise // 2},
    )
    metrics = ("temp_c", "heart_rate_bpm", "resp_rate_per_min", "spo2_pct", *BP_METRICS)
    return Plan("sepsis", (shift,), truths=(_truth("sepsis", onset, 24, metrics),))


def _sepsis_slow(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """A slow sepsis in an older patient (urinary or chest infection): temperature
    creeping to about 38.0 over two days or more, pulse rising slowly, breathing faster
    (seen only with a respiratory-rate sensor); older patients mount a smaller fever
    (Norman 2000) and a slower, subtler picture."""
    onset = _onset(rng, f, 3.0, 9.0)
    rise = int(rng.uniform(36, 60) * HOUR_MS)
    shift = Shift(
        onset,
        rise,
        {
            "temp_c": float(rng.uniform(1.0, 1.5)),
            "heart_rate_bpm": float(rng.uniform(15, 25)),
            "resp_rate_per_min": float(rng.uniform(4, 7)),
            "bp_systolic_mmhg": -float(rng.uniform(10, 20)),
            "bp_diastolic_mmhg": -float(rng.uniform(4, 8)),
            "spo2_pct": -float(rng.uniform(0.5, 2)),
        },
        {"bp_systolic_mmhg": rise // 2, "bp_diastolic_mmhg": rise // 2},
    )
    metrics = ("temp_c", "heart_rate_bpm", "resp_rate_per_min", "spo2_pct", *BP_METRICS)
    return Plan("sepsis_slow", (shift,), truths=(_truth("sepsis_slow", onset, 48, metrics),))


def _bleeding(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Haemorrhage (class II-III, 15-40 % of blood volume: ATLS 10th ed., 2018): pulse
    rising as systolic pressure falls over a few hours. The fall is from the patient's
    own pressure: 145 to 100 in a treated hypertensive is shock without crossing 90;
    under a beta-blocker the pulse barely moves (the body's gain does it)."""
    onset = _onset(rng, f, 2.0, 10.0)
    shift = Shift(
        onset,
        int(rng.uniform(3, 10) * HOUR_MS),
        {
            "heart_rate_bpm": float(rng.uniform(25, 45)),
            "bp_systolic_mmhg": -float(rng.uniform(30, 48)),
            "bp_diastolic_mmhg": -float(rng.uniform(14, 24)),
            "resp_rate_per_min": float(rng.uniform(3, 7)),
        },
    )
    name = "bleeding_beta_blocked" if p.beta_blocker else "bleeding"
    metrics = ("heart_rate_bpm", "resp_rate_per_min", *BP_METRICS)
    return Plan(name, (shift,), truths=(_truth(name, onset, 12, metrics),))


def _pulmonary_embolism(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Pulmonary embolism: desaturation and faster breathing within minutes; tachycardia
    over 100 in only about a quarter of patients (PIOPED II: Stein et al. 2007, Am J Med:
    tachypnoea 54 %, tachycardia 24 %), a small pressure fall unless massive."""
    onset = _onset(rng, f, 3.0, 12.0)
    shift = Shift(
        onset,
        int(rng.uniform(5, 30) * MINUTE_MS),
        {
            "spo2_pct": -float(rng.uniform(4, 11)),
            "heart_rate_bpm": float(rng.uniform(8, 35)),
            "resp_rate_per_min": float(rng.uniform(5, 12)),
            "bp_systolic_mmhg": -float(rng.uniform(0, 12)),
        },
    )
    metrics = ("spo2_pct", "heart_rate_bpm", "resp_rate_per_min", *BP_METRICS)
    return Plan(
        "pulmonary_embolism",
        (shift,),
        truths=(_truth("pulmonary_embolism", onset, 6, metrics),),
    )


def _atrial_fibrillation(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """New post-operative atrial fibrillation, peak on days 2-4 (Echahidi et al. 2008),
    ventricular rate about 120-130 untreated (less under a beta-blocker), lasting hours
    to a couple of days (most convert within 24-48 h); pressure a little lower."""
    onset = _onset(rng, f, 2.2, 5.0)
    rate = float(np.clip(rng.normal(110 if p.beta_blocker else 126, 9), 100, 155))
    end = onset + int(rng.uniform(8, 60) * HOUR_MS)
    af = AtrialFibrillation(onset, end, rate)
    shift = Shift(
        onset,
        int(10 * MINUTE_MS),
        {"bp_systolic_mmhg": -float(rng.uniform(3, 12)), "resp_rate_per_min": 2.0},
    )
    metrics = ("heart_rate_bpm", *RHYTHM_METRICS, *BP_METRICS)
    return Plan(
        "atrial_fibrillation",
        (af, shift),
        truths=(_truth("atrial_fibrillation", onset, 12, metrics),),
    )


def _heart_failure(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Heart failure / fluid overload: weight creeping up over days before any symptom
    (Chaudhry et al. 2007, Circulation: weight rises gradually over the week before a
    heart-failure admission), then faster breathing, saturation drifting down (worse
    lying flat, at night), a faster pulse."""
    onset = _onset(rng, f, 3.0, 8.0)
    days = float(rng.uniform(4, 7))
    shift = Shift(
        onset,
        int(days * DAY_MS),
        {
            "weight_kg": float(rng.uniform(0.5, 0.9)) * days,
            "resp_rate_per_min": float(rng.uniform(3, 6)),
            "spo2_pct": -float(rng.uniform(2, 4)),
            "heart_rate_bpm": float(rng.uniform(6, 14)),
        },
    )
    metrics = ("weight_kg", "spo2_pct", "resp_rate_per_min", "heart_rate_bpm")
    return Plan(
        "heart_failure", (shift,), truths=(_truth("heart_failure", onset, 4 * 24, metrics),)
    )


def _ileostomy_dehydration(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Dehydration from a high-output ileostomy (over 1.5-2 L a day): weight falling,
    pulse rising, pressure falling over one to three days; 17 % of loop ileostomies are
    readmitted for it (Messaris et al. 2012, Dis Colon Rectum)."""
    onset = _onset(rng, f, 3.0, 9.0)
    shift = Shift(
        onset,
        int(rng.uniform(30, 72) * HOUR_MS),
        {
            "weight_kg": -float(rng.uniform(1.5, 3.5)),
            "heart_rate_bpm": float(rng.uniform(15, 30)),
            "bp_systolic_mmhg": -float(rng.uniform(15, 30)),
            "bp_diastolic_mmhg": -float(rng.uniform(8, 14)),
        },
    )
    metrics = ("weight_kg", "heart_rate_bpm", *BP_METRICS)
    return Plan(
        "ileostomy_dehydration",
        (shift,),
        truths=(_truth("ileostomy_dehydration", onset, 48, metrics),),
    )


# what the patient reports (the daily questionnaire's items, firmware_sim.reported)
WOUND_ITEMS = ("wound_redness", "wound_swelling", "wound_discharge", "wound_opening")
PAIN_ITEMS = ("pain_score", "pain_movement_score")


def _wound_infection(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Surgical site infection, usually 4-10 days after surgery: the wound's signs first,
    pain rising over a day or two, redness and swelling, later discharge (CDC/NHSN
    superficial incisional criteria, Horan 1992); fever and a faster pulse follow a day
    or two later, if at all in an older patient. What the patient sees is the first
    signal (Bluebelle Study Group 2019: the wound questionnaire finds SSI after
    discharge)."""
    onset = _onset(rng, f, 4.0, 10.0)
    local = Shift(
        onset,
        int(rng.uniform(18, 36) * HOUR_MS),
        {
            "pain_score": float(rng.uniform(2.5, 4.0)),
            "wound_redness": 0.9,
            "wound_swelling": 0.7,
            "wound_discharge": 0.5,
        },
        {"wound_discharge": int(rng.uniform(12, 30) * HOUR_MS)},
    )
    lag = int(rng.uniform(24, 48) * HOUR_MS)
    systemic = Shift(
        onset + lag,
        int(rng.uniform(12, 24) * HOUR_MS),
        {"temp_c": float(rng.uniform(1.0, 1.8)), "heart_rate_bpm": float(rng.uniform(10, 20))},
    )
    metrics = (*PAIN_ITEMS, *WOUND_ITEMS, "fever_chills", "temp_c", "heart_rate_bpm")
    return Plan(
        "wound_infection",
        (local, systemic),
        truths=(_truth("wound_infection", onset, 48, metrics),),
    )


def _deep_vein_thrombosis(rng: np.random.Generator, f: FollowUp, p: Profile) -> Plan:
    """Deep-vein thrombosis of the calf (most after orthopaedic surgery, days 3-12): calf
    pain and swelling first (Wells 1997), then, as clots embolise, a faster pulse, a
    little desaturation and faster breathing a day or so later (PIOPED II: tachycardia in
    a quarter only). Detected when still a thrombosis, within 36 h."""
    onset = _onset(rng, f, 3.0, 12.0)
    calf = Shift(
        onset,
        int(rng.uniform(6, 18) * HOUR_MS),
        {"calf_pain_swelling": 0.85, "pain_score": float(rng.uniform(1.0, 2.0))},
    )
    lag = int(rng.uniform(18, 36) * HOUR_MS)
    embolic = Shift(
        onset + lag,
        int(rng.uniform(2, 8) * HOUR_MS),
        {
            "heart_rate_bpm": float(rng.uniform(15, 30)),
            "spo2_pct": -float(rng.uniform(1, 3)),
            "resp_rate_per_min": float(rng.uniform(2, 5)),
            "breathless_grade": 0.3,
        },
    )
    metrics = ("calf_pain_swelling", *PAIN_ITEMS, "breathless_grade", "heart_rate_bpm", "spo2_pct")
    return Plan(
        "deep_vein_thrombosis",
        (calf, embolic),
        truths=(_truth("deep_vein_thrombosis", onset, 36, (*metrics, "resp_rate_per_min")),),
    )


def _technical(build: Callable[[np.random.Generator, FollowUp], Plan]) -> Complication:
    return Complication(Requirements(), lambda rng, f, p: build(rng, f))


COMPLICATIONS: dict[str, Complication] = {
    "uneventful": _technical(uneventful),
    "sepsis": Complication(Requirements(), _sepsis),
    "sepsis_slow": Complication(Requirements(min_age=70), _sepsis_slow),
    "bleeding": Complication(Requirements(beta_blocker=False), _bleeding),
    "bleeding_beta_blocked": Complication(
        Requirements(beta_blocker=True, hypertension=True), _bleeding
    ),
    "pulmonary_embolism": Complication(Requirements(), _pulmonary_embolism),
    "atrial_fibrillation": Complication(Requirements(), _atrial_fibrillation),
    "heart_failure": Complication(Requirements(), _heart_failure),
    "ileostomy_dehydration": Complication(
        Requirements(surgery="digestive", ileostomy=True), _ileostomy_dehydration
    ),
    # first seen in what the patient reports (the "reported" cohort of postop eval)
    "wound_infection": Complication(Requirements(), _wound_infection),
    "deep_vein_thrombosis": Complication(Requirements(), _deep_vein_thrombosis),
    "stopped_measuring": _technical(stops_measuring),
    "failing_battery": _technical(failing_battery),
    "home_offline": _technical(home_offline),
}


def realistic_plan(name: str, seed: int, key: str, follow_up: FollowUp, profile: Profile) -> Plan:
    """Complication ``name`` for a patient of the realistic population, with the
    schedule that patient keeps."""
    try:
        c = COMPLICATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown complication {name!r}; known: {', '.join(COMPLICATIONS)}"
        ) from None
    p = c.build(derive_rng(seed, key, 7), follow_up, profile)
    return replace(p, schedule=schedule_for(profile))
