"""Characteristic value encoders, byte for byte as the Bluetooth SIG GATT Specification
Supplement lays them out: little-endian, a flags byte first, then the mandatory fields,
then each optional field its flag announces, in the order the supplement lists them.

Each measurement is a frozen dataclass holding values in the catalogue's units (mmHg,
Celsius, kg, mmol/L); the unit the device *transmits* is a separate choice (kPa,
Fahrenheit, lb, kg/L) converted here, as a device set to those units would. Fields that
the characteristic carries as SFLOAT/FLOAT accept a ``Special`` (or a float NaN/inf) to
emit NaN, NRes or +/-INF. Date Time fields carry a naive ``datetime``: the device's own
wall clock, with no zone, exactly as on air.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, IntEnum, IntFlag
from typing import Any, ClassVar

from firmware_sim.ieee11073 import Numeric, Special, as_special, encode_float, encode_sfloat

HEART_RATE_MEASUREMENT = 0x2A37
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
TEMPERATURE_MEASUREMENT = 0x2A1C
PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_CONTINUOUS_MEASUREMENT = 0x2A5F
WEIGHT_MEASUREMENT = 0x2A9D
GLUCOSE_MEASUREMENT = 0x2A18
BATTERY_LEVEL = 0x2A19

MMHG_PER_KPA = 1000 / 133.322387415
KG_PER_LB = 0.45359237
METRE_PER_INCH = 0.0254
MG_DL_PER_MMOL_L = 18.0156  # glucose molar mass / 10


# --- enumerations and status bits ------------------------------------------------------


class SensorContact(Enum):
    """Heart Rate Measurement flags bits 1-2."""

    NOT_SUPPORTED = 0b00
    NOT_DETECTED = 0b10  # supported, no skin contact
    DETECTED = 0b11  # supported, in contact


class PressureUnit(Enum):
    MMHG = 0
    KPA = 1


class BloodPressureStatus(IntFlag):
    """Blood Pressure Measurement Status (uint16). Bits 3-4 form the two-bit pulse rate
    range field: 1 = above the upper limit, 2 = below the lower limit (3 is reserved)."""

    NONE = 0
    BODY_MOVEMENT = 1 << 0
    CUFF_TOO_LOOSE = 1 << 1
    IRREGULAR_PULSE = 1 << 2
    PULSE_RATE_ABOVE_RANGE = 1 << 3
    PULSE_RATE_BELOW_RANGE = 1 << 4
    IMPROPER_POSITION = 1 << 5


class TemperatureType(IntEnum):
    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTRO_INTESTINAL = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


class PlxMeasurementStatus(IntFlag):
    """PLX Measurement Status (uint16); bits 0-4 are reserved."""

    NONE = 0
    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT = 1 << 14
    INVALID_MEASUREMENT = 1 << 15


class PlxDeviceStatus(IntFlag):
    """PLX Device and Sensor Status (uint24); bits 16-23 are reserved."""

    NONE = 0
    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY = 1 << 2
    INADEQUATE_SIGNAL = 1 << 3
    POOR_SIGNAL = 1 << 4
    LOW_PERFUSION = 1 << 5
    ERRATIC_SIGNAL = 1 << 6
    NONPULSATILE_SIGNAL = 1 << 7
    QUESTIONABLE_PULSE = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


class GlucoseUnit(Enum):
    KG_PER_L = 0
    MOL_PER_L = 1


class GlucoseType(IntEnum):
    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(IntEnum):
    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class GlucoseSensorStatus(IntFlag):
    """Sensor Status Annunciation (uint16); bits 12-15 are reserved."""

    NONE = 0
    BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_TOO_HIGH = 1 << 5
    RESULT_TOO_LOW = 1 << 6
    TEMPERATURE_TOO_HIGH = 1 << 7
    TEMPERATURE_TOO_LOW = 1 << 8
    READ_INTERRUPTED = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


# --- measurements ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """0x2A37. The value goes as uint8 unless it exceeds 255 or ``uint16`` forces it."""

    CHAR_UUID: ClassVar[int] = HEART_RATE_MEASUREMENT
    heart_rate_bpm: int
    sensor_contact: SensorContact = SensorContact.NOT_SUPPORTED
    energy_expended_kj: int | None = None
    rr_intervals_s: tuple[float, ...] = ()
    uint16: bool = False


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """0x2A35. Pressures in mmHg; ``unit=KPA`` makes the cuff transmit kPa."""

    CHAR_UUID: ClassVar[int] = BLOOD_PRESSURE_MEASUREMENT
    systolic_mmhg: Numeric
    diastolic_mmhg: Numeric
    mean_mmhg: Numeric
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: datetime | None = None
    pulse_rate_bpm: Numeric | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None
    decimals: int | None = None  # None: 0 for mmHg, 1 for kPa


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """0x2A1C. Temperature in Celsius; ``fahrenheit=True`` transmits Fahrenheit."""

    CHAR_UUID: ClassVar[int] = TEMPERATURE_MEASUREMENT
    temp_c: Numeric
    fahrenheit: bool = False
    timestamp: datetime | None = None
    temperature_type: TemperatureType | None = None
    decimals: int = 1


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    """0x2A5E: one settled SpO2 and pulse rate, usually with the device's timestamp."""

    CHAR_UUID: ClassVar[int] = PLX_SPOT_CHECK_MEASUREMENT
    spo2_pct: Numeric
    pulse_rate_bpm: Numeric
    timestamp: datetime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_status: PlxDeviceStatus | None = None
    pulse_amplitude_index_pct: Numeric | None = None
    device_clock_not_set: bool = False
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    """0x2A5F: the running SpO2/PR (normal averaging), optionally fast and slow ones."""

    CHAR_UUID: ClassVar[int] = PLX_CONTINUOUS_MEASUREMENT
    spo2_pct: Numeric
    pulse_rate_bpm: Numeric
    fast: tuple[Numeric, Numeric] | None = None  # (SpO2 %, PR bpm)
    slow: tuple[Numeric, Numeric] | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_status: PlxDeviceStatus | None = None
    pulse_amplitude_index_pct: Numeric | None = None
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """0x2A9D. ``weight_kg`` NaN (or ``Special.NAN``) sends 0xFFFF, 'measurement
    unsuccessful'; ``imperial=True`` transmits lb and inches."""

    CHAR_UUID: ClassVar[int] = WEIGHT_MEASUREMENT
    weight_kg: Numeric
    imperial: bool = False
    timestamp: datetime | None = None
    user_id: int | None = None
    bmi_kg_m2: float | None = None
    height_m: float | None = None


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """0x2A18. Concentration in mmol/L, transmitted in mol/L or kg/L per ``unit``."""

    CHAR_UUID: ClassVar[int] = GLUCOSE_MEASUREMENT
    sequence_number: int
    base_time: datetime
    time_offset_min: int | None = None
    glucose_mmol_l: Numeric | None = None
    unit: GlucoseUnit = GlucoseUnit.MOL_PER_L
    fluid_type: GlucoseType = GlucoseType.CAPILLARY_WHOLE_BLOOD
    sample_location: SampleLocation = SampleLocation.FINGER
    sensor_status: GlucoseSensorStatus | None = None
    context_follows: bool = False
    decimals: int | None = None  # None: 4 for mol/L (0.1 mmol/L), 5 for kg/L (1 mg/dL)


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """0x2A19: remaining charge, 0-100 %."""

    CHAR_UUID: ClassVar[int] = BATTERY_LEVEL
    battery_pct: int


