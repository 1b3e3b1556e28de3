"""IEEE 11073-20601 SFLOAT/FLOAT: the simulator's encoder and the gateway's decoder agree
with the standard's bit layout, its special values, and with each other."""

from __future__ import annotations

import math
import random

import pytest
from firmware_sim.ieee11073 import (
    Special,
    encode_float,
    encode_sfloat,
    float_raw,
    float_value,
    sfloat_raw,
    sfloat_value,
)

from gateway.ieee11073 import ReservedValueError, decode_float, decode_sfloat
from vitals.flags import ReadingFlag


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # exponent 0xF = -1, mantissa 0x072 = 114: 114 * 10**-1
        (0xF072, 11.4),
        # exponent 0, mantissa 0x061 = 97
        (0x0061, 97.0),
        # exponent 0x2 = +2, mantissa 0x00C = 12: 1200
        (0x200C, 1200.0),
        # exponent 0xE = -2, mantissa 0xFF1 = -15 (two's complement, 12 bits): -0.15
        (0xEFF1, -0.15),
        # exponent 0x8 = -8 (the smallest), mantissa 1
        (0x8001, 1e-8),
        # exponent 0x7 = +7 (the largest), mantissa 0x7FD = 2045
        (0x77FD, 2.045e10),
        # mantissa 0x800 = -2048 is NRes only at exponent 0; at exponent +1 it is a number
        (0x1800, -20480.0),
    ],
)
def test_sfloat_numbers_decode_per_the_bit_layout(raw: int, expected: float) -> None:
    number = decode_sfloat(raw)
    assert number.special is ReadingFlag.NONE
    assert number.value == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # exponent 0xFF = -1, mantissa 0x00016E = 366: 36.6 (a thermometer's FLOAT)
        (0xFF00016E, 36.6),
        # exponent 0xFE = -2, mantissa 0x000E42 = 3650: 36.50
        (0xFE000E42, 36.5),
        # exponent 0, mantissa 0xFFFFFF = -1
        (0x00FFFFFF, -1.0),
        # exponent 0x03, mantissa 5: 5000
        (0x03000005, 5000.0),
    ],
)
def test_float_numbers_decode_per_the_bit_layout(raw: int, expected: float) -> None:
    number = decode_float(raw)
    assert number.special is ReadingFlag.NONE
    assert number.value == expected


SPECIALS = [
    (Special.NAN, 0x07FF, 0x007FFFFF, ReadingFlag.NOT_A_NUMBER),
    (Special.NRES, 0x0800, 0x00800000, ReadingFlag.NOT_AT_RESOLUTION),
    (Special.POSITIVE_INFINITY, 0x07FE, 0x007FFFFE, ReadingFlag.ABOVE_RANGE),
    (Special.NEGATIVE_INFINITY, 0x0802, 0x00800002, ReadingFlag.BELOW_RANGE),
]


@pytest.mark.parametrize(("special", "sfloat", "float32", "flag"), SPECIALS)
def test_special_values_have_their_reserved_codes(
    special: Special, sfloat: int, float32: int, flag: ReadingFlag
) -> None:
    assert sfloat_raw(special, 0) == sfloat
    assert float_raw(special, 2) == float32
    assert decode_sfloat(sfloat).value is None
    assert decode_sfloat(sfloat).special is flag
    assert decode_float(float32).value is None
    assert decode_float(float32).special is flag


def test_float_nan_and_infinities_encode_as_specials() -> None:
    assert sfloat_raw(math.nan, 0) == 0x07FF
    assert sfloat_raw(math.inf, 1) == 0x07FE
    assert sfloat_raw(-math.inf, 1) == 0x0802
    assert float_raw(math.nan, 1) == 0x007FFFFF


def test_reserved_code_is_refused_by_the_decoder() -> None:
    assert sfloat_raw(Special.RESERVED, 0) == 0x0801
    assert float_raw(Special.RESERVED, 0) == 0x00800001
    with pytest.raises(ReservedValueError):
        decode_sfloat(0x0801)
    with pytest.raises(ReservedValueError):
        decode_float(0x00800001)


@pytest.mark.parametrize(
    ("value", "decimals", "wire"),
    [
        (11.4, 1, bytes.fromhex("72F0")),  # the 0xF072 example, little-endian
        (97, 0, bytes.fromhex("6100")),
        (-1.5, 1, bytes.fromhex("F1FF")),  # exponent -1, mantissa -15 = 0xFF1
        (0.0056, 4, bytes.fromhex("38C0")),  # 56 * 10**-4 (glucose in mol/L)
        # 300.5 at one decimal needs mantissa 3005 > 2045: one decimal is given up, and
        # 300.5 rounds half away from zero to 301 = 0x12D at exponent 0
        (300.5, 1, bytes.fromhex("2D01")),
        # 100000 needs exponent +2: mantissa 1000 = 0x3E8
        (100000, 0, bytes.fromhex("E823")),
    ],
)
def test_sfloat_encoder_picks_the_requested_decimals(
    value: float, decimals: int, wire: bytes
) -> None:
    assert encode_sfloat(value, decimals) == wire


def test_float_encoder_layout() -> None:
    assert encode_float(36.6, 1) == bytes.fromhex("6E0100FF")
    assert encode_float(98.6, 1) == bytes.fromhex("DA0300FF")
    assert encode_float(-40, 0) == bytes.fromhex("D8FFFF00")  # mantissa -40 = 0xFFFFD8


def test_out_of_range_values_and_decimals_are_refused() -> None:
    with pytest.raises(OverflowError):
        encode_sfloat(3e10, 0)
    with pytest.raises(ValueError, match="decimals"):
        encode_sfloat(1.0, 9)
    with pytest.raises(ValueError, match="decimals"):
        encode_float(1.0, 129)
    with pytest.raises(ValueError, match="out of range"):
        decode_sfloat(0x10000)


def test_random_values_round_trip_at_their_resolution() -> None:
    rng = random.Random(11073)
    for _ in range(5000):
        decimals = rng.randint(-2, 6)
        value = round(rng.uniform(-2000, 2000) * 10 ** rng.randint(-6, 3), 8)
        expected = sfloat_value(value, decimals)
        got = decode_sfloat(sfloat_raw(value, decimals))
        assert got.value == expected
        assert isinstance(expected, float)
        # half a step away at most; when decimals had to be given up, the mantissa still
        # has more than 2045 / 10 (SFLOAT) or 8388605 / 10 (FLOAT) steps
        step = 10.0**-decimals
        assert abs(expected - value) <= max(step / 2, abs(value) / 204 / 2) + 1e-12
        f_expected = float_value(value, decimals)
        assert decode_float(float_raw(value, decimals)).value == f_expected
        assert isinstance(f_expected, float)
        assert abs(f_expected - value) <= max(step / 2, abs(value) / 838860 / 2) + 1e-12


def test_every_sfloat_code_decodes_to_a_number_a_special_or_the_reserved_error() -> None:
    for raw in range(0x10000):
        try:
            number = decode_sfloat(raw)
        except ReservedValueError:
            assert raw == 0x0801
            continue
        assert (number.value is None) == (number.special is not ReadingFlag.NONE)
