"""GATT characteristic values: the simulator's encoders and the gateway's decoders agree
with each other and with the Bluetooth SIG layouts (worked by hand below), and the
decoder refuses anything malformed with a reason, never with another exception."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from firmware_sim.gatt_encode import (
    BatteryLevel,
    BloodPressureMeasurement,
    BloodPressureStatus,
    GlucoseMeasurement,
    GlucoseSensorStatus,
    GlucoseType,
    GlucoseUnit,
    HeartRateMeasurement,
    Measurement,
    PlxContinuousMeasurement,
    PlxDeviceStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PressureUnit,
    SampleLocation,
    SensorContact,
    TemperatureMeasurement,
    TemperatureType,
    WeightMeasurement,
    encode,
)
from firmware_sim.ieee11073 import Special

from gateway.gatt_decode import DECODERS, DecodedReading, GattDecodeError, decode
from vitals.flags import ReadingFlag

UTC_TZ = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
F = ReadingFlag

# 2024-03-15 08:30:00 as a Date Time field: year 0x07E8 LE, month 3, day 15, 08:30:00
STAMP = "E807030F081E00"
STAMP_WALL = datetime(2024, 3, 15, 8, 30, 0)
STAMP_UTC_MS = int(datetime(2024, 3, 15, 8, 30, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000


def readings(char: int, hex_payload: str, tz: ZoneInfo = UTC_TZ) -> list[DecodedReading]:
    return decode(char, bytes.fromhex(hex_payload.replace(" ", "")), tz)


def simple(rs: list[DecodedReading]) -> list[tuple[str, float | None, int, int | None]]:
    return [
        (r.metric, None if r.value is None else round(r.value, 4), r.flags, r.time_ms) for r in rs
    ]


# --- known values, worked by hand from the GATT Specification Supplement ---------------


def test_heart_rate_known_values() -> None:
    # flags 0x00: uint8 value, no contact feature; 0x48 = 72 bpm
    assert simple(readings(0x2A37, "00 48")) == [("heart_rate_bpm", 72.0, 0, None)]
    # flags 0x16 = contact supported+detected (bits 1,2) and RR present (bit 4);
    # HR 0x4B = 75; one RR-interval 0x0400 = 1024/1024 s
    assert simple(readings(0x2A37, "16 4B 0004")) == [("heart_rate_bpm", 75.0, 0, None)]
    assert readings(0x2A37, "16 4B 0004 0003")[0].rr_ms == (1000.0, 750.0)
    # contact lost (flags 0x14: supported, not detected): the intervals are not beats
    assert readings(0x2A37, "14 4B 0004")[0].rr_ms == ()
    # flags 0x09 = uint16 value (bit 0) + energy expended (bit 3); HR 0x0050 = 80;
    # energy 0x03E8 = 1000 kJ
    assert simple(readings(0x2A37, "09 5000 E803")) == [("heart_rate_bpm", 80.0, 0, None)]
    # flags 0x04 = contact supported (bit 2) but not detected (bit 1 clear): questionable
    assert simple(readings(0x2A37, "04 3C")) == [
        ("heart_rate_bpm", 60.0, int(F.QUESTIONABLE), None)
    ]


def test_blood_pressure_known_values() -> None:
    # flags 0x1E: mmHg, time stamp, pulse rate, user id, measurement status;
    # SFLOATs with exponent 0: 0x0079 = 121, 0x004F = 79, 0x005C = 92; pulse 0x0048 = 72;
    # user 1; status 0x0001 = body movement -> MOTION
    payload = "1E 7900 4F00 5C00" + STAMP + "4800 01 0100"
    expected = [
        ("bp_systolic_mmhg", 121.0, int(F.MOTION), STAMP_UTC_MS),
        ("bp_diastolic_mmhg", 79.0, int(F.MOTION), STAMP_UTC_MS),
        ("bp_mean_mmhg", 92.0, int(F.MOTION), STAMP_UTC_MS),
        ("heart_rate_bpm", 72.0, int(F.MOTION), STAMP_UTC_MS),
    ]
    assert simple(readings(0x2A35, payload)) == expected
    # the same wall clock in Paris (UTC+1 in mid-March) is one hour earlier in UTC
    paris = readings(0x2A35, payload, PARIS)
    assert {r.time_ms for r in paris} == {STAMP_UTC_MS - HOUR_MS}


def test_blood_pressure_in_kpa_is_converted_to_mmhg() -> None:
    # flags 0x01: kPa. 0xF0A0 = 160e-1 = 16.0 kPa = 16.0 * 1000 / 133.322387 = 120.0099 mmHg
    # 0xF06A = 10.6 kPa = 79.5065 mmHg; 0xF07B = 12.3 kPa = 92.2576 mmHg
    got = simple(readings(0x2A35, "01 A0F0 6AF0 7BF0"))
    assert got == [
        ("bp_systolic_mmhg", 120.0099, 0, None),
        ("bp_diastolic_mmhg", 79.5065, 0, None),
        ("bp_mean_mmhg", 92.2576, 0, None),
    ]


def test_blood_pressure_status_bits() -> None:
    base = "10 7900 4F00 5C00 "  # flags: status present, no pulse
    # 0x0002 cuff too loose -> QUESTIONABLE on every value
    assert {r.flags for r in readings(0x2A35, base + "0200")} == {int(F.QUESTIONABLE)}
    # 0x0020 improper measurement position -> QUESTIONABLE
    assert {r.flags for r in readings(0x2A35, base + "2000")} == {int(F.QUESTIONABLE)}
    # 0x0004 irregular pulse: a clinical finding, not a measurement problem
    assert {r.flags for r in readings(0x2A35, base + "0400")} == {int(F.IRREGULAR_PULSE)}
    # flags 0x14: pulse + status; status 0x0008 = pulse rate above range (bits 3-4 = 1):
    # only the pulse rate is questionable
    got = readings(0x2A35, "14 7900 4F00 5C00 B400 0800")
    assert [(r.metric, r.flags) for r in got] == [
        ("bp_systolic_mmhg", 0),
        ("bp_diastolic_mmhg", 0),
        ("bp_mean_mmhg", 0),
        ("heart_rate_bpm", int(F.QUESTIONABLE)),
    ]
    assert got[3].value == 180.0  # 0x00B4


def test_blood_pressure_specials() -> None:
    # systolic NaN (0x07FF), diastolic NRes (0x0800), MAP +INF (0x07FE), pulse -INF (0x0802)
    got = simple(readings(0x2A35, "04 FF07 0008 FE07 0208"))
    assert got == [
        ("bp_systolic_mmhg", None, int(F.NOT_A_NUMBER), None),
        ("bp_diastolic_mmhg", None, int(F.NOT_AT_RESOLUTION), None),
        ("bp_mean_mmhg", None, int(F.ABOVE_RANGE), None),
        ("heart_rate_bpm", None, int(F.BELOW_RANGE), None),
    ]


def test_temperature_known_values() -> None:
    # flags 0x06: Celsius, time stamp, type. FLOAT 0xFF00016E = 366e-1 = 36.6; type 3 = ear
    assert simple(readings(0x2A1C, "06 6E0100FF" + STAMP + "03")) == [
        ("temp_c", 36.6, 0, STAMP_UTC_MS)
    ]
    # flags 0x01: Fahrenheit. 0xFF0003DA = 986e-1 = 98.6 F = (98.6 - 32) * 5 / 9 = 37.0 C
    assert simple(readings(0x2A1C, "01 DA0300FF")) == [("temp_c", 37.0, 0, None)]
    # FLOAT -INF (0x00800002): the thermometer read 'Lo'
    assert simple(readings(0x2A1C, "00 02008000")) == [("temp_c", None, int(F.BELOW_RANGE), None)]


def test_plx_spot_check_known_values() -> None:
    # flags 0x03: timestamp + measurement status. SpO2 0x0061 = 97, PR 0x0048 = 72;
    # status 0x0100 = fully qualified data: no flag
    assert simple(readings(0x2A5E, "03 6100 4800" + STAMP + "0001")) == [
        ("spo2_pct", 97.0, 0, STAMP_UTC_MS),
        ("heart_rate_bpm", 72.0, 0, STAMP_UTC_MS),
    ]
    # flags 0x11: timestamp, but bit 4 'device clock is not set': time is not trusted, and
    # its (here all-zero) bytes are not judged
    assert simple(readings(0x2A5E, "11 6100 4800 00000000000000")) == [
        ("spo2_pct", 97.0, 0, None),
        ("heart_rate_bpm", 72.0, 0, None),
    ]
    # flags 0x0E: measurement status (bit 1) + device status (bit 2) + pulse amplitude
    # index (bit 3); status 0x4000 = questionable measurement; device status 0x002000 =
    # sensor displaced; PAI 0xF02D = 45e-1 = 4.5 %
    got = readings(0x2A5E, "0E 5A00 6400 0040 002000 2DF0")
    assert {r.flags for r in got} == {int(F.QUESTIONABLE | F.MOTION)}


def test_plx_continuous_known_values() -> None:
    # flags 0x0C: measurement status + device status. SpO2 0x005F = 95, PR 0x0050 = 80;
    # status 0x0040 = early estimated data; device status 0x000040 = erratic signal
    assert simple(readings(0x2A5F, "0C 5F00 5000 4000 400000")) == [
        ("spo2_pct", 95.0, int(F.EARLY_ESTIMATE | F.MOTION), None),
        ("heart_rate_bpm", 80.0, int(F.EARLY_ESTIMATE | F.MOTION), None),
    ]
    # flags 0x13: fast and slow pairs and PAI present; only the normal pair is read
    assert simple(readings(0x2A5F, "13 6200 4100 6000 4200 6100 4300 2DF0")) == [
        ("spo2_pct", 98.0, 0, None),
        ("heart_rate_bpm", 65.0, 0, None),
    ]
    # NaN SpO2 and PR: a dropout
    assert simple(readings(0x2A5F, "00 FF07 FF07")) == [
        ("spo2_pct", None, int(F.NOT_A_NUMBER), None),
        ("heart_rate_bpm", None, int(F.NOT_A_NUMBER), None),
    ]


def test_weight_known_values() -> None:
    # flags 0x00: SI. 0x36B0 = 14000 * 0.005 kg = 70.0 kg
    assert simple(readings(0x2A9D, "00 B036")) == [("weight_kg", 70.0, 0, None)]
    # flags 0x01: imperial. 0x3C48 = 15432 * 0.01 lb = 154.32 lb * 0.45359237 = 69.9984 kg
    assert simple(readings(0x2A9D, "01 483C")) == [("weight_kg", 69.9984, 0, None)]
    # flags 0x0E: time stamp, user id 1, BMI 0x00F2 = 24.2, height 0x06A4 = 1.700 m
    assert simple(readings(0x2A9D, "0E B036" + STAMP + "01 F200 A406")) == [
        ("weight_kg", 70.0, 0, STAMP_UTC_MS)
    ]
    # 0xFFFF: measurement unsuccessful
    assert simple(readings(0x2A9D, "00 FFFF")) == [("weight_kg", None, int(F.NOT_A_NUMBER), None)]


def test_glucose_known_values() -> None:
    # flags 0x07: time offset, concentration + type/location, mol/L. Sequence 1;
    # base time 08:30:00 + offset 0x0005 = 5 min; SFLOAT 0xC038 = 56e-4 mol/L = 5.6 mmol/L;
    # 0x11 = sample location finger (high nibble 1), capillary whole blood (low nibble 1)
    assert simple(readings(0x2A18, "07 0100" + STAMP + "0500 38C0 11")) == [
        ("glucose_mmol_l", 5.6, 0, STAMP_UTC_MS + 5 * 60_000)
    ]
    # flags 0x02: kg/L. 0xB065 = 101e-5 kg/L = 101 mg/dL = 101 / 18.0156 = 5.6063 mmol/L;
    # offset absent; 0x12 = finger, capillary plasma
    assert simple(readings(0x2A18, "02 0200" + STAMP + "65B0 12")) == [
        ("glucose_mmol_l", 5.6063, 0, STAMP_UTC_MS)
    ]
    # flags 0x0B: time offset, concentration (bit 2 clear: kg/L), sensor status;
    # offset 0xFFFF = -1 min; status 0x0004 = sample size insufficient -> QUESTIONABLE
    assert simple(readings(0x2A18, "0B 0300" + STAMP + "FFFF 65B0 11 0400")) == [
        ("glucose_mmol_l", 5.6063, int(F.QUESTIONABLE), STAMP_UTC_MS - 60_000)
    ]
    # a record without concentration, and a control-solution test (type 10), yield nothing
    assert readings(0x2A18, "00 0400" + STAMP) == []
    assert readings(0x2A18, "06 0500" + STAMP + "38C0 4A") == []


def test_battery_level_known_values() -> None:
    assert simple(readings(0x2A19, "5A")) == [("battery_pct", 90.0, 0, None)]
    assert simple(readings(0x2A19, "00")) == [("battery_pct", 0.0, 0, None)]


# --- malformed values are refused with a reason ----------------------------------------


@pytest.mark.parametrize(
    ("char", "payload", "reason"),
    [
        (0x2A37, "", "too short"),
        (0x2A37, "00", "too short"),
        (0x2A37, "01 48", "too short"),  # uint16 flag but one byte
        (0x2A37, "00 48 00", "trailing"),
        (0x2A37, "20 48", "reserved flag bits"),
        (0x2A37, "10 48", "no RR-interval"),
        (0x2A37, "10 48 0004 00", "too short"),  # odd RR bytes
        (0x2A35, "00 7900 4F00", "too short"),
        (0x2A35, "00 0108 4F00 5C00", "reserved value 0x0801"),
        (0x2A35, "02 7900 4F00 5C00 E8070D0F081E00", "impossible date"),  # month 13
        (0x2A35, "02 7900 4F00 5C00 E8070300081E00", "date not known"),  # day 0
        (0x2A35, "02 7900 4F00 5C00 E807021E081E00", "impossible date"),  # 30 February
        (0x2A35, "02 7900 4F00 5C00 E807030F181E00", "impossible date"),  # hour 24
        (0x2A35, "02 7900 4F00 5C00 E807030F083C00", "impossible date"),  # minute 60
        (0x2A35, "02 7900 4F00 5C00 0000030F081E00", "date not known"),  # year 0
        (0x2A35, "10 7900 4F00 5C00 4000", "reserved bits"),  # status bit 6
        (0x2A35, "10 7900 4F00 5C00 1800", "pulse rate range"),  # range value 3
        (0x2A35, "80 7900 4F00 5C00", "reserved flag bits"),
        (0x2A1C, "08 6E0100FF", "reserved flag bits"),
        (0x2A1C, "04 6E0100FF 00", "temperature type"),
        (0x2A1C, "04 6E0100FF 0A", "temperature type"),
        (0x2A1C, "00 01008000", "reserved value 0x00800001"),
        (0x2A1C, "00 6E0100", "too short"),
        (0x2A5E, "02 6100 4800 0100", "reserved bits"),  # measurement status bit 0
        (0x2A5E, "04 6100 4800 000001", "reserved bits"),  # device status bit 16
        (0x2A5E, "20 6100 4800", "reserved flag bits"),
        (0x2A5E, "01 6100 4800 E807", "too short"),
        (0x2A5F, "01 6100 4800", "too short"),  # fast pair announced, missing
        (0x2A5F, "00 6100 4800 00", "trailing"),
        (0x2A9D, "10 B036", "reserved flag bits"),
        (0x2A9D, "08 B036 F200", "too short"),
        (0x2A18, "00 0100", "too short"),
        (0x2A18, "02 0100" + STAMP + "38C0 10", "type: reserved"),
        (0x2A18, "02 0100" + STAMP + "38C0 51", "sample location: reserved"),
        (0x2A18, "08 0100" + STAMP + "0010", "reserved bits"),
        (0x2A18, "20 0100" + STAMP, "reserved flag bits"),
        (0x2A19, "65", "reserved value 101"),
        (0x2A19, "", "too short"),
        (0x2A19, "5A00", "trailing"),
        (0x2A00, "00", "unsupported characteristic 0x2A00"),
    ],
)
def test_malformed_values_are_refused_with_a_reason(char: int, payload: str, reason: str) -> None:
    with pytest.raises(GattDecodeError, match=reason):
        readings(char, payload)


def test_a_year_2000_date_is_fine_but_1969_is_not_storable() -> None:
    assert readings(0x2A35, "02 7900 4F00 5C00 D007030F081E00")[0].time_ms == int(
        datetime(2000, 3, 15, 8, 30, tzinfo=UTC).timestamp() * 1000
    )
    with pytest.raises(GattDecodeError, match="outside 1970"):
        readings(0x2A35, "02 7900 4F00 5C00 B107030F081E00")


# --- encoder -> decoder round trips ----------------------------------------------------

SPECIAL_FLAG = {
    Special.NAN: F.NOT_A_NUMBER,
    Special.NRES: F.NOT_AT_RESOLUTION,
    Special.POSITIVE_INFINITY: F.ABOVE_RANGE,
    Special.NEGATIVE_INFINITY: F.BELOW_RANGE,
}


def decoded(m: Measurement, tz: ZoneInfo = UTC_TZ) -> list[DecodedReading]:
    char, payload = encode(m)
    return decode(char, payload, tz)


def check(r: DecodedReading, metric: str, value: float | Special, tol: float = 1e-9) -> None:
    assert r.metric == metric
    if isinstance(value, Special):
        assert r.value is None
        assert r.flags & SPECIAL_FLAG[value]
    else:
        assert r.value is not None
        assert r.value == pytest.approx(value, abs=tol)


@pytest.mark.parametrize("contact", list(SensorContact))
@pytest.mark.parametrize("wide", [False, True])
def test_heart_rate_round_trip(contact: SensorContact, wide: bool) -> None:
    m = HeartRateMeasurement(
        heart_rate_bpm=64,
        sensor_contact=contact,
        energy_expended_kj=321 if wide else None,
        rr_intervals_s=(0.9375, 0.95) if contact is SensorContact.DETECTED else (),
        uint16=wide,
    )
    _, payload = encode(m)
    assert payload[0] & 0x01 == wide
    (r,) = decoded(m)
    check(r, "heart_rate_bpm", 64)
    assert r.flags == (int(F.QUESTIONABLE) if contact is SensorContact.NOT_DETECTED else 0)
    assert r.time_ms is None
    check(decoded(HeartRateMeasurement(heart_rate_bpm=300))[0], "heart_rate_bpm", 300)


@pytest.mark.parametrize("unit", list(PressureUnit))
@pytest.mark.parametrize("tz", [UTC_TZ, PARIS, ZoneInfo("America/New_York")])
def test_blood_pressure_round_trip(unit: PressureUnit, tz: ZoneInfo) -> None:
    when = datetime(2024, 7, 1, 21, 5, 9)
    m = BloodPressureMeasurement(
        systolic_mmhg=134,
        diastolic_mmhg=82,
        mean_mmhg=99.3,
        unit=unit,
        timestamp=when,
        pulse_rate_bpm=77,
        user_id=1,
        status=BloodPressureStatus.CUFF_TOO_LOOSE | BloodPressureStatus.BODY_MOVEMENT,
    )
    got = decoded(m, tz)
    tol = 0.4 if unit is PressureUnit.KPA else 0.5  # 0.1 kPa = 0.75 mmHg steps
    check(got[0], "bp_systolic_mmhg", 134, tol)
    check(got[1], "bp_diastolic_mmhg", 82, tol)
    check(got[2], "bp_mean_mmhg", 99.3, tol)
    check(got[3], "heart_rate_bpm", 77)
    assert {r.flags for r in got} == {int(F.QUESTIONABLE | F.MOTION)}
    expected_ms = int(when.replace(tzinfo=tz).timestamp() * 1000)
    assert {r.time_ms for r in got} == {expected_ms}


def test_blood_pressure_round_trip_with_specials_and_no_options() -> None:
    m = BloodPressureMeasurement(
        systolic_mmhg=Special.NAN,
        diastolic_mmhg=math.inf,
        mean_mmhg=Special.NRES,
        unit=PressureUnit.KPA,
        pulse_rate_bpm=-math.inf,
    )
    got = decoded(m)
    check(got[0], "bp_systolic_mmhg", Special.NAN)
    check(got[1], "bp_diastolic_mmhg", Special.POSITIVE_INFINITY)
    check(got[2], "bp_mean_mmhg", Special.NRES)
    check(got[3], "heart_rate_bpm", Special.NEGATIVE_INFINITY)
    assert len(decoded(BloodPressureMeasurement(120, 80, 93))) == 3


@pytest.mark.parametrize("fahrenheit", [False, True])
@pytest.mark.parametrize("kind", [None, *TemperatureType])
def test_temperature_round_trip(fahrenheit: bool, kind: TemperatureType | None) -> None:
    m = TemperatureMeasurement(
        temp_c=38.2, fahrenheit=fahrenheit, timestamp=STAMP_WALL, temperature_type=kind
    )
    (r,) = decoded(m)
    check(r, "temp_c", 38.2, 0.03 if fahrenheit else 1e-9)  # 0.1 F = 0.056 C steps
    assert r.time_ms == STAMP_UTC_MS
    for special in SPECIAL_FLAG:
        got = decoded(TemperatureMeasurement(temp_c=special, fahrenheit=fahrenheit))
        check(got[0], "temp_c", special)


def test_plx_spot_check_round_trip() -> None:
    m = PlxSpotCheckMeasurement(
        spo2_pct=94,
        pulse_rate_bpm=101,
        timestamp=STAMP_WALL,
        measurement_status=PlxMeasurementStatus.FULLY_QUALIFIED_DATA,
        device_status=PlxDeviceStatus.LOW_PERFUSION,
        pulse_amplitude_index_pct=2.7,
    )
    spo2, pr = decoded(m, PARIS)
    check(spo2, "spo2_pct", 94)
    check(pr, "heart_rate_bpm", 101)
    assert spo2.flags == pr.flags == int(F.QUESTIONABLE)
    assert spo2.time_ms == STAMP_UTC_MS - HOUR_MS
    unset = PlxSpotCheckMeasurement(
        spo2_pct=Special.NRES, pulse_rate_bpm=70, timestamp=STAMP_WALL, device_clock_not_set=True
    )
    spo2, pr = decoded(unset)
    check(spo2, "spo2_pct", Special.NRES)
    assert spo2.time_ms is None
    assert pr.time_ms is None


@pytest.mark.parametrize(
    ("measurement", "device", "flags"),
    [
        (None, None, F.NONE),
        (PlxMeasurementStatus.EARLY_ESTIMATED_DATA, None, F.EARLY_ESTIMATE),
        (PlxMeasurementStatus.FULLY_QUALIFIED_DATA, PlxDeviceStatus.NONE, F.NONE),
        (PlxMeasurementStatus.VALIDATED_DATA, PlxDeviceStatus.ERRATIC_SIGNAL, F.MOTION),
        (PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT, None, F.QUESTIONABLE),
        (
            PlxMeasurementStatus.EARLY_ESTIMATED_DATA,
            PlxDeviceStatus.SENSOR_DISPLACED | PlxDeviceStatus.POOR_SIGNAL,
            F.EARLY_ESTIMATE | F.MOTION | F.QUESTIONABLE,
        ),
        (None, PlxDeviceStatus.SIGNAL_ANALYSIS_ONGOING, F.NONE),
    ],
)
def test_plx_continuous_round_trip(
    measurement: PlxMeasurementStatus | None, device: PlxDeviceStatus | None, flags: F
) -> None:
    m = PlxContinuousMeasurement(
        spo2_pct=91,
        pulse_rate_bpm=88,
        fast=(90, 89),
        slow=(Special.NAN, 87),
        measurement_status=measurement,
        device_status=device,
        pulse_amplitude_index_pct=Special.NRES,
    )
    spo2, pr = decoded(m)
    check(spo2, "spo2_pct", 91)
    check(pr, "heart_rate_bpm", 88)
    assert spo2.flags == pr.flags == int(flags)
    assert spo2.time_ms is None


@pytest.mark.parametrize("imperial", [False, True])
def test_weight_round_trip(imperial: bool) -> None:
    m = WeightMeasurement(
        weight_kg=81.37,
        imperial=imperial,
        timestamp=STAMP_WALL,
        user_id=2,
        bmi_kg_m2=26.9,
        height_m=1.74,
    )
    (r,) = decoded(m)
    check(r, "weight_kg", 81.37, 0.0025 if not imperial else 0.0023)
    assert r.time_ms == STAMP_UTC_MS
    (r,) = decoded(WeightMeasurement(weight_kg=math.nan, imperial=imperial))
    check(r, "weight_kg", Special.NAN)
    with pytest.raises(ValueError, match="no code"):
        encode(WeightMeasurement(weight_kg=Special.NRES))


@pytest.mark.parametrize("unit", list(GlucoseUnit))
def test_glucose_round_trip(unit: GlucoseUnit) -> None:
    m = GlucoseMeasurement(
        sequence_number=65535,
        base_time=STAMP_WALL,
        time_offset_min=-90,
        glucose_mmol_l=7.8,
        unit=unit,
        fluid_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.ALTERNATE_SITE_TEST,
        sensor_status=GlucoseSensorStatus.BATTERY_LOW,
    )
    (r,) = decoded(m)
    check(r, "glucose_mmol_l", 7.8, 1e-9 if unit is GlucoseUnit.MOL_PER_L else 0.03)
    assert r.flags == 0  # a low battery says nothing about this result
    assert r.time_ms == STAMP_UTC_MS - 90 * 60_000
    hot = GlucoseMeasurement(
        sequence_number=1,
        base_time=STAMP_WALL,
        glucose_mmol_l=Special.POSITIVE_INFINITY,
        unit=unit,
        sensor_status=GlucoseSensorStatus.RESULT_TOO_HIGH,
    )
    (r,) = decoded(hot)
    check(r, "glucose_mmol_l", Special.POSITIVE_INFINITY)
    assert r.flags == int(F.ABOVE_RANGE | F.QUESTIONABLE)
    assert decoded(GlucoseMeasurement(sequence_number=2, base_time=STAMP_WALL)) == []


def test_battery_round_trip() -> None:
    for pct in (0, 1, 57, 100):
        check(decoded(BatteryLevel(pct))[0], "battery_pct", pct)
    with pytest.raises(ValueError, match="battery"):
        encode(BatteryLevel(101))


def test_date_time_must_be_the_devices_wall_clock() -> None:
    with pytest.raises(ValueError, match="naive"):
        encode(TemperatureMeasurement(temp_c=37.0, timestamp=datetime.now(UTC)))


# --- fuzz: nothing but GattDecodeError, whatever the bytes -----------------------------

VALID_SAMPLES: dict[int, list[Measurement]] = {
    0x2A37: [HeartRateMeasurement(70, SensorContact.DETECTED, 12, (0.8, 0.81), True)],
    0x2A35: [
        BloodPressureMeasurement(
            120, 80, 93, PressureUnit.KPA, STAMP_WALL, 70, 1, BloodPressureStatus.BODY_MOVEMENT
        )
    ],
    0x2A1C: [TemperatureMeasurement(37.1, True, STAMP_WALL, TemperatureType.EAR)],
    0x2A5E: [
        PlxSpotCheckMeasurement(
            97, 70, STAMP_WALL, PlxMeasurementStatus.VALIDATED_DATA, PlxDeviceStatus.NONE, 3.1
        )
    ],
    0x2A5F: [
        PlxContinuousMeasurement(
            97, 70, (96, 71), (97, 70), PlxMeasurementStatus.NONE, PlxDeviceStatus.NONE, 3.0
        )
    ],
    0x2A9D: [WeightMeasurement(70.2, False, STAMP_WALL, 1, 24.0, 1.71)],
    0x2A18: [
        GlucoseMeasurement(
            7, STAMP_WALL, 3, 6.1, GlucoseUnit.KG_PER_L, sensor_status=GlucoseSensorStatus.NONE
        )
    ],
    0x2A19: [BatteryLevel(50)],
}


@pytest.mark.parametrize("char", sorted(DECODERS))
def test_random_bytes_raise_nothing_but_gatt_decode_error(char: int) -> None:
    rng = random.Random(char)
    seeds = [encode(m)[1] for m in VALID_SAMPLES[char]]
    reasons: list[str] = []
    accepted = 0
    for i in range(4000):
        if i % 2:
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        else:  # mutate a valid value: flip bits, truncate or extend it
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data) + 1)]
            elif rng.random() < 0.2:
                data += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4)))
            payload = bytes(data)
        tz = PARIS if i % 3 else UTC_TZ
        try:
            got = decode(char, payload, tz)
        except GattDecodeError as exc:
            reasons.append(str(exc))
            continue
        accepted += 1
        for r in got:
            assert (r.value is None) == bool(
                r.flags & (F.NOT_A_NUMBER | F.NOT_AT_RESOLUTION | F.ABOVE_RANGE | F.BELOW_RANGE)
            )
            assert r.value is None or math.isfinite(r.value)
            assert r.time_ms is None or 0 <= r.time_ms < 32_503_680_000_000
    assert reasons
    assert all(reasons)  # every refusal says why
    assert accepted > 0
