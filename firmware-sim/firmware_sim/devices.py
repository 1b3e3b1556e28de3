"""Simulated home devices: when each one measures, what it encodes, and the link frames
it sends to the gateway, with a record of exactly what every frame carries.

A kit is a patient's set of devices. Each device turns the patient model into GATT
characteristic values (or ``entry`` frames for what no SIG characteristic carries) on a
realistic schedule in the patient's local time: the pulse oximeter streams while worn at
night and is used for a few spot checks by day, the cuff and thermometer a few times a
day, the scale in the morning, the chest patch all the time, the pain diary once a day.
Every device but the diary also reports its draining battery.

Everything is a pure function of (seed, patient key, local day): the frames of any window
are the same whether asked for at once or piece by piece, which is what lets the
streamer run at any speed and tests count readings exactly.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

import numpy as np

from firmware_sim.clock import to_ms
from firmware_sim.gatt_encode import (
    KG_PER_LB,
    MG_DL_PER_MMOL_L,
    MMHG_PER_KPA,
    BatteryLevel,
    BloodPressureMeasurement,
    BloodPressureStatus,
    GlucoseMeasurement,
    GlucoseUnit,
    HeartRateMeasurement,
    Measurement,
    PlxContinuousMeasurement,
    PlxDeviceStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PressureUnit,
    SensorContact,
    TemperatureMeasurement,
    TemperatureType,
    WeightMeasurement,
    encode,
    weight_raw,
)
from firmware_sim.ieee11073 import Numeric, Special, float_value, sfloat_value
from firmware_sim.physiology import DAY_MS, MINUTE_MS, Observation, Patient, derive_rng
from vitals.flags import ReadingFlag
from vitals.link import entry_frame, gatt_frame

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$")
SECOND_MS = 1000


class DeviceKind(StrEnum):
    OXIMETER = "oximeter"
    BP_CUFF = "bp-cuff"
    THERMOMETER = "thermometer"
    SCALE = "scale"
    HR_PATCH = "hr-patch"
    GLUCOSE_METER = "glucose-meter"
    PAIN_DIARY = "pain-diary"


DEFAULT_KINDS: tuple[DeviceKind, ...] = (
    DeviceKind.OXIMETER,
    DeviceKind.BP_CUFF,
    DeviceKind.THERMOMETER,
    DeviceKind.SCALE,
    DeviceKind.HR_PATCH,
    DeviceKind.PAIN_DIARY,
)


def device_id(kind: DeviceKind | str, patient_key: str) -> str:
    """The id a kit's device goes by: ``{kind}-{patient_key}``."""
    ident = f"{DeviceKind(kind).value}-{patient_key}"
    if not DEVICE_ID_RE.match(ident):
        raise ValueError(f"device id {ident!r} is not a valid device id")
    return ident


