"""When a protocol's daily reminders fall for each patient: at a local time of the
patient's zone (the offset taken at the moment of judging, as the night limits do; a
reminder on the day of a DST change may move by an hour)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

DAY_MS = 86_400_000


def today_due_ms(now_ms: int, offsets_s: NDArray[np.int64], at_s: int) -> NDArray[np.int64]:
    """Per patient, today's (their local today) reminder time as epoch ms."""
    offset_ms = offsets_s.astype(np.int64) * 1000
    local_midnight = (now_ms + offset_ms) // DAY_MS * DAY_MS
    return local_midnight - offset_ms + at_s * 1000


def latest_due_ms(
    now_ms: int, offsets_s: NDArray[np.int64], at_s: int, grace_s: int
) -> NDArray[np.int64]:
    """Per patient, the latest reminder time whose grace period has run out by now."""
    due = today_due_ms(now_ms, offsets_s, at_s)
    return np.where(due + grace_s * 1000 > now_ms, due - DAY_MS, due)
