"""The retained configuration downlink, ``devices/{gateway}/config``: what the backend
tells a gateway. The devices listed are the only ones it connects to and pairs with;
any other device in radio range is ignored."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from vitals.wire import DeviceId

BLE_ADDRESS_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"


class ConfiguredDevice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: DeviceId
    address: Annotated[str, Field(pattern=BLE_ADDRESS_PATTERN)]
    kind: str | None = None


class GatewayConfig(BaseModel):
    """Fields a gateway does not know are ignored (a newer backend may add some)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    upload_batch_max: Annotated[int, Field(ge=1)] | None = None
    devices: list[ConfiguredDevice] | None = None
