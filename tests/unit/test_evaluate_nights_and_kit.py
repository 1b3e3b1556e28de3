"""``evaluate`` on the physiology of sleep and on the kit (issue 17, second round): a
sleeping pulse judged against the patient's own nights (beta-blocked and fit hearts rest
in the 40s), the night lasting while the overnight oximeter is still worn, and the team
told of a battery only when it is failing or about to stop."""

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
from tests.unit.test_evaluate_real_patients import DAY_NOW, MIN_MS, NIGHT_NOW, MemorySource

F = NDArray[np.float64]
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# a winter day in Paris (UTC+1): 08:00 and 11:00 local
EARLY_MORNING = int(datetime(2026, 1, 15, 7, 0, tzinfo=UTC).timestamp() * 1000)
LATE_MORNING = int(datetime(2026, 1, 15, 10, 0, tzinfo=UTC).timestamp() * 1000)


def _ctx(n: int, beta_blocker: Sequence[bool] = ()) -> PatientContext:
    return PatientContext(
        patient_ids=np.arange(1, n + 1, dtype=np.int64),
        team_ids=np.zeros(n, dtype=np.int64),
        protocols=("orthopaedic_surgery",) * n,
        discharged_ms=np.full(n, -1, dtype=np.int64),
        spo2_scale2=np.zeros(n, dtype=np.bool_),
        on_oxygen=np.zeros(n, dtype=np.bool_),
        overrides={},
        beta_blocker=np.asarray(beta_blocker or [False] * n, dtype=np.bool_),
    )


def _firing(findings: list[Finding]) -> dict[tuple[int, str], Finding]:
    return {(f.patient_id, f.rule_id): f for f in findings if f.firing}


def _earlier_nights(src: MemorySource, pid: int, metric: str, value: float) -> None:
    """The two nights before 15 January of a continuous sensor at ``value``, 5 h each from
    00:00 local."""
    for before in (1, 2):
        start = NIGHT_NOW - before * DAY_MS - 3 * HOUR_MS
        src.add(pid, metric, start, [value] * 300)


def test_a_beta_blocked_sleeper_in_the_40s_is_at_rest_not_bradycardic() -> None:
    """03:00 local, pulse 38/min for 40 minutes. Patient 1, on a beta-blocker, whose
    earlier nights ran at 46: their own night (limit 36 = 46 - 10); NEWS2 judges the
    sleeping pulse raised by 10 (56 - 46): 48 scores 1, no alert. Patient 2, whose nights
    ran at 58: 38 is a fall (limit 40), and NEWS2 scores it 3. By day (patient 3) 38/min
    for 15 minutes is bradycardia whoever it is."""
    src = MemorySource()
    _earlier_nights(src, 1, "heart_rate_bpm", 46.0)
    _earlier_nights(src, 2, "heart_rate_bpm", 58.0)
    for pid in (1, 2):
        src.add(pid, "heart_rate_bpm", NIGHT_NOW - 40 * MIN_MS, [38.0] * 40)
    src.add(3, "heart_rate_bpm", DAY_NOW - 15 * MIN_MS, [38.0] * 15)
    ctx = _ctx(3, [True, False, True])
    night = _firing(evaluate(src, ctx, builtin_protocols(), NIGHT_NOW))
    day = _firing(evaluate(src, ctx, builtin_protocols(), DAY_NOW))
    assert (1, "hr_low") not in night
    assert (1, "news2") not in night
    assert (2, "hr_low") in night
    assert night[(2, "hr_low")].evidence["threshold"] == 40.0  # min(40, 58 - 10)
    assert (2, "news2") in night
    assert (3, "hr_low") in day
    assert (3, "news2") in day  # awake, 38/min scores 3


