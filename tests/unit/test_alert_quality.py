"""``postop eval`` end to end on a small cohort: every scenario once, the shipped protocols,
the real rule code; the report must find every scripted event and be readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from firmware_sim.scenarios import GroundTruth

from bench.alert_quality.cohort import DEFAULT_MIX
from bench.alert_quality.run import Outcome, run

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow

PATIENTS = 14
DAYS = 6


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    out = tmp_path_factory.mktemp("eval")
    # a 5-minute step instead of the report's minute: the same detections, a fifth the time
    return run(
        n_patients=PATIENTS,
        days=DAYS,
        seed=5,
        out_dir=out,
        cache=None,
        workers=None,  # a process per core: the patients are replayed independently
        step_s=300,
        cohort="legacy",
    )


# the module's replay runs in the first test's setup: minutes on a shared machine
@pytest.mark.timeout(1500)
def test_every_scripted_event_is_detected_in_time(outcome: Outcome) -> None:
    events = outcome.score.events
    assert {e.condition for e in events} == set(DEFAULT_MIX)
    missed = [(e.condition, e.protocol) for e in events if not e.detected]
    assert missed == []
    for e in events:
        assert e.alert_ms is not None
        assert e.onset_ms <= e.alert_ms <= e.deadline_ms
        assert e.rule_id is not None


# the module's replay runs in the first test's setup: minutes on a shared machine
@pytest.mark.timeout(1500)
def test_clinical_alerts_follow_the_abnormal_signal(outcome: Outcome) -> None:
    clinical = [e for e in outcome.score.events if e.category == "clinical"]
    assert len(clinical) == 4
    for e in clinical:
        assert e.abnormal_ms is not None, e.condition  # the protocol's own definition was met
        minutes = e.minutes_from_abnormal
        assert minutes is not None
        assert minutes < 6 * 60, e.condition


# the module's replay runs in the first test's setup: minutes on a shared machine
@pytest.mark.timeout(1500)
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
    m = members(12, 1, 9, cohort="legacy")[0]
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
    # readings are settled over 5 minutes (their median): the fall counts from its third
    assert clinical[0].onset_ms == m.start_ms + 8 * hour + 2 * 60_000


def _bleed(onset_ms: int) -> GroundTruth:
    """A bleed's truth: pulse and pressure change, 12 h to find it."""
    return GroundTruth(
        "bleeding",
        "clinical",
        onset_ms,
        ("news2",),
        12 * 3600,
        ("heart_rate_bpm", "bp_systolic_mmhg", "bp_diastolic_mmhg", "bp_mean_mmhg"),
    )


def test_a_deterioration_counts_as_detected_only_by_a_related_alert() -> None:
    """A bleed (pulse and pressure) is not detected by a NEWS2 that scored on a COPD
    patient's usual saturation, nor by a silent oximeter; it is by a NEWS2 that scored
    on the pressure, or by the shock index."""

    from alerts.protocol import builtin_protocols
    from bench.alert_quality.replay import AlertRecord
    from bench.alert_quality.score import _detection, related

    rules = {r.id: r for r in builtin_protocols()["digestive_surgery"].rules}
    hour = 3_600_000
    bleed = _bleed(10 * hour)
    assert not related(bleed, rules["news2"], ("spo2_pct",))
    assert related(bleed, rules["news2"], ("spo2_pct", "bp_systolic_mmhg"))
    assert related(bleed, rules["shock_index"])
    assert related(bleed, rules["hr_high"])
    assert not related(bleed, rules["spo2_low"])
    assert not related(bleed, rules["no_spo2"])  # technical: about the kit, not the body
    news2 = AlertRecord(
        1,
        "news2",
        "clinical",
        "low",
        11 * hour,
        None,
        renewed_ms=[13 * hour],
        scored=[("spo2_pct",), ("spo2_pct", "bp_systolic_mmhg")],
    )
    silent = AlertRecord(1, "no_spo2", "technical", "low", 10 * hour + 5, None)
    assert _detection(bleed, [silent, news2], rules) == (13 * hour, "news2")
    assert _detection(bleed, [silent, news2], rules, any_alert=True) == (11 * hour, "news2")
    late = AlertRecord(1, "shock_index", "clinical", "medium", 23 * hour, None)
    assert _detection(bleed, [late], rules) == (None, None)  # after the 12 h deadline


