"""Per-reading flag bits, shared by the gateway (which sets them), ingest and the database.

A reading whose device reported a special value instead of a number (IEEE 11073 NaN,
NRes, +INF, -INF) travels with ``value = None`` and one of the SPECIAL bits set: it is
evidence of a device problem and, in a FHIR export, a ``dataAbsentReason``; it is never
silently dropped.
"""

from __future__ import annotations

from enum import IntFlag


class ReadingFlag(IntFlag):
    NONE = 0
    NOT_A_NUMBER = 1  # device: invalid result
    NOT_AT_RESOLUTION = 2  # device: value not representable at this resolution
    ABOVE_RANGE = 4  # device: +INFINITY, above what it can measure
    BELOW_RANGE = 8  # device: -INFINITY, below what it can measure
    GATEWAY_TIME = 16  # time stamped by the gateway on reception, not by the device
    QUESTIONABLE = 32  # device status says the measurement is questionable
    EARLY_ESTIMATE = 64  # pulse oximeter: early estimate, signal still settling
    MOTION = 128  # device detected body movement during measurement
    # a finding, not a quality problem: the value is good, the rhythm was irregular (a
    # cuff's 'irregular pulse detected'); evidence for the atrial fibrillation rule
    IRREGULAR_PULSE = 256


SPECIAL_VALUE = (
    ReadingFlag.NOT_A_NUMBER
    | ReadingFlag.NOT_AT_RESOLUTION
    | ReadingFlag.ABOVE_RANGE
    | ReadingFlag.BELOW_RANGE
)
ALL_FLAGS = int(sum(ReadingFlag))
