"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) decoders for the gateway.

A number is ``mantissa * 10**exponent`` (signed exponent in the high 4 or 8 bits, signed
mantissa in the low 12 or 24). Five code points are not numbers but statuses; they become
``value=None`` with the matching special-value flag, so a device problem travels on as
evidence instead of being dropped or turned into a plausible-looking number. The reserved
code point means the sender is broken or speaks a newer standard: it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitals.flags import ReadingFlag


class ReservedValueError(ValueError):
    """The value is the reserved code point, which no conforming device sends."""


@dataclass(frozen=True, slots=True)
class MedicalNumber:
    """A decoded SFLOAT/FLOAT: a number, or None with the special flag saying why."""

    value: float | None
    special: ReadingFlag = ReadingFlag.NONE


SFLOAT_NAN = 0x07FF
SFLOAT_NRES = 0x0800
SFLOAT_POSITIVE_INFINITY = 0x07FE
SFLOAT_NEGATIVE_INFINITY = 0x0802
SFLOAT_RESERVED = 0x0801

FLOAT_NAN = 0x007FFFFF
FLOAT_NRES = 0x00800000
FLOAT_POSITIVE_INFINITY = 0x007FFFFE
FLOAT_NEGATIVE_INFINITY = 0x00800002
FLOAT_RESERVED = 0x00800001

_SFLOAT_SPECIALS = {
    SFLOAT_NAN: ReadingFlag.NOT_A_NUMBER,
    SFLOAT_NRES: ReadingFlag.NOT_AT_RESOLUTION,
    SFLOAT_POSITIVE_INFINITY: ReadingFlag.ABOVE_RANGE,
    SFLOAT_NEGATIVE_INFINITY: ReadingFlag.BELOW_RANGE,
}
_FLOAT_SPECIALS = {
    FLOAT_NAN: ReadingFlag.NOT_A_NUMBER,
    FLOAT_NRES: ReadingFlag.NOT_AT_RESOLUTION,
    FLOAT_POSITIVE_INFINITY: ReadingFlag.ABOVE_RANGE,
    FLOAT_NEGATIVE_INFINITY: ReadingFlag.BELOW_RANGE,
}


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def _number(mantissa: int, exponent: int) -> float:
    # integer division is correctly rounded: 114 * 10**-1 reads as 11.4, not 11.400000000000002
    return mantissa / 10**-exponent if exponent < 0 else float(mantissa * 10**exponent)


def decode_sfloat(raw: int) -> MedicalNumber:
    """Decode a 16-bit SFLOAT code (already assembled from its little-endian bytes)."""
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"SFLOAT code out of range: {raw:#x}")
    if raw == SFLOAT_RESERVED:
        raise ReservedValueError("SFLOAT reserved value 0x0801")
    special = _SFLOAT_SPECIALS.get(raw)
    if special is not None:
        return MedicalNumber(None, special)
    return MedicalNumber(_number(_signed(raw & 0x0FFF, 12), _signed(raw >> 12, 4)))


def decode_float(raw: int) -> MedicalNumber:
    """Decode a 32-bit FLOAT code (already assembled from its little-endian bytes)."""
    if not 0 <= raw <= 0xFFFFFFFF:
        raise ValueError(f"FLOAT code out of range: {raw:#x}")
    if raw == FLOAT_RESERVED:
        raise ReservedValueError("FLOAT reserved value 0x00800001")
    special = _FLOAT_SPECIALS.get(raw)
    if special is not None:
        return MedicalNumber(None, special)
    return MedicalNumber(_number(_signed(raw & 0xFFFFFF, 24), _signed(raw >> 24, 8)))
