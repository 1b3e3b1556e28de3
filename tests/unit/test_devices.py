"""A simulated kit over a simulated day: frames in time order, on schedule, reproducible
piece by piece, and the gateway's decoder reads back exactly what the kit recorded."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from firmware_sim.clock import to_ms
from firmware_sim.devices import (
    DEFAULT_KINDS,
    DEVICE_ID_RE,
    DeviceKind,
    EmittedFrame,
    KitSimulator,
    Schedule,
    device_id,
    kit_devices,
)
from firmware_sim.gatt_encode import GlucoseUnit, PressureUnit

from gateway.gatt_decode import decode
from vitals.catalogue import metric
from vitals.link import LinkFrame

DAY_MS = 86_400_000
ALL_KINDS = (*DEFAULT_KINDS, DeviceKind.GLUCOSE_METER)


def one_day(kit: KitSimulator, day: int = 0) -> list[tuple[int, bytes]]:
    start = to_ms(kit.start) + day * DAY_MS
    return list(kit.frames_between(start, start + DAY_MS))


def check_decoded_against_record(kit: KitSimulator, tz: ZoneInfo) -> Counter[str]:
    """Decode every emitted frame as the gateway would; compare with the record."""
    counts: Counter[str] = Counter()
    for frame in kit.emitted:
        link = LinkFrame.model_validate_json(frame.line)
        assert link.device == frame.device_id
        assert link.rx_ms == frame.rx_ms
        if link.entry is not None:
            (expected,) = frame.values
            assert (link.entry.metric, link.entry.value) == (expected.metric, expected.value)
            counts[link.entry.metric] += 1
            continue
        assert link.char_uuid is not None
        assert link.char_uuid == frame.char_uuid
        decoded = decode(link.char_uuid, link.payload, tz)
        assert len(decoded) == len(frame.values), frame
        for got, want in zip(decoded, frame.values, strict=True):
            assert got.metric == want.metric
            assert got.flags == want.flags, (frame, got)
            if want.value is None:
                assert got.value is None
            else:
                assert got.value is not None
                assert got.value == pytest.approx(want.value, rel=1e-12, abs=1e-12)
                assert metric(got.metric).is_plausible(got.value), got
            assert got.time_ms == (want.measured_ms if want.timestamped else None)
            counts[got.metric] += 1
    return counts


@pytest.mark.parametrize("tz_name", ["UTC", "Europe/Paris", "America/New_York"])
def test_one_day_decodes_to_exactly_the_recorded_readings(tz_name: str) -> None:
    tz = ZoneInfo(tz_name)
    kit = KitSimulator("pat-001", 42, datetime(2025, 6, 2, tzinfo=tz), ALL_KINDS, tz=tz)
    frames = one_day(kit)
    assert frames
    assert [rx for rx, _ in frames] == sorted(rx for rx, _ in frames)
    assert [line for _, line in frames] == [f.line for f in kit.emitted]
    counts = check_decoded_against_record(kit, tz)
    recorded = Counter(v.metric for v in kit.expected_readings())
    assert counts == recorded
    # the schedule: one day of a default kit plus a glucose meter
    assert recorded["bp_systolic_mmhg"] == recorded["bp_diastolic_mmhg"] == 3
    assert recorded["bp_mean_mmhg"] == 3
    assert recorded["temp_c"] == 3
    assert recorded["weight_kg"] == 1
    assert recorded["glucose_mmol_l"] == 2
    assert recorded["pain_score"] == 1
    assert recorded["resp_rate_per_min"] == 24 * 12
    assert recorded["steps_count"] == 24 * 4
    patch_hr = [f for f in kit.emitted if f.kind is DeviceKind.HR_PATCH and f.char_uuid == 0x2A37]
    assert len(patch_hr) == 24 * 60
    night = [f for f in kit.emitted if f.char_uuid == 0x2A5F]
    assert 5 * 120 < len(night) < 10 * 120  # every 30 s while asleep
    assert all(kit.patient.is_asleep(f.rx_ms - 200) for f in night)
    spot = [f for f in kit.emitted if f.char_uuid == 0x2A5E]
    assert len(spot) == 4
    assert recorded["spo2_pct"] == len(night) + len(spot)


def test_frames_are_the_same_whole_or_piece_by_piece() -> None:
    start = datetime(2025, 3, 29, 18, tzinfo=UTC)  # across the Paris spring-forward night
    tz = ZoneInfo("Europe/Paris")
    whole = KitSimulator("pat-002", 5, start, ALL_KINDS, tz=tz)
    pieces = KitSimulator("pat-002", 5, start, ALL_KINDS, tz=tz)
    t0 = to_ms(start)
    expected = list(whole.frames_between(t0, t0 + 2 * DAY_MS))
    got: list[tuple[int, bytes]] = []
    edge = t0
    for width_min in [1, 7, 60, 5, 600, 1, 1440]:
        got += pieces.frames_between(edge, edge + width_min * 60_000)
        edge += width_min * 60_000
    got += pieces.frames_between(edge, t0 + 2 * DAY_MS)
    assert got == expected
    check_decoded_against_record(pieces, tz)


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    a = one_day(KitSimulator("pat-003", 1, start))
    b = one_day(KitSimulator("pat-003", 1, start))
    c = one_day(KitSimulator("pat-003", 2, start))
    d = one_day(KitSimulator("pat-004", 1, start))
    assert a == b
    assert a != c
    assert a != d


def test_device_ids_and_the_provisioning_list() -> None:
    kit = KitSimulator("demo-001", 1, datetime(2025, 1, 6, tzinfo=UTC))
    devices = kit_devices("demo-001")
    assert [ident for ident, _ in devices] == kit.device_ids()
    assert ("oximeter-demo-001", "oximeter") in devices
    assert all(DEVICE_ID_RE.match(ident) for ident, _ in devices)
    frames = one_day(kit)
    senders = {LinkFrame.model_validate_json(line).device for _, line in frames}
    assert senders == set(kit.device_ids())
    with pytest.raises(ValueError, match="not a valid device id"):
        device_id(DeviceKind.SCALE, "x" * 60)
    with pytest.raises(ValueError, match="at most one"):
        KitSimulator("demo-001", 1, datetime(2025, 1, 6, tzinfo=UTC), ["scale", "scale"])


def test_other_units_still_decode_to_catalogue_units() -> None:
    tz = ZoneInfo("America/Chicago")
    schedule = Schedule(
        bp_unit=PressureUnit.KPA,
        fahrenheit=True,
        imperial_scale=True,
        glucose_unit=GlucoseUnit.KG_PER_L,
    )
    kit = KitSimulator(
        "pat-005", 9, datetime(2025, 11, 1, tzinfo=tz), ALL_KINDS, tz=tz, schedule=schedule
    )
    for day in range(3):
        one_day(kit, day)
    check_decoded_against_record(kit, tz)
    for v in kit.expected_readings():
        if v.value is None:
            continue
        tolerance = {
            "bp_systolic_mmhg": 30,
            "bp_diastolic_mmhg": 25,
            "bp_mean_mmhg": 25,
            "temp_c": 0.8,
            "weight_kg": 0.6,
            "glucose_mmol_l": 0.4 * v.truth,
        }.get(v.metric)
        if tolerance is not None:
            assert abs(v.value - v.truth) < tolerance, v


def test_batteries_drain_between_recharges() -> None:
    kit = KitSimulator("pat-006", 3, datetime(2025, 2, 3, tzinfo=UTC))
    for day in range(3):
        one_day(kit, day)
    levels = [
        v.value
        for f in kit.emitted
        if f.kind is DeviceKind.HR_PATCH
        for v in f.values
        if v.metric == "battery_pct" and v.value is not None
    ]
    assert len(levels) == 3 * 24
    assert all(0 <= v <= 100 for v in levels)
    recharges = sum(1 for before, after in pairwise(levels) if after > before)
    assert recharges <= 1  # the patch lasts a week: at most one recharge in three days
    assert levels[0] != levels[-1]
    every = {f.device_id for f in kit.emitted for v in f.values if v.metric == "battery_pct"}
    assert every == set(kit.device_ids()) - {"pain-diary-pat-006"}


def test_device_timestamps_are_local_wall_clock() -> None:
    tz = ZoneInfo("Asia/Tokyo")
    kit = KitSimulator("pat-007", 4, datetime(2025, 5, 5, tzinfo=tz), tz=tz)
    one_day(kit)
    cuff: list[EmittedFrame] = [f for f in kit.emitted if f.char_uuid == 0x2A35]
    for frame in cuff:
        measured = frame.values[0].measured_ms
        # the bytes hold the Tokyo wall clock: decoding them as UTC is 9 hours off
        (as_utc, *_) = decode(0x2A35, frame.payload, ZoneInfo("UTC"))
        assert as_utc.time_ms == measured + 9 * 3_600_000
        hour = datetime.fromtimestamp(measured / 1000, tz).hour
        assert 6 <= hour <= 21  # the cuff is used by day, local time
        assert 0 < frame.rx_ms - measured < 10_000


def test_monitoring_starts_after_surgery() -> None:
    start = datetime(2025, 4, 1, 8, tzinfo=UTC)
    kit = KitSimulator("pat-008", 1, start, post_op_days=3)
    assert kit.patient.surgery_ms == to_ms(start - timedelta(days=3))


def test_adding_a_device_changes_no_other_devices_frames() -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    small = KitSimulator("pat-009", 1, start, [DeviceKind.SCALE, DeviceKind.BP_CUFF])
    full = KitSimulator("pat-009", 1, start, ALL_KINDS)
    one_day(small)
    one_day(full)
    wanted = set(small.device_ids())
    assert [f.line for f in small.emitted] == [
        f.line for f in full.emitted if f.device_id in wanted
    ]


def test_a_cuff_reading_flagged_for_movement_is_taken_again_when_the_patient_does() -> None:
    """The cuff shows its movement error and the patient measures again 2-5 min later
    (as its manual says); the rest of the day's readings stay the same."""
    from firmware_sim.physiology import ArtifactRates, Patient

    start = datetime(2025, 1, 6, tzinfo=UTC)
    moving = ArtifactRates(cuff_movement=1.0)  # every reading flagged: each asks again

    def cuff_frames(remeasure_p: float) -> list[EmittedFrame]:
        patient = Patient("pat-010", 3, start - timedelta(days=2), UTC, artifacts=moving)
        kit = KitSimulator(
            "pat-010",
            3,
            start,
            [DeviceKind.BP_CUFF],
            schedule=Schedule(remeasure_p=remeasure_p),
            patient=patient,
        )
        t0 = to_ms(start)
        return [f for f in kit.frames(t0, t0 + DAY_MS) if f.char_uuid is not None and f.values]

    def readings(frames: list[EmittedFrame]) -> list[int]:
        return [f.values[0].measured_ms for f in frames if f.values[0].metric != "battery_pct"]

    once, twice = readings(cuff_frames(0.0)), readings(cuff_frames(1.0))
    assert len(once) == 3
    assert len(twice) == 6
    assert set(once) <= set(twice)  # the scheduled readings unchanged
    for first, again in zip(once, sorted(set(twice) - set(once)), strict=True):
        assert 2 * 60_000 <= again - first <= 5 * 60_000


def test_measure_now_takes_one_spot_reading_with_the_kits_device() -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    kit = KitSimulator("pat-011", 4, start, [DeviceKind.OXIMETER, DeviceKind.THERMOMETER])
    at = to_ms(start) + 11 * 3_600_000
    oximeter = kit.measure_now(DeviceKind.OXIMETER, at)
    assert {v.metric for f in oximeter for v in f.values} == {
        "spo2_pct",
        "heart_rate_bpm",
        "battery_pct",
    }
    assert all(v.measured_ms == at for f in oximeter for v in f.values if v.timestamped)
    assert kit.measure_now(DeviceKind.OXIMETER, at) == oximeter  # reproducible
    assert [v.metric for f in kit.measure_now(DeviceKind.THERMOMETER, at) for v in f.values] == [
        "temp_c",
        "battery_pct",
    ]
    assert kit.measure_now(DeviceKind.BP_CUFF, at) == []  # not in this kit
