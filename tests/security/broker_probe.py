"""A raw MQTT client for attack tests: records the CONNACK, every SUBACK, every message
and whether the broker cut it off."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.stack import wait_for


class Probe:
    def __init__(self, client_id: str, username: str, password: str, port: int) -> None:
        self.connack: ReasonCode | None = None
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.received: list[str] = []
        self.disconnects = 0
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        client.on_disconnect = self._on_disconnect
        self.client = client
        client.connect("127.0.0.1", port, keepalive=10)
        client.loop_start()
        wait_for(lambda: self.connack is not None, 10, f"the CONNACK of {client_id}")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if self.connack is None:
            self.connack = rc

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        with self._lock:
            self.subacks[mid] = list(codes)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _rc: ReasonCode, _p: Any) -> None:
        self.disconnects += 1

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> ReasonCode:
        """The broker's answer to one SUBSCRIBE."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        wait_for(lambda: mid in self.subacks, 10, f"the SUBACK for {topic}")
        return self.subacks[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
