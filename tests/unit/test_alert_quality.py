"""``postop eval`` end to end on a small cohort: every scenario once, the shipped protocols,
the real rule code; the report must find every scripted event and be readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.alert_quality.cohort import DEFAULT_MIX
from bench.alert_quality.run import Outcome, run

PATIENTS = 14
DAYS = 6


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    out = tmp_path_factory.mktemp("eval")
    # a 5-minute step instead of the report's minute: the same detections, a fifth the time
    return run(
        n_patients=PATIENTS, days=DAYS, seed=5, out_dir=out, cache=None, workers=1, step_s=300
    )


def test_every_scripted_event_is_detected_in_time(outcome: Outcome) -> None:
    events = outcome.score.events
    assert {e.condition for e in events} == set(DEFAULT_MIX)
    missed = [(e.condition, e.protocol) for e in events if not e.detected]
    assert missed == []
    for e in events:
        assert e.alert_ms is not None
        assert e.onset_ms <= e.alert_ms <= e.deadline_ms
        assert e.rule_id is not None


def test_clinical_alerts_follow_the_abnormal_signal(outcome: Outcome) -> None:
    clinical = [e for e in outcome.score.events if e.category == "clinical"]
    assert len(clinical) == 4
    for e in clinical:
        assert e.abnormal_ms is not None, e.condition  # the protocol's own definition was met
        minutes = e.minutes_from_abnormal
        assert minutes is not None
        assert minutes < 6 * 60, e.condition


def test_the_report_is_written_for_people_and_machines(outcome: Outcome) -> None:
    paths = outcome.paths
    doc = json.loads(Path(paths["json"]).read_text(encoding="utf-8"))
    overall = doc["summary"]["overall"]
    assert overall["clinical_events"] == 4
    assert overall["clinical_detected"] == 4
    assert overall["well_patient_days"] > 0
    assert overall["false_clinical_per_patient_day"] is not None
    assert set(doc["summary"]["protocols"]) == {
        "cardiac_surgery",
        "digestive_surgery",
        "orthopaedic_surgery",
    }
    assert overall["targets"]["every_deterioration_detected"] is True
    assert len(doc["events"]) == len(DEFAULT_MIX)
    md = Path(paths["markdown"]).read_text(encoding="utf-8")
    for condition in DEFAULT_MIX:
        assert condition.replace("_", " ") in md
    png = Path(paths["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000  # three panels, not an empty canvas


def test_the_replay_opens_a_late_alert_for_an_episode_inside_an_outage() -> None:
    """As the engine does: a desaturation that began and ended while the home was offline
    becomes one late alert when the home is back, with the episode's onset."""
    from dataclasses import replace

    import numpy as np

    from alerts.protocol import builtin_protocols
    from bench.alert_quality.cohort import Readings, members
    from bench.alert_quality.replay import replay
    from bench.alert_quality.source import ArraySource
    from vitals.catalogue import BY_NAME

    hour = 3_600_000
    m = members(12, 1, 9)[0]
    outage = (m.start_ms + 6 * hour, m.start_ms + 12 * hour)
    m = replace(m, scenario="uneventful", truths=(), offline=outage, end_ms=m.start_ms + 14 * hour)
    times = np.arange(m.start_ms, m.end_ms, 30_000, dtype=np.int64)
    desat = (times >= m.start_ms + 8 * hour) & (times < m.start_ms + 8 * hour + 8 * 60_000)
    inside = (times >= outage[0]) & (times < outage[1])
    readings = Readings(
        metric_id=np.full(len(times), BY_NAME["spo2_pct"].metric_id, dtype=np.int16),
        measured_ms=times,
        arrival_ms=np.where(inside, outage[1], times),
        value=np.where(desat, 85.0, 97.0),
        flags=np.zeros(len(times), dtype=np.int32),
        device=np.zeros(len(times), dtype=np.int8),
    )
    records = replay([m], ArraySource([m], [readings]), builtin_protocols())
    clinical = [r for r in records if r.category == "clinical"]
    assert [(r.rule_id, r.late) for r in clinical] == [("spo2_critical", True)]
    assert clinical[0].opened_ms == outage[1]  # the minute the home is back
    assert clinical[0].onset_ms == m.start_ms + 8 * hour