def test_a_stopped_kit_is_detected_by_the_missing_data_alert_it_joined() -> None:
    """One missing-data alert per patient: a patient who stops measuring while their
    ``no_bp`` alert is open gets no ``no_spo2`` alert; the SpO2 named on the open alert
    (``also_missing``) is the detection, at the time it joined."""
    from firmware_sim.scenarios import GroundTruth

    from alerts.protocol import builtin_protocols
    from bench.alert_quality.replay import AlertRecord
    from bench.alert_quality.score import _detection

    rules = {r.id: r for r in builtin_protocols()["digestive_surgery"].rules}
    hour = 3_600_000
    stopped = GroundTruth("stopped_measuring", "technical", 10 * hour, ("no_spo2",), 12 * 3600)
    bp = AlertRecord(1, "no_bp", "technical", "low", 5 * hour, None)
    assert _detection(stopped, [bp], rules) == (None, None)
    bp.joined.append((19 * hour, "no_spo2"))
    assert _detection(stopped, [bp], rules) == (19 * hour, "no_spo2")
    late = AlertRecord(
        1, "no_bp", "technical", "low", 5 * hour, None, joined=[(23 * hour, "no_spo2")]
    )
    assert _detection(stopped, [late], rules) == (None, None)  # after the 12 h deadline


def test_a_miss_is_told_apart_by_a_reading_past_a_fixed_limit() -> None:
    """A bleed whose only cuff reading after the onset is 124 mmHg and 74/min had no
    reading past a fixed limit; one at 86 mmHg had (systolic under 90), from its
    arrival. A COPD patient on scale 2 at 87 % is within their spot-check limit (86),
    another patient is not (90); an artefact-flagged reading counts for nothing, nor a
    single 91 % (the 92 of ``spo2_low`` is for 10 minutes, not for one reading), nor
    a sleeping 87 % at 04:00 at home."""
    import numpy as np
    from firmware_sim.scenarios import GroundTruth

    from alerts.protocol import builtin_protocols
    from alerts.window_sql import UNRELIABLE
    from bench.alert_quality.cohort import Readings
    from bench.alert_quality.score import _beyond_limit_ms
    from vitals.catalogue import BY_NAME

    proto = builtin_protocols()["digestive_surgery"]
    hour = 3_600_000

    def readings(rows: list[tuple[str, int, float, int]]) -> Readings:
        return Readings(
            metric_id=np.asarray([BY_NAME[n].metric_id for n, *_ in rows], dtype=np.int16),
            measured_ms=np.asarray([t for _, t, _, _ in rows], dtype=np.int64),
            arrival_ms=np.asarray([t + 2000 for _, t, _, _ in rows], dtype=np.int64),
            value=np.asarray([v for _, _, v, _ in rows], dtype=np.float64),
            flags=np.asarray([f for *_, f in rows], dtype=np.int32),
            device=np.zeros(len(rows), dtype=np.int8),
        )

    bleed = _bleed(10 * hour)
    before = [("bp_systolic_mmhg", 5 * hour, 80.0, 0)]  # before the onset: not this event
    quiet = readings(
        [*before, ("bp_systolic_mmhg", 11 * hour, 124.0, 0), ("heart_rate_bpm", 11 * hour, 74.0, 0)]
    )
    assert _beyond_limit_ms(bleed, proto, quiet, scale2=False) is None
    low = readings([*before, ("bp_systolic_mmhg", 11 * hour, 86.0, 0)])
    assert _beyond_limit_ms(bleed, proto, low, scale2=False) == 11 * hour + 2000
    flagged = readings([("bp_systolic_mmhg", 11 * hour, 86.0, int(UNRELIABLE))])
    assert _beyond_limit_ms(bleed, proto, flagged, scale2=False) is None

    sepsis = GroundTruth(
        "sepsis", "clinical", 10 * hour, ("news2",), 24 * 3600, ("spo2_pct", "temp_c")
    )
    assert (
        _beyond_limit_ms(sepsis, proto, readings([("spo2_pct", 12 * hour, 91.0, 0)]), False) is None
    )
    spot = readings([("spo2_pct", 12 * hour, 87.0, 0)])
    assert _beyond_limit_ms(sepsis, proto, spot, scale2=True) is None
    assert _beyond_limit_ms(sepsis, proto, spot, scale2=False) == 12 * hour + 2000
    asleep = readings([("spo2_pct", 28 * hour, 87.0, 0)])  # 04:00 UTC, 08:00 in Dubai
    assert _beyond_limit_ms(sepsis, proto, asleep, scale2=False, tz="UTC") is None
    assert (
        _beyond_limit_ms(sepsis, proto, asleep, scale2=False, tz="Asia/Dubai") == 28 * hour + 2000
    )
    fever = readings([("temp_c", 12 * hour, 38.0, 0)])  # fever is 38.0 and above
    assert _beyond_limit_ms(sepsis, proto, fever, scale2=False) == 12 * hour + 2000