Measurement = (
    HeartRateMeasurement
    | BloodPressureMeasurement
    | TemperatureMeasurement
    | PlxSpotCheckMeasurement
    | PlxContinuousMeasurement
    | WeightMeasurement
    | GlucoseMeasurement
    | BatteryLevel
)


# --- field helpers ---------------------------------------------------------------------


def _uint(value: int, size: int, field: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"{field} {value} does not fit in uint{8 * size}")
    return value.to_bytes(size, "little")


def date_time(wall_clock: datetime) -> bytes:
    """Date Time (0x2A08), 7 bytes: year uint16, month, day, hours, minutes, seconds."""
    if wall_clock.tzinfo is not None:
        raise ValueError("Date Time carries the device's wall clock: pass a naive datetime")
    if not 1582 <= wall_clock.year <= 9999:
        raise ValueError(f"Date Time year {wall_clock.year} is outside 1582-9999")
    t = wall_clock
    return _uint(t.year, 2, "year") + bytes((t.month, t.day, t.hour, t.minute, t.second))


def _scaled(value: Numeric, factor: float) -> Numeric:
    # NaN and the infinities stay what they are under a positive factor
    return value if isinstance(value, Special) else value * factor


def _sfloat(value: Numeric, decimals: int) -> bytes:
    return encode_sfloat(value, decimals)


