"""The metric catalogue: one entry per measured quantity, with its UCUM unit, LOINC code
and the range a real human body (or device) can produce.

The numeric ``metric_id`` is what the database stores; it never changes once released.
The plausible range is deliberately wide: it rejects values no patient can have (a sensor
fault, a unit mix-up), not abnormal values, which are exactly what the alerts must see.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricKind(StrEnum):
    VITAL = "vital"
    ACTIVITY = "activity"
    PATIENT_REPORTED = "patient_reported"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Metric:
    metric_id: int
    name: str
    label_en: str
    ucum: str
    loinc: str | None
    plausible_min: float
    plausible_max: float
    kind: MetricKind
    decimals: int

    def is_plausible(self, value: float) -> bool:
        return self.plausible_min <= value <= self.plausible_max


CATALOGUE: tuple[Metric, ...] = (
    Metric(1, "heart_rate_bpm", "Heart rate", "/min", "8867-4", 20, 250, MetricKind.VITAL, 0),
    Metric(2, "spo2_pct", "Oxygen saturation (SpO2)", "%", "59408-5", 50, 100, MetricKind.VITAL, 0),
    Metric(3, "temp_c", "Body temperature", "Cel", "8310-5", 30, 45, MetricKind.VITAL, 1),
    Metric(
        4,
        "bp_systolic_mmhg",
        "Systolic blood pressure",
        "mm[Hg]",
        "8480-6",
        40,
        300,
        MetricKind.VITAL,
        0,
    ),
    Metric(
        5,
        "bp_diastolic_mmhg",
        "Diastolic blood pressure",
        "mm[Hg]",
        "8462-4",
        15,
        200,
        MetricKind.VITAL,
        0,
    ),
    Metric(
        6,
        "bp_mean_mmhg",
        "Mean arterial pressure",
        "mm[Hg]",
        "8478-0",
        25,
        230,
        MetricKind.VITAL,
        0,
    ),
    Metric(
        7, "resp_rate_per_min", "Respiratory rate", "/min", "9279-1", 3, 70, MetricKind.VITAL, 0
    ),
    Metric(8, "weight_kg", "Body weight", "kg", "29463-7", 20, 350, MetricKind.VITAL, 1),
    Metric(9, "glucose_mmol_l", "Blood glucose", "mmol/L", "15074-8", 0.5, 45, MetricKind.VITAL, 1),
    Metric(10, "steps_count", "Steps", "{steps}", "55423-8", 0, 100_000, MetricKind.ACTIVITY, 0),
    Metric(
        11,
        "pain_score",
        "Pain score (0-10)",
        "{score}",
        "72514-3",
        0,
        10,
        MetricKind.PATIENT_REPORTED,
        0,
    ),
    Metric(12, "battery_pct", "Device battery level", "%", None, 0, 100, MetricKind.DEVICE, 0),
    # one minute of a heart-rate patch's beat-to-beat (RR) intervals, summarised by
    # vitals.rhythm.summarise_rr: RMSSD, and RMSSD over the mean RR (the irregularity
    # index that atrial fibrillation raises, Dash et al. 2009)
    Metric(
        13,
        "rr_rmssd_ms",
        "Beat-to-beat variability (RMSSD)",
        "ms",
        None,
        0,
        2000,
        MetricKind.VITAL,
        0,
    ),
    Metric(
        14,
        "rr_irregularity",
        "Heart rhythm irregularity (RMSSD / mean RR)",
        "1",
        None,
        0,
        2,
        MetricKind.VITAL,
        3,
    ),
    # answers to the patient's daily questionnaire (vitals/questionnaires/*.yaml): each
    # numeric answer is a reading, so the rules and charts take it as they take vitals.
    # ``pain_score`` (11, LOINC 72514-3) is the pain at rest. Yes/no answers are 1/0;
    # graded answers count up from 0 (none). No LOINC code for the others: the
    # questionnaire's local code system names them (vitals.questionnaire.LOCAL_SYSTEM).
    *(
        Metric(mid, name, label, ucum, None, 0, top, MetricKind.PATIENT_REPORTED, 0)
        for mid, name, label, ucum, top in (
            (15, "pain_movement_score", "Pain on movement (0-10)", "{score}", 10),
            (16, "nausea_grade", "Nausea or vomiting (0 none, 1 nausea, 2 vomiting)", "1", 2),
            (17, "wound_redness", "Wound redness (reported)", "1", 1),
            (18, "wound_swelling", "Wound swelling (reported)", "1", 1),
            (19, "wound_discharge", "Wound discharge (reported)", "1", 1),
            (20, "wound_opening", "Wound opening (reported)", "1", 1),
            (21, "fever_chills", "Feeling feverish or chills (reported)", "1", 1),
            (22, "breathless_grade", "Breathlessness (0 none, 1 on effort, 2 at rest)", "1", 2),
            (23, "calf_pain_swelling", "Calf pain or swelling (reported)", "1", 1),
            (24, "bowel_grade", "Bowel function (0 stools, 1 gas only, 2 neither)", "1", 2),
            (25, "mobility_grade", "Mobility (0 as usual ... 3 bed or chair)", "1", 3),
        )
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOGUE}
BY_ID: dict[int, Metric] = {m.metric_id: m for m in CATALOGUE}


def metric(name: str) -> Metric:
    """The catalogue entry for ``name``; KeyError names the unknown metric."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}") from None
