"""Plain MQTT clients for tests: a stand-in gateway that publishes prepared batches, and
an observer that records what crosses the broker."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from vitals.catalogue import metric
from vitals.topics import readings_topic
from vitals.wire import encode_batch


def connect(
    client_id: str, username: str, password: str, port: int, *, persistent: bool = False
) -> mqtt.Client:
    """Connected and looping; a persistent session outlives disconnects and broker restarts."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600 if persistent else 0
    client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    client.loop_start()
    if not connected.wait(10):
        raise AssertionError(f"{username} could not connect to the broker")
    return client


class Publisher:
    """Publishes raw payloads QoS 1 and keeps each PUBACK's reason code."""

    def __init__(self, gateway_id: str, password: str, port: int) -> None:
        self.gateway_id = gateway_id
        self.acks: dict[int, ReasonCode] = {}
        self._done = threading.Condition()
        self.client = connect(gateway_id, gateway_id, password, port)  # its bound client id
        self.client.on_publish = self._on_publish

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._done:
            self.acks[mid] = rc
            self._done.notify_all()

    def publish(self, payload: bytes, topic: str | None = None) -> int:
        info = self.client.publish(topic or readings_topic(self.gateway_id), payload, qos=1)
        return info.mid

    def wait_acks(self, mids: list[int], timeout_s: float = 60) -> list[ReasonCode]:
        deadline = time.monotonic() + timeout_s
        with self._done:
            while not all(m in self.acks for m in mids):
                if not self._done.wait(max(deadline - time.monotonic(), 0)):
                    raise AssertionError(f"{len(mids) - len(self.acks)} PUBACKs missing")
        return [self.acks[m] for m in mids]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def spo2_batch(gateway_id: str, device: str, first_seq: int, n: int, t0_ms: int) -> bytes:
    """``n`` SpO2 readings one second apart, sequence numbers from ``first_seq``."""
    m = metric("spo2_pct").name
    readings = [
        {
            "seq": first_seq + i,
            "device": device,
            "metric": m,
            "time_ms": t0_ms + (first_seq + i) * 1000,
            "value": 95.0 + (first_seq + i) % 5,
            "flags": 0,
        }
        for i in range(n)
    ]
    return encode_batch(gateway_id, t0_ms, readings)
