"""``evaluate`` for real patients (issue 17), from readings held in memory: SpO2 limits
follow the patient's NEWS2 scale, night dips are judged against the patient's own nights,
NEWS2 can be adjusted per patient, spot checks ask for confirmation, fever is >= 38.0."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from alerts.context import PatientContext
from alerts.evaluate import evaluate
from alerts.lifecycle import Finding
from alerts.protocol import builtin_protocols
from alerts.published import param_rows
from alerts.window import MetricWindow, Window

F = NDArray[np.float64]
MIN_MS = 60_000
# a winter day: Paris is UTC+1
DAY_NOW = int(datetime(2026, 1, 15, 14, 0, tzinfo=UTC).timestamp() * 1000)  # 15:00 local
NIGHT_NOW = int(datetime(2026, 1, 15, 2, 0, tzinfo=UTC).timestamp() * 1000)  # 03:00 local


@dataclass
class MemorySource:
    """Readings per (patient, metric): (time_ms, value) pairs, averaged per bin."""

    readings: dict[tuple[int, str], list[tuple[int, float]]] = field(default_factory=dict)

    def add(
        self, pid: int, metric: str, start_ms: int, values: Sequence[float], every_s: int = 60
    ) -> None:
        rows = self.readings.setdefault((pid, metric), [])
        rows += [(start_ms + i * every_s * 1000, v) for i, v in enumerate(values)]

    def window(
        self,
        patient_ids: Sequence[int],
        metric_names: Sequence[str],
        end_ms: int,
        span_s: int,
        bin_s: int,
    ) -> Window:
        ids = np.asarray(sorted(set(patient_ids)), dtype=np.int64)
        n = max(1, span_s // bin_s)
        start = end_ms - n * bin_s * 1000
        metrics = {}
        for name in metric_names:
            sums = np.zeros((len(ids), n))
            counts = np.zeros((len(ids), n))
            for row, pid in enumerate(ids.tolist()):
                for t, v in self.readings.get((pid, name), []):
                    if start <= t < end_ms:
                        b = (t - start) // (bin_s * 1000)
                        sums[row, b] += v
                        counts[row, b] += 1
            if counts.any():
                present = counts > 0
                metrics[name] = MetricWindow(
                    np.where(present, sums / np.maximum(counts, 1), 0.0), present
                )
        return Window(ids, end_ms, bin_s, n, metrics)

    def last_reading_ms(self, ids: NDArray[np.int64], metric: str, now_ms: int) -> F:
        latest = [
            max((t for t, _v in self.readings.get((pid, metric), []) if t <= now_ms), default=None)
            for pid in ids.tolist()
        ]
        return np.asarray([np.nan if t is None else t - t % 60_000 for t in latest])

    def gateway_offline_since_ms(self, ids: NDArray[np.int64], now_ms: int) -> F:
        return np.full(len(ids), np.nan)

    def lowest_battery_pct(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> F:
        return np.full(len(ids), np.nan)

    def implausible_counts(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> tuple[F, F]:
        return np.zeros(len(ids)), np.zeros(len(ids))


def _ctx(
    n: int,
    scale2: Sequence[bool] = (),
    overrides: dict[tuple[int, str, str], float] | None = None,
    discharged_ms: int = -1,
) -> PatientContext:
    return PatientContext(
        patient_ids=np.arange(1, n + 1, dtype=np.int64),
        team_ids=np.zeros(n, dtype=np.int64),
        protocols=("digestive_surgery",) * n,
        discharged_ms=np.full(n, discharged_ms, dtype=np.int64),
        spo2_scale2=np.asarray(scale2 or [False] * n, dtype=np.bool_),
        on_oxygen=np.zeros(n, dtype=np.bool_),
        overrides=overrides or {},
    )


def _firing(findings: list[Finding]) -> dict[tuple[int, str], Finding]:
    return {(f.patient_id, f.rule_id): f for f in findings if f.firing}


def test_spo2_limits_follow_the_patients_scale() -> None:
    """SpO2 89 % for 20 minutes by day: a fall for patient 1 (scale 1), the usual target of
    patient 2 (COPD, scale 2: 88-92 %), and patient 3's scale set by a clinician."""
    src = MemorySource()
    for pid in (1, 2, 3):
        src.add(pid, "spo2_pct", DAY_NOW - 20 * MIN_MS, [89.0] * 20)
    ctx = _ctx(3, [False, True, False], {(3, "news2", "spo2_scale"): 2.0})
    fired = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert (1, "spo2_low") in fired
    assert (2, "spo2_low") not in fired
    assert (3, "spo2_low") not in fired
    assert fired[(1, "spo2_low")].evidence["threshold"] == 92.0
    # NEWS2: 89 scores 3 on scale 1 (a low-medium alert), 0 on scale 2
    assert (1, "news2") in fired
    assert (2, "news2") not in fired
    assert (3, "news2") not in fired


