"""Mosquitto's own counters, read from ``$SYS`` by a monitor account: above all the
count of dropped messages, which must not move during a benchmark (a dropped QoS 1
message is a lost reading).

Mosquitto publishes a ``$SYS`` value only when it changes, retained with a message
expiry of 60 s (``sys_tree.c``). A client that connects more than a minute after the last
change gets nothing at all: a bench run once failed that way after its slow Node-RED
flow, and retrying cannot help. So one client follows the counter from the broker's start
to its end and keeps the last value published.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from store.broker_acl import BrokerAccount, observer_account
from store.mqtt_accounts import hash_password

MONITOR_USER = "monitor"
MONITOR_PASSWORD = "bench-monitor"


def monitor_account() -> BrokerAccount:
    """Reads the broker's ``$SYS`` counters, nothing else."""
    return observer_account(MONITOR_USER, hash_password(MONITOR_PASSWORD), ("$SYS/#",))


DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_INTERVAL_S = 1
# every second, and the subscriptions in the log (a consumer must hold its subscription
# while it is away, or the broker queues nothing for it)
SYS_CONF = (f"sys_interval {SYS_INTERVAL_S}", "log_type subscribe", "log_type unsubscribe")


class CounterWatch:
    """A ``$SYS`` counter followed for as long as the watch is open (open it right after
    the broker starts: the first value is published within ``SYS_INTERVAL_S``)."""

    def __init__(self, port: int, topic: str = DROPPED) -> None:
        self.topic = topic
        self._value: int | None = None
        self._got = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.username_pw_set(MONITOR_USER, MONITOR_PASSWORD)
        # on every (re)connection: a reconnect keeps the last value seen
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=0)
        self._client.on_message = self._on_message
        self._port = port

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._value = int(msg.payload)
        self._got.set()

    def __enter__(self) -> CounterWatch:
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def value(self, timeout_s: float = 15.0) -> int:
        """The counter now: waits one publication interval so that what happened until
        this call is counted."""
        time.sleep(SYS_INTERVAL_S + 0.5)
        if not self._got.wait(timeout_s):
            raise RuntimeError(f"the broker published no {self.topic} in {timeout_s:.0f} s")
        assert self._value is not None
        return self._value