# --- encoders --------------------------------------------------------------------------


def encode_heart_rate(m: HeartRateMeasurement) -> bytes:
    flags = m.sensor_contact.value << 1
    wide = m.uint16 or m.heart_rate_bpm > 0xFF
    body = _uint(m.heart_rate_bpm, 2 if wide else 1, "heart rate")
    if wide:
        flags |= 0x01
    if m.energy_expended_kj is not None:
        flags |= 0x08
        body += _uint(m.energy_expended_kj, 2, "energy expended")
    if m.rr_intervals_s:
        flags |= 0x10
        for rr in m.rr_intervals_s:
            body += _uint(round(rr * 1024), 2, "RR-interval")
    return bytes((flags,)) + body


def encode_blood_pressure(m: BloodPressureMeasurement) -> bytes:
    kpa = m.unit is PressureUnit.KPA
    decimals = m.decimals if m.decimals is not None else (1 if kpa else 0)
    factor = 1 / MMHG_PER_KPA if kpa else 1.0
    flags = 0x01 if kpa else 0x00
    body = b"".join(
        _sfloat(_scaled(v, factor), decimals)
        for v in (m.systolic_mmhg, m.diastolic_mmhg, m.mean_mmhg)
    )
    if m.timestamp is not None:
        flags |= 0x02
        body += date_time(m.timestamp)
    if m.pulse_rate_bpm is not None:
        flags |= 0x04
        body += _sfloat(m.pulse_rate_bpm, 0)
    if m.user_id is not None:
        flags |= 0x08
        body += _uint(m.user_id, 1, "user id")
    if m.status is not None:
        flags |= 0x10
        body += _uint(int(m.status), 2, "measurement status")
    return bytes((flags,)) + body


def encode_temperature(m: TemperatureMeasurement) -> bytes:
    value = m.temp_c
    if m.fahrenheit and not isinstance(value, Special):
        value = value * 9 / 5 + 32
    flags = 0x01 if m.fahrenheit else 0x00
    body = encode_float(value, m.decimals)
    if m.timestamp is not None:
        flags |= 0x02
        body += date_time(m.timestamp)
    if m.temperature_type is not None:
        flags |= 0x04
        body += bytes((int(m.temperature_type),))
    return bytes((flags,)) + body


def encode_plx_spot_check(m: PlxSpotCheckMeasurement) -> bytes:
    flags = 0x10 if m.device_clock_not_set else 0x00
    body = _sfloat(m.spo2_pct, m.decimals) + _sfloat(m.pulse_rate_bpm, m.decimals)
    if m.timestamp is not None:
        flags |= 0x01
        body += date_time(m.timestamp)
    if m.measurement_status is not None:
        flags |= 0x02
        body += _uint(int(m.measurement_status), 2, "measurement status")
    if m.device_status is not None:
        flags |= 0x04
        body += _uint(int(m.device_status), 3, "device and sensor status")
    if m.pulse_amplitude_index_pct is not None:
        flags |= 0x08
        body += _sfloat(m.pulse_amplitude_index_pct, 1)
    return bytes((flags,)) + body


def encode_plx_continuous(m: PlxContinuousMeasurement) -> bytes:
    flags = 0x00
    body = _sfloat(m.spo2_pct, m.decimals) + _sfloat(m.pulse_rate_bpm, m.decimals)
    if m.fast is not None:
        flags |= 0x01
        body += _sfloat(m.fast[0], m.decimals) + _sfloat(m.fast[1], m.decimals)
    if m.slow is not None:
        flags |= 0x02
        body += _sfloat(m.slow[0], m.decimals) + _sfloat(m.slow[1], m.decimals)
    if m.measurement_status is not None:
        flags |= 0x04
        body += _uint(int(m.measurement_status), 2, "measurement status")
    if m.device_status is not None:
        flags |= 0x08
        body += _uint(int(m.device_status), 3, "device and sensor status")
    if m.pulse_amplitude_index_pct is not None:
        flags |= 0x10
        body += _sfloat(m.pulse_amplitude_index_pct, 1)
    return bytes((flags,)) + body