def test_night_dips_within_the_patients_own_nights_are_not_a_fall() -> None:
    """03:00 local: SpO2 91 % for 20 minutes (sleep). By day it would be spo2_low; at night
    the limit is 2 under the day's (no earlier night known) for 30 minutes. A patient
    whose earlier nights ran at 95 % and who now sits at 89 % for 40 minutes: a fall."""
    src = MemorySource()
    src.add(1, "spo2_pct", NIGHT_NOW - 20 * MIN_MS, [91.0] * 20)
    src.add(2, "spo2_pct", DAY_NOW - 20 * MIN_MS, [91.0] * 20)
    # patient 3: the two previous nights at 95 %, tonight 89 % for 40 min
    for before in (1, 2):
        src.add(3, "spo2_pct", NIGHT_NOW - before * 86_400_000 - 3 * 3_600_000, [95.0] * 300)
    src.add(3, "spo2_pct", NIGHT_NOW - 40 * MIN_MS, [89.0] * 40)
    ctx = _ctx(3)
    night = _firing(evaluate(src, ctx, builtin_protocols(), NIGHT_NOW))
    day = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert (1, "spo2_low") not in night
    assert (2, "spo2_low") in day
    assert (3, "spo2_low") in night
    assert night[(3, "spo2_low")].evidence["threshold"] == 91.0  # min(92, 95 - 4)
    # NEWS2 at night takes SpO2 over 30 minutes: 91 scores 3 only if it lasts
    # NEWS2 asleep: SpO2 over 30 minutes, lifted by 2 (no earlier night known): 91 -> 93
    # scores 1, no alert; by day 91 scores 3
    assert (1, "news2") not in night
    assert (2, "news2") in day


def test_news2_alert_band_can_be_raised_per_patient() -> None:
    src = MemorySource()
    for pid in (1, 2):
        src.add(pid, "heart_rate_bpm", DAY_NOW - 5 * MIN_MS, [132.0] * 5)  # pulse scores 3
    ctx = _ctx(2, overrides={(2, "news2", "alert_from_band"): 2.0})
    fired = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert fired[(1, "news2")].priority == "low"
    assert (2, "news2") not in fired


def test_fever_at_38_asks_for_confirmation_then_escalates() -> None:
    src = MemorySource()
    src.add(1, "temp_c", DAY_NOW - 8 * 3_600_000, [36.9])
    src.add(1, "temp_c", DAY_NOW - 10 * MIN_MS, [38.0])  # a thermometer's spot reading
    ctx = _ctx(1)
    now = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert now[(1, "fever")].priority == "low"
    assert now[(1, "fever")].evidence["confirmation_requested"] is True
    later = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW + 51 * MIN_MS))
    assert later[(1, "fever")].priority == "medium"  # unconfirmed after an hour: safer side
    assert later[(1, "fever")].evidence["confirmation_requested"] is False


