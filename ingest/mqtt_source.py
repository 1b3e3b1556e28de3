"""The MQTT side of ingest: a persistent MQTT v5 session on shared subscriptions, with
manual acknowledgements so a PUBACK leaves only after the database commit.

paho's network thread only enqueues messages; the worker thread batches, writes, then
acks. ``Receive Maximum`` bounds how many unacknowledged messages the broker sends us,
so memory stays bounded while the database is down: nothing is acked, nothing is lost.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from vitals.settings import IngestSettings, MqttSettings
from vitals.topics import READINGS_FILTER, STATUS_FILTER, ack_topic, shared
from vitals.wire import CommitAck

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttSource:
    def __init__(self, mqtt_settings: MqttSettings, ingest: IngestSettings) -> None:
        self.inbox: queue.Queue[Incoming] = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._settings = mqtt_settings
        self._group = ingest.share_group
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=ingest.client_id, protocol=mqtt.MQTTv5
        )
        client.manual_ack_set(True)
        if mqtt_settings.username:
            password = mqtt_settings.password.get_secret_value() if mqtt_settings.password else None
            client.username_pw_set(mqtt_settings.username, password)
        if mqtt_settings.tls_ca_file:
            client.tls_set(
                ca_certs=str(mqtt_settings.tls_ca_file),
                certfile=str(mqtt_settings.tls_cert_file) if mqtt_settings.tls_cert_file else None,
                keyfile=str(mqtt_settings.tls_key_file) if mqtt_settings.tls_key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._receive_maximum = ingest.receive_maximum
        self._session_expiry_s = ingest.session_expiry_s

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(
            self._settings.host,
            self._settings.port,
            keepalive=self._settings.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, items: list[Incoming], committed: dict[str, list[tuple[int, int]]]) -> None:
        """After the commit: PUBACK the messages, then tell each gateway which outbox
        ranges are safely stored (QoS 0: a lost confirmation only causes a resend)."""
        for item in items:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)
        for gateway_id, spans in committed.items():
            body = CommitAck(v=1, seqs=spans).model_dump_json().encode()
            self._client.publish(ack_topic(gateway_id), body, qos=0)

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            return
        log.info("connected to broker %s:%s", self._settings.host, self._settings.port)
        client.subscribe(
            [(shared(self._group, READINGS_FILTER), 1), (shared(self._group, STATUS_FILTER), 1)]
        )
        self.connected.set()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        refused = [str(rc) for rc in codes if rc.is_failure]
        if refused:
            log.error("broker refused the subscriptions: %s", ", ".join(refused))
        else:
            log.info("subscribed to readings and status (shared group %r)", self._group)
            self.subscribed.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        log.warning("disconnected from broker: %s (will reconnect)", rc)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos))
