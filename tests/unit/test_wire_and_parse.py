"""The v1 payload schema and ingest's parsing: what is accepted, what becomes a dead letter
and why, without any I/O."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.parse import parse_readings, parse_slow, parse_status
from vitals.catalogue import CATALOGUE, metric
from vitals.flags import ReadingFlag
from vitals.wire import READING_ADAPTER, GatewayStatus, encode_batch, encode_status

NOW_MS = 1_795_000_000_000
TOPIC = "devices/gw-unit/readings"


def reading(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "seq": 1,
        "device": "ox-unit",
        "metric": "spo2_pct",
        "time_ms": NOW_MS - 60_000,
        "value": 96.0,
        "flags": 0,
    }
    base.update(over)
    return base


def batch(*readings: dict[str, object], gateway: str = "gw-unit") -> bytes:
    return encode_batch(gateway, NOW_MS, list(readings))


def test_catalogue_ids_and_names_are_unique_and_units_are_named() -> None:
    assert len({m.metric_id for m in CATALOGUE}) == len(CATALOGUE)
    assert len({m.name for m in CATALOGUE}) == len(CATALOGUE)
    for m in CATALOGUE:
        assert m.plausible_min < m.plausible_max
        assert m.ucum
    assert metric("temp_c").loinc == "8310-5"
    with pytest.raises(KeyError, match="unknown metric 'temp_f'"):
        metric("temp_f")


def test_special_values_travel_as_null_with_their_reason() -> None:
    ok = READING_ADAPTER.validate_python(reading(value=None, flags=int(ReadingFlag.NOT_A_NUMBER)))
    assert ok.value is None
    with pytest.raises(ValidationError, match="no special-value flag"):
        READING_ADAPTER.validate_python(reading(value=None))
    with pytest.raises(ValidationError, match="special-value flag is set"):
        READING_ADAPTER.validate_python(reading(flags=int(ReadingFlag.ABOVE_RANGE)))


def test_a_valid_batch_becomes_rows() -> None:
    parsed = parse_readings(
        TOPIC, batch(reading(), reading(seq=2, metric="temp_c", value=37.2)), NOW_MS, 300_000
    )
    assert parsed.dead == []
    assert parsed.rows == [
        ("gw-unit", 1, "ox-unit", metric("spo2_pct").metric_id, NOW_MS - 60_000, 96.0, 0),
        ("gw-unit", 2, "ox-unit", metric("temp_c").metric_id, NOW_MS - 60_000, 37.2, 0),
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (reading(metric="mood_level"), "unknown metric 'mood_level'"),
        (reading(value=12.0), "implausible spo2_pct 12"),
        (reading(time_ms=NOW_MS + 3_600_000), "3600 s in the future"),
        (reading(value="97"), "value: Input should be a valid number"),
        (reading(seq=-1), "seq: Input should be greater than or equal to 0"),
        (reading(device="a/b"), "device: String should match pattern"),
        (reading(extra=1), "extra: Extra inputs are not permitted"),
        (reading(flags=4096), "flags: Input should be less than or equal to 511"),
    ],
)
def test_one_bad_reading_is_one_dead_letter(bad: dict[str, object], reason: str) -> None:
    parsed = parse_readings(TOPIC, batch(reading(seq=0), bad), NOW_MS, 300_000)
    assert len(parsed.rows) == 1
    [letter] = parsed.dead
    assert reason in letter.reason
    assert letter.gateway_id == "gw-unit"
    assert json.loads(letter.payload)["device"] == bad["device"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"v":1,"gateway":"gw-unit"', "not valid JSON"),
        (b"\x80\x81", "not UTF-8"),
        (b"[]", "invalid batch"),
        (
            json.dumps({"v": 1, "gateway": "gw-unit", "sent_ms": 1, "readings": []}).encode(),
            "readings: List should have at least 1 item",
        ),
        (batch(reading(), gateway="gw-other"), "payload names gateway 'gw-other'"),
        (b"x" * 1_048_577, "exceeds"),
    ],
)
def test_a_bad_message_is_one_dead_letter_kept_whole(payload: bytes, reason: str) -> None:
    parsed = parse_readings(TOPIC, payload, NOW_MS, 300_000)
    assert parsed.rows == []
    [letter] = parsed.dead
    assert reason in letter.reason
    assert letter.payload == payload


def test_status_messages() -> None:
    st = GatewayStatus(v=1, online=False, at_ms=NOW_MS, reason="connection lost")
    parsed = parse_status("devices/gw-unit/status", encode_status(st))
    assert parsed is not None
    assert parsed.status == st
    broken = parse_status("devices/gw-unit/status", b"{}")
    assert broken is not None
    assert broken.dead is not None
    assert broken.status is None


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_dead_letters_not_rows(token: bytes) -> None:
    payload = batch(reading(seq=0), reading(seq=1, value=123.456)).replace(b"123.456", token)
    parsed = parse_readings(TOPIC, payload, NOW_MS, 300_000)
    assert [r[1] for r in parsed.rows] == [0]
    [letter] = parsed.dead
    assert "finite number" in letter.reason


# Any field of a reading, well or badly formed: the fast decoder (msgspec) and the schema of
# record (pydantic) must agree on every one, or a reading could be stored on one path and
# refused on the other.
_FIELD_VALUES: dict[str, st.SearchStrategy[object]] = {
    "seq": st.one_of(st.integers(-2, 2**40), st.just(True), st.just(1.0), st.just("1")),
    "device": st.one_of(
        st.sampled_from(["ox-unit", "bp.unit:2", "ab", "a/b", "-ox", "ox-unit\n", "x" * 65]),
        st.text(max_size=8),
    ),
    "metric": st.one_of(
        st.sampled_from([m.name for m in CATALOGUE]), st.sampled_from(["mood", "SpO2", ""])
    ),
    "time_ms": st.one_of(
        st.integers(NOW_MS - 10**9, NOW_MS + 10**7),
        st.sampled_from([-1, 0, 32_503_680_000_000, 1.5, "1", None]),
    ),
    "value": st.one_of(
        st.floats(-50, 400, allow_nan=False),
        st.integers(-5, 300),
        st.sampled_from([None, "97", True, [1]]),
    ),
    "flags": st.one_of(
        st.sampled_from([int(f) for f in ReadingFlag]), st.integers(-1, 300), st.just(False)
    ),
}


@st.composite
def _any_reading(draw: st.DrawFn) -> dict[str, object]:
    r = reading()
    for name, values in _FIELD_VALUES.items():
        if draw(st.integers(0, 5)) == 0:  # mostly well formed, one field off now and then
            r[name] = draw(values)
    if draw(st.integers(0, 30)) == 0:
        del r[draw(st.sampled_from(sorted(r)))]
    if draw(st.integers(0, 30)) == 0:
        r["extra"] = 1
    return r


@settings(max_examples=400, deadline=None)
@given(st.lists(_any_reading(), min_size=1, max_size=6))
def test_the_fast_decoder_agrees_with_the_schema_of_record(
    readings: list[dict[str, object]],
) -> None:
    payload = json.dumps(
        {"v": 1, "gateway": "gw-unit", "sent_ms": NOW_MS, "readings": readings}
    ).encode()
    fast = parse_readings(TOPIC, payload, NOW_MS, 300_000)
    slow = parse_slow(TOPIC, "gw-unit", payload, NOW_MS, 300_000)
    assert fast.rows == slow.rows
    assert [(d.seq, d.reason) for d in fast.dead] == [(d.seq, d.reason) for d in slow.dead]