def test_weight_loss_and_the_sepsis_screen_from_spot_checks() -> None:
    src = MemorySource()
    day = 86_400_000
    # patient 1: ileostomy losses, 72.0 -> 69.6 kg over two days
    src.add(1, "weight_kg", DAY_NOW - 2 * day - 3_600_000, [72.0, 71.0, 69.6], every_s=86_400)
    # patient 2: first day pulse 72 (usual), now 37.9 °C and 90/min (18 above usual)
    discharge = DAY_NOW - 3 * day
    src.add(2, "heart_rate_bpm", discharge + 3_600_000, [72.0, 71.0, 73.0], every_s=7_200)
    src.add(2, "heart_rate_bpm", DAY_NOW - 30 * MIN_MS, [90.0])
    src.add(2, "temp_c", DAY_NOW - 20 * MIN_MS, [37.9])
    fired = _firing(evaluate(src, _ctx(2, discharged_ms=discharge), builtin_protocols(), DAY_NOW))
    assert (1, "weight_loss") in fired
    assert (
        fired[(1, "weight_loss")].evidence["fall"] == 2.4000000000000057
        or abs(fired[(1, "weight_loss")].evidence["fall"] - 2.4) < 1e-9
    )
    assert (2, "sepsis_screen") in fired
    assert fired[(2, "sepsis_screen")].evidence["usual_pulse"] == 72.0


def _usual_then_now(
    src: MemorySource, cases: dict[int, tuple[float, float]], discharge_ms: int, now_ms: int
) -> None:
    """Per patient (usual, now): four waking readings of the usual temperature an hour
    apart from an hour after discharge (a usual needs four), then one reading now."""
    for pid, (usual_c, now_c) in cases.items():
        src.add(pid, "temp_c", discharge_ms + 3_600_000, [usual_c] * 4, every_s=3_600)
        src.add(pid, "temp_c", now_ms, [now_c])


def test_the_sepsis_screen_s_low_temperature_follows_a_patient_who_reads_cold() -> None:
    """A pulse of 95 with a low temperature: 35.4 °C is low for a patient whose first day
    read 36.6 (limit 35.5), ordinary for one who read 35.9 (limit 35.1, two within-person
    SD under), who still screens at 35.0; a usual of 35.4 is never taken below 35.0."""
    src = MemorySource()
    day = 86_400_000
    discharge = DAY_NOW - 3 * day
    cases = {1: (36.6, 35.4), 2: (35.9, 35.4), 3: (35.9, 35.0), 4: (35.4, 35.0), 5: (35.4, 35.1)}
    _usual_then_now(src, cases, discharge, DAY_NOW - 20 * MIN_MS)
    for pid in cases:
        src.add(pid, "heart_rate_bpm", discharge + 3_600_000, [72.0] * 3, every_s=14_400)
        src.add(pid, "heart_rate_bpm", DAY_NOW - 30 * MIN_MS, [95.0])
    ctx = _ctx(len(cases), discharged_ms=discharge)
    fired = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    screened = {pid for pid, rule in fired if rule == "sepsis_screen"}
    assert screened == {1, 3, 4}
    assert fired[(1, "sepsis_screen")].evidence["temp_c"] == 35.4


def test_a_patient_whose_saturation_runs_low_is_judged_against_it() -> None:
    """First 24 h after discharge at 90 % (COPD not on scale 2): 89 % by day is their usual
    (spo2_low at most 3 under it, floor 88; NEWS2 lifted by 3); 86 % is a fall."""
    discharge = DAY_NOW - 3 * 86_400_000
    src = MemorySource()
    for pid in (1, 2):
        src.add(pid, "spo2_pct", discharge + 3_600_000, [90.0, 90.0, 91.0, 89.0], every_s=14_400)
    src.add(1, "spo2_pct", DAY_NOW - 20 * MIN_MS, [89.0] * 20)
    src.add(2, "spo2_pct", DAY_NOW - 20 * MIN_MS, [86.0] * 20)
    fired = _firing(evaluate(src, _ctx(2, discharged_ms=discharge), builtin_protocols(), DAY_NOW))
    assert (1, "spo2_low") not in fired
    assert (1, "news2") not in fired  # 89 + 3 = 92 scores 2
    assert fired[(2, "spo2_low")].evidence["threshold"] == 88.0  # max(88, 90 - 3), under 92
    assert (2, "news2") in fired  # 86 + 3 = 89 scores 3


