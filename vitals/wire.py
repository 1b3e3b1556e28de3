"""Versioned MQTT payload schema (``"v": 1``): what a gateway publishes and ingest accepts.

A message is a batch: many readings per MQTT message is what makes the pipeline fast
(a Python MQTT client handles a few thousand QoS 1 messages a second, not readings).

Readings are validated one by one so that one bad reading becomes one dead letter while
the rest of the batch is stored.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    model_validator,
)

from vitals.flags import ALL_FLAGS, SPECIAL_VALUE

SCHEMA_VERSION = 1
MAX_READINGS_PER_MESSAGE = 5000
# a gateway never sends more in one message (it splits a batch); the broker refuses
# packets beyond this plus 4 KiB (postop/mosquitto/broker.conf, max_packet_size)
MAX_MESSAGE_BYTES = 1_048_576

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$"
GATEWAY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")]


class WireReading(BaseModel):
    """One measurement: which sensor, what, when (epoch ms UTC), value, flags, sequence."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seq: Annotated[StrictInt, Field(ge=0)]
    device: DeviceId
    metric: MetricName
    time_ms: Annotated[StrictInt, Field(ge=0, lt=32_503_680_000_000)]
    value: StrictFloat | None
    flags: Annotated[StrictInt, Field(ge=0, le=ALL_FLAGS)] = 0

    @model_validator(mode="after")
    def _special_values_have_no_number(self) -> WireReading:
        special = bool(self.flags & SPECIAL_VALUE)
        if self.value is None and not special:
            raise ValueError("value is null but no special-value flag says why")
        if self.value is not None and special:
            raise ValueError("value is a number but a special-value flag is set")
        return self


class BatchEnvelope(BaseModel):
    """The message around the readings; readings are checked separately, one by one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    gateway: Annotated[str, Field(pattern=GATEWAY_ID_PATTERN)]
    sent_ms: Annotated[StrictInt, Field(ge=0)]
    readings: Annotated[list[Any], Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)]


class DeviceInfo(BaseModel):
    """What a gateway knows of one of its Bluetooth devices (Device Information service,
    battery, when it last heard from it): no identity, only the device id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: DeviceId
    manufacturer: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=64)
    serial: str | None = Field(default=None, max_length=64)
    firmware_revision: str | None = Field(default=None, max_length=64)
    battery_pct: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    last_seen_ms: Annotated[StrictInt, Field(ge=0)] | None = None
    # how far the device's clock was off (device minus gateway) when the gateway set it
    clock_skew_s: StrictInt | None = None


class GatewayStatus(BaseModel):
    """Retained status message; the last will publishes ``online: false``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    online: bool
    at_ms: Annotated[StrictInt, Field(ge=0)]
    outbox_depth: Annotated[StrictInt, Field(ge=0)] | None = None
    reason: str | None = Field(default=None, max_length=200)
    devices: Annotated[list[DeviceInfo], Field(max_length=64)] | None = None


class CommitAck(BaseModel):
    """Ingest's end-to-end acknowledgement: these outbox sequence ranges are committed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    seqs: Annotated[list[tuple[StrictInt, StrictInt]], Field(min_length=1, max_length=10_000)]


READING_ADAPTER: TypeAdapter[WireReading] = TypeAdapter(WireReading)


def encode_batch(gateway_id: str, sent_ms: int, readings: list[dict[str, Any]]) -> bytes:
    """Serialise a batch as compact JSON (the gateway side)."""
    body = {"v": SCHEMA_VERSION, "gateway": gateway_id, "sent_ms": sent_ms, "readings": readings}
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def encode_status(status: GatewayStatus) -> bytes:
    return status.model_dump_json(exclude_none=True).encode()
