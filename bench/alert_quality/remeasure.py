"""The simulated patient's answer when the engine asks for a confirming re-measurement.

A confirmed or relative rule that meets a single abnormal spot reading opens its alert
as a request (``evidence["confirmation_requested"]``): the patient's phone asks them to
measure again now. Here the patient does as their schedule says (``Schedule.remeasure_p``
within ``remeasure_delay_min``; an assumption, see ``scenarios.schedule_for``), with the
device that takes that metric, and the new reading joins the replay's source: it
confirms the alert or ends its run, through the engine's own rule code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from firmware_sim.devices import DeviceKind, KitSimulator
from firmware_sim.physiology import MINUTE_MS, derive_rng

from alerts.full_set import FullSetAsk
from alerts.lifecycle import Finding
from alerts.protocol import Protocol
from bench.alert_quality.cohort import (
    Member,
    Readings,
    Row,
    arrival_ms,
    frame_rows,
    member_kit,
    readings_of,
)

# the device the phone asks for, by the metric of the request (the first one in the kit)
DEVICES_FOR = {
    "spo2_pct": (DeviceKind.OXIMETER,),
    "heart_rate_bpm": (DeviceKind.OXIMETER, DeviceKind.BP_CUFF),
    "bp_systolic_mmhg": (DeviceKind.BP_CUFF,),
    "bp_diastolic_mmhg": (DeviceKind.BP_CUFF,),
    "temp_c": (DeviceKind.THERMOMETER,),
}


class Responder:
    """Per patient, answers each request once (a request is a metric's run of abnormal
    readings: several rules on one reading make one request on the phone)."""

    def __init__(
        self,
        members: Sequence[Member],
        seed: int,
        protocols: Mapping[str, Protocol],
        remeasure_p: float | None = None,  # instead of each patient's schedule (tests)
    ) -> None:
        self._members = {m.index: m for m in members}
        self._p = remeasure_p
        self._seed = seed
        self._metric = {
            (name, r.id): str(getattr(r, "metric", ""))
            for name, p in protocols.items()
            for r in p.rules
        }
        self._every_ms = {
            name: p.full_set.every_s * 1000 for name, p in protocols.items() if p.full_set
        }
        self._kits: dict[int, KitSimulator] = {}
        self._asked: set[tuple[int, str, int]] = set()
        self._full_set_ms: dict[int, int] = {}  # patient -> when a full set was last asked
        self.answered = 0  # re-measurements taken (for the report of a run)
        self.full_sets_asked = 0
        self.full_sets_asked_well = 0  # of them, to patients with no complication
        self.full_sets_answered = 0

    def _kit(self, m: Member) -> KitSimulator:
        kit = self._kits.get(m.index)
        if kit is None:
            kit = self._kits[m.index] = member_kit(m, self._seed)
        return kit

    def _answer_ms(self, m: Member, rng: np.random.Generator, now_ms: int) -> int | None:
        """When the patient answers a request made at ``now_ms`` (their schedule's
        ``remeasure_p`` and delay), or None: not answered, or asleep by then (a request at
        night waits for no one)."""
        kit = self._kit(m)
        p = kit.schedule.remeasure_p if self._p is None else self._p
        if rng.random() >= p:
            return None
        lo, hi = kit.schedule.remeasure_delay_min
        t = now_ms + int(rng.uniform(lo, hi) * MINUTE_MS)
        return None if kit.patient.is_asleep(t) else t

    def _measure(self, m: Member, kind: DeviceKind, t_ms: int, rows: list[Row]) -> int:
        """Measure with the kit's ``kind`` at ``t_ms``, its readings added to ``rows``;
        how many frames the device sent."""
        kit = self._kit(m)
        index = {device_id: i for i, device_id in enumerate(kit.device_ids())}
        frames = kit.measure_now(kind, t_ms)
        for frame in frames:
            rows.extend(frame_rows(frame, arrival_ms(m, frame.rx_ms), index[frame.device_id]))
        return len(frames)

    def respond_full_sets(self, asks: Sequence[FullSetAsk], now_ms: int) -> dict[int, Readings]:
        """The readings of the full sets these asks bring (the sender's limits: none
        within the protocol's ``every_s`` of the last), by patient id: each missing
        metric's device, one after the other, as the patient's schedule answers."""
        rows: dict[int, list[Row]] = {}
        for ask in asks:
            m = self._members.get(ask.patient_id)
            every = self._every_ms.get(ask.protocol)
            last = self._full_set_ms.get(ask.patient_id)
            if m is None or every is None or (last is not None and now_ms - last < every):
                continue
            self._full_set_ms[ask.patient_id] = now_ms
            self.full_sets_asked += 1
            self.full_sets_asked_well += m.scenario == "uneventful"
            t = self._answer_ms(m, derive_rng(self._seed, m.key, 37, now_ms // 1000), now_ms)
            if t is None:
                continue
            kinds = {d.kind for d in self._kit(m).devices}
            devices = dict.fromkeys(
                k for metric in ask.missing for k in DEVICES_FOR.get(metric, ())[:1] if k in kinds
            )
            for step, kind in enumerate(devices):
                self._measure(m, kind, t + step * 2 * MINUTE_MS, rows.setdefault(m.index, []))
            if devices:
                self.full_sets_answered += 1
        return {pid: readings_of(r) for pid, r in rows.items() if r}

    def respond(self, findings: Sequence[Finding], now_ms: int) -> dict[int, Readings]:
        """The readings of the re-measurements these findings ask for, by patient id
        (measured later than ``now_ms``: the source shows them when their time comes)."""
        rows: dict[int, list[Row]] = {}
        for f in findings:
            if not (f.firing and f.evidence.get("confirmation_requested")):
                continue
            m = self._members.get(f.patient_id)
            if m is None or f.onset_ms is None:
                continue
            metric = self._metric.get((m.protocol, f.rule_id), "")
            key = (m.index, metric, f.onset_ms)
            if metric not in DEVICES_FOR or key in self._asked:
                continue
            self._asked.add(key)
            t = self._answer_ms(m, derive_rng(self._seed, m.key, 31, f.onset_ms // 1000), now_ms)
            if t is None:
                continue
            kinds = {d.kind for d in self._kit(m).devices}
            kind = next((k for k in DEVICES_FOR[metric] if k in kinds), None)
            if kind is None:
                continue
            if self._measure(m, kind, t, rows.setdefault(m.index, [])):
                self.answered += 1
        return {pid: readings_of(r) for pid, r in rows.items() if r}
