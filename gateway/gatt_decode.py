"""Decoders for the Bluetooth SIG health characteristics a home kit sends, exactly as the
GATT Specification Supplement defines them, into readings in the catalogue's units.

The gateway is the only place that reads device bytes, so it is strict: a value that is
too short, too long, sets a reserved flag or status bit, uses a reserved code or carries
an impossible date is refused with a reason (``GattDecodeError``) rather than guessed at;
the link keeps the frame and the reason for a human to look at. Special values (NaN,
NRes, +/-INF) are not errors: they become ``value=None`` with the matching flag. Device
status bits become the QUESTIONABLE / EARLY_ESTIMATE / MOTION flags that alert rules use
to discount a reading.

Times inside characteristics (Date Time) are the device's wall clock with no zone; the
gateway is told the kit's zone and converts to UTC epoch ms. At a daylight-saving fold
the earlier of the two instants is taken, as nothing in the bytes says which was meant;
a wall-clock time skipped by a spring-forward is read with the offset before the change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from gateway.ieee11073 import MedicalNumber, ReservedValueError, decode_float, decode_sfloat
from vitals.flags import ReadingFlag

HEART_RATE_MEASUREMENT = 0x2A37
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
TEMPERATURE_MEASUREMENT = 0x2A1C
PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_CONTINUOUS_MEASUREMENT = 0x2A5F
WEIGHT_MEASUREMENT = 0x2A9D
GLUCOSE_MEASUREMENT = 0x2A18
BATTERY_LEVEL = 0x2A19

CHARACTERISTIC_NAMES: dict[int, str] = {
    HEART_RATE_MEASUREMENT: "Heart Rate Measurement",
    BLOOD_PRESSURE_MEASUREMENT: "Blood Pressure Measurement",
    TEMPERATURE_MEASUREMENT: "Temperature Measurement",
    PLX_SPOT_CHECK_MEASUREMENT: "PLX Spot-Check Measurement",
    PLX_CONTINUOUS_MEASUREMENT: "PLX Continuous Measurement",
    WEIGHT_MEASUREMENT: "Weight Measurement",
    GLUCOSE_MEASUREMENT: "Glucose Measurement",
    BATTERY_LEVEL: "Battery Level",
}

MMHG_PER_KPA = 1000 / 133.322387415  # 1 mmHg = 133.322387415 Pa
KG_PER_LB = 0.45359237
MG_DL_PER_MMOL_L = 18.0156
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIME_MS = 32_503_680_000_000  # year 3000: what the wire schema accepts


class GattDecodeError(ValueError):
    """The bytes are not a valid value of the characteristic; the message says why."""


@dataclass(frozen=True, slots=True)
class DecodedReading:
    """One reading out of a characteristic value.

    ``time_ms`` is the device's own timestamp in UTC epoch ms, None when the
    characteristic carries none (the gateway then stamps its reception time).
    """

    metric: str
    value: float | None
    flags: int
    time_ms: int | None
    # Heart Rate Measurement: the beat-to-beat intervals it carried, in ms, oldest first
    # (the gateway summarises them per minute into the rhythm metrics)
    rr_ms: tuple[float, ...] = ()


class _Reader:
    """Reads fields in order and names the field that was missing."""

    def __init__(self, payload: bytes) -> None:
        self._data = payload
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int, field: str) -> bytes:
        if self.remaining < size:
            raise GattDecodeError(
                f"too short: {field} needs {size} bytes at offset {self._pos},"
                f" value has {len(self._data)} bytes"
            )
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "little")

    def sint16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def sfloat(self, field: str) -> MedicalNumber:
        raw = self.uint(2, field)
        try:
            return decode_sfloat(raw)
        except ReservedValueError as exc:
            raise GattDecodeError(f"{field}: {exc}") from None

    def float32(self, field: str) -> MedicalNumber:
        raw = self.uint(4, field)
        try:
            return decode_float(raw)
        except ReservedValueError as exc:
            raise GattDecodeError(f"{field}: {exc}") from None

    def date_time(self, field: str, tz: tzinfo) -> int:
        """A Date Time (0x2A08) field as UTC epoch ms."""
        raw = self.take(7, field)
        year = int.from_bytes(raw[:2], "little")
        month, day, hours, minutes, seconds = raw[2:]
        stamp = f"{year:04d}-{month:02d}-{day:02d} {hours:02d}:{minutes:02d}:{seconds:02d}"
        if year == 0 or month == 0 or day == 0:
            raise GattDecodeError(f"{field} {stamp}: date not known to the device")
        if not 1582 <= year <= 9999:
            raise GattDecodeError(f"{field} {stamp}: year outside 1582-9999")
        try:
            local = datetime(year, month, day, hours, minutes, seconds, tzinfo=tz)
        except ValueError as exc:
            raise GattDecodeError(f"{field} {stamp}: impossible date or time ({exc})") from None
        return _epoch_ms(local - _EPOCH, field, stamp)

    def flags(self, reserved_mask: int) -> int:
        flags = self.uint(1, "flags")
        if flags & reserved_mask:
            raise GattDecodeError(f"reserved flag bits set: {flags & reserved_mask:#04x}")
        return flags

    def finish(self) -> None:
        if self.remaining:
            raise GattDecodeError(
                f"{self.remaining} unexpected trailing bytes after offset {self._pos}"
            )


def _epoch_ms(since_epoch: timedelta, field: str, stamp: str) -> int:
    ms = since_epoch // timedelta(milliseconds=1)
    if not 0 <= ms < _MAX_TIME_MS:
        raise GattDecodeError(f"{field} {stamp}: outside 1970-2999, not storable")
    return ms


def _reading(
    metric: str,
    number: MedicalNumber,
    flags: ReadingFlag,
    time_ms: int | None,
    convert: Callable[[float], float] | None = None,
) -> DecodedReading:
    value = number.value
    if value is not None and convert is not None:
        value = convert(value)
    return DecodedReading(metric, value, int(flags | number.special), time_ms)


def _check_reserved(value: int, reserved_mask: int, field: str) -> None:
    if value & reserved_mask:
        raise GattDecodeError(f"{field}: reserved bits set: {value & reserved_mask:#x}")


# --- Heart Rate Measurement (0x2A37) ---------------------------------------------------


def decode_heart_rate(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """heart_rate_bpm; a sensor that reports lost skin contact makes it QUESTIONABLE.
    Energy expended is checked for shape and ignored; RR-intervals (1/1024 s) travel with
    the reading in ms, for the rhythm summary (none when contact is lost: not a beat)."""
    r = _Reader(payload)
    flags = r.flags(0xE0)
    bpm = r.uint(2, "heart rate (uint16)") if flags & 0x01 else r.uint(1, "heart rate (uint8)")
    contact = (flags >> 1) & 0b11
    quality = ReadingFlag.QUESTIONABLE if contact == 0b10 else ReadingFlag.NONE
    if flags & 0x08:
        r.uint(2, "energy expended")
    rr: list[float] = []
    if flags & 0x10:
        if r.remaining == 0:
            raise GattDecodeError("too short: RR-interval flag set but no RR-interval follows")
        while r.remaining:
            rr.append(r.uint(2, "RR-interval") * 1000 / 1024)
    r.finish()
    beats = () if quality else tuple(rr)
    return [DecodedReading("heart_rate_bpm", float(bpm), int(quality), None, beats)]


# --- Blood Pressure Measurement (0x2A35) -----------------------------------------------

_BP_BODY_MOVEMENT = 1 << 0
_BP_CUFF_TOO_LOOSE = 1 << 1
_BP_IRREGULAR_PULSE = 1 << 2
_BP_IMPROPER_POSITION = 1 << 5
_BP_PULSE_RANGE_SHIFT = 3
_BP_STATUS_RESERVED = 0xFFC0


def decode_blood_pressure(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """Systolic, diastolic, mean (and heart_rate_bpm if the pulse rate is present), in
    mmHg whatever the cuff sent. Body movement is MOTION; a loose cuff or an improper
    position is QUESTIONABLE for every value; a pulse rate outside the cuff's range only
    for the pulse rate. Irregular pulse is a finding, not a quality problem: it sets
    IRREGULAR_PULSE (evidence for the atrial fibrillation rule), which no rule discounts."""
    r = _Reader(payload)
    flags = r.flags(0xE0)
    kpa = bool(flags & 0x01)
    systolic = r.sfloat("systolic")
    diastolic = r.sfloat("diastolic")
    mean = r.sfloat("mean arterial pressure")
    time_ms = r.date_time("time stamp", tz) if flags & 0x02 else None
    pulse = r.sfloat("pulse rate") if flags & 0x04 else None
    if flags & 0x08:
        r.uint(1, "user id")
    quality = pulse_quality = ReadingFlag.NONE
    if flags & 0x10:
        status = r.uint(2, "measurement status")
        _check_reserved(status, _BP_STATUS_RESERVED, "measurement status")
        pulse_range = (status >> _BP_PULSE_RANGE_SHIFT) & 0b11
        if pulse_range == 0b11:
            raise GattDecodeError("measurement status: reserved pulse rate range value 3")
        if status & _BP_BODY_MOVEMENT:
            quality |= ReadingFlag.MOTION
        if status & (_BP_CUFF_TOO_LOOSE | _BP_IMPROPER_POSITION):
            quality |= ReadingFlag.QUESTIONABLE
        if status & _BP_IRREGULAR_PULSE:
            quality |= ReadingFlag.IRREGULAR_PULSE
        if pulse_range:
            pulse_quality = ReadingFlag.QUESTIONABLE
    r.finish()

    def to_mmhg(v: float) -> float:
        return v * MMHG_PER_KPA if kpa else v

    out = [
        _reading("bp_systolic_mmhg", systolic, quality, time_ms, to_mmhg),
        _reading("bp_diastolic_mmhg", diastolic, quality, time_ms, to_mmhg),
        _reading("bp_mean_mmhg", mean, quality, time_ms, to_mmhg),
    ]
    if pulse is not None:
        out.append(_reading("heart_rate_bpm", pulse, quality | pulse_quality, time_ms))
    return out


# --- Temperature Measurement (0x2A1C) --------------------------------------------------


def decode_temperature(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """temp_c, converted from Fahrenheit if the thermometer sent that."""
    r = _Reader(payload)
    flags = r.flags(0xF8)
    temp = r.float32("temperature")
    time_ms = r.date_time("time stamp", tz) if flags & 0x02 else None
    if flags & 0x04:
        kind = r.uint(1, "temperature type")
        if not 1 <= kind <= 9:
            raise GattDecodeError(f"temperature type: reserved value {kind}")
    r.finish()

    def to_celsius(v: float) -> float:
        return (v - 32) * 5 / 9 if flags & 0x01 else v

    return [_reading("temp_c", temp, ReadingFlag.NONE, time_ms, to_celsius)]


# --- PLX Spot-Check (0x2A5E) and Continuous (0x2A5F) Measurement -----------------------

_PLX_MEASUREMENT_RESERVED = 0x001F
_PLX_EARLY_ESTIMATE = 1 << 6
# demonstration, testing, calibration ongoing, measurement unavailable, questionable, invalid
_PLX_MEASUREMENT_QUESTIONABLE = sum(1 << bit for bit in (10, 11, 12, 13, 14, 15))
_PLX_DEVICE_RESERVED = 0xFF0000
_PLX_DEVICE_MOTION = (1 << 6) | (1 << 13)  # erratic signal, sensor displaced
# malfunctions, poor/inadequate/nonpulsatile signal, low perfusion, questionable pulse,
# interference, sensor unconnected/unknown/malfunctioning/disconnected
_PLX_DEVICE_QUESTIONABLE = sum(1 << bit for bit in (1, 2, 3, 4, 5, 7, 8, 10, 11, 12, 14, 15))


def _plx_quality(r: _Reader, has_measurement: bool, has_device: bool) -> ReadingFlag:
    quality = ReadingFlag.NONE
    if has_measurement:
        status = r.uint(2, "measurement status")
        _check_reserved(status, _PLX_MEASUREMENT_RESERVED, "measurement status")
        if status & _PLX_EARLY_ESTIMATE:
            quality |= ReadingFlag.EARLY_ESTIMATE
        if status & _PLX_MEASUREMENT_QUESTIONABLE:
            quality |= ReadingFlag.QUESTIONABLE
    if has_device:
        status = r.uint(3, "device and sensor status")
        _check_reserved(status, _PLX_DEVICE_RESERVED, "device and sensor status")
        if status & _PLX_DEVICE_MOTION:
            quality |= ReadingFlag.MOTION
        if status & _PLX_DEVICE_QUESTIONABLE:
            quality |= ReadingFlag.QUESTIONABLE
    return quality


def decode_plx_spot_check(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """spo2_pct and heart_rate_bpm. A device that says its clock is not set gets no say
    on the time (the gateway stamps it), and its timestamp bytes are not judged."""
    r = _Reader(payload)
    flags = r.flags(0xE0)
    spo2 = r.sfloat("SpO2")
    pulse = r.sfloat("pulse rate")
    time_ms = None
    if flags & 0x01:
        if flags & 0x10:
            r.take(7, "timestamp")
        else:
            time_ms = r.date_time("timestamp", tz)
    quality = _plx_quality(r, bool(flags & 0x02), bool(flags & 0x04))
    if flags & 0x08:
        r.sfloat("pulse amplitude index")
    r.finish()
    return [
        _reading("spo2_pct", spo2, quality, time_ms),
        _reading("heart_rate_bpm", pulse, quality, time_ms),
    ]


def decode_plx_continuous(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """spo2_pct and heart_rate_bpm from the normal-averaging pair; the fast and slow
    pairs and the pulse amplitude index are checked and otherwise ignored."""
    r = _Reader(payload)
    flags = r.flags(0xE0)
    spo2 = r.sfloat("SpO2 (normal)")
    pulse = r.sfloat("pulse rate (normal)")
    for name, bit in (("fast", 0x01), ("slow", 0x02)):
        if flags & bit:
            r.sfloat(f"SpO2 ({name})")
            r.sfloat(f"pulse rate ({name})")
    quality = _plx_quality(r, bool(flags & 0x04), bool(flags & 0x08))
    if flags & 0x10:
        r.sfloat("pulse amplitude index")
    r.finish()
    return [
        _reading("spo2_pct", spo2, quality, None),
        _reading("heart_rate_bpm", pulse, quality, None),
    ]


# --- Weight Measurement (0x2A9D) -------------------------------------------------------

_WEIGHT_UNSUCCESSFUL = 0xFFFF


def decode_weight(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """weight_kg (from 0.005 kg or 0.01 lb steps); 0xFFFF, 'measurement unsuccessful',
    is NOT_A_NUMBER. BMI and height are checked for shape and otherwise ignored."""
    r = _Reader(payload)
    flags = r.flags(0xF0)
    raw = r.uint(2, "weight")
    time_ms = r.date_time("time stamp", tz) if flags & 0x02 else None
    if flags & 0x04:
        r.uint(1, "user id")
    if flags & 0x08:
        r.uint(2, "BMI")
        r.uint(2, "height")
    r.finish()
    if raw == _WEIGHT_UNSUCCESSFUL:
        number = MedicalNumber(None, ReadingFlag.NOT_A_NUMBER)
    elif flags & 0x01:
        number = MedicalNumber(raw / 100 * KG_PER_LB)
    else:
        number = MedicalNumber(raw / 200)
    return [_reading("weight_kg", number, ReadingFlag.NONE, time_ms)]


# --- Glucose Measurement (0x2A18) ------------------------------------------------------

_GLUCOSE_STATUS_RESERVED = 0xF000
_GLUCOSE_STATUS_QUESTIONABLE = 0x0FFE  # every defined bit except 'battery low'
_GLUCOSE_CONTROL_SOLUTION_TYPE = 10
_GLUCOSE_CONTROL_SOLUTION_LOCATION = 4
_GLUCOSE_LOCATIONS = frozenset({1, 2, 3, 4, 15})


def decode_glucose(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """glucose_mmol_l at base time + time offset, from mol/L or kg/L. A record without a
    concentration yields nothing; a control-solution test checks the meter, not the
    patient, and yields nothing either."""
    r = _Reader(payload)
    flags = r.flags(0xE0)
    r.uint(2, "sequence number")
    time_ms = r.date_time("base time", tz)
    if flags & 0x01:
        time_ms += r.sint16("time offset") * 60_000
        if not 0 <= time_ms < _MAX_TIME_MS:
            raise GattDecodeError("base time + time offset is outside 1970-2999")
    concentration = None
    control_solution = False
    if flags & 0x02:
        concentration = r.sfloat("glucose concentration")
        type_location = r.uint(1, "type-sample location")
        fluid, location = type_location & 0x0F, type_location >> 4
        if not 1 <= fluid <= 10:
            raise GattDecodeError(f"type: reserved value {fluid}")
        if location not in _GLUCOSE_LOCATIONS:
            raise GattDecodeError(f"sample location: reserved value {location}")
        control_solution = (
            fluid == _GLUCOSE_CONTROL_SOLUTION_TYPE
            or location == _GLUCOSE_CONTROL_SOLUTION_LOCATION
        )
    quality = ReadingFlag.NONE
    if flags & 0x08:
        status = r.uint(2, "sensor status annunciation")
        _check_reserved(status, _GLUCOSE_STATUS_RESERVED, "sensor status annunciation")
        if status & _GLUCOSE_STATUS_QUESTIONABLE:
            quality |= ReadingFlag.QUESTIONABLE
    r.finish()
    if concentration is None or control_solution:
        return []

    def to_mmol_l(v: float) -> float:
        return v * 1000 if flags & 0x04 else v * 1e5 / MG_DL_PER_MMOL_L

    return [_reading("glucose_mmol_l", concentration, quality, time_ms, to_mmol_l)]


# --- Battery Level (0x2A19) ------------------------------------------------------------


def decode_battery_level(payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """battery_pct, 0-100; 101-255 are reserved."""
    r = _Reader(payload)
    level = r.uint(1, "battery level")
    r.finish()
    if level > 100:
        raise GattDecodeError(f"battery level: reserved value {level}")
    return [DecodedReading("battery_pct", float(level), 0, None)]


DECODERS: dict[int, Callable[[bytes, tzinfo], list[DecodedReading]]] = {
    HEART_RATE_MEASUREMENT: decode_heart_rate,
    BLOOD_PRESSURE_MEASUREMENT: decode_blood_pressure,
    TEMPERATURE_MEASUREMENT: decode_temperature,
    PLX_SPOT_CHECK_MEASUREMENT: decode_plx_spot_check,
    PLX_CONTINUOUS_MEASUREMENT: decode_plx_continuous,
    WEIGHT_MEASUREMENT: decode_weight,
    GLUCOSE_MEASUREMENT: decode_glucose,
    BATTERY_LEVEL: decode_battery_level,
}


def decode(char_uuid: int, payload: bytes, tz: tzinfo) -> list[DecodedReading]:
    """Readings in a characteristic value; GattDecodeError (and nothing else) if the
    characteristic is unknown or the bytes are not a valid value of it."""
    decoder = DECODERS.get(char_uuid)
    if decoder is None:
        raise GattDecodeError(f"unsupported characteristic 0x{char_uuid:04X}")
    return decoder(payload, tz)