def test_a_patient_who_breathes_fast_from_the_first_day_is_judged_against_it() -> None:
    """A patch's respiratory rate: patients 1 and 2 breathed 23/min through their first
    24 h (COPD), patient 3 30/min, patient 4 15/min. NEWS2 judges the rate lowered by how
    far the usual runs above 20, at most 3: 26 is patient 1's rest (23 scores 2), 29 a
    rise for patient 2 (26 scores 3); patient 3's 28 still scores (the allowance is
    capped); patient 4's 25 scores 3 as for anyone."""
    discharge = DAY_NOW - 3 * 86_400_000
    src = MemorySource()
    for pid, usual in ((1, 23.0), (2, 23.0), (3, 30.0), (4, 15.0)):
        src.add(pid, "resp_rate_per_min", discharge + 3_600_000, [usual] * 10, every_s=7200)
    for pid, now_rate in ((1, 26.0), (2, 29.0), (3, 28.0), (4, 25.0)):
        src.add(pid, "resp_rate_per_min", DAY_NOW - 20 * MIN_MS, [now_rate] * 20)
    ctx = _ctx(4, discharged_ms=discharge)
    fired = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert (1, "news2") not in fired
    for pid in (2, 3, 4):
        assert fired[(pid, "news2")].evidence["scored_params"] == "resp_rate_per_min"


def test_a_patch_s_breathing_rate_is_judged_over_half_an_hour() -> None:
    """A patch's estimate runs high while the patient talks or walks: 12 minutes at 28/min
    after 18 at 16 (patient 1) is a median of 16 over the last 30 min and scores nothing;
    the same 28 for the whole half-hour (patient 2) scores 3, alone a NEWS2 alert."""
    discharge = DAY_NOW - 3 * 86_400_000
    src = MemorySource()
    for pid in (1, 2):
        src.add(pid, "resp_rate_per_min", discharge + 3_600_000, [16.0] * 10, every_s=7200)
    src.add(1, "resp_rate_per_min", DAY_NOW - 30 * MIN_MS, [16.0] * 18 + [28.0] * 12)
    src.add(2, "resp_rate_per_min", DAY_NOW - 30 * MIN_MS, [28.0] * 30)
    fired = _firing(evaluate(src, _ctx(2, discharged_ms=discharge), builtin_protocols(), DAY_NOW))
    assert (1, "news2") not in fired
    assert fired[(2, "news2")].evidence["scored_params"] == "resp_rate_per_min"


def test_a_smaller_weight_loss_with_a_sign_of_lost_volume_is_dehydration() -> None:
    """alerts/fluid_balance.py: 80.2 -> 78.3 kg in two days (1.9 kg, 2.4 %) with the
    day's waking pulse 12/min over the usual 72 (patient 1), or 1.1 kg with the systolic
    pressure 17 mmHg under the usual 135 (2), is dehydration; the same 1.9 kg with usual
    signs (3) and a fast pulse with 0.6 kg (4) are not, nor alerts weight loss alone under
    3 %; 2.8 kg (3.5 %) alone does (5)."""
    day, hour = 86_400_000, 3_600_000
    discharge = DAY_NOW - 3 * day  # the first day's readings are at 17:00-21:00 in Paris
    src = MemorySource()
    weights = {
        1: [80.2, 79.5, 78.3],
        2: [80.2, 79.8, 79.1],
        3: [80.2, 79.5, 78.3],
        4: [80.2, 79.9, 79.6],
        5: [80.2, 78.9, 77.4],
    }
    pulse_now = {1: 84.0, 2: 73.0, 3: 74.0, 4: 88.0, 5: 72.0}
    sbp_now = {1: 134.0, 2: 118.0, 3: 130.0, 4: 135.0, 5: 135.0}
    for pid, week in weights.items():
        src.add(pid, "heart_rate_bpm", discharge + 2 * hour, [72.0] * 3, every_s=7200)
        src.add(pid, "bp_systolic_mmhg", discharge + 2 * hour, [135.0] * 3, every_s=7200)
        src.add(pid, "weight_kg", DAY_NOW - 2 * day - hour, week, every_s=86_400)
        for back_h in (20, 5, 2):  # waking spot checks at 19:00 yesterday, 10:00, 13:00
            src.add(pid, "heart_rate_bpm", DAY_NOW - back_h * hour, [pulse_now[pid]])
            src.add(pid, "bp_systolic_mmhg", DAY_NOW - back_h * hour, [sbp_now[pid]])
    fired = _firing(evaluate(src, _ctx(5, discharged_ms=discharge), builtin_protocols(), DAY_NOW))
    assert {pid for pid, rule in fired if rule == "dehydration"} == {1, 2}
    one = fired[(1, "dehydration")].evidence
    assert abs(one["weight_fall"] - 1.9) < 1e-9
    assert (one["pulse"], one["usual_pulse"], one["sbp"], one["usual_sbp"]) == (
        84.0,
        72.0,
        134.0,
        135.0,
    )
    assert fired[(2, "dehydration")].evidence["sbp"] == 118.0
    assert {pid for pid, rule in fired if rule == "weight_loss"} == {5}
    assert abs(fired[(5, "weight_loss")].evidence["fall"] - 2.8) < 1e-9
    # a clinician lowers patient 4's fall to 0.5 kg (a published, adjustable parameter)
    ctx = _ctx(5, overrides={(4, "dehydration", "fall_above"): 0.5}, discharged_ms=discharge)
    assert (4, "dehydration") in _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))


