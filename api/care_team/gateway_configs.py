"""Sends each gateway its retained configuration (``devices/{gateway}/config``: the
devices it serves) once the database holds a change: woken after each change's commit,
and every ``every_s`` seconds for what an unreachable broker left pending
(``store.gateway_configs``). Provisioning never waits for the broker and never fails
because of it: the configuration follows when the broker is back, at the latest at the
next round; a later change sends the then current list (a retained message is the whole
list, so sending it again is harmless)."""

from __future__ import annotations

import json
import logging
import threading
import time

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.reasoncodes import ReasonCode

from store.gateway_configs import config_payload, mark_failed, mark_published, pending
from vitals.mqtt_session import new_client
from vitals.settings import MqttSettings
from vitals.topics import config_topic

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 5.0


class ConfigPublisher:
    def __init__(self, conninfo: str, mqtt_settings: MqttSettings, every_s: float = 10.0) -> None:
        self._conninfo = conninfo
        self._mqtt = mqtt_settings
        self._every_s = every_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-configs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=ACK_TIMEOUT_S + 5)

    def wake(self) -> None:
        """A gateway's devices changed and the change is committed: publish now."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.publish_pending()
            except Exception:  # a database or broker fault: the marks stay, next round
                log.exception(
                    "gateway configurations not published; retry in %.0f s", self._every_s
                )
            self._wake.wait(self._every_s)

    def publish_pending(self) -> int:
        """Publish every pending configuration; how many the broker acknowledged."""
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            items = pending(conn)
            if not items:
                return 0
            client_id = self._mqtt.username or "api"
            client = new_client(self._mqtt, client_id)
            acks: dict[int, ReasonCode] = {}
            connected = threading.Event()
            refused: list[str] = []

            def on_connect(
                _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
            ) -> None:
                if rc.is_failure:
                    refused.append(str(rc))
                connected.set()

            def on_publish(
                _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object
            ) -> None:
                acks[mid] = rc

            client.on_connect = on_connect
            client.on_publish = on_publish
            try:
                client.connect(self._mqtt.host, self._mqtt.port, keepalive=self._mqtt.keepalive_s)
            except OSError as exc:
                reason = f"broker unreachable ({type(exc).__name__})"
                for item in items:
                    mark_failed(conn, item, reason)
                log.warning(
                    "%d gateway configuration(s) not published: %s; retry in %.0f s",
                    len(items),
                    reason,
                    self._every_s,
                )
                return 0
            client.loop_start()
            done = 0
            try:
                if not connected.wait(ACK_TIMEOUT_S) or refused:
                    reason = (
                        f"broker refused the connection: {refused[0]}"
                        if refused
                        else ("no answer to CONNECT")
                    )
                    for item in items:
                        mark_failed(conn, item, reason)
                    log.warning("gateway configurations not published: %s", reason)
                    return 0
                for item in items:
                    payload = json.dumps(config_payload(conn, item.gateway_id))
                    info = client.publish(
                        config_topic(item.gateway_id), payload, qos=1, retain=True
                    )
                    deadline = time.monotonic() + ACK_TIMEOUT_S
                    while info.mid not in acks and time.monotonic() < deadline:
                        time.sleep(0.01)
                    rc = acks.get(info.mid)
                    if rc is None or rc.is_failure:
                        reason = f"publish {'not acknowledged' if rc is None else f'refused: {rc}'}"
                        mark_failed(conn, item, reason)
                        log.warning(
                            "configuration of %s not published: %s", item.gateway_id, reason
                        )
                        continue
                    mark_published(conn, item)
                    done += 1
                    log.info("configuration of %s published", item.gateway_id)
            finally:
                client.disconnect()
                client.loop_stop()
            return done
