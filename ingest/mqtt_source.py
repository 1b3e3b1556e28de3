"""The MQTT side of ingest: a persistent MQTT v5 session on shared subscriptions, with
manual acknowledgements so a PUBACK leaves only after the database commit.

paho's network thread only enqueues messages; the worker thread batches, writes, then
acks. ``Receive Maximum`` bounds how many unacknowledged messages the broker sends us,
so memory stays bounded while the database is down: nothing is acked, nothing is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from vitals.mqtt_session import connect_persistent, new_client
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
        if mqtt_settings.username and mqtt_settings.username != ingest.client_id:
            log.warning(
                "MQTT account %r with client id %r: the broker accepts an account only with"
                " the client id of the same name",
                mqtt_settings.username,
                ingest.client_id,
            )
        client = new_client(mqtt_settings, ingest.client_id)
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._receive_maximum = ingest.receive_maximum
        self._session_expiry_s = ingest.session_expiry_s

    def start(self) -> None:
        connect_persistent(
            self._client, self._settings, self._session_expiry_s, self._receive_maximum
        )

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
            log.error(
                "broker refused the connection: %s (each ingest worker needs its own MQTT"
                " account, used with the client id of the same name)",
                rc,
            )
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
