"""What a patient answers in the daily questionnaire (vitals/questionnaires/), from their
simulated body: the evening's pain at rest and on movement, and the yes/no and graded
items, each answered "yes" with a small everyday probability (a red scar line, a swollen
knee after a walk) raised by what a complication changes. A complication moves an item
through its deviations' delta on the item's metric (``Shift`` shifts such as
``{"wound_redness": 0.9}``: the probability added at full effect).

Everyday rates are assumptions, chosen to match what the cited follow-up studies report
of uncomplicated recoveries: about 1 patient in 10 reports some wound redness or swelling
in the first week (Bluebelle Study Group 2019, BJS Open: the Wound Healing Questionnaire
in patients without SSI), nausea in about 1 in 5 in the first days fading (PONV after
discharge: Apfel et al. 2012, Anesthesiology), movement-evoked pain 1-3 points above pain
at rest (Srikandarajah & Gilron 2011, Pain)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import numpy as np

from firmware_sim.physiology import DAY_MS, Patient

# (metric, everyday probability of "yes" on post-operative day 2, fading with the days)
YES_NO_BASE = {
    "wound_redness": 0.06,
    "wound_swelling": 0.08,
    "wound_discharge": 0.03,
    "wound_opening": 0.005,
    "fever_chills": 0.03,
    "calf_pain_swelling": 0.02,
}
FADE_DAYS = 7.0  # everyday complaints halve over about a week


@dataclass(frozen=True, slots=True)
class Answer:
    metric: str
    measured_ms: int
    value: float


def _extra(patient: Patient, metric: str, t_ms: int) -> float:
    """What the patient's complications add to the item (a probability, or points)."""
    return float(sum(d.delta(metric, t_ms) for d in patient.deviations))


def evening_answers(
    patient: Patient,
    start_ms: int,
    end_ms: int,
    surgery_ms: int,
    rng: np.random.Generator,
    skip_p: float,
    digestive: bool,
) -> Iterator[Answer]:
    """One questionnaire an evening (about 20:00 local, give or take an hour), skipped on
    ``skip_p`` of the evenings."""
    day = datetime.fromtimestamp(start_ms / 1000, patient.tz).date()
    while True:
        at = datetime.combine(day, time(20), patient.tz) + timedelta(
            minutes=float(rng.normal(0, 40))
        )
        t = int(at.timestamp() * 1000)
        day += timedelta(days=1)
        if t >= end_ms:
            return
        if t < start_ms or rng.random() < skip_p:
            continue
        yield from _one(patient, t, surgery_ms, rng, digestive)


def _one(
    patient: Patient, t: int, surgery_ms: int, rng: np.random.Generator, digestive: bool
) -> Iterator[Answer]:
    post_op_days = (t - surgery_ms) / DAY_MS
    fade = 0.5 ** max(0.0, (post_op_days - 2.0) / FADE_DAYS)
    rest = float(np.clip(round(patient.truth("pain_score", t) + rng.normal(0, 0.8)), 0, 10))
    moving = float(np.clip(rest + round(rng.uniform(1, 3)), 0, 10))
    yield Answer("pain_score", t, rest)
    yield Answer("pain_movement_score", t, moving)
    temp = patient.truth("temp_c", t)
    for metric, base in YES_NO_BASE.items():
        p = base * fade + _extra(patient, metric, t)
        if metric == "fever_chills":  # a real fever is felt most of the time
            p += 0.7 * float(np.clip(temp - 37.6, 0.0, 1.0))
        yield Answer(metric, t, float(rng.random() < min(p, 0.98)))
    nausea = 0.15 * fade + _extra(patient, "nausea_grade", t)
    yield Answer("nausea_grade", t, float(rng.random() < nausea) * (1 + (rng.random() < 0.2)))
    breath = 0.04 + _extra(patient, "breathless_grade", t)
    grade = float(rng.random() < breath) * (1 + (rng.random() < 0.05 + breath / 3))
    yield Answer("breathless_grade", t, min(grade, 2.0))
    mobility = float(np.clip(round(2.2 * fade + rng.normal(0, 0.5)), 0, 3))
    yield Answer("mobility_grade", t, mobility)
    if digestive:  # gas and stools return within a few days (GI-2: van Bree 2014)
        bowel = float(np.clip(round(1.5 * fade**2 + rng.normal(0, 0.4)), 0, 2))
        yield Answer("bowel_grade", t, bowel)