def test_a_miss_is_measured_by_how_far_its_readings_moved_and_what_that_costs() -> None:
    """A bleed whose pressure fell 29 then 24 mmHg from the usual 149 (the median of the
    48 h before the onset), with a 100 that reached the database after the deadline
    (not counted), against two well patients over 5 days: of their 6 days from the
    third, one has a reading 30 under its usual 140 (a rule catching the miss on one
    reading would fire on it), none two readings 24 under. No pulse before the onset:
    no usual, nothing measured. A detected event is not measured."""
    import numpy as np

    from bench.alert_quality.cohort import Member, Readings
    from bench.alert_quality.margins import miss_margins
    from bench.alert_quality.score import EventOutcome
    from vitals.catalogue import BY_NAME

    hour, day = 3_600_000, 86_400_000

    def member(index: int, truths: tuple[GroundTruth, ...]) -> Member:
        return Member(index, f"p{index}", "x", "digestive_surgery", "UTC", (), 0, 5 * day,
                      truths, None)  # fmt: skip

    def readings(rows: list[tuple[str, int, float, int]]) -> Readings:
        return Readings(
            metric_id=np.asarray([BY_NAME[n].metric_id for n, *_ in rows], dtype=np.int16),
            measured_ms=np.asarray([t for _, t, _, _ in rows], dtype=np.int64),
            arrival_ms=np.asarray([a for *_, a in rows], dtype=np.int64),
            value=np.asarray([v for _, _, v, _ in rows], dtype=np.float64),
            flags=np.zeros(len(rows), dtype=np.int32),
            device=np.zeros(len(rows), dtype=np.int8),
        )

    def sbp(t: int, v: float, late_ms: int = 2000) -> tuple[str, int, float, int]:
        return ("bp_systolic_mmhg", t, v, t + late_ms)

    onset = 3 * day + 10 * hour
    bleed, seen = _bleed(onset), _bleed(onset + 6 * hour)
    sick = [sbp(2 * day + 9 * hour, 150.0), sbp(2 * day + 18 * hour, 148.0),
            sbp(onset + hour, 120.0), sbp(onset + 2 * hour, 125.0),
            sbp(onset + 3 * hour, 100.0, late_ms=12 * hour)]  # fmt: skip
    well = [sbp(d * day + h * hour, 140.0) for d in range(5) for h in (9, 18)]
    low_day = [*well, sbp(3 * day + 12 * hour, 110.0)]
    members = [member(1, (bleed,)), member(2, ()), member(3, ()), member(4, (seen,))]
    by_id = {1: readings(sick), 2: readings(well), 3: readings(low_day), 4: readings(sick)}

    def outcome(pid: int, t: GroundTruth, alert_ms: int | None) -> EventOutcome:
        deadline = t.onset_ms + t.detect_within_s * 1000
        return EventOutcome(pid, "digestive_surgery", t.condition, t.category, False,
                            t.onset_ms, None, alert_ms, None, deadline)  # fmt: skip

    events = [outcome(1, bleed, None), outcome(4, seen, seen.onset_ms + hour)]
    moves = {1: {"bp_systolic_mmhg": -1, "heart_rate_bpm": 1}, 4: {"bp_systolic_mmhg": -1}}
    got = {g.metric: g for g in miss_margins(members, by_id, events, moves)}
    assert set(got) == {"bp_systolic_mmhg", "heart_rate_bpm"}  # patient 4 was detected
    fall = got["bp_systolic_mmhg"]
    assert (fall.patient_id, fall.condition, fall.asleep, fall.readings) == (
        1,
        "bleeding",
        False,
        2,
    )
    assert (fall.furthest, fall.second) == (-29.0, -24.0)
    assert fall.well_share == 1 / 6
    assert fall.well_share_second == 0.0
    pulse = got["heart_rate_bpm"]
    assert (pulse.readings, pulse.furthest, pulse.well_share) == (0, None, None)


