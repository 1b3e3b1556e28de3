"""Mosquitto's own counters, read from ``$SYS`` by a monitor account: above all the
count of dropped messages, which must not move during a benchmark (a dropped QoS 1
message is a lost reading)."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MONITOR_USER = "monitor"
MONITOR_PASSWORD = "bench-monitor"
MONITOR_ACL = f"\nuser {MONITOR_USER}\ntopic read $SYS/#\n"
DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_CONF = ("sys_interval 1",)


def read_counter(port: int, topic: str = DROPPED, timeout_s: float = 15.0) -> int:
    """The counter's current (retained) value."""
    got = threading.Event()
    value: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(MONITOR_USER, MONITOR_PASSWORD)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        value.append(int(msg.payload))
        got.set()

    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=0)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not got.wait(timeout_s):
            raise RuntimeError(f"the broker published no {topic}")
    finally:
        client.disconnect()
        client.loop_stop()
    return value[0]
