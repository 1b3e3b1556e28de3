"""The simulated questionnaire answers (firmware_sim.reported) follow the body: a wound
infection makes redness and rising pain likely before its fever, a thrombosis makes calf
pain likely before the pulse rises, and an uneventful recovery reports such signs rarely."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from firmware_sim.physiology import DAY_MS, HOUR_MS, Patient, derive_rng
from firmware_sim.population import draw_profile
from firmware_sim.reported import evening_answers
from firmware_sim.scenarios import COMPLICATIONS, FollowUp, realistic_plan

SURGERY = datetime(2026, 9, 12, tzinfo=UTC)
SURGERY_MS = int(SURGERY.timestamp() * 1000)
FOLLOW = FollowUp(SURGERY_MS, SURGERY_MS + 2 * DAY_MS, SURGERY_MS + 16 * DAY_MS)


def _answers(name: str, key: str) -> tuple[dict[str, list[tuple[int, float]]], int]:
    profile = draw_profile(derive_rng(3, key, 12), COMPLICATIONS[name].needs)
    plan = realistic_plan(name, 3, key, FOLLOW, profile)
    patient = Patient(
        key, 3, SURGERY, ZoneInfo("Europe/Paris"), deviations=plan.deviations, profile=profile
    )
    out: dict[str, list[tuple[int, float]]] = {}
    rng = derive_rng(3, key, 21)
    for a in evening_answers(
        patient, FOLLOW.start_ms, FOLLOW.end_ms, SURGERY_MS, rng, 0.0, digestive=True
    ):
        out.setdefault(a.metric, []).append((a.measured_ms, a.value))
    onset = plan.truths[0].onset_ms if plan.truths else FOLLOW.start_ms
    return out, onset


def test_a_wound_infection_shows_in_the_answers_before_the_fever() -> None:
    redness_after, redness_before, rise = [], [], []
    for k in range(30):
        answers, onset = _answers("wound_infection", f"w{k}")
        red = answers["wound_redness"]
        redness_before += [v for t, v in red if t < onset]
        redness_after += [v for t, v in red if onset + 36 * HOUR_MS <= t < onset + 72 * HOUR_MS]
        pain = answers["pain_score"]
        before = [v for t, v in pain if onset - 30 * HOUR_MS <= t < onset]
        after = [v for t, v in pain if onset + 24 * HOUR_MS <= t < onset + 54 * HOUR_MS]
        if before and after:
            rise.append(after[-1] - before[-1])
    assert np.mean(redness_after) > 0.8
    assert np.mean(redness_before) < 0.15
    assert np.median(rise) >= 2


def test_a_thrombosis_shows_calf_pain_and_an_uneventful_recovery_rarely_does() -> None:
    calf = []
    for k in range(20):
        answers, onset = _answers("deep_vein_thrombosis", f"d{k}")
        calf += [v for t, v in answers["calf_pain_swelling"] if t >= onset + 18 * HOUR_MS]
    assert np.mean(calf) > 0.7
    well = []
    for k in range(20):
        answers, _ = _answers("uneventful", f"u{k}")
        well += [v for _, v in answers["calf_pain_swelling"]] + [
            v for _, v in answers["wound_redness"]
        ]
    assert np.mean(well) < 0.06
