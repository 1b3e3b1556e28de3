"""MQTT uplink: batches from the outbox, published QoS 1 on a persistent MQTT v5 session.

Rows leave the outbox only when ingest confirms, on ``devices/{id}/ack``, that they are
committed in the database: the broker's PUBACK alone is not enough, because a broker can
still lose an acknowledged message (a crash inside its autosave interval; Mosquitto 2.0
does not restore shared subscriptions, nor what they queued, across a restart). Messages
not confirmed within ``ack_timeout_s`` are sent again, as is everything after any
reconnect; duplicates are harmless downstream (unique device/metric/time), gaps are not.
A PUBACK with a failure reason (say, not authorised) leaves the rows in the outbox.

Up to ``upload_window`` messages are unconfirmed at once, tracked by paho's message
handles and only ever touched by the uplink thread (no lock is held across a paho call:
paho runs our callbacks under its own locks).

The retained status topic says online/offline; the last will says offline when the
connection dies without a goodbye.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from gateway.outbox import Outbox, PendingReading
from vitals.gateway_config import ConfiguredDevice, GatewayConfig
from vitals.mqtt_session import connect_persistent, new_client
from vitals.settings import GatewaySettings, MqttSettings
from vitals.topics import ack_topic, config_topic, readings_topic, status_topic
from vitals.wire import (
    MAX_MESSAGE_BYTES,
    CommitAck,
    DeviceInfo,
    GatewayStatus,
    encode_batch,
    encode_status,
)

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
STATUS_EVERY_S = 60.0
RETRY_REFUSED_S = 30.0


def fitting_batch(
    gateway_id: str, sent_ms: int, rows: list[PendingReading]
) -> tuple[list[PendingReading], bytes]:
    """The longest prefix of ``rows`` whose message stays within MAX_MESSAGE_BYTES: the
    broker disconnects a client whose packet is bigger, and a gateway resending it would
    never get through. The rest goes in the next message."""
    while True:
        payload = encode_batch(gateway_id, sent_ms, [r.wire() for r in rows])
        if len(payload) <= MAX_MESSAGE_BYTES or len(rows) == 1:
            return rows, payload
        rows = rows[: max(1, len(rows) * MAX_MESSAGE_BYTES // len(payload) - 1)]


@dataclass(frozen=True, slots=True)
class _InFlight:
    info: mqtt.MQTTMessageInfo
    first_seq: int
    last_seq: int
    sent_at: float


class Uplink:
    def __init__(
        self,
        outbox: Outbox,
        mqtt_settings: MqttSettings,
        gateway: GatewaySettings,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._outbox = outbox
        self._mqtt = mqtt_settings
        self._gw = gateway
        self._clock_ms = clock_ms
        self._inflight: deque[_InFlight] = deque()  # uplink thread only
        self._sent_up_to = 0  # uplink thread only
        self._refused_mids: set[int] = set()  # written by paho's thread, read by ours
        self._acked_ranges: list[tuple[int, int]] = []  # likewise
        self._refused_lock = threading.Lock()
        self._connections = 0  # bumped by paho's thread on every (re)connect
        self._seen_connections = 0
        self._wake = threading.Event()
        self.connected = threading.Event()
        self.acked_readings = 0
        # the devices the configuration lists (the BLE central serves exactly those)
        self.on_devices: Callable[[list[ConfiguredDevice]], None] | None = None
        # what the gateway knows of its Bluetooth devices, carried by the status message
        self.device_info: Callable[[], list[DeviceInfo]] | None = None
        self._status_due = threading.Event()
        self._batch_max = gateway.upload_batch_max
        stored = outbox.get("upload_batch_max")
        if stored and stored.isdigit():
            self._batch_max = max(1, min(int(stored), 5000))
        client = new_client(mqtt_settings, gateway.gateway_id, username=gateway.gateway_id)
        will = GatewayStatus(v=1, online=False, at_ms=clock_ms(), reason="connection lost")
        client.will_set(status_topic(gateway.gateway_id), encode_status(will), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(gateway.upload_window + 2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.message_callback_add(config_topic(gateway.gateway_id), self._on_config)
        client.message_callback_add(ack_topic(gateway.gateway_id), self._on_ack)
        self._client = client

    # -- paho callbacks (paho's network thread) -----------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            return
        self._connections += 1
        client.subscribe(
            [(config_topic(self._gw.gateway_id), 1), (ack_topic(self._gw.gateway_id), 1)]
        )
        self._publish_status(online=True)
        self.connected.set()
        self._wake.set()
        log.info("gateway %s connected; outbox depth %d", self._gw.gateway_id, self._outbox.depth())

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.connected.clear()
        log.warning("gateway disconnected: %s (readings stay in the outbox)", rc)

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            with self._refused_lock:
                self._refused_mids.add(mid)
        self._wake.set()

    def _on_ack(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = CommitAck.model_validate_json(msg.payload)
        except ValidationError:
            log.warning("ignoring a malformed commit acknowledgement")
            return
        with self._refused_lock:
            self._acked_ranges.extend(ack.seqs)
        self._wake.set()

    def _on_config(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            cfg = GatewayConfig.model_validate_json(msg.payload)
        except ValidationError:
            log.warning("ignoring a configuration message that is not valid")
            return
        if cfg.upload_batch_max is not None:
            self._batch_max = max(1, min(cfg.upload_batch_max, 5000))
            self._outbox.put("upload_batch_max", str(self._batch_max))
        if cfg.devices is not None and self.on_devices is not None:
            self.on_devices(cfg.devices)

    # -- the uplink thread --------------------------------------------------------
    def _publish_status(self, *, online: bool, reason: str | None = None) -> mqtt.MQTTMessageInfo:
        st = GatewayStatus(
            v=1,
            online=online,
            at_ms=self._clock_ms(),
            outbox_depth=self._outbox.depth(),
            reason=reason,
            devices=self.device_info() if self.device_info is not None else None,
        )
        return self._client.publish(
            status_topic(self._gw.gateway_id), encode_status(st), qos=1, retain=True
        )

    def _resend_all(self) -> None:
        self._inflight.clear()
        self._sent_up_to = 0

    def _settle(self) -> bool:
        """Delete the rows ingest confirmed; resend what timed out; False if the broker
        refused a message."""
        if self._connections != self._seen_connections:  # reconnected: resend everything
            self._seen_connections = self._connections
            self._resend_all()
        with self._refused_lock:
            acked, self._acked_ranges = self._acked_ranges, []
            refused = [
                m
                for m in self._inflight
                if m.info.is_published() and m.info.mid in self._refused_mids
            ]
            self._refused_mids.clear()
        for lo, hi in acked:
            self._outbox.delete_range(lo, hi)
            self.acked_readings += hi - lo + 1
        if acked:
            self._inflight = deque(
                m
                for m in self._inflight
                if not any(lo <= m.first_seq and m.last_seq <= hi for lo, hi in acked)
            )
        if refused:
            log.error(
                "the broker refused readings %d-%d; they stay in the outbox",
                refused[0].first_seq,
                refused[0].last_seq,
            )
            self._resend_all()
            return False
        deadline = time.monotonic() - self._gw.ack_timeout_s
        if self._inflight and self._inflight[0].sent_at < deadline:
            log.warning(
                "readings %d-%d not confirmed in %.0f s; sending again from the oldest",
                self._inflight[0].first_seq,
                self._inflight[0].last_seq,
                self._gw.ack_timeout_s,
            )
            self._resend_all()
        return True

    def _next_rows(self) -> list[PendingReading]:
        if len(self._inflight) >= self._gw.upload_window:
            return []
        return self._outbox.pending_after(self._sent_up_to, self._batch_max)

    def _publish(self, rows: list[PendingReading]) -> bool:
        rows, payload = fitting_batch(self._gw.gateway_id, self._clock_ms(), rows)
        info = self._client.publish(readings_topic(self._gw.gateway_id), payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.debug(
                "publish of readings %d-%d not accepted: %s",
                rows[0].seq,
                rows[-1].seq,
                mqtt.error_string(info.rc),
            )
            return False
        log.debug("published readings %d-%d", rows[0].seq, rows[-1].seq)
        self._inflight.append(_InFlight(info, rows[0].seq, rows[-1].seq, time.monotonic()))
        self._sent_up_to = rows[-1].seq
        return True

    def start(self) -> None:
        connect_persistent(self._client, self._mqtt, SESSION_EXPIRY_S)

    def notify(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    def status_changed(self) -> None:
        """Publish the status soon (the devices' information changed)."""
        self._status_due.set()
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        last_status = time.monotonic()
        while not stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if not self._settle():
                stop.wait(RETRY_REFUSED_S)
                continue
            lingered = False
            while self.connected.is_set() and not stop.is_set():
                rows = self._next_rows()
                if not rows:
                    break
                if len(rows) < self._batch_max and self._gw.upload_linger_s and not lingered:
                    lingered = True  # a trickle: wait a moment so readings share a message
                    stop.wait(self._gw.upload_linger_s)
                    self._settle()
                    continue
                lingered = False
                if not self._publish(rows):
                    break
            due = self._status_due.is_set() or time.monotonic() - last_status > STATUS_EVERY_S
            if self.connected.is_set() and due:
                self._status_due.clear()
                self._publish_status(online=True)
                last_status = time.monotonic()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Drain what is in flight, say goodbye (status offline), disconnect."""
        deadline = time.monotonic() + timeout_s
        while self._inflight and time.monotonic() < deadline and self.connected.is_set():
            self._settle()
            time.sleep(0.05)
        if self.connected.is_set():
            info = self._publish_status(online=False, reason="gateway stopped")
            try:
                info.wait_for_publish(2)
            except (RuntimeError, ValueError):
                log.warning("could not confirm the offline status before disconnecting")
        self._client.disconnect()
        self._client.loop_stop()
