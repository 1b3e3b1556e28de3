"""A simulated cohort: who the patients are (scenario, protocol, kit, home time zone) and
every reading their kits produce, with when each reaches the database.

Readings come from the same firmware simulator as ``postop sim`` (the values and flags a
gateway decodes from the GATT frames), so artifacts, skipped measurements, rounding and
battery reports are the real ones. Simulating is the slow part (a few tenths of a second
per patient-day), so each patient's readings are cached on disk, keyed by everything
that decides them, including the simulator's own source.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import firmware_sim
import numpy as np
from firmware_sim.devices import DEFAULT_KINDS, DeviceKind, EmittedFrame, KitSimulator
from firmware_sim.physiology import DAY_MS, HOUR_MS, Patient, derive_rng
from firmware_sim.population import Profile, draw_profile
from firmware_sim.reported import evening_answers
from firmware_sim.scenarios import (
    COMPLICATIONS,
    FollowUp,
    GroundTruth,
    Plan,
    plan,
    realistic_plan,
)
from numpy.typing import NDArray

from vitals.catalogue import BY_NAME
from vitals.flags import ReadingFlag
from vitals.rhythm import summarise_rr

# monitoring starts at discharge, two days after surgery, at midnight UTC
START = datetime(2026, 9, 14, tzinfo=UTC)
POST_OP_DAYS = 2.0
PROTOCOLS = ("digestive_surgery", "orthopaedic_surgery", "cardiac_surgery")
# patients come home to several countries: their days and nights follow local time
HOME_ZONES = (
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/London",
    "America/New_York",
    "Africa/Casablanca",
    "Asia/Dubai",
    "Asia/Shanghai",
)
# share of the cohort per scenario; the rest of the patients recover uneventfully
DEFAULT_MIX = {
    "sepsis": 0.08,
    "bleeding": 0.07,
    "pulmonary_embolism": 0.07,
    "fluid_overload": 0.07,
    "stopped_measuring": 0.05,
    "failing_battery": 0.05,
    "home_offline": 0.05,
}
# The realistic cohort (the default): patients drawn from ``firmware_sim.population``
# and complications with published courses. The mix is enriched in complications (a real
# follow-up has fewer) so that each kind, hard cases included, is measured on enough
# patients; rates per patient-day come from the patients whose body does well.
REALISTIC_MIX = {
    "sepsis": 0.05,
    "sepsis_slow": 0.04,
    "bleeding": 0.04,
    "bleeding_beta_blocked": 0.03,
    "pulmonary_embolism": 0.04,
    "atrial_fibrillation": 0.06,
    "heart_failure": 0.04,
    "ileostomy_dehydration": 0.04,
    "stopped_measuring": 0.03,
    "failing_battery": 0.03,
    "home_offline": 0.03,
}
# The reported cohort: the realistic population, every patient answering the daily
# questionnaire (firmware_sim.reported), and complications whose first signal is in
# what the patient reports (a wound infection's redness and pain before its fever, a
# thrombosis's calf pain before its tachycardia).
REPORTED_MIX = {**REALISTIC_MIX, "wound_infection": 0.05, "deep_vein_thrombosis": 0.05}
COHORTS = ("realistic", "legacy", "reported")
PATCH_SHARE = 0.5  # legacy cohort: patients sent home with a chest patch as well
GATEWAY_WILL_S = 90  # the broker publishes a lost gateway's will after 1.5 keepalives
# one reading: (metric id, measured ms, arrival ms, value, flags, device index in the kit)
Row = tuple[int, int, int, float, int, int]


@dataclass(frozen=True)
class Member:
    """One patient of the cohort and the plan of their follow-up."""

    index: int
    key: str
    scenario: str
    protocol: str
    tz: str
    kinds: tuple[str, ...]
    start_ms: int
    end_ms: int
    truths: tuple[GroundTruth, ...]
    offline: tuple[int, int] | None
    profile: Profile | None = None  # realistic cohort: who the patient is
    # what the hospital enters at discharge (realistic cohort): last ward vitals
    discharge_sbp_mmhg: float | None = None
    discharge_hr_bpm: float | None = None
    discharge_weight_kg: float | None = None
    answers: bool = False  # answers the daily questionnaire (the reported cohort)

    @property
    def has_patch(self) -> bool:
        return DeviceKind.HR_PATCH.value in self.kinds


@dataclass(frozen=True)
class Readings:
    """A patient's readings as columns, in arrival order."""

    metric_id: NDArray[np.int16]
    measured_ms: NDArray[np.int64]
    arrival_ms: NDArray[np.int64]
    value: NDArray[np.float64]  # NaN for a special value
    flags: NDArray[np.int32]
    device: NDArray[np.int8]  # index of the device in the member's kit

    def __len__(self) -> int:
        return len(self.metric_id)