def test_a_complication_s_moves_come_from_its_plan() -> None:
    """The way each measured metric moves is read from the complication's plan: a
    dehydration's weight and pressure fall and its pulse rises; an uneventful
    recovery moves nothing."""
    from bench.alert_quality.cohort import members
    from bench.alert_quality.margins import directions

    cohort = {m.scenario: m for m in members(40, 6, 5)}
    assert directions(cohort["ileostomy_dehydration"], 5) == {
        "weight_kg": -1,
        "heart_rate_bpm": 1,
        "bp_systolic_mmhg": -1,
    }
    assert directions(cohort["uneventful"], 5) == {}


def test_news2_findings_name_the_parameters_that_scored() -> None:
    import numpy as np

    from alerts.context import PatientContext
    from alerts.evaluate import evaluate
    from alerts.protocol import builtin_protocols
    from alerts.window import MetricWindow, Window

    now = 1_789_344_000_000

    class Fixed:
        """Two patients' last hour: one desaturated and tachycardic, one well."""

        def window(self, ids, names, end_ms, span_s, bin_s):  # type: ignore[no-untyped-def]
            n = max(1, span_s // bin_s)
            values = {
                "spo2_pct": (90.0, 97.0),
                "heart_rate_bpm": (118.0, 70.0),
                "resp_rate_per_min": (16.0, 16.0),
                "bp_systolic_mmhg": (125.0, 125.0),
                "temp_c": (37.0, 37.0),
            }
            if bin_s >= 3600:  # the patients' usual values (first day, nights): well
                values = {m: (v[1], v[1]) for m, v in values.items()}
            metrics = {
                m: MetricWindow(
                    np.repeat(np.asarray(values[m])[:, None], n, axis=1),
                    np.ones((2, n), dtype=np.bool_),
                )
                for m in names
                if m in values
            }
            return Window(np.asarray([1, 2]), end_ms, bin_s, n, metrics)

        def last_reading_ms(self, ids, metric, now_ms):  # type: ignore[no-untyped-def]
            return np.full(len(ids), np.nan)

        def gateway_offline_since_ms(self, ids, now_ms):  # type: ignore[no-untyped-def]
            return np.full(len(ids), np.nan)

        def lowest_battery_pct(self, ids, since_ms, now_ms):  # type: ignore[no-untyped-def]
            return np.full(len(ids), np.nan)

        def implausible_counts(self, ids, since_ms, now_ms):  # type: ignore[no-untyped-def]
            return np.zeros(len(ids)), np.zeros(len(ids))

    ctx = PatientContext(
        np.asarray([1, 2]),
        np.zeros(2, dtype=np.int64),
        ("digestive_surgery", "digestive_surgery"),
        np.full(2, now - 5 * 86_400_000),
        np.zeros(2, dtype=np.bool_),
        np.zeros(2, dtype=np.bool_),
        {},
    )
    findings = evaluate(Fixed(), ctx, builtin_protocols(), now)
    news2 = {f.patient_id: f for f in findings if f.rule_id == "news2"}
    assert news2[1].firing
    assert news2[1].evidence["scored_params"] == "spo2_pct,heart_rate_bpm"
    assert not news2[2].firing


def test_the_realistic_cohort_has_every_complication_and_what_the_hospital_knows() -> None:
    from bench.alert_quality.cohort import REALISTIC_MIX, members
    from bench.alert_quality.replay import _context

    cohort = members(60, 14, 1)
    assert {m.scenario for m in cohort} >= set(REALISTIC_MIX)
    assert members(60, 14, 1) == cohort  # a seed is a cohort
    assert members(60, 14, 2) != cohort
    for m in cohort:
        assert m.profile is not None
        assert m.protocol == m.profile.protocol
        assert m.discharge_sbp_mmhg is not None
        assert 70 < m.discharge_sbp_mmhg < 200
        assert (m.profile.kit == "patch") == m.has_patch
        clinical = [t for t in m.truths if t.category == "clinical"]
        for t in clinical:
            assert t.metrics  # what "related" is judged against
        if m.scenario == "bleeding_beta_blocked":
            assert m.profile.beta_blocker
        if m.scenario == "sepsis_slow":
            assert m.profile.age_years >= 70
    ctx = _context(cohort)
    for i, m in enumerate(cohort):
        assert m.profile is not None
        assert bool(ctx.spo2_scale2[i]) == m.profile.copd_hypoxaemic
        assert bool(ctx.beta_blocker[i]) == m.profile.beta_blocker
        # an undiagnosed sleep apnoea is not in the hospital's record
        if m.profile.osa and not m.profile.osa_diagnosed and not m.profile.ohs:
            assert not ctx.sleep_apnoea[i]
        assert ctx.time_zones[i] == m.tz


def test_the_simulated_patient_answers_a_request_to_confirm_a_spot_reading() -> None:
    """A single low spot saturation (a cold finger) opens ``spo2_spot_low`` as a request
    for confirmation; the simulated patient re-measures 5-30 min later with their own
    oximeter, the normal reading ends the run and the alert never rises to medium.
    Nobody answering, the alert rises to medium once its deadline has passed."""
    from dataclasses import replace

    import numpy as np

    from alerts.protocol import builtin_protocols
    from bench.alert_quality.cohort import Readings, members
    from bench.alert_quality.remeasure import Responder
    from bench.alert_quality.replay import replay
    from bench.alert_quality.source import ArraySource
    from vitals.catalogue import BY_NAME

    hour, minute = 3_600_000, 60_000
    m = members(3, 1, 1, mix={"uneventful": 0.0})[0]
    m = replace(m, end_ms=m.start_ms + 14 * hour)
    spot = m.start_ms + 10 * hour  # late morning in a European home
    one = Readings(
        metric_id=np.array([BY_NAME["spo2_pct"].metric_id], dtype=np.int16),
        measured_ms=np.array([spot], dtype=np.int64),
        arrival_ms=np.array([spot + 2000], dtype=np.int64),
        value=np.array([85.0]),
        flags=np.zeros(1, dtype=np.int32),
        device=np.zeros(1, dtype=np.int8),
    )
    protocols = builtin_protocols()

    def spot_alerts(responder: Responder | None) -> tuple[list[str], ArraySource]:
        source = ArraySource([m], [one])
        records = replay([m], source, protocols, 60, responder)
        return [r.priority for r in records if r.rule_id == "spo2_spot_low"], source

    unanswered, _ = spot_alerts(None)
    assert unanswered == ["medium"]
    answered, source = spot_alerts(Responder([m], 1, protocols, remeasure_p=1.0))
    assert answered == ["low"]
    again = source.readings[0]
    spo2 = again.metric_id == BY_NAME["spo2_pct"].metric_id
    assert spo2.sum() == 2
    delay_min = (again.measured_ms[spo2][1] - spot) / minute
    assert 5 <= delay_min <= 31
    assert again.value[spo2][1] >= 90  # the patient's own saturation, not the artefact


def test_the_simulated_patient_charges_a_device_when_the_phone_asks() -> None:
    """An oximeter draining through 15 % makes the phone ask once; the simulated patient
    charges it (awake, 10-60 min later), its later reports read a full battery and the
    team's ``battery_low`` (5 %) never opens. Nobody charging, it opens."""
    from dataclasses import replace

    import numpy as np
    from firmware_sim.devices import DeviceKind

    from alerts.protocol import builtin_protocols
    from bench.alert_quality.battery import Charger
    from bench.alert_quality.cohort import Readings, member_kit, members
    from bench.alert_quality.replay import replay
    from bench.alert_quality.source import ArraySource
    from vitals.catalogue import BY_NAME

    hour = 3_600_000
    m = members(3, 1, 1, mix={"uneventful": 0.0})[0]
    m = replace(m, end_ms=m.start_ms + 30 * hour)
    assert member_kit(m, 1).devices[0].kind is DeviceKind.OXIMETER
    reports = m.start_ms + hour * np.arange(1, 30, dtype=np.int64)
    levels = np.maximum(2.0, 20.0 - np.arange(1, 30))  # 1 % an hour from 19 %
    drained = Readings(
        metric_id=np.full(len(reports), BY_NAME["battery_pct"].metric_id, dtype=np.int16),
        measured_ms=reports,
        arrival_ms=reports + 2000,
        value=levels,
        flags=np.zeros(len(reports), dtype=np.int32),
        device=np.zeros(len(reports), dtype=np.int8),
    )
    protocols = builtin_protocols()

    def battery_alerts(charger: Charger | None) -> tuple[int, ArraySource]:
        source = ArraySource([m], [drained])
        records = replay([m], source, protocols, 300, None, charger)
        return sum(r.rule_id == "battery_low" for r in records), source

    unanswered, _ = battery_alerts(None)
    assert unanswered == 1
    charger = Charger([m], 1, protocols, charge_p=1.0)
    answered, source = battery_alerts(charger)
    assert answered == 0
    [(patient, device, asked_ms, charged_ms)] = charger.answers  # one request, one episode
    assert (patient, device) == (m.index, 0)
    assert charged_ms is not None
    assert asked_ms + 10 * 60_000 <= charged_ms
    after = source.readings[0].measured_ms >= charged_ms
    charged = source.readings[0].value[after]  # full, then draining 0.8 % an hour
    assert charged[0] >= 99
    assert (np.diff(charged) <= 0).all()
    assert charged.min() > 15  # the episode is over
    assert (source.readings[0].value[~after] == levels[~after]).all()  # the past unchanged
    # nobody acting: asked all the same, once
    idle = Charger([m], 1, protocols, charge_p=0.0)
    assert battery_alerts(idle)[0] == 1
    assert [a[3] for a in idle.answers] == [None]


def test_a_recharged_battery_is_full_and_a_failing_one_keeps_failing() -> None:
    from firmware_sim.devices import Battery, FailingBattery
    from firmware_sim.physiology import DAY_MS

    battery = Battery(5.0, 0.3)
    t = 3 * DAY_MS + 12_345
    charged = battery.recharged_at(t)
    assert charged.level_pct(t) == 100
    assert charged.level_pct(t + DAY_MS) == round(100 - 96 / 5)
    failing = FailingBattery(battery, fails_ms=t, hours_to_empty=10)
    assert failing.recharged_at(t + 1000) is failing  # failing: it holds no charge
    early = failing.recharged_at(t - 3_600_000)  # charged an hour before it fails
    assert early.level_pct(t) == 99
    assert early.level_pct(early.empty_ms) == 0


def test_the_simulated_patient_takes_a_full_set_when_the_phone_asks() -> None:
    """A single spot pulse 25/min over the patient's usual, late in the morning, with
    nothing else measured: the phone asks for a full set (``alerts.full_set``) and the
    simulated patient measures what is missing, temperature first, within their
    re-measurement delay; once only, within the protocol's ``every_s``."""
    from dataclasses import replace

    import numpy as np
    from firmware_sim.devices import DeviceKind

    from alerts.protocol import builtin_protocols
    from bench.alert_quality.cohort import Readings, members
    from bench.alert_quality.remeasure import Responder
    from bench.alert_quality.replay import replay
    from bench.alert_quality.source import ArraySource
    from vitals.catalogue import BY_NAME

    hour, minute = 3_600_000, 60_000
    m = next(
        m
        for m in members(8, 1, 1, mix={"uneventful": 0.0})
        if DeviceKind.THERMOMETER.value in m.kinds and m.discharge_hr_bpm is not None
    )
    m = replace(m, end_ms=m.start_ms + 14 * hour)
    spot = m.start_ms + 10 * hour  # late morning in a European home
    assert m.discharge_hr_bpm is not None
    pulse = max(m.discharge_hr_bpm + 25, 95.0)
    one = Readings(
        metric_id=np.array([BY_NAME["heart_rate_bpm"].metric_id], dtype=np.int16),
        measured_ms=np.array([spot], dtype=np.int64),
        arrival_ms=np.array([spot + 2000], dtype=np.int64),
        value=np.array([pulse]),
        flags=np.zeros(1, dtype=np.int32),
        device=np.zeros(1, dtype=np.int8),
    )
    protocols = builtin_protocols()
    temp = BY_NAME["temp_c"].metric_id

    source = ArraySource([m], [one])
    replay([m], source, protocols, 60)
    assert (source.readings[0].metric_id == temp).sum() == 0  # nobody asked

    responder = Responder([m], 1, protocols, remeasure_p=1.0)
    source = ArraySource([m], [one])
    replay([m], source, protocols, 60, responder)
    assert (responder.full_sets_asked, responder.full_sets_answered) == (1, 1)
    got = source.readings[0]
    temps = got.measured_ms[got.metric_id == temp]
    assert len(temps) == 1
    assert 5 <= (temps[0] - spot) / minute <= 31


def test_false_news2_alerts_are_counted_by_the_signs_that_scored() -> None:
    """The report says which NEWS2 parameters made the false alerts (a night's SpO2, a
    COPD patient's breathing rate), each alert once per parameter; pre-onset alerts of a
    patient with a complication are not false alerts of a well day."""
    from bench.alert_quality.report import markdown, summary
    from bench.alert_quality.score import FalseAlert, Score

    def false(rule: str, scored: tuple[str, ...], before_onset: bool = False) -> FalseAlert:
        return FalseAlert(
            1, "digestive_surgery", "uneventful", rule, "low", 0, before_onset, scored=scored
        )

    score = Score(
        events=[],
        false_alerts=[
            false("news2", ("spo2_pct",)),
            false("news2", ("resp_rate_per_min", "spo2_pct")),
            false("news2", ("heart_rate_bpm",), before_onset=True),
            false("hr_high", ()),
        ],
        technical_alerts=[],
        well_patient_days={"digestive_surgery": 10.0},
        all_patient_days={"digestive_surgery": 10.0},
        protocol_of={1: "digestive_surgery"},
    )
    s = summary(score)
    assert s["overall"]["false_news2_by_scored"] == {"spo2_pct": 2, "resp_rate_per_min": 1}
    meta = {"patients": 1, "days": 10, "seed": 1, "protocols_source": "shipped defaults"}
    assert (
        "False NEWS2 alerts by the parameters that scored at their opening (an alert counts "
        "once for each): spo2_pct 2, resp_rate_per_min 1"
    ) in markdown(s, meta)
