"""Zones that put a test's moment in the patient's day.

Rules differ by the patient's local hour (nights, reminders, local days), so a test of
daytime behaviour written for Europe/Paris failed when CI happened to run in the Paris
evening. Tests of daytime behaviour put their patient in a zone where "now" is mid-day;
night behaviour is tested with zones chosen for it.
"""

from __future__ import annotations

from datetime import datetime


def daytime_zone(now: datetime, hour: int = 14) -> str:
    """A fixed-offset IANA zone (``Etc/GMT±N``) where the UTC moment ``now`` is between
    ``hour`` and ``hour + 1`` o'clock local time."""
    off = (hour - now.hour) % 24
    off = off - 24 if off > 12 else off
    # POSIX sign: Etc/GMT-3 is three hours ahead of UTC
    return f"Etc/GMT{-off:+d}" if off else "Etc/GMT"