def test_the_weight_rules_thresholds_are_published_for_per_patient_adjustment() -> None:
    """The API accepts only published overrides: the weight-with-a-sign rules' weight
    thresholds are read per patient by ``evaluate``, so they must be published too."""
    params = {(row[0], row[1], row[5]) for row in param_rows(builtin_protocols())}
    for protocol in builtin_protocols():
        assert (protocol, "fluid_overload", "rise_above") in params
        assert (protocol, "dehydration", "fall_above") in params
        assert (protocol, "weight_loss", "fall_above") in params


def test_low_grade_fever_of_older_adults_over_the_patients_own_usual() -> None:
    """IDSA (High et al. 2009): repeated readings above the normal range (37.5 °C for an
    ear thermometer), or more than 1.1 °C over the patient's usual (the median of their
    first 48 h's readings, at least 4, no hospital value). A spot reading asks for a
    re-measurement first; 37.5 itself is not above, nor is 1.1 over. A patient whose
    temperature runs warm is judged against their own range (usual + 0.8, two
    within-person SD), never above 37.9: 37.6 over a usual of 36.9 is theirs, 37.8 is
    not, and over a usual of 37.4 only the fever's 38.0 counts."""
    src = MemorySource()
    day = 86_400_000
    discharge = DAY_NOW - 3 * day
    cases = {1: (36.4, 37.6), 2: (36.9, 37.6), 3: (36.4, 37.5), 4: (36.9, 37.8), 5: (37.4, 37.9)}
    _usual_then_now(src, cases, discharge, DAY_NOW - 10 * MIN_MS)
    ctx = _ctx(len(cases), discharged_ms=discharge)
    fired = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert fired[(1, "temp_above_usual")].evidence["usual"] == 36.4
    assert fired[(1, "temp_above_usual")].evidence["confirmation_requested"] is True
    assert fired[(1, "low_grade_fever")].priority == "low"
    temperature = {"fever", "temp_above_usual", "low_grade_fever"}
    for own in (2, 3, 5):
        assert not {k for k in fired if k[0] == own and k[1] in temperature}, own
    assert fired[(4, "low_grade_fever")].evidence["confirmation_requested"] is True
    assert not {k for k in fired if k[1] == "fever"}
    src.add(4, "temp_c", DAY_NOW - 5 * MIN_MS, [37.8])  # the re-measurement confirms it
    confirmed = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert confirmed[(4, "low_grade_fever")].evidence["confirmation_requested"] is False