def test_a_sleeping_pulse_far_below_the_patients_own_nights_still_fires() -> None:
    """Beta-blocked, nights at 46/min: 32/min for 40 minutes is more than 10 under their
    own nights (heart block, an overdose): hr_low fires. With no earlier night known, a
    beta-blocked sleeper's limit is 35 (40 - 5) and NEWS2 lifts the pulse by 5 only."""
    src = MemorySource()
    _earlier_nights(src, 1, "heart_rate_bpm", 46.0)
    src.add(1, "heart_rate_bpm", NIGHT_NOW - 40 * MIN_MS, [32.0] * 40)
    src.add(2, "heart_rate_bpm", NIGHT_NOW - 40 * MIN_MS, [38.0] * 40)  # night unknown
    src.add(3, "heart_rate_bpm", NIGHT_NOW - 40 * MIN_MS, [34.0] * 40)  # night unknown
    ctx = _ctx(3, [True, True, True])
    night = _firing(evaluate(src, ctx, builtin_protocols(), NIGHT_NOW))
    assert night[(1, "hr_low")].evidence["threshold"] == 36.0
    assert (2, "hr_low") not in night  # 38 >= 35
    assert (2, "news2") not in night  # 38 + 5 = 43 scores 1
    assert night[(3, "hr_low")].evidence["threshold"] == 35.0
    assert (3, "news2") in night  # 34 + 5 = 39 scores 3


def test_the_night_lasts_while_the_overnight_oximeter_is_worn() -> None:
    """Earlier nights at 90 % (night limit 86 = 90 - 4). At 08:00 local, past the clock's
    night, the oximeter still streams 87 % for 40 minutes: the patient is still asleep,
    judged by their nights. The same stream at 11:00 is an awake patient at 87 %, under
    the day's limit (88: 3 under their usual 90, floor 88): a fall."""
    src = MemorySource()
    _earlier_nights(src, 1, "spo2_pct", 90.0)
    _earlier_nights(src, 2, "spo2_pct", 90.0)
    src.add(1, "spo2_pct", EARLY_MORNING - 40 * MIN_MS, [87.0] * 40)
    src.add(2, "spo2_pct", LATE_MORNING - 40 * MIN_MS, [87.0] * 40)
    ctx = _ctx(2)
    early = _firing(evaluate(src, ctx, builtin_protocols(), EARLY_MORNING))
    late = _firing(evaluate(src, ctx, builtin_protocols(), LATE_MORNING))
    assert (1, "spo2_low") not in early
    assert early.get((1, "spo2_critical")) is None
    assert (2, "spo2_low") in late
    assert late[(2, "spo2_low")].evidence["threshold"] == 88.0
    # a single spot reading at 08:00 is not a stream: no night for it
    src2 = MemorySource()
    src2.add(1, "spo2_pct", EARLY_MORNING - 2 * MIN_MS, [91.0])
    spot = _firing(evaluate(src2, _ctx(1), builtin_protocols(), EARLY_MORNING))
    assert (1, "news2") in spot  # 91 scores 3 by day


def test_a_sleeping_reading_is_judged_as_one_after_the_clock_night_ends() -> None:
    """NEWS2 scores the latest reading within 4 h. Patient 1 (earlier nights at 93 %) took
    the oximeter off at 03:52 local after half an hour at 87 %: asleep, lifted by 3 (96 -
    93), a red score from SpO2 alone that the SpO2 rules judge. At 07:00, with nothing
    new, the same reading is still a sleeping one (before the fix it was judged by day
    and opened an alert on a night's old data). Patient 3, beta-blocked, nights at 46/min,
    whose stream of 40/min stopped at 03:52: likewise. A spot check taken at 07:30
    (patient 2, 87 %) is an awake reading: it scores 3 by day."""
    start = NIGHT_NOW  # 03:00 local
    seven = NIGHT_NOW + 4 * HOUR_MS
    src = MemorySource()
    _earlier_nights(src, 1, "spo2_pct", 93.0)
    src.add(1, "spo2_pct", start, [95.0] * 22 + [87.0] * 30)
    _earlier_nights(src, 3, "heart_rate_bpm", 46.0)
    src.add(3, "heart_rate_bpm", start, [40.0] * 52)
    src.add(2, "spo2_pct", seven + 30 * MIN_MS, [87.0])
    ctx = _ctx(3, [False, False, True])
    at_night = _firing(evaluate(src, ctx, builtin_protocols(), start + 53 * MIN_MS))
    after = _firing(evaluate(src, ctx, builtin_protocols(), seven))
    spot = _firing(evaluate(src, ctx, builtin_protocols(), seven + 35 * MIN_MS))
    assert (1, "news2") not in at_night
    assert (3, "news2") not in at_night
    assert (1, "news2") not in after
    assert (3, "news2") not in after
    assert (1, "news2") not in spot
    assert (2, "news2") in spot


