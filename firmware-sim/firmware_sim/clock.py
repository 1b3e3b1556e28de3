"""A simulated clock, so that days of post-operative recovery can be replayed in minutes
(or as fast as the gateway can take them) with every timestamp still coherent.

Simulated time runs ``speed`` times faster than the real monotonic clock from an anchor.
``speed=math.inf`` stops it from running by itself: time then moves only when the
streamer calls ``advance_to`` (or ``sleep_until``), the mode for "as fast as possible".
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


def to_ms(moment: datetime) -> int:
    """UTC epoch milliseconds of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("simulated time needs an aware datetime")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class SimClock:
    """Simulated UTC time in epoch ms, ``speed`` simulated seconds per real second."""

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.speed = speed
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._anchor_sim_ms = to_ms(start)
        self._anchor_real_s = monotonic()

    @property
    def free_running(self) -> bool:
        """Whether simulated time passes by itself (finite speed)."""
        return math.isfinite(self.speed)

    def now_ms(self) -> int:
        with self._lock:
            return self._now_ms_locked()

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    def _now_ms_locked(self) -> int:
        if not self.free_running:
            return self._anchor_sim_ms
        elapsed_s = self._monotonic() - self._anchor_real_s
        return self._anchor_sim_ms + int(elapsed_s * self.speed * 1000)

    def advance_to(self, sim_ms: int) -> None:
        """Jump forward to ``sim_ms`` (never backward: other users may have seen later)."""
        with self._lock:
            if sim_ms > self._now_ms_locked():
                self._anchor_sim_ms = sim_ms
                self._anchor_real_s = self._monotonic()

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds to wait for simulated time to reach ``sim_ms`` (0 if past)."""
        if not self.free_running:
            return 0.0
        return max(0.0, (sim_ms - self.now_ms()) / 1000 / self.speed)

    def sleep_until(self, sim_ms: int, stop: threading.Event | None = None) -> bool:
        """Sleep the real time that separates now from ``sim_ms``; False if ``stop`` was
        set first. With an infinite speed the clock simply jumps there."""
        if not self.free_running:
            self.advance_to(sim_ms)
            return not (stop is not None and stop.is_set())
        wait_s = self.real_seconds_until(sim_ms)
        if stop is not None:
            return not stop.wait(wait_s)
        if wait_s > 0:
            self._sleep(wait_s)
        return True