def _allocation(n: int, mix: dict[str, float]) -> list[str]:
    """Scenario per patient: each scenario's share rounded, uneventful the rest, spread
    evenly through the cohort so protocols and zones mix."""
    counts = {name: max(1, round(share * n)) for name, share in mix.items() if share > 0}
    total = sum(counts.values())
    if total > n:
        raise ValueError(f"a cohort of {n} cannot hold {total} scripted scenarios")
    names = [name for name, c in counts.items() for _ in range(c)]
    names += ["uneventful"] * (n - total)
    # interleave deterministically: position by stride so neighbours differ
    order = sorted(range(n), key=lambda i: (i * 7919) % n)
    out = [""] * n
    for slot, name in zip(order, names, strict=True):
        out[slot] = name
    return out


def members(
    n_patients: int,
    days: float,
    seed: int,
    mix: dict[str, float] | None = None,
    cohort: str = "realistic",
) -> list[Member]:
    """The cohort's patients: ``realistic`` (the population of ``firmware_sim.population``)
    or ``legacy`` (the tidy adults of ``Baseline.draw``, the first evaluation's)."""
    if cohort == "realistic":
        return _realistic_members(n_patients, days, seed, mix or REALISTIC_MIX)
    if cohort == "reported":
        return _realistic_members(n_patients, days, seed, mix or REPORTED_MIX, answers=True)
    if cohort != "legacy":
        raise ValueError(f"unknown cohort {cohort!r}; known: {', '.join(COHORTS)}")
    start_ms = int(START.timestamp() * 1000)
    end_ms = start_ms + int(days * DAY_MS)
    surgery_ms = start_ms - int(POST_OP_DAYS * DAY_MS)
    follow = FollowUp(surgery_ms, start_ms, end_ms)
    out = []
    for i, scenario in enumerate(_allocation(n_patients, mix or DEFAULT_MIX)):
        key = f"q{i:04d}"
        rng = derive_rng(seed, key, 11)
        kinds = [k.value for k in DEFAULT_KINDS if k is not DeviceKind.HR_PATCH]
        if rng.random() < PATCH_SHARE:
            kinds.append(DeviceKind.HR_PATCH.value)
        p = plan(scenario, seed, key, follow)
        out.append(
            Member(
                index=i,
                key=key,
                scenario=scenario,
                protocol=PROTOCOLS[i % len(PROTOCOLS)],
                tz=HOME_ZONES[int(rng.integers(len(HOME_ZONES)))],
                kinds=tuple(kinds),
                start_ms=start_ms,
                end_ms=end_ms,
                truths=p.truths,
                offline=p.disruption.offline,
            )
        )
    return out


# Home zones of the realistic cohort: a European programme (night is local time).
EUROPE_ZONES = ("Europe/Paris", "Europe/Madrid", "Europe/London", "Europe/Berlin", "Europe/Rome")


