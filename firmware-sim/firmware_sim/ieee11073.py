"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) encoders, as device firmware
writes them into Bluetooth SIG health characteristics.

A value is ``mantissa * 10**exponent`` with a signed exponent in the high bits. The
encoder picks the exponent that shows the requested number of decimals and only gives
decimals up when the mantissa would not fit, so 36.6 at one decimal is exactly 366e-1,
as a thermometer would send it. Special values (NaN, NRes, +/-INF) are whole code points
with exponent 0; their mantissas are never used for numbers at any exponent, so that a
decoder reading only the mantissa cannot mistake a number for a special.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum


class Special(Enum):
    """Reserved IEEE 11073 code points that stand for a status instead of a number."""

    NAN = "NaN"  # not a number: invalid result
    NRES = "NRes"  # not at this resolution
    POSITIVE_INFINITY = "+INF"  # above the range the device can measure
    NEGATIVE_INFINITY = "-INF"  # below the range the device can measure
    RESERVED = "reserved"  # reserved for future use; only to test decoders


Numeric = float | Special
"""What a characteristic field encoded as SFLOAT/FLOAT can carry."""


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    exponent_bits: int
    mantissa_bits: int
    specials: dict[Special, int]

    @property
    def min_exponent(self) -> int:
        return -(1 << (self.exponent_bits - 1))

    @property
    def max_exponent(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def max_mantissa(self) -> int:
        # the top three and bottom two mantissas at exponent 0 are special values
        return (1 << (self.mantissa_bits - 1)) - 3


SFLOAT = _Format(
    "SFLOAT",
    4,
    12,
    {
        Special.NAN: 0x07FF,
        Special.NRES: 0x0800,
        Special.POSITIVE_INFINITY: 0x07FE,
        Special.NEGATIVE_INFINITY: 0x0802,
        Special.RESERVED: 0x0801,
    },
)
FLOAT = _Format(
    "FLOAT",
    8,
    24,
    {
        Special.NAN: 0x007FFFFF,
        Special.NRES: 0x00800000,
        Special.POSITIVE_INFINITY: 0x007FFFFE,
        Special.NEGATIVE_INFINITY: 0x00800002,
        Special.RESERVED: 0x00800001,
    },
)


def as_special(value: Numeric) -> Special | None:
    """The special a value stands for: a Special itself, or a float NaN / infinity."""
    if isinstance(value, Special):
        return value
    if math.isnan(value):
        return Special.NAN
    if math.isinf(value):
        return Special.POSITIVE_INFINITY if value > 0 else Special.NEGATIVE_INFINITY
    return None


def _mantissa_exponent(fmt: _Format, value: float, decimals: int) -> tuple[int, int]:
    exponent = -decimals
    if not fmt.min_exponent <= exponent <= fmt.max_exponent:
        raise ValueError(f"{fmt.name} cannot carry {decimals} decimals")
    exact = Decimal(repr(value))
    while exponent <= fmt.max_exponent:
        mantissa = int(exact.scaleb(-exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if abs(mantissa) <= fmt.max_mantissa:
            return mantissa, exponent
        exponent += 1  # too many digits: give up one decimal
    raise OverflowError(f"{value!r} is too large for {fmt.name}")


def _raw(fmt: _Format, value: Numeric, decimals: int) -> int:
    special = as_special(value)
    if special is not None:
        return fmt.specials[special]
    assert isinstance(value, float | int)
    mantissa, exponent = _mantissa_exponent(fmt, float(value), decimals)
    mask = (1 << fmt.mantissa_bits) - 1
    return ((exponent & ((1 << fmt.exponent_bits) - 1)) << fmt.mantissa_bits) | (mantissa & mask)


def sfloat_raw(value: Numeric, decimals: int) -> int:
    """The 16-bit SFLOAT code of ``value`` shown with ``decimals`` decimals (fewer if
    the 12-bit mantissa cannot hold them)."""
    return _raw(SFLOAT, value, decimals)


def float_raw(value: Numeric, decimals: int) -> int:
    """The 32-bit FLOAT code of ``value`` shown with ``decimals`` decimals (fewer if the
    24-bit mantissa cannot hold them)."""
    return _raw(FLOAT, value, decimals)


def encode_sfloat(value: Numeric, decimals: int) -> bytes:
    """SFLOAT as it appears in a characteristic: 2 bytes, little-endian."""
    return sfloat_raw(value, decimals).to_bytes(2, "little")


def encode_float(value: Numeric, decimals: int) -> bytes:
    """FLOAT as it appears in a characteristic: 4 bytes, little-endian."""
    return float_raw(value, decimals).to_bytes(4, "little")


def sfloat_value(value: Numeric, decimals: int) -> Numeric:
    """What a receiver will read back from ``encode_sfloat(value, decimals)``: the value
    rounded to the chosen resolution, or the special it stands for."""
    return _wire_value(SFLOAT, value, decimals)


def float_value(value: Numeric, decimals: int) -> Numeric:
    """What a receiver will read back from ``encode_float(value, decimals)``."""
    return _wire_value(FLOAT, value, decimals)


def _wire_value(fmt: _Format, value: Numeric, decimals: int) -> Numeric:
    special = as_special(value)
    if special is not None:
        return special
    assert isinstance(value, float | int)
    mantissa, exponent = _mantissa_exponent(fmt, float(value), decimals)
    return mantissa / 10**-exponent if exponent < 0 else float(mantissa * 10**exponent)