def test_asleep_a_saturation_is_judged_no_more_strictly_than_awake() -> None:
    """Patient 1's waking saturation ran at 93 % the day before (spot checks): by day
    NEWS2 judges it lifted by 3 (96 - 93). At 03:00, first night at home (no earlier night
    known: the unknown-night allowance is 2), 89 % for 40 minutes with a pulse of 93 and an
    ear temperature of 35.8: lifted by 3, not 2 (their nights run lower than their days,
    not higher), 92 scores 2, in all 4: no alert, as the same readings awake would give.
    Patient 2, with no low waking usual, at 89 % asleep: 91 scores 3, in all 5: medium."""
    day_before = NIGHT_NOW - DAY_MS
    src = MemorySource()
    for h in (8, 12, 16):
        src.add(1, "spo2_pct", day_before + h * HOUR_MS, [93.0])
    for pid in (1, 2):
        src.add(pid, "spo2_pct", NIGHT_NOW - 40 * MIN_MS, [89.0] * 40)
        src.add(pid, "heart_rate_bpm", NIGHT_NOW - 40 * MIN_MS, [93.0] * 40)
        src.add(pid, "temp_c", NIGHT_NOW - 30 * MIN_MS, [35.8])
    fired = _firing(evaluate(src, _ctx(2), builtin_protocols(), NIGHT_NOW))
    assert (1, "news2") not in fired
    assert fired[(2, "news2")].evidence["score"] == 5


@dataclass
class BatterySource(MemorySource):
    """Battery levels per patient: (time_ms, level) pairs."""

    levels: dict[int, list[tuple[int, float]]] = field(default_factory=dict)

    def lowest_battery_pct(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> F:
        out = []
        for pid in ids.tolist():
            seen = [(t, v) for t, v in self.levels.get(pid, []) if since_ms <= t <= now_ms]
            out.append(max(seen)[1] if seen else np.nan)
        return np.asarray(out, dtype=np.float64)


def test_the_team_hears_of_a_battery_about_to_stop_not_of_a_normal_drain() -> None:
    """Patient 1: an oximeter draining over days as it should, 14 % now; patient 2: a
    scale at 10 % for days (a year's battery, it warns the patient itself). Patient 3:
    5 %, about to stop: the team makes sure the batteries are changed."""
    src = BatterySource()
    now = DAY_NOW
    src.levels[1] = [(now - 6 * HOUR_MS, 19.0), (now - 10 * MIN_MS, 14.0)]
    src.levels[2] = [(now - 2 * DAY_MS, 10.0), (now - 10 * MIN_MS, 10.0)]
    src.levels[3] = [(now - 6 * HOUR_MS, 9.0), (now - 10 * MIN_MS, 5.0)]
    fired = _firing(evaluate(src, _ctx(3), builtin_protocols(), now))
    assert (1, "battery_low") not in fired
    assert (2, "battery_low") not in fired
    assert fired[(3, "battery_low")].evidence["battery_pct"] == 5.0


def test_a_missed_spot_check_is_low_a_whole_waking_day_of_silence_is_raised() -> None:
    """A spot-check patient whose last SpO2 was at 20:00 local the day before: at 15:00
    (9 waking hours) a low-priority alert; the next day at 15:00 (24 waking hours) the
    alert is medium, so the team hears again even if it acknowledged the first gap."""
    src = MemorySource()
    last = DAY_NOW - 19 * HOUR_MS  # 20:00 local the day before
    src.add(1, "spo2_pct", last - 22 * HOUR_MS, [96.0, 97.0], every_s=11 * 3600)
    src.add(1, "spo2_pct", last, [96.0])
    first = _firing(evaluate(src, _ctx(1), builtin_protocols(), DAY_NOW))
    second = _firing(evaluate(src, _ctx(1), builtin_protocols(), DAY_NOW + DAY_MS))
    assert first[(1, "no_spo2")].priority == "low"
    assert second[(1, "no_spo2")].priority == "medium"
