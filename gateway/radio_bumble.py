"""The gateway's radio on Google's bumble host stack: any HCI controller bumble can open
(``usb:0`` for a dongle, ``hci-socket:0`` for an onboard controller, ``tcp-client:HOST:PORT``
for a virtual one in tests). Bonds are kept in a JSON file created 0600 in a 0700 folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from bumble import att, hci
from bumble.core import PhysicalTransport
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.keys import JsonKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import Transport

from gateway.radio import BondLost, InsufficientSecurity, LinkLost, PeerLink, RadioError

log = logging.getLogger(__name__)
T = TypeVar("T")

DISCONNECT_TIMEOUT_S = 3.0
POWER_ON_TIMEOUT_S = 60.0  # generous: a loaded host answers late, a dead one never
_MIC_FAILURE = hci.HCI_ErrorCode.CONNECTION_TERMINATED_DUE_TO_MIC_FAILURE_ERROR
_NEEDS_SECURITY = {
    att.ErrorCode.INSUFFICIENT_AUTHENTICATION,
    att.ErrorCode.INSUFFICIENT_ENCRYPTION,
}


class PrivateJsonKeyStore(JsonKeyStore):
    """bumble's JSON key store, written 0600 (the keys let anyone impersonate the
    gateway to the patient's devices)."""

    async def save(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.directory_name.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.filename.with_name(self.filename.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(db, out, sort_keys=True, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.filename)


def _address(text: str) -> hci.Address:
    return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)


def _uuid16(proxy: CharacteristicProxy[Any]) -> int | None:
    raw = proxy.uuid.to_bytes()
    return int.from_bytes(raw, "little") if len(raw) == 2 else None


def _radio_error(exc: BaseException) -> RadioError:
    if isinstance(exc, att.ATT_Error):
        if exc.error_code in _NEEDS_SECURITY:
            return InsufficientSecurity(str(exc), int(exc.error_code))
        return RadioError(f"ATT error 0x{int(exc.error_code):02X}", int(exc.error_code))
    return RadioError(f"{type(exc).__name__}: {exc}")


class BumblePeer:
    """One connection. Every operation ends with the link: bumble's host silently drops
    a request sent on a connection it has already forgotten, and its GATT client then
    waits its 30 s ATT timeout (a request already sent is cancelled on disconnection,
    one sent after is not). A session that went on reading after the device left (device
    information after RACP) stalled the device's next connection that way; here such an
    operation raises ``LinkLost`` at once."""

    def __init__(self, device: Device, connection: Connection, address: str) -> None:
        self._device = device
        self._conn = connection
        self._peer = Peer(connection)
        self.address = address
        self.disconnected = asyncio.Event()
        self.disconnect_reason: int | None = None
        self._chars: dict[int, CharacteristicProxy[Any]] = {}
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        if device.connections.get(connection.handle) is not connection:
            self.disconnected.set()  # gone before we listened

    def _on_disconnection(self, reason: int) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()

    async def _op(self, what: str, operation: Awaitable[T]) -> T:
        """Run one operation on the link; ``LinkLost`` as soon as the link drops."""
        if self._device.connections.get(self._conn.handle) is not self._conn:
            self.disconnected.set()
        task = asyncio.ensure_future(operation)
        if self.disconnected.is_set():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise LinkLost(f"{what}: link lost")
        lost = asyncio.ensure_future(self.disconnected.wait())
        try:
            await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if task.cancelled():
            raise LinkLost(f"{what}: link lost")
        exc = task.exception()
        if exc is None:
            return task.result()
        if isinstance(exc, RadioError):
            raise exc
        if self.disconnected.is_set():
            raise LinkLost(f"{what}: link lost ({type(exc).__name__})") from exc
        raise _radio_error(exc) from exc

    async def discover(self) -> set[int]:
        async def discover_all() -> None:
            await self._peer.discover_services()
            for service in self._peer.services:
                await service.discover_characteristics()
                for c in service.characteristics:
                    uuid = _uuid16(c)
                    if uuid is not None:
                        self._chars.setdefault(uuid, c)

        await self._op("discover", discover_all())
        return set(self._chars)

    def has(self, char_uuid: int) -> bool:
        return char_uuid in self._chars

    def _char(self, char_uuid: int) -> CharacteristicProxy[Any]:
        try:
            return self._chars[char_uuid]
        except KeyError:
            raise RadioError(f"characteristic 0x{char_uuid:04X} not served") from None

    async def read(self, char_uuid: int) -> bytes:
        char = self._char(char_uuid)
        return bytes(await self._op(f"read 0x{char_uuid:04X}", self._peer.read_value(char)))

    async def write(self, char_uuid: int, value: bytes) -> None:
        char = self._char(char_uuid)
        await self._op(
            f"write 0x{char_uuid:04X}", self._peer.write_value(char, value, with_response=True)
        )

    async def subscribe(self, char_uuid: int, on_value: Callable[[bytes], None]) -> None:
        char = self._char(char_uuid)
        await self._op(
            f"subscribe 0x{char_uuid:04X}", self._peer.gatt_client.subscribe(char, on_value)
        )

    async def secure(self) -> bool:
        if self._conn.is_encrypted:
            return False
        keystore = self._device.keystore
        bonded = keystore is not None and await keystore.get(str(self._conn.peer_address))
        try:
            if bonded:
                await self._op("encrypt", self._conn.encrypt())
                return False
            await self._op("pair", self._conn.pair())
            return True
        except LinkLost as exc:
            # a device that no longer has our key may end the link (MIC failure)
            if bonded and self.disconnect_reason == _MIC_FAILURE:
                raise BondLost(f"{self.address} refused our keys: {exc}") from exc
            raise
        except RadioError as exc:
            if bonded:
                raise BondLost(f"{self.address} refused our keys: {exc}") from exc
            raise

    async def forget_bond(self) -> None:
        if self._device.keystore is not None:
            with contextlib.suppress(KeyError):
                await self._device.keystore.delete(str(self._conn.peer_address))

    async def disconnect(self) -> None:
        if not self.disconnected.is_set():
            try:  # bounded: a controller may never confirm (virtual one, dongle pulled)
                await asyncio.wait_for(self._conn.disconnect(), DISCONNECT_TIMEOUT_S)
            except Exception as exc:
                log.debug("disconnect from %s: %s", self.address, exc)


class BumbleRadio:
    def __init__(self, transport_spec: str, gateway_id: str, bonds_path: Path) -> None:
        self._spec = transport_spec
        self._gateway_id = gateway_id
        self._bonds_path = bonds_path
        self._transport: Transport | None = None
        self._device: Device | None = None
        self._seen: dict[str, float] = {}
        self._connect_lock = asyncio.Lock()
        self._peers: weakref.WeakSet[BumblePeer] = weakref.WeakSet()
        self._lost = asyncio.Event()

    async def open(self) -> None:
        """Open the controller (again, after ``wait_lost``: a new host on a new transport;
        the bonds stay in their file)."""
        self._lost = asyncio.Event()
        self._seen.clear()
        try:
            self._transport = await open_transport(self._spec)
        except Exception as exc:
            raise _radio_error(exc) from exc
        transport = self._transport
        transport.source.terminated.add_done_callback(
            lambda _done: self._on_transport_lost(transport)
        )
        digest = hashlib.sha256(b"gateway:" + self._gateway_id.encode()).digest()
        raw = bytearray(digest[:6])
        raw[0] |= 0xC0  # a static random address, stable for this gateway
        config = DeviceConfiguration()
        config.name = "postop-gateway"
        config.address = hci.Address(
            ":".join(f"{b:02X}" for b in raw), hci.Address.RANDOM_DEVICE_ADDRESS
        )
        config.irk = digest[6:22]
        device = Device.from_config_with_hci(config, self._transport.source, self._transport.sink)
        device.keystore = PrivateJsonKeyStore(self._gateway_id, str(self._bonds_path))
        device.pairing_config_factory = lambda _c: PairingConfig(
            sc=True,
            mitm=False,
            bonding=True,
            delegate=PairingDelegate(PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
        )
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)

        async def start() -> None:
            await device.power_on()
            await device.start_scanning(active=False, filter_duplicates=False)

        try:  # bounded: a controller that accepts the transport may still never answer
            await asyncio.wait_for(start(), POWER_ON_TIMEOUT_S)
        except Exception as exc:  # the controller went away while starting
            self._transport = None
            with contextlib.suppress(Exception):
                await transport.close()
            raise _radio_error(exc) from exc
        self._device = device

    def _on_transport_lost(self, transport: Transport) -> None:
        """The controller is gone: no link on it lives on (bumble says nothing of them).
        A transport we closed ourselves, or an earlier one, says nothing here."""
        if transport is not self._transport or self._lost.is_set():
            return
        log.warning("the Bluetooth controller's transport closed (%s)", self._spec)
        self._lost.set()
        self._seen.clear()
        for peer in list(self._peers):
            peer.disconnected.set()

    async def wait_lost(self) -> None:
        await self._lost.wait()

    def _on_advertisement(self, adv: Advertisement) -> None:
        self._seen[adv.address.to_string(False)] = time.monotonic()

    def seen(self, address: str, within_s: float) -> bool:
        if self._lost.is_set():
            return False
        at = self._seen.get(address.upper())
        return at is not None and time.monotonic() - at <= within_s

    async def connect(self, address: str, timeout_s: float) -> PeerLink:
        device = self._device
        if device is None or self._lost.is_set():
            raise RadioError("no Bluetooth controller")
        async with self._connect_lock:
            try:
                conn = await device.connect(
                    _address(address), transport=PhysicalTransport.LE, timeout=timeout_s
                )
            except Exception as exc:
                raise _radio_error(exc) from exc
        peer = BumblePeer(device, conn, address)
        self._peers.add(peer)
        if self._lost.is_set():
            peer.disconnected.set()
        return peer

    async def forget(self, address: str) -> None:
        if self._device is not None and self._device.keystore is not None:
            with contextlib.suppress(KeyError):
                await self._device.keystore.delete(str(_address(address)))

    async def close(self) -> None:
        device, transport = self._device, self._transport
        self._device = self._transport = None
        if device is not None and not self._lost.is_set():
            try:
                await device.stop_scanning()
            except Exception as exc:
                log.debug("stop scanning: %s", exc)
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close()
