"""The rules on what the patient reports (alerts/reported.py), through ``evaluate`` with
the shipped protocols, from answers held in memory: one rule per test, each with patients
on both sides of its condition."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.context import PatientContext
from alerts.evaluate import evaluate
from alerts.lifecycle import Finding
from alerts.protocol import ProtocolError, builtin_protocols, parse_protocol
from tests.unit.test_evaluate_real_patients import DAY_NOW, MemorySource

H_MS = 3_600_000
EVENING = DAY_NOW - 2 * H_MS  # today's questionnaire, two hours ago
YESTERDAY = EVENING - 24 * H_MS


def _ctx(n: int, overrides: dict[tuple[int, str, str], float] | None = None) -> PatientContext:
    return PatientContext(
        patient_ids=np.arange(1, n + 1, dtype=np.int64),
        team_ids=np.zeros(n, dtype=np.int64),
        protocols=("orthopaedic_surgery",) * n,
        discharged_ms=np.full(n, DAY_NOW - 5 * 24 * H_MS, dtype=np.int64),
        spo2_scale2=np.zeros(n, dtype=np.bool_),
        on_oxygen=np.zeros(n, dtype=np.bool_),
        overrides=overrides or {},
        discharge_hr_bpm=np.full(n, 75.0),
    )


def _fired(src: MemorySource, n: int, rule: str, **kw: object) -> dict[int, Finding]:
    findings = evaluate(src, _ctx(n, **kw), builtin_protocols(), DAY_NOW)  # type: ignore[arg-type]
    return {f.patient_id: f for f in findings if f.firing and f.rule_id == rule}


def test_pain_at_rest_at_or_above_the_threshold() -> None:
    src = MemorySource()
    src.add(1, "pain_score", EVENING, [8])
    src.add(2, "pain_score", EVENING, [5])
    src.add(2, "pain_movement_score", EVENING, [6])
    # severe pain on movement alone is expected in the first days: no alert (the rise
    # rule still watches it)
    src.add(3, "pain_movement_score", EVENING, [9])
    src.add(4, "pain_score", DAY_NOW - 3 * 24 * H_MS, [9])  # an old answer: no longer counts
    src.add(5, "pain_score", EVENING, [7])  # 7 is severe: inclusive
    fired = _fired(src, 5, "pain_high")
    assert set(fired) == {1, 5}
    assert fired[1].evidence == {"value": 8.0, "threshold": 7.0}
    assert fired[1].priority == "medium"


def test_pain_threshold_follows_a_clinicians_override() -> None:
    src = MemorySource()
    src.add(1, "pain_score", EVENING, [8])
    fired = _fired(src, 1, "pain_high", overrides={(1, "pain_high", "at_or_above"): 9.0})
    assert fired == {}


def test_pain_rising_since_the_day_before() -> None:
    src = MemorySource()
    src.add(1, "pain_score", YESTERDAY, [2])
    src.add(1, "pain_score", EVENING, [5])  # +3: fires
    src.add(2, "pain_score", YESTERDAY, [2])
    src.add(2, "pain_score", EVENING, [4])  # +2: within day-to-day change
    src.add(3, "pain_movement_score", EVENING - H_MS, [3])
    src.add(3, "pain_movement_score", EVENING, [6])  # same evening: no day before
    src.add(4, "pain_movement_score", YESTERDAY - 24 * H_MS, [1])
    src.add(4, "pain_movement_score", YESTERDAY, [4])
    src.add(4, "pain_movement_score", EVENING, [5])  # +1 on the day before: no
    fired = _fired(src, 4, "pain_rising")
    assert set(fired) == {1}
    assert fired[1].evidence == {"value": 5.0, "rise": 3.0}


def test_wound_signs_with_fever_measured_or_felt() -> None:
    src = MemorySource()
    src.add(1, "wound_redness", EVENING, [1])
    src.add(1, "temp_c", EVENING - H_MS, [38.3])
    src.add(2, "wound_redness", EVENING, [1])  # redness alone
    src.add(2, "temp_c", EVENING - H_MS, [37.2])
    src.add(3, "wound_redness", EVENING, [0])  # fever without a wound sign
    src.add(3, "temp_c", EVENING - H_MS, [38.6])
    src.add(4, "wound_discharge", EVENING, [1])  # no thermometer, but chills
    src.add(4, "fever_chills", EVENING, [1])
    fired = _fired(src, 4, "wound_fever")
    assert set(fired) == {1, 4}
    assert fired[1].evidence == {"signs_reported": 1, "temp_c": 38.3, "fever_reported": False}
    assert fired[4].evidence["fever_reported"] is True


def test_calf_pain_with_a_rising_pulse() -> None:
    src = MemorySource()
    for pid, calf, pulse in ((1, 1, 105.0), (2, 1, 80.0), (3, 0, 120.0), (4, 1, 92.0)):
        src.add(pid, "calf_pain_swelling", EVENING, [calf])
        src.add(pid, "heart_rate_bpm", DAY_NOW - 20 * 60_000, [pulse] * 20)
    fired = _fired(src, 4, "calf_pulse")
    # 1: above 100/min; 4: 17/min above the usual 75 entered at discharge
    assert set(fired) == {1, 4}
    assert fired[1].priority == "high"
    assert fired[4].evidence == {"pulse": 92.0, "usual_pulse": 75.0}
    # calf pain alone asks for a look at low priority, whatever the pulse
    alone = _fired(src, 4, "calf_reported")
    assert set(alone) == {1, 2, 4}
    assert {f.priority for f in alone.values()} == {"low"}


def test_new_breathlessness_against_the_first_answers() -> None:
    src = MemorySource()
    src.add(1, "breathless_grade", YESTERDAY, [0])
    src.add(1, "breathless_grade", EVENING, [1])  # new, on effort: medium
    src.add(2, "breathless_grade", YESTERDAY, [1])
    src.add(2, "breathless_grade", EVENING, [1])  # as at first: not new
    src.add(3, "breathless_grade", EVENING, [2])  # first answer ever, at rest: high
    src.add(4, "breathless_grade", YESTERDAY, [1])
    src.add(4, "breathless_grade", EVENING, [2])  # worse: at rest now
    src.add(5, "breathless_grade", YESTERDAY, [2])
    src.add(5, "breathless_grade", EVENING, [0])  # better
    fired = _fired(src, 5, "breathless_new")
    assert set(fired) == {1, 3, 4}
    assert {p: f.priority for p, f in fired.items()} == {1: "medium", 3: "high", 4: "high"}
    assert fired[3].evidence == {"at_rest": True}


def test_a_reported_rule_on_a_vital_is_refused_with_its_field() -> None:
    text = """
protocol: x_test
title: X
auto_resolve_after_s: 3600
escalation: {tiers: [coordinator], after_s: {high: 300}}
rules:
  - {id: pain_high, kind: reported_high, title: "Pain", answers: [temp_c],
     at_or_above: 7, priority: medium}
"""
    with pytest.raises(ProtocolError, match="'temp_c' is not a patient-reported metric"):
        parse_protocol(text, "x.yaml")