def test_the_usual_temperature_is_learned_over_two_days() -> None:
    """Two ear readings a day spread too much to set a usual temperature from one day:
    it is the median of the first 48 h's readings (at least 4). Patient 1 read 35.9 and
    36.0 on the first day (mornings run low), 36.6 and 36.7 on the second: usual 36.3,
    so 37.3 is not 1.1 over it; patient 2, usual 36.3 too, at 37.5 is."""
    src = MemorySource()
    day, hour = 86_400_000, 3_600_000
    discharge = DAY_NOW - 4 * day
    for pid, now_c in ((1, 37.3), (2, 37.5)):
        # at 16:00 and 20:00 in Paris, on the first and the second day
        src.add(pid, "temp_c", discharge + hour, [35.9, 36.0], every_s=4 * 3600)
        src.add(pid, "temp_c", discharge + day + hour, [36.6, 36.7], every_s=4 * 3600)
        src.add(pid, "temp_c", DAY_NOW - 10 * MIN_MS, [now_c])
    # patient 3 took three in 48 h (36.4, 35.7, 36.5), a fourth on the third day (35.5):
    # their first four make the usual, 36.05, and 37.3 is over it by more than 1.1
    src.add(3, "temp_c", discharge + hour, [36.4], every_s=3600)
    src.add(3, "temp_c", discharge + day + hour, [35.7, 36.5], every_s=4 * 3600)
    src.add(3, "temp_c", discharge + 2 * day + hour, [35.5])
    src.add(3, "temp_c", DAY_NOW - 10 * MIN_MS, [37.3])
    fired = _firing(evaluate(src, _ctx(3, discharged_ms=discharge), builtin_protocols(), DAY_NOW))
    assert (1, "temp_above_usual") not in fired
    assert abs(fired[(2, "temp_above_usual")].evidence["usual"] - 36.3) < 1e-9
    assert abs(fired[(3, "temp_above_usual")].evidence["usual"] - 36.05) < 1e-9


def test_a_smaller_weight_gain_with_a_sign_of_congestion_is_fluid_overload() -> None:
    """Heart failure creeping in (alerts/fluid_balance.py): 1.2 kg over a week with the last
    day's waking saturation 3 points under the usual 96 (patient 1) or the pulse 12/min
    over the usual 72 (patient 2) fires; the same gain with usual signs (3), a gain of
    0.8 kg with low saturation (4) and low saturation asleep only (5) do not."""
    day, hour = 86_400_000, 3_600_000
    discharge = DAY_NOW - 8 * day  # the first day's readings are at 17:00-21:00 in Paris
    src = MemorySource()
    gains = {1: 1.2, 2: 1.2, 3: 1.2, 4: 0.8, 5: 1.2}
    for pid, gain in gains.items():
        src.add(pid, "spo2_pct", discharge + 2 * hour, [96.0, 96.0, 96.0], every_s=7200)
        src.add(pid, "heart_rate_bpm", discharge + 2 * hour, [72.0, 72.0, 72.0], every_s=7200)
        week = [70.0 + gain * share for share in (0, 0, 0.25, 0.5, 0.75, 0.9, 1.0)]
        src.add(pid, "weight_kg", DAY_NOW - 6 * day - hour, week, every_s=86_400)
    spo2_now = {1: 93.0, 2: 96.0, 3: 96.0, 4: 93.0, 5: 96.0}
    pulse_now = {1: 74.0, 2: 84.0, 3: 73.0, 4: 74.0, 5: 74.0}
    for pid in gains:  # waking spot checks at 19:00 yesterday, 10:00 and 13:00 today
        for back_h in (20, 5, 2):
            src.add(pid, "spo2_pct", DAY_NOW - back_h * hour, [spo2_now[pid]])
            src.add(pid, "heart_rate_bpm", DAY_NOW - back_h * hour, [pulse_now[pid]])
    src.add(5, "spo2_pct", DAY_NOW - 16 * hour, [91.0] * 480)  # 23:00-07:00, asleep
    fired = _firing(evaluate(src, _ctx(5, discharged_ms=discharge), builtin_protocols(), DAY_NOW))
    overload = {pid for pid, rule in fired if rule == "fluid_overload"}
    assert overload == {1, 2}
    one = fired[(1, "fluid_overload")].evidence
    assert abs(one["weight_rise"] - 1.2) < 1e-9
    assert (one["spo2"], one["usual_spo2"], one["usual_pulse"]) == (93.0, 96.0, 72.0)
    assert fired[(2, "fluid_overload")].evidence["pulse"] == 84.0
    assert not {k for k in fired if k[1] == "weight_gain"}  # under the guideline's 2 kg
