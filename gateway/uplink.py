"""MQTT uplink: batches from the outbox, published QoS 1 on a persistent MQTT v5 session;
rows are deleted only when the broker's PUBACK for their message arrives.

Up to ``upload_window`` messages are in flight. After any reconnect everything still in
the outbox is sent again from the oldest row: the broker may not have kept what was in
flight, and a duplicate is harmless downstream (unique device/metric/time), a gap is not.
The retained status topic says online/offline; the last will says offline when the
connection dies without a goodbye.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.outbox import Outbox, PendingReading
from vitals.settings import GatewaySettings, MqttSettings
from vitals.topics import config_topic, readings_topic, status_topic
from vitals.wire import GatewayStatus, encode_batch, encode_status

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
STATUS_EVERY_S = 60.0


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
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[int, int]] = {}
        self._sent_up_to = 0
        self._wake = threading.Event()
        self.connected = threading.Event()
        self.acked_readings = 0
        self._batch_max = gateway.upload_batch_max
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=gateway.gateway_id, protocol=mqtt.MQTTv5
        )
        password = mqtt_settings.password.get_secret_value() if mqtt_settings.password else None
        client.username_pw_set(mqtt_settings.username or gateway.gateway_id, password)
        if mqtt_settings.tls_ca_file:
            client.tls_set(
                ca_certs=str(mqtt_settings.tls_ca_file),
                certfile=str(mqtt_settings.tls_cert_file) if mqtt_settings.tls_cert_file else None,
                keyfile=str(mqtt_settings.tls_key_file) if mqtt_settings.tls_key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        will = GatewayStatus(v=1, online=False, at_ms=clock_ms(), reason="connection lost")
        client.will_set(status_topic(gateway.gateway_id), encode_status(will), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(max(gateway.upload_window, 1) + 2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_config
        self._client = client
        stored = outbox.get("upload_batch_max")
        if stored and stored.isdigit():
            self._batch_max = max(1, min(int(stored), 5000))

    # -- paho callbacks (network thread) ------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            return
        with self._lock:
            self._inflight.clear()
            self._sent_up_to = 0
        client.subscribe(config_topic(self._gw.gateway_id), qos=1)
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
        with self._lock:
            span = self._inflight.pop(mid, None)
        if span is None:
            return
        if rc.is_failure:
            log.error("broker refused readings %d-%d: %s; they stay in the outbox", *span, rc)
            with self._lock:
                self._sent_up_to = min(self._sent_up_to, span[0] - 1)
            return
        self._outbox.delete_range(*span)
        self.acked_readings += span[1] - span[0] + 1
        self._wake.set()

    def _on_config(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            cfg = json.loads(msg.payload)
            batch = int(cfg["upload_batch_max"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring configuration message without a valid upload_batch_max")
            return
        self._batch_max = max(1, min(batch, 5000))
        self._outbox.put("upload_batch_max", str(self._batch_max))

    # -- uplink loop (own thread) ------------------------------------------------
    def _publish_status(self, *, online: bool, reason: str | None = None) -> mqtt.MQTTMessageInfo:
        st = GatewayStatus(
            v=1,
            online=online,
            at_ms=self._clock_ms(),
            outbox_depth=self._outbox.depth(),
            reason=reason,
        )
        return self._client.publish(
            status_topic(self._gw.gateway_id), encode_status(st), qos=1, retain=True
        )

    def _next_rows(self) -> list[PendingReading]:
        """The next batch to send, or nothing when the window is full or the outbox empty."""
        with self._lock:
            if len(self._inflight) >= self._gw.upload_window:
                return []
            after = self._sent_up_to
        return self._outbox.pending_after(after, self._batch_max)

    def _publish(self, rows: list[PendingReading]) -> bool:
        payload = encode_batch(self._gw.gateway_id, self._clock_ms(), [r.wire() for r in rows])
        with self._lock:  # held so the PUBACK callback cannot run before the span is known
            info = self._client.publish(readings_topic(self._gw.gateway_id), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return False
            self._inflight[info.mid] = (rows[0].seq, rows[-1].seq)
            self._sent_up_to = rows[-1].seq
        return True

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(
            self._mqtt.host,
            self._mqtt.port,
            keepalive=self._mqtt.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def notify(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        last_status = time.monotonic()
        while not stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            lingered = False
            while self.connected.is_set() and not stop.is_set():
                rows = self._next_rows()
                if not rows:
                    break
                if len(rows) < self._batch_max and self._gw.upload_linger_s and not lingered:
                    lingered = True  # a trickle: wait a moment so readings share a message
                    stop.wait(self._gw.upload_linger_s)
                    continue
                lingered = False
                if not self._publish(rows):
                    break
            if self.connected.is_set() and time.monotonic() - last_status > STATUS_EVERY_S:
                self._publish_status(online=True)
                last_status = time.monotonic()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Drain what is in flight, say goodbye (status offline), disconnect."""
        deadline = time.monotonic() + timeout_s
        while self._inflight and time.monotonic() < deadline and self.connected.is_set():
            time.sleep(0.05)
        if self.connected.is_set():
            info = self._publish_status(online=False, reason="gateway stopped")
            try:
                info.wait_for_publish(2)
            except (RuntimeError, ValueError):
                log.warning("could not confirm the offline status before disconnecting")
        self._client.disconnect()
        self._client.loop_stop()
