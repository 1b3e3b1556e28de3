"""Is the MQTT broker up and does it accept this account? One short MQTT v5 CONNECT,
then DISCONNECT: what readiness checks and what the services log when the broker stays
unreachable (a dead broker sends no last will, so nothing else would say it)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from vitals.mqtt_session import new_client
from vitals.settings import MqttSettings


def probe_broker(settings: MqttSettings, client_id: str, timeout_s: float = 2.0) -> str | None:
    """None when the broker accepted a connection with this account, else why not (a
    short reason with no secret in it)."""
    client = new_client(settings, client_id)
    answer: list[str | None] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        answer.append(f"refused: {rc}" if rc.is_failure else None)
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=max(5, int(timeout_s) + 1))
    except OSError as exc:
        return f"unreachable ({type(exc).__name__})"
    deadline = time.monotonic() + timeout_s
    try:
        while not done.is_set() and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
    finally:
        if answer and answer[0] is None:
            client.disconnect()
        sock = client.socket()
        if sock is not None:
            sock.close()
    if not answer:
        return "no answer to CONNECT"
    return answer[0]


@dataclass
class BrokerWatch:
    """The last probe's outcome, re-probed at most every ``every_s`` seconds, so a readiness
    endpoint polled often costs one CONNECT per period."""

    settings: MqttSettings
    client_id: str
    every_s: float = 5.0
    _at: float = -1e9
    _reason: str | None = "not probed yet"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reason(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._at >= self.every_s:
                self._reason = probe_broker(self.settings, self.client_id)
                self._at = time.monotonic()
            return self._reason
