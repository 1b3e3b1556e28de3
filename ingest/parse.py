"""Turning one MQTT message into rows to store and dead letters, with no I/O.

The fast path decodes and checks a whole batch in one msgspec call (ingest/batch_decoder.py
says why not pydantic there); only when something is wrong does the slow path look at
each reading alone with the pydantic schema of record, so that one bad reading costs one
dead letter with its reason and the rest of the batch is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import msgspec
from pydantic import ValidationError

from ingest.batch_decoder import decode_batch
from vitals.catalogue import BY_NAME
from vitals.flags import SPECIAL_VALUE
from vitals.topics import gateway_of
from vitals.wire import (
    MAX_MESSAGE_BYTES,
    READING_ADAPTER,
    BatchEnvelope,
    GatewayStatus,
    WireReading,
)

_SPECIAL = int(SPECIAL_VALUE)  # a plain int: IntFlag's & costs more than the decoding

# (gateway_id, seq, device_id, metric_id, time_ms, value, flags): the staging row layout
Row = tuple[str, int, str, int, int, float | None, int]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    gateway_id: str | None
    seq: int | None
    reason: str
    payload: bytes

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.payload).digest()


@dataclass(frozen=True, slots=True)
class ParsedReadings:
    rows: list[Row]
    dead: list[DeadLetter]

    def seq_span(self) -> tuple[int, int] | None:
        """The gateway outbox range this message carried, to confirm once committed."""
        seqs = [r[1] for r in self.rows] + [d.seq for d in self.dead if d.seq is not None]
        return (min(seqs), max(seqs)) if seqs else None


@dataclass(frozen=True, slots=True)
class ParsedStatus:
    gateway_id: str
    status: GatewayStatus | None
    dead: DeadLetter | None


def _short(err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    return f"{where}: {first['msg']}"


def parse_readings(
    topic: str, payload: bytes, now_ms: int, future_tolerance_ms: int
) -> ParsedReadings:
    gateway_id = gateway_of(topic)

    def whole(reason: str) -> ParsedReadings:
        return ParsedReadings([], [DeadLetter(topic, gateway_id, None, reason, payload)])

    if gateway_id is None:
        return whole("topic is not devices/<gateway id>/readings")
    if len(payload) > MAX_MESSAGE_BYTES:
        return whole(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    fast = decode_batch(payload)
    if fast is None:
        return parse_slow(topic, gateway_id, payload, now_ms, future_tolerance_ms)
    if fast.v != 1:
        return whole(f"unsupported schema version {fast.v}")
    if fast.gateway != gateway_id:
        return whole(f"payload names gateway {fast.gateway!r} but arrived on {topic!r}")
    rows: list[Row] = []
    dead: list[DeadLetter] = []
    horizon_ms = now_ms + future_tolerance_ms
    by_name = BY_NAME
    for r in fast.readings:
        value, flags = r.value, r.flags
        if (value is None) != bool(flags & _SPECIAL):
            # the schema's null/special rule: let the slow path name the reading
            return parse_slow(topic, gateway_id, payload, now_ms, future_tolerance_ms)
        m = by_name.get(r.metric)
        if (
            m is not None
            and (value is None or m.plausible_min <= value <= m.plausible_max)
            and r.time_ms <= horizon_ms
        ):
            rows.append((gateway_id, r.seq, r.device, m.metric_id, r.time_ms, value, flags))
            continue
        try:
            reading = READING_ADAPTER.validate_python(msgspec.structs.asdict(r))
        except ValidationError:  # the two schemas disagree: trust the detailed one
            return parse_slow(topic, gateway_id, payload, now_ms, future_tolerance_ms)
        reason, _ = _check(gateway_id, reading, now_ms, future_tolerance_ms)
        dead.append(
            DeadLetter(topic, gateway_id, reading.seq, reason, reading.model_dump_json().encode())
        )
    return ParsedReadings(rows, dead)


def _check(
    gateway_id: str, r: WireReading, now_ms: int, future_tolerance_ms: int
) -> tuple[str, Row | None]:
    m = BY_NAME.get(r.metric)
    if m is None:
        return f"unknown metric {r.metric!r}", None
    if r.value is not None and not m.is_plausible(r.value):
        return (
            f"implausible {m.name} {r.value:g} (plausible {m.plausible_min:g}"
            f" to {m.plausible_max:g} {m.ucum})",
            None,
        )
    if r.time_ms > now_ms + future_tolerance_ms:
        ahead_s = (r.time_ms - now_ms) / 1000
        return f"measured time is {ahead_s:.0f} s in the future (device clock wrong?)", None
    return "", (gateway_id, r.seq, r.device, m.metric_id, r.time_ms, r.value, r.flags)


def parse_slow(
    topic: str, gateway_id: str, payload: bytes, now_ms: int, future_tolerance_ms: int
) -> ParsedReadings:
    """Each reading alone through the pydantic schema of record, with a reason for each
    one refused; also the reference the fast path is tested against."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        reason = "not valid JSON: the payload is not UTF-8 text"
        return ParsedReadings([], [DeadLetter(topic, gateway_id, None, reason, payload)])
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc}"
        return ParsedReadings([], [DeadLetter(topic, gateway_id, None, reason, payload)])
    try:
        env = BatchEnvelope.model_validate(doc)
    except ValidationError as exc:
        reason = f"invalid batch: {_short(exc)}"
        return ParsedReadings([], [DeadLetter(topic, gateway_id, None, reason, payload)])
    if env.gateway != gateway_id:
        reason = f"payload names gateway {env.gateway!r} but arrived on {topic!r}"
        return ParsedReadings([], [DeadLetter(topic, gateway_id, None, reason, payload)])
    rows: list[Row] = []
    dead: list[DeadLetter] = []
    for raw in env.readings:
        raw_bytes = json.dumps(raw, separators=(",", ":")).encode()
        seq = raw.get("seq") if isinstance(raw, dict) else None
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        try:
            r = READING_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            dead.append(
                DeadLetter(topic, gateway_id, seq, f"invalid reading: {_short(exc)}", raw_bytes)
            )
            continue
        reason, row = _check(gateway_id, r, now_ms, future_tolerance_ms)
        if row is not None:
            rows.append(row)
        else:
            dead.append(DeadLetter(topic, gateway_id, r.seq, reason, raw_bytes))
    return ParsedReadings(rows, dead)


def parse_status(
    topic: str, payload: bytes, now_ms: int, future_tolerance_ms: int
) -> ParsedStatus | None:
    """A status timed beyond now plus the readings' tolerance is refused: stored, it would
    outrank every later (truthful) status and hide the home going offline."""
    gateway_id = gateway_of(topic)
    if gateway_id is None:
        return None
    try:
        status = GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        dead = DeadLetter(topic, gateway_id, None, f"invalid status: {_short(exc)}", payload)
        return ParsedStatus(gateway_id, None, dead)
    if status.at_ms > now_ms + future_tolerance_ms:
        ahead_s = (status.at_ms - now_ms) / 1000
        reason = f"status time is {ahead_s:.0f} s in the future (gateway clock wrong?)"
        return ParsedStatus(gateway_id, None, DeadLetter(topic, gateway_id, None, reason, payload))
    return ParsedStatus(gateway_id, status, None)
