"""The local link between devices and their home gateway.

Real kits talk Bluetooth Low Energy; here a device (or the simulator standing in for its
firmware) sends each GATT notification or indication to the gateway as one line of JSON
over a loopback TCP connection: which device, which characteristic (16-bit UUID), the
characteristic value bytes exactly as they would be on air (hex), and the time the link
layer received it (epoch ms UTC, from the gateway host's clock or the simulated clock).

Values that no Bluetooth SIG characteristic carries (respiratory rate from a patch's
vendor service, step counts, a pain score the patient types) arrive as ``entry`` frames
with an already-decoded number.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from vitals.wire import DeviceId, MetricName

MAX_LINE_BYTES = 4096


class ManualEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    metric: MetricName
    value: float


class LinkFrame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: DeviceId
    rx_ms: Annotated[StrictInt, Field(ge=0)]
    char: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{4}$")] | None = None
    data: Annotated[str, Field(pattern=r"^([0-9A-Fa-f]{2}){1,512}$")] | None = None
    entry: ManualEntry | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> LinkFrame:
        gatt = self.char is not None and self.data is not None
        if gatt == (self.entry is not None) or (self.char is None) != (self.data is None):
            raise ValueError("a frame carries either char+data (GATT) or entry, not both")
        return self

    @property
    def char_uuid(self) -> int | None:
        return int(self.char, 16) if self.char is not None else None

    @property
    def payload(self) -> bytes:
        return bytes.fromhex(self.data) if self.data is not None else b""


def gatt_frame(device: str, char_uuid: int, payload: bytes, rx_ms: int) -> bytes:
    """One encoded line for a GATT characteristic value."""
    frame = LinkFrame(device=device, rx_ms=rx_ms, char=f"{char_uuid:04X}", data=payload.hex())
    return frame.model_dump_json(exclude_none=True).encode() + b"\n"


def entry_frame(device: str, metric_name: str, value: float, rx_ms: int) -> bytes:
    """One encoded line for a value that no SIG characteristic carries."""
    frame = LinkFrame(
        device=device, rx_ms=rx_ms, entry=ManualEntry(metric=metric_name, value=value)
    )
    return frame.model_dump_json(exclude_none=True).encode() + b"\n"