def _realistic_members(
    n_patients: int, days: float, seed: int, mix: dict[str, float], answers: bool = False
) -> list[Member]:
    start_ms = int(START.timestamp() * 1000)
    end_ms = start_ms + int(days * DAY_MS)
    follow = FollowUp(start_ms - int(POST_OP_DAYS * DAY_MS), start_ms, end_ms)
    out = []
    for i, scenario in enumerate(_allocation(n_patients, mix)):
        key = f"q{i:04d}"
        rng = derive_rng(seed, key, 11)
        profile = draw_profile(derive_rng(seed, key, 12), COMPLICATIONS[scenario].needs)
        kinds = [k.value for k in DEFAULT_KINDS if k is not DeviceKind.HR_PATCH]
        if answers:  # the phone's questionnaire replaces the pain diary
            kinds.remove(DeviceKind.PAIN_DIARY.value)
        if profile.has_patch:
            kinds.append(DeviceKind.HR_PATCH.value)
        p = realistic_plan(scenario, seed, key, follow, profile)
        tz = EUROPE_ZONES[int(rng.integers(len(EUROPE_ZONES)))]
        patient = _patient(key, seed, start_ms, tz, p, profile)
        # the ward's last observations before discharge (the hospital enters them):
        # the afternoon before, read by a ward monitor (about +/-5 mmHg, +/-3/min)
        ward_ms = start_ms - 10 * HOUR_MS
        sbp = patient.truth("bp_systolic_mmhg", ward_ms) + float(rng.normal(0, 5))
        hr = patient.truth("heart_rate_bpm", ward_ms) + float(rng.normal(0, 3))
        weight = patient.truth("weight_kg", ward_ms) + float(rng.normal(0, 0.3))
        out.append(
            Member(
                index=i,
                key=key,
                scenario=p.scenario,
                protocol=profile.protocol,
                tz=tz,
                kinds=tuple(kinds),
                start_ms=start_ms,
                end_ms=end_ms,
                truths=p.truths,
                offline=p.disruption.offline,
                profile=profile,
                discharge_sbp_mmhg=round(sbp),
                discharge_hr_bpm=round(hr),
                discharge_weight_kg=round(weight, 1),
                answers=answers,
            )
        )
    return out


def _patient(
    key: str, seed: int, start_ms: int, tz: str, p: Plan, profile: Profile | None
) -> Patient:
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    return Patient(
        key,
        seed,
        start - timedelta(days=POST_OP_DAYS),
        ZoneInfo(tz),
        deviations=p.deviations,
        profile=profile,
    )


def member_plan(member: Member, seed: int) -> Plan:
    follow = FollowUp(member.start_ms - int(POST_OP_DAYS * DAY_MS), member.start_ms, member.end_ms)
    if member.profile is None:
        return plan(member.scenario, seed, member.key, follow)
    return realistic_plan(member.scenario, seed, member.key, follow, member.profile)


def member_kit(member: Member, seed: int) -> KitSimulator:
    """The member's kit on their body, as planned (schedule, complication, disruption)."""
    p = member_plan(member, seed)
    start = datetime.fromtimestamp(member.start_ms / 1000, UTC)
    patient = _patient(member.key, seed, member.start_ms, member.tz, p, member.profile)
    return KitSimulator(
        member.key,
        seed,
        start,
        member.kinds,
        tz=ZoneInfo(member.tz),
        schedule=p.schedule,
        patient=patient,
        disruption=p.disruption,
    )


def arrival_ms(member: Member, rx_ms: int) -> int:
    """When a frame received at home at ``rx_ms`` reaches the database: at once, or when
    the home is back online."""
    if member.offline and member.offline[0] <= rx_ms < member.offline[1]:
        return member.offline[1]
    return rx_ms


def simulate(member: Member, seed: int) -> Readings:
    """Every reading of the member's kit over the follow-up, with its arrival time."""
    kit = member_kit(member, seed)
    patient = kit.patient
    index = {device_id: i for i, device_id in enumerate(kit.device_ids())}
    rows: list[Row] = []
    beats: list[NDArray[np.float64]] = []  # (beat end ms, RR ms) of the patch
    patch = -1

    def arrival_of(rx_ms: int) -> int:
        return arrival_ms(member, rx_ms)

    for day in range(int(np.ceil((member.end_ms - member.start_ms) / DAY_MS))):
        lo = member.start_ms + day * DAY_MS
        for frame in kit.frames(lo, min(lo + DAY_MS, member.end_ms)):
            arrival = arrival_of(frame.rx_ms)
            contact = not frame.values or not frame.values[0].flags & ReadingFlag.QUESTIONABLE
            if frame.rr_intervals_s and contact:  # no beats without skin contact
                rr_ms = np.asarray(frame.rr_intervals_s) * 1000
                # the notification follows the last beat: each interval ends where the
                # next one starts, counted back from reception (as the gateway does)
                ends = frame.rx_ms - (rr_ms.sum() - np.cumsum(rr_ms))
                beats.append(np.stack([ends, rr_ms], axis=1))
                patch = index[frame.device_id]
            rows += frame_rows(frame, arrival, index[frame.device_id])
    if beats:
        rows += _rhythm_rows(np.concatenate(beats), patch, arrival_of)
    if member.answers:
        rows += _answer_rows(member, seed, patient, len(index), arrival_of)
    return readings_of(rows)