WEIGHT_UNSUCCESSFUL = 0xFFFF


def weight_raw(weight_kg: Numeric, imperial: bool) -> int:
    """The uint16 weight field: 0.005 kg or 0.01 lb steps; 0xFFFF if unsuccessful."""
    special = as_special(weight_kg)
    if special is Special.NAN:
        return WEIGHT_UNSUCCESSFUL
    if special is not None:
        raise ValueError(f"Weight Measurement has no code for {special.value}")
    assert not isinstance(weight_kg, Special)
    raw = round(weight_kg / KG_PER_LB * 100) if imperial else round(weight_kg * 200)
    if not 0 <= raw < WEIGHT_UNSUCCESSFUL:
        raise ValueError(f"weight {weight_kg} kg does not fit the Weight field")
    return raw


def encode_weight(m: WeightMeasurement) -> bytes:
    flags = 0x01 if m.imperial else 0x00
    body = _uint(weight_raw(m.weight_kg, m.imperial), 2, "weight")
    if m.timestamp is not None:
        flags |= 0x02
        body += date_time(m.timestamp)
    if m.user_id is not None:
        flags |= 0x04
        body += _uint(m.user_id, 1, "user id")
    if (m.bmi_kg_m2 is None) != (m.height_m is None):
        raise ValueError("BMI and height travel together: give both or neither")
    if m.bmi_kg_m2 is not None and m.height_m is not None:
        flags |= 0x08
        height = m.height_m / METRE_PER_INCH * 10 if m.imperial else m.height_m * 1000
        body += _uint(round(m.bmi_kg_m2 * 10), 2, "BMI") + _uint(round(height), 2, "height")
    return bytes((flags,)) + body


def glucose_wire_value(m: GlucoseMeasurement) -> tuple[Numeric, int]:
    """The concentration in the transmitted unit (mol/L or kg/L) and its decimals."""
    assert m.glucose_mmol_l is not None
    if m.unit is GlucoseUnit.MOL_PER_L:
        decimals = 4 if m.decimals is None else m.decimals
        return _scaled(m.glucose_mmol_l, 1e-3), decimals
    decimals = 5 if m.decimals is None else m.decimals
    return _scaled(m.glucose_mmol_l, MG_DL_PER_MMOL_L * 1e-5), decimals


def encode_glucose(m: GlucoseMeasurement) -> bytes:
    flags = 0x10 if m.context_follows else 0x00
    body = _uint(m.sequence_number, 2, "sequence number") + date_time(m.base_time)
    if m.time_offset_min is not None:
        flags |= 0x01
        if not -0x8000 <= m.time_offset_min <= 0x7FFF:
            raise ValueError(f"time offset {m.time_offset_min} does not fit in sint16")
        body += m.time_offset_min.to_bytes(2, "little", signed=True)
    if m.glucose_mmol_l is not None:
        flags |= 0x02
        if m.unit is GlucoseUnit.MOL_PER_L:
            flags |= 0x04
        value, decimals = glucose_wire_value(m)
        body += _sfloat(value, decimals)
        body += bytes((int(m.sample_location) << 4 | int(m.fluid_type),))
    if m.sensor_status is not None:
        flags |= 0x08
        body += _uint(int(m.sensor_status), 2, "sensor status annunciation")
    return bytes((flags,)) + body


def encode_battery_level(m: BatteryLevel) -> bytes:
    if not 0 <= m.battery_pct <= 100:
        raise ValueError(f"battery level {m.battery_pct} is outside 0-100 %")
    return bytes((m.battery_pct,))


_ENCODERS: dict[type[Any], Callable[[Any], bytes]] = {
    HeartRateMeasurement: encode_heart_rate,
    BloodPressureMeasurement: encode_blood_pressure,
    TemperatureMeasurement: encode_temperature,
    PlxSpotCheckMeasurement: encode_plx_spot_check,
    PlxContinuousMeasurement: encode_plx_continuous,
    WeightMeasurement: encode_weight,
    GlucoseMeasurement: encode_glucose,
    BatteryLevel: encode_battery_level,
}


def encode(m: Measurement) -> tuple[int, bytes]:
    """(characteristic UUID, value bytes) of any measurement above."""
    return m.CHAR_UUID, _ENCODERS[type(m)](m)
