"""The gateway's own view of a Bluetooth LE radio, so the host stack can change (bumble
today, see ``radio_bumble.py``) without touching what the central does with devices.

Everything here is asyncio and 16-bit SIG UUIDs; addresses are strings ``AA:BB:...``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class RadioError(Exception):
    """A radio operation failed (link lost, timeout, refused by the device); ``att_error``
    is the device's ATT error code when it refused."""

    def __init__(self, message: str, att_error: int | None = None) -> None:
        super().__init__(message)
        self.att_error = att_error


class InsufficientSecurity(RadioError):
    """The device answered ATT 'insufficient authentication' or 'insufficient
    encryption': the operation needs a paired, encrypted link."""


class LinkLost(RadioError):
    """The link dropped before the operation ended (device out of range, switched off,
    controller gone): what was asked of the device will not be answered."""


class BondLost(RadioError):
    """We hold keys for this device but it no longer accepts them (it was reset or lost
    its bonds): forget ours and pair again."""


class PeerLink(Protocol):
    """One connected device."""

    address: str
    disconnected: asyncio.Event

    async def discover(self) -> set[int]:
        """The characteristics the device serves (16-bit UUIDs)."""
        ...

    def has(self, char_uuid: int) -> bool: ...

    async def read(self, char_uuid: int) -> bytes: ...

    async def write(self, char_uuid: int, value: bytes) -> None:
        """Write with response (the device confirms or refuses)."""
        ...

    async def subscribe(self, char_uuid: int, on_value: Callable[[bytes], None]) -> None:
        """Enable notifications or indications (whichever the characteristic offers).
        ``on_value`` runs for every value, before an indication is confirmed; calling
        again with the same callback never registers it twice."""
        ...

    async def secure(self) -> bool:
        """Encrypt the link: with the bond if we have one (BondLost if the device no
        longer has it), else pair and bond (LE Secure Connections). True if it paired."""
        ...

    async def forget_bond(self) -> None: ...

    async def disconnect(self) -> None: ...


class Radio(Protocol):
    async def open(self) -> None: ...

    def seen(self, address: str, within_s: float) -> bool:
        """Whether the device advertised in the last ``within_s`` seconds."""
        ...

    async def connect(self, address: str, timeout_s: float) -> PeerLink: ...

    async def wait_lost(self) -> None:
        """Return when the controller is gone (its transport closed: USB dongle
        unplugged, virtual radio stopped); every open link is then lost too."""
        ...

    async def forget(self, address: str) -> None:
        """Delete our bond with a device (no longer ours to serve)."""
        ...

    async def close(self) -> None: ...