def kit_devices(
    patient_key: str, kinds: Sequence[DeviceKind | str] = DEFAULT_KINDS
) -> list[tuple[str, str]]:
    """(device id, kind) of every device in a patient's kit, for provisioning."""
    return [(device_id(k, patient_key), DeviceKind(k).value) for k in kinds]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When devices measure (local hours) and which units they transmit in."""

    oximeter_interval_s: int = 30
    oximeter_night_p: float = 1.0  # chance the oximeter is worn a given night (0: spot only)
    oximeter_spot_checks_h: tuple[float, ...] = (9.0, 13.0, 17.0, 21.0)
    bp_h: tuple[float, ...] = (8.0, 14.0, 20.0)
    temperature_h: tuple[float, ...] = (8.25, 14.25, 20.25)
    glucose_h: tuple[float, ...] = (7.5, 18.5)
    pain_h: float = 10.0
    jitter_min: float = 20.0
    skip_p: float = 0.0  # chance a patient forgets (or refuses) one spot measurement
    # chance the patient repeats a measurement when asked to (the cuff's "movement, measure
    # again" message, the phone's request to confirm a reading); 0: never asked or never does
    remeasure_p: float = 0.0
    remeasure_delay_min: tuple[float, float] = (5.0, 30.0)  # when asked by the phone
    patch_hr_interval_s: int = 60
    patch_resp_interval_s: int = 300
    patch_steps_interval_s: int = 900
    battery_interval_s: int = 3600  # continuous devices; spot devices report after use
    bp_unit: PressureUnit = PressureUnit.MMHG
    fahrenheit: bool = False
    imperial_scale: bool = False
    glucose_unit: GlucoseUnit = GlucoseUnit.MOL_PER_L


@dataclass(frozen=True, slots=True)
class EmittedValue:
    """One value a frame carries, as the gateway should decode it.

    ``value`` is in the catalogue's unit after the characteristic's rounding (None for
    a special); ``flags`` are the flags the decoder should derive (the gateway adds
    GATEWAY_TIME itself when ``timestamped`` is False); ``truth`` is what the body (or
    the battery) really was; ``measured_ms`` the instant measured, to the second when
    the characteristic carries a Date Time.
    """

    metric: str
    value: float | None
    special: Special | None
    flags: int
    truth: float
    measured_ms: int
    timestamped: bool


@dataclass(frozen=True, slots=True)
class EmittedFrame:
    """One link frame and what it carries."""

    rx_ms: int
    device_id: str
    kind: DeviceKind
    char_uuid: int | None  # None: an entry frame
    payload: bytes
    line: bytes
    values: tuple[EmittedValue, ...]
    rr_intervals_s: tuple[float, ...] = ()  # a heart rate measurement's beat intervals
    measurement: Measurement | None = None  # what was encoded (a BLE device re-stamps it)


@dataclass(frozen=True, slots=True)
class Battery:
    """A battery drained linearly over ``cycle_days`` and then recharged (or replaced)."""

    cycle_days: float
    phase: float  # 0-1, where in its cycle it was at the epoch
    floor_pct: float = 4.0

    def level_pct(self, t_ms: int) -> int:
        cycle_ms = self.cycle_days * DAY_MS
        used = (t_ms / cycle_ms + self.phase) % 1.0
        return round(100 - (100 - self.floor_pct) * used)

    def recharged_at(self, t_ms: int) -> Battery:
        """The same battery charged full (or given new cells) at ``t_ms``: its cycle
        starts again from 100 % then (the patient did as the phone asked)."""
        return replace(self, phase=(-t_ms / (self.cycle_days * DAY_MS)) % 1.0)


@dataclass(frozen=True, slots=True)
class FailingBattery:
    """A battery that starts failing at ``fails_ms``: from its level then it drains to
    empty in ``hours_to_empty``, and the device falls silent once it is empty."""

    normal: Battery
    fails_ms: int
    hours_to_empty: float

    @property
    def empty_ms(self) -> int:
        return self.fails_ms + int(self.hours_to_empty * 3_600_000)

    def level_pct(self, t_ms: int) -> int:
        if t_ms < self.fails_ms:
            return self.normal.level_pct(t_ms)
        start = self.normal.level_pct(self.fails_ms)
        left = 1 - (t_ms - self.fails_ms) / (self.empty_ms - self.fails_ms)
        return max(0, round(start * left))

    def recharged_at(self, t_ms: int) -> FailingBattery:
        """Charged before it starts failing, it fails from a full level; once failing it
        holds no charge (the device still falls silent when it is empty)."""
        if t_ms >= self.fails_ms:
            return self
        return replace(self, normal=self.normal.recharged_at(t_ms))


@dataclass(frozen=True, slots=True)
class Disruption:
    """What goes wrong with a kit rather than with the body: the patient stops measuring
    (every device silent from ``silent_from_ms``), or one device's battery fails. A home
    offline is the gateway's business: ``offline`` is recorded here for whoever replays
    the kit (the readings are measured as usual and delivered when the home is back)."""

    silent_from_ms: int | None = None
    failing_battery: DeviceKind | None = None
    battery_fails_ms: int = 0
    battery_hours_to_empty: float = 12.0
    offline: tuple[int, int] | None = None


_BATTERY_DAYS = {
    DeviceKind.OXIMETER: 5.0,
    DeviceKind.BP_CUFF: 90.0,
    DeviceKind.THERMOMETER: 150.0,
    DeviceKind.SCALE: 200.0,
    DeviceKind.HR_PATCH: 7.0,
    DeviceKind.GLUCOSE_METER: 120.0,
}

_SPECIAL_FLAG = {
    Special.NAN: ReadingFlag.NOT_A_NUMBER,
    Special.NRES: ReadingFlag.NOT_AT_RESOLUTION,
    Special.POSITIVE_INFINITY: ReadingFlag.ABOVE_RANGE,
    Special.NEGATIVE_INFINITY: ReadingFlag.BELOW_RANGE,
}


def _value(
    metric: str,
    wire: Numeric,
    truth: float,
    measured_ms: int,
    timestamped: bool,
    flags: ReadingFlag = ReadingFlag.NONE,
    to_catalogue: Callable[[float], float] | None = None,
) -> EmittedValue:
    """What the gateway should read from a field whose on-air value is ``wire``."""
    if isinstance(wire, Special):
        return EmittedValue(
            metric, None, wire, int(flags | _SPECIAL_FLAG[wire]), truth, measured_ms, timestamped
        )
    value = to_catalogue(wire) if to_catalogue is not None else wire
    return EmittedValue(metric, value, None, int(flags), truth, measured_ms, timestamped)


@dataclass(frozen=True, slots=True)
class _Context:
    patient: Patient
    seed: int
    key: str
    tz: tzinfo
    schedule: Schedule
    start_day: date


class _Device(ABC):
    """One device of a kit; subclasses say what it measures on a local day. Its random
    streams are keyed by its own id, so adding a device to a kit changes no other."""

    kind: DeviceKind

    def __init__(self, ctx: _Context, index: int) -> None:
        self.ctx = ctx
        self.index = index
        self.id = device_id(self.kind, ctx.key)
        phase = float(derive_rng(ctx.seed, self.id, 3).uniform(0, 1))
        self.battery: Battery | FailingBattery = Battery(_BATTERY_DAYS.get(self.kind, 30.0), phase)
        self._frames: list[EmittedFrame] = []

    # --- helpers for subclasses ------------------------------------------------------

    @property
    def patient(self) -> Patient:
        return self.ctx.patient

    @property
    def schedule(self) -> Schedule:
        return self.ctx.schedule

    def rng(self, day: date) -> np.random.Generator:
        return derive_rng(self.ctx.seed, self.id, 2, day.toordinal())

    def at_local(self, day: date, hour: float) -> int:
        """Epoch ms of a local wall-clock hour on ``day``, to the second."""
        midnight = datetime.combine(day, time(0), self.ctx.tz)
        return to_ms(midnight + timedelta(seconds=round(hour * 3600)))

    def day_bounds(self, day: date) -> tuple[int, int]:
        start = to_ms(datetime.combine(day, time(0), self.ctx.tz))
        end = to_ms(datetime.combine(day + timedelta(days=1), time(0), self.ctx.tz))
        return start, end

    def grid(self, day: date, interval_s: int) -> range:
        """Instants on a fixed epoch-aligned grid within the local day."""
        start, end = self.day_bounds(day)
        step = interval_s * SECOND_MS
        return range(-(-start // step) * step, end, step)

    def skips(self, rng: np.random.Generator) -> bool:
        """Whether the patient leaves out this spot measurement (no draw when they never
        do, so a schedule without skips keeps its random streams unchanged)."""
        return self.schedule.skip_p > 0 and bool(rng.random() < self.schedule.skip_p)

    def jittered(self, day: date, hour: float, rng: np.random.Generator) -> int:
        jitter_s = float(rng.normal(0, self.schedule.jitter_min * 60))
        t = self.at_local(day, hour) + int(jitter_s) * SECOND_MS
        start, end = self.day_bounds(day)
        return min(max(t, start), end - SECOND_MS)

    def wall_clock(self, t_ms: int) -> datetime:
        """The device's own clock: local time, no zone, whole seconds."""
        local = datetime.fromtimestamp(t_ms // SECOND_MS, self.ctx.tz)
        return local.replace(tzinfo=None)

    def gatt(self, rx_ms: int, m: Measurement, values: Sequence[EmittedValue]) -> None:
        char, payload = encode(m)
        line = gatt_frame(self.id, char, payload, rx_ms)
        self._frames.append(
            EmittedFrame(
                rx_ms,
                self.id,
                self.kind,
                char,
                payload,
                line,
                tuple(values),
                m.rr_intervals_s if isinstance(m, HeartRateMeasurement) else (),
                m,
            )
        )

    def entry(self, rx_ms: int, obs: Observation, value: float) -> None:
        line = entry_frame(self.id, obs.metric, value, rx_ms)
        emitted = EmittedValue(obs.metric, value, None, 0, obs.truth, rx_ms, False)
        self._frames.append(EmittedFrame(rx_ms, self.id, self.kind, None, b"", line, (emitted,)))

    def report_battery(self, rx_ms: int) -> None:
        level = self.battery.level_pct(rx_ms)
        value = EmittedValue("battery_pct", float(level), None, 0, float(level), rx_ms, False)
        self.gatt(rx_ms, BatteryLevel(level), [value])

    # --- the day ---------------------------------------------------------------------

    def frames_of_day(self, day: date) -> list[EmittedFrame]:
        """Frames of the measurements taken on the local ``day`` (a frame may arrive
        a few seconds after midnight)."""
        self._frames = []
        self.simulate_day(day, self.rng(day))
        frames, self._frames = self._frames, []
        return frames

    @abstractmethod
    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        """Measure, encode and send (into ``self._frames``) for one local day."""


def _plain(obs: Observation) -> float:
    """The number of an observation whose carrier has no special values."""
    if isinstance(obs.value, Special):
        raise ValueError(f"{obs.metric} cannot be sent as {obs.value.value}")
    return obs.value


def _mmhg_wire(value_mmhg: Numeric, unit: PressureUnit) -> tuple[Numeric, Callable[[float], float]]:
    """The SFLOAT a cuff sends for a pressure and how the gateway gets mmHg back."""
    if unit is PressureUnit.KPA:
        kpa = value_mmhg if isinstance(value_mmhg, Special) else value_mmhg / MMHG_PER_KPA
        return sfloat_value(kpa, 1), lambda v: v * MMHG_PER_KPA
    return sfloat_value(value_mmhg, 0), lambda v: v


class Oximeter(_Device):
    """Finger pulse oximeter: continuous SpO2/PR while worn at night, spot checks by day."""

    kind = DeviceKind.OXIMETER

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        p, s = self.patient, self.schedule
        interval_ms = s.oximeter_interval_s * SECOND_MS
        per_battery = max(1, s.battery_interval_s // s.oximeter_interval_s)
        worn: dict[date, bool] = {}
        for t in self.grid(day, s.oximeter_interval_s):
            if not p.is_asleep(t) or not self._worn_tonight(t, worn):
                continue
            early = not p.is_asleep(t - interval_ms)
            reading = p.measure_oximeter(t, rng)
            status = (
                PlxMeasurementStatus.EARLY_ESTIMATED_DATA
                if early
                else PlxMeasurementStatus.FULLY_QUALIFIED_DATA
            )
            flags = ReadingFlag.EARLY_ESTIMATE if early else ReadingFlag.NONE
            if reading.questionable:
                status |= PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT
                flags |= ReadingFlag.QUESTIONABLE
            device = PlxDeviceStatus.NONE
            if reading.motion:
                device = PlxDeviceStatus.ERRATIC_SIGNAL
                flags |= ReadingFlag.MOTION
            m = PlxContinuousMeasurement(
                spo2_pct=reading.spo2.value,
                pulse_rate_bpm=reading.pulse.value,
                measurement_status=status,
                device_status=device,
            )
            rx = t + 200
            self.gatt(
                rx,
                m,
                [
                    _value(
                        "spo2_pct",
                        sfloat_value(reading.spo2.value, 0),
                        reading.spo2.truth,
                        rx,
                        False,
                        flags,
                    ),
                    _value(
                        "heart_rate_bpm",
                        sfloat_value(reading.pulse.value, 0),
                        reading.pulse.truth,
                        rx,
                        False,
                        flags,
                    ),
                ],
            )
            if early or (t // interval_ms) % per_battery == 0:
                self.report_battery(rx + 300)
        for hour in s.oximeter_spot_checks_h:
            t = self.jittered(day, hour, rng)
            if p.is_asleep(t) or self.skips(rng):
                continue
            self._spot_check(t, rng)

    def _worn_tonight(self, t: int, worn: dict[date, bool]) -> bool:
        """Whether the patient put the oximeter on for the night ``t`` is in (one draw
        per night, from the night's own stream: both local days agree)."""
        p_night = self.schedule.oximeter_night_p
        if p_night >= 1.0:
            return True
        if p_night <= 0.0:
            return False
        evening = self.patient.local_date(t - 12 * 3_600_000)
        found = worn.get(evening)
        if found is None:
            rng = derive_rng(self.ctx.seed, self.id, 5, evening.toordinal())
            found = worn[evening] = bool(rng.random() < p_night)
        return found

    def _spot_check(self, t: int, rng: np.random.Generator) -> None:
        reading = self.patient.measure_oximeter(t, rng)
        flags = ReadingFlag.MOTION if reading.motion else ReadingFlag.NONE
        status = PlxMeasurementStatus.VALIDATED_DATA
        if reading.questionable:
            status |= PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT
            flags |= ReadingFlag.QUESTIONABLE
        m = PlxSpotCheckMeasurement(
            spo2_pct=reading.spo2.value,
            pulse_rate_bpm=reading.pulse.value,
            timestamp=self.wall_clock(t),
            measurement_status=status,
            device_status=PlxDeviceStatus.ERRATIC_SIGNAL if reading.motion else None,
            pulse_amplitude_index_pct=round(float(rng.uniform(1.0, 8.0)), 1),
        )
        rx = t + int(rng.integers(500, 3000))
        self.gatt(
            rx,
            m,
            [
                _value(
                    "spo2_pct",
                    sfloat_value(reading.spo2.value, 0),
                    reading.spo2.truth,
                    t,
                    True,
                    flags,
                ),
                _value(
                    "heart_rate_bpm",
                    sfloat_value(reading.pulse.value, 0),
                    reading.pulse.truth,
                    t,
                    True,
                    flags,
                ),
            ],
        )
        self.report_battery(rx + 400)


class BloodPressureCuff(_Device):
    """Upper-arm cuff: a few readings a day with its own timestamp and the pulse rate."""

    kind = DeviceKind.BP_CUFF

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        for hour in self.schedule.bp_h:
            t = self.jittered(day, hour, rng)
            if self.skips(rng):
                continue
            if self._measure(t, rng) and self.schedule.remeasure_p > 0:
                # the cuff shows its movement (or cuff) error and its manual says to rest
                # 2-3 minutes and measure again; a separate stream keeps the day's draws
                again = derive_rng(self.ctx.seed, self.id, 7, t)
                if again.random() < self.schedule.remeasure_p:
                    self._measure(t + int(again.uniform(2, 5) * MINUTE_MS), again)

    def _measure(self, t: int, rng: np.random.Generator) -> bool:
        """One measurement at ``t``; whether the cuff flagged it (movement, loose cuff)."""
        unit = self.schedule.bp_unit
        r = self.patient.measure_cuff(t, rng)
        status = BloodPressureStatus.NONE
        flags = pulse_flags = ReadingFlag.NONE
        if r.body_movement:
            status |= BloodPressureStatus.BODY_MOVEMENT
            flags |= ReadingFlag.MOTION
        if r.cuff_loose:
            status |= BloodPressureStatus.CUFF_TOO_LOOSE
            flags |= ReadingFlag.QUESTIONABLE
        if r.irregular:  # a finding on the whole measurement, as the gateway reads it
            status |= BloodPressureStatus.IRREGULAR_PULSE
            flags |= ReadingFlag.IRREGULAR_PULSE
        if not isinstance(r.pulse.value, Special) and round(r.pulse.value) > 180:
            status |= BloodPressureStatus.PULSE_RATE_ABOVE_RANGE
            pulse_flags |= ReadingFlag.QUESTIONABLE
        m = BloodPressureMeasurement(
            systolic_mmhg=r.systolic.value,
            diastolic_mmhg=r.diastolic.value,
            mean_mmhg=r.mean.value,
            unit=unit,
            timestamp=self.wall_clock(t),
            pulse_rate_bpm=r.pulse.value,
            user_id=1,
            status=status,
        )
        values = []
        for obs in (r.systolic, r.diastolic, r.mean):
            wire, back = _mmhg_wire(obs.value, unit)
            values.append(_value(obs.metric, wire, obs.truth, t, True, flags, back))
        values.append(
            _value(
                "heart_rate_bpm",
                sfloat_value(r.pulse.value, 0),
                r.pulse.truth,
                t,
                True,
                flags | pulse_flags,
            )
        )
        rx = t + int(rng.integers(1000, 6000))
        self.gatt(rx, m, values)
        self.report_battery(rx + 500)
        return r.body_movement or r.cuff_loose


class Thermometer(_Device):
    """Ear (tympanic) thermometer: a few readings a day with its own timestamp."""

    kind = DeviceKind.THERMOMETER

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        for hour in self.schedule.temperature_h:
            t = self.jittered(day, hour, rng)
            if self.skips(rng):
                continue
            self._measure(t, rng)

    def _measure(self, t: int, rng: np.random.Generator) -> None:
        fahrenheit = self.schedule.fahrenheit
        obs = self.patient.measure_temperature(t, rng)
        m = TemperatureMeasurement(
            temp_c=obs.value,
            fahrenheit=fahrenheit,
            timestamp=self.wall_clock(t),
            temperature_type=TemperatureType.TYMPANUM,
            decimals=1,
        )
        if fahrenheit:
            sent = obs.value if isinstance(obs.value, Special) else obs.value * 9 / 5 + 32
            wire = float_value(sent, 1)
            value = _value(
                "temp_c", wire, obs.truth, t, True, to_catalogue=lambda v: (v - 32) * 5 / 9
            )
        else:
            value = _value("temp_c", float_value(obs.value, 1), obs.truth, t, True)
        rx = t + int(rng.integers(500, 3000))
        self.gatt(rx, m, [value])
        self.report_battery(rx + 500)


class Scale(_Device):
    """Bathroom scale: once each morning, soon after waking, with BMI and height."""

    kind = DeviceKind.SCALE

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        p = self.patient
        imperial = self.schedule.imperial_scale
        wake = p.night(day - timedelta(days=1))[1]
        start, end = self.day_bounds(day)
        t = (wake + int(rng.uniform(10, 45) * MINUTE_MS)) // SECOND_MS * SECOND_MS
        if not start <= t < end or self.skips(rng):
            return
        obs = p.measure_weight(t, rng)
        height = p.base.height_m
        bmi = None if isinstance(obs.value, Special) else round(obs.value / height**2, 1)
        m = WeightMeasurement(
            weight_kg=obs.value,
            imperial=imperial,
            timestamp=self.wall_clock(t),
            user_id=1,
            bmi_kg_m2=bmi,
            height_m=round(height, 2) if bmi is not None else None,
        )
        raw = weight_raw(obs.value, imperial)
        wire: Numeric = Special.NAN if isinstance(obs.value, Special) else float(raw)

        def to_kg(raw: float) -> float:  # as the gateway does it: 0.01 lb or 0.005 kg steps
            return raw / 100 * KG_PER_LB if imperial else raw / 200

        rx = t + int(rng.integers(2000, 8000))
        self.gatt(rx, m, [_value("weight_kg", wire, obs.truth, t, True, to_catalogue=to_kg)])
        self.report_battery(rx + 500)


class HeartRatePatch(_Device):
    """Chest patch worn day and night: heart rate notifications, plus respiratory rate
    and step counts from its vendor service (entry frames: no SIG characteristic)."""

    kind = DeviceKind.HR_PATCH

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        p, s = self.patient, self.schedule
        for t in self.grid(day, s.patch_hr_interval_s):
            r = p.measure_patch(t, rng)
            bpm = max(1, round(_plain(r.heart_rate)))
            # the beats of the last minute, as the patch's ECG timed them (1/1024 s)
            rr = tuple(
                round(v * 1024) / 1024 for v in p.rr_intervals(t, s.patch_hr_interval_s, rng)
            )
            m = HeartRateMeasurement(
                heart_rate_bpm=bpm,
                sensor_contact=SensorContact.DETECTED if r.contact else SensorContact.NOT_DETECTED,
                rr_intervals_s=rr,
            )
            flags = ReadingFlag.NONE if r.contact else ReadingFlag.QUESTIONABLE
            rx = t + 100
            self.gatt(
                rx, m, [_value("heart_rate_bpm", float(bpm), r.heart_rate.truth, rx, False, flags)]
            )
        for t in self.grid(day, s.patch_resp_interval_s):
            obs = p.measure_resp_rate(t, rng)
            self.entry(t + 150, obs, float(round(_plain(obs))))
        interval_ms = s.patch_steps_interval_s * SECOND_MS
        for t in self.grid(day, s.patch_steps_interval_s):
            obs = p.measure_steps(t - interval_ms, t, rng)
            self.entry(t + 250, obs, _plain(obs))
        for t in self.grid(day, s.battery_interval_s):
            self.report_battery(t + 350)


class GlucoseMeter(_Device):
    """Finger-prick meter: before breakfast and dinner, numbered records."""

    kind = DeviceKind.GLUCOSE_METER

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        s = self.schedule
        day_number = (day - self.ctx.start_day).days
        for slot, hour in enumerate(s.glucose_h):
            t = self.jittered(day, hour, rng)
            obs = self.patient.measure_glucose(t, rng)
            sequence = (day_number * len(s.glucose_h) + slot + 1) % 0x10000
            m = GlucoseMeasurement(
                sequence_number=sequence,
                base_time=self.wall_clock(t),
                time_offset_min=0,
                glucose_mmol_l=obs.value,
                unit=s.glucose_unit,
            )
            if s.glucose_unit is GlucoseUnit.MOL_PER_L:
                sent = obs.value if isinstance(obs.value, Special) else obs.value / 1000
                wire = sfloat_value(sent, 4)
                value = _value(
                    obs.metric, wire, obs.truth, t, True, to_catalogue=lambda v: v * 1000
                )
            else:
                kg_l = MG_DL_PER_MMOL_L * 1e-5
                sent = obs.value if isinstance(obs.value, Special) else obs.value * kg_l
                wire = sfloat_value(sent, 5)
                value = _value(
                    obs.metric,
                    wire,
                    obs.truth,
                    t,
                    True,
                    to_catalogue=lambda v: v * 1e5 / MG_DL_PER_MMOL_L,
                )
            rx = t + int(rng.integers(1000, 5000))
            self.gatt(rx, m, [value])
            self.report_battery(rx + 500)


class PainDiary(_Device):
    """The patient's daily 0-10 pain score, typed into the hub (an entry frame)."""

    kind = DeviceKind.PAIN_DIARY

    def simulate_day(self, day: date, rng: np.random.Generator) -> None:
        t = self.jittered(day, self.schedule.pain_h, rng)
        obs = self.patient.measure_pain(t, rng)
        self.entry(t, obs, _plain(obs))


DEVICE_CLASSES: dict[DeviceKind, type[_Device]] = {
    DeviceKind.OXIMETER: Oximeter,
    DeviceKind.BP_CUFF: BloodPressureCuff,
    DeviceKind.THERMOMETER: Thermometer,
    DeviceKind.SCALE: Scale,
    DeviceKind.HR_PATCH: HeartRatePatch,
    DeviceKind.GLUCOSE_METER: GlucoseMeter,
    DeviceKind.PAIN_DIARY: PainDiary,
}


class KitSimulator:
    """One patient's kit: the frames its devices send, in time order, and a record of
    every frame emitted (``emitted``) with the values it carries and the truth behind
    them. ``start`` is when monitoring starts, ``post_op_days`` after surgery; ``tz`` is
    where the patient lives: their circadian rhythm and their devices' clocks."""

    def __init__(
        self,
        patient_key: str,
        seed: int,
        start: datetime,
        kinds: Sequence[DeviceKind | str] = DEFAULT_KINDS,
        *,
        tz: tzinfo = UTC,
        schedule: Schedule | None = None,
        post_op_days: float = 2.0,
        patient: Patient | None = None,
        disruption: Disruption | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.patient_key = patient_key
        self.seed = seed
        self.start = start
        self.tz = tz
        self.schedule = schedule or Schedule()
        self.patient = patient or Patient(
            patient_key, seed, start - timedelta(days=post_op_days), tz
        )
        self.emitted: list[EmittedFrame] = []
        kind_list = [DeviceKind(k) for k in kinds]
        if len(set(kind_list)) != len(kind_list):
            raise ValueError("a kit has at most one device of each kind")
        ctx = _Context(
            self.patient, seed, patient_key, tz, self.schedule, start.astimezone(tz).date()
        )
        self.devices: list[_Device] = [
            DEVICE_CLASSES[kind](ctx, index) for index, kind in enumerate(kind_list)
        ]
        self._order = {d.id: d.index for d in self.devices}
        self.disruption = disruption or Disruption()
        self._silent_ms: dict[str, int] = {}  # device id -> no frame from then on
        for d in self.devices:
            if self.disruption.silent_from_ms is not None:
                self._silent_ms[d.id] = self.disruption.silent_from_ms
            if d.kind == self.disruption.failing_battery and isinstance(d.battery, Battery):
                failing = FailingBattery(
                    d.battery,
                    self.disruption.battery_fails_ms,
                    self.disruption.battery_hours_to_empty,
                )
                d.battery = failing
                self._silent_ms[d.id] = min(
                    self._silent_ms.get(d.id, failing.empty_ms), failing.empty_ms
                )
        self._days: dict[tuple[int, date], list[EmittedFrame]] = {}

    def device_ids(self) -> list[str]:
        return [d.id for d in self.devices]

    def measure_now(self, kind: DeviceKind, t_ms: int) -> list[EmittedFrame]:
        """The frames of one spot measurement with the kit's ``kind`` of device at
        ``t_ms``, outside the daily schedule (the patient asked to measure again); none
        when the kit has no such device, it is silent, or it does not take spot readings."""
        device = next((d for d in self.devices if d.kind is kind), None)
        if device is None or t_ms >= self._silent_ms.get(device.id, t_ms + 1):
            return []
        rng = derive_rng(self.seed, device.id, 8, t_ms)
        saved, device._frames = device._frames, []
        try:
            if isinstance(device, Oximeter):
                device._spot_check(t_ms, rng)
            elif isinstance(device, BloodPressureCuff | Thermometer):
                device._measure(t_ms, rng)
            return device._frames
        finally:
            device._frames = saved

    def _local_date(self, t_ms: int) -> date:
        return datetime.fromtimestamp(t_ms / 1000, self.tz).date()

    def _device_day(self, device: _Device, day: date) -> list[EmittedFrame]:
        frames = self._days.get((device.index, day))
        if frames is None:
            frames = self._days[(device.index, day)] = device.frames_of_day(day)
        return frames

    def frames(self, start_ms: int, end_ms: int) -> list[EmittedFrame]:
        """Every frame received in [start_ms, end_ms), in time order; not recorded."""
        first = self._local_date(start_ms) - timedelta(days=1)  # late arrivals
        last = self._local_date(max(start_ms, end_ms - 1))
        out: list[EmittedFrame] = []
        day = first
        while day <= last:
            for device in self.devices:
                frames = self._device_day(device, day)
                until = min(end_ms, self._silent_ms.get(device.id, end_ms))
                out.extend(f for f in frames if start_ms <= f.rx_ms < until)
            day += timedelta(days=1)
        for stale in [k for k in self._days if k[1] < first]:
            del self._days[stale]  # streams move forward; an old day is recomputed if asked
        out.sort(key=lambda f: (f.rx_ms, self._order[f.device_id]))
        return out

    def frames_between(self, start_ms: int, end_ms: int) -> Iterator[tuple[int, bytes]]:
        """(rx_ms, frame line) of every frame received in [start_ms, end_ms), in time
        order; each one is added to ``emitted`` as it is yielded."""
        for frame in self.frames(start_ms, end_ms):
            self.emitted.append(frame)
            yield frame.rx_ms, frame.line

    def expected_readings(self) -> list[EmittedValue]:
        """Every value emitted so far, flattened."""
        return [v for f in self.emitted for v in f.values]
