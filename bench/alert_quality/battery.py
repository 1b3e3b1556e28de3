"""The simulated patient's answer when the phone asks them to charge a device.

The alerts engine asks the patient's phone once per low-battery episode of a device
(``alerts.battery_requests``: its latest level at or below the battery rule's
``below_pct``). Here the patient does it as often as they answer a request to measure
again (``Schedule.remeasure_p``; an assumption, like ``remeasure.Responder``'s), at a
plausible time: 10-60 min after the request, or, asked while asleep, that long after
waking (nobody charges asleep). The device's battery is then full again
(``Battery.recharged_at``; a failing battery keeps failing) and its later reports in the
replay's source say so, so the team's ``battery_low`` alert (at ``critical_pct``) fires
only when the patient did not act in time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from firmware_sim.devices import KitSimulator
from firmware_sim.physiology import MINUTE_MS, derive_rng

from alerts.protocol import BatteryRule, Protocol
from bench.alert_quality.cohort import Member, member_kit
from bench.alert_quality.source import ArraySource

CHARGE_DELAY_MIN = (10.0, 60.0)  # from the request (or from waking) to the charger
_AWAKE_STEP_MIN = 15  # how finely the wait for waking is looked for
_MAX_WAIT_MIN = 24 * 60


class Charger:
    """Per patient and device, answers each low-battery episode's request once."""

    def __init__(
        self,
        members: Sequence[Member],
        seed: int,
        protocols: Mapping[str, Protocol],
        charge_p: float | None = None,  # instead of each patient's schedule (tests)
    ) -> None:
        self._members = list(members)
        self._ids = np.asarray([m.index for m in members], dtype=np.int64)
        self._seed = seed
        self._p = charge_p
        self._rule = {
            m.index: next(
                (r for r in protocols[m.protocol].rules if isinstance(r, BatteryRule)), None
            )
            for m in members
        }
        self._kits: dict[int, KitSimulator] = {}
        self._asked: set[tuple[int, int]] = set()  # (patient, device) in an episode
        # (patient, device, asked at, charged at or None if the patient did not act)
        self.answers: list[tuple[int, int, int, int | None]] = []

    def _kit(self, m: Member) -> KitSimulator:
        kit = self._kits.get(m.index)
        if kit is None:
            kit = self._kits[m.index] = member_kit(m, self._seed)
        return kit

    def respond(self, source: ArraySource, now_ms: int) -> None:
        """Ask for the devices low at ``now_ms`` (as the engine would) and recharge, in
        ``source``, those the patient will charge."""
        # the shipped protocols share one freshness; the longest serves them all
        freshness = max((r.freshness_s for r in self._rule.values() if r), default=0)
        if not freshness:
            return
        levels = source.battery_pct(self._ids, now_ms - freshness * 1000, now_ms)
        for row, m in enumerate(self._members):
            rule = self._rule[m.index]
            if rule is None:
                continue
            for device, level in enumerate(levels[row].tolist()):
                key = (m.index, device)
                if np.isnan(level):
                    continue
                if level > rule.below_pct:
                    self._asked.discard(key)  # the episode is over
                    continue
                if key in self._asked:
                    continue
                self._asked.add(key)
                charged = self._answer(source, m, device, now_ms)
                self.answers.append((m.index, device, now_ms, charged))

    def _answer(self, source: ArraySource, m: Member, device: int, now_ms: int) -> int | None:
        """When the patient charges the device (None: they do not)."""
        kit = self._kit(m)
        rng = derive_rng(self._seed, m.key, 37, device, now_ms // 1000)
        p = kit.schedule.remeasure_p if self._p is None else self._p
        if rng.random() >= p:
            return None
        t = now_ms
        while kit.patient.is_asleep(t) and t - now_ms < _MAX_WAIT_MIN * MINUTE_MS:
            t += _AWAKE_STEP_MIN * MINUTE_MS
        lo, hi = CHARGE_DELAY_MIN
        t += int(rng.uniform(lo, hi) * MINUTE_MS)
        d = kit.devices[device]
        d.battery = d.battery.recharged_at(t)
        source.recharge(m.index, device, t, d.battery.level_pct)
        return t