def frame_rows(frame: EmittedFrame, arrival_ms: int, device: int) -> list[Row]:
    """The readings a frame carries: (metric id, measured, arrival, value, flags, device)."""
    return [
        (
            BY_NAME[v.metric].metric_id,
            v.measured_ms,
            arrival_ms,
            np.nan if v.value is None else v.value,
            v.flags,
            device,
        )
        for v in frame.values
    ]


def readings_of(rows: list[Row]) -> Readings:
    cols: list[tuple[float, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 6
    return Readings(
        np.asarray(cols[0], dtype=np.int16),
        np.asarray(cols[1], dtype=np.int64),
        np.asarray(cols[2], dtype=np.int64),
        np.asarray(cols[3], dtype=np.float64),
        np.asarray(cols[4], dtype=np.int32),
        np.asarray(cols[5], dtype=np.int8),
    )


def _rhythm_rows(
    beats: NDArray[np.float64], device: int, arrival_of: Callable[[int], int]
) -> list[Row]:
    """The patch's per-minute rhythm readings as the gateway makes them
    (``gateway.rhythm_buffer``: ``vitals.rhythm.summarise_rr``, stamped at the minute's
    last millisecond, sent with the next notification, which closes the minute)."""
    minutes = summarise_rr(beats[:, 0], beats[:, 1])
    rmssd, irregularity = BY_NAME["rr_rmssd_ms"].metric_id, BY_NAME["rr_irregularity"].metric_id
    flags = int(ReadingFlag.GATEWAY_TIME)
    out = []
    for t, a, b in zip(
        minutes.minute_ms.tolist(),
        minutes.rmssd_ms.tolist(),
        minutes.irregularity.tolist(),
        strict=True,
    ):
        at = t + 60_000 - 1
        arrival = arrival_of(t + 60_000 + 100)
        out.append((rmssd, at, arrival, round(a, 1), flags, device))
        out.append((irregularity, at, arrival, round(b, 4), flags, device))
    return out


def _answer_rows(
    member: Member, seed: int, patient: Patient, device: int, arrival_of: Callable[[int], int]
) -> list[Row]:
    """The daily questionnaire's answers, sent from the phone as the patient submits them
    (the home's internet being down delays them as it does the gateway's readings)."""
    profile = member.profile
    rng = derive_rng(seed, member.key, 21)
    skip = 0.35 if profile is not None and profile.poor_adherence else 0.15
    surgery_ms = member.start_ms - int(POST_OP_DAYS * DAY_MS)
    digestive = member.protocol == "digestive_surgery"
    return [
        (
            BY_NAME[a.metric].metric_id,
            a.measured_ms,
            arrival_of(a.measured_ms + 1000),
            a.value,
            0,
            device,
        )
        for a in evening_answers(
            patient, member.start_ms, member.end_ms, surgery_ms, rng, skip, digestive
        )
    ]


@functools.cache
def _simulator_digest() -> str:
    """Changes whenever the simulator's code does, so a cache never outlives it."""
    h = hashlib.sha256()
    for path in sorted(Path(firmware_sim.__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    h.update(Path(__file__).read_bytes())  # this module turns frames into readings
    return h.hexdigest()[:16]


def cached_readings(member: Member, seed: int, cache: Path | None) -> Readings:
    """``simulate`` through an on-disk cache (None: no cache)."""
    if cache is None:
        return simulate(member, seed)
    ident = json.dumps([asdict(member), seed, _simulator_digest()], sort_keys=True)
    path = cache / f"{member.key}-{hashlib.sha256(ident.encode()).hexdigest()[:20]}.npz"
    if path.exists():
        with np.load(path) as data:
            return Readings(**{k: data[k] for k in data.files})
    readings = simulate(member, seed)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **asdict(readings))
    tmp.replace(path)
    return readings
