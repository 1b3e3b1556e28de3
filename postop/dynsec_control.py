"""Making a running Mosquitto's dynamic-security plugin match the accounts derived from
the database, over its control topic, as the admin account.

The plugin only reads its JSON file at start (a SIGHUP does not reload it): changes while
the broker runs go through ``$CONTROL/dynamic-security/v1``. Passwords are not sent: they
live in the password file (see store/broker_acl.py).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from store.broker_acl import (
    ADMIN_ACCOUNT,
    CONTROL_TOPIC,
    BrokerAccount,
    create_commands,
    delete_commands,
    own_role,
)

log = logging.getLogger(__name__)

# harmless when making the broker match: already there, or already gone
_ALREADY = ("already exists", "not found")


class DynsecError(RuntimeError):
    pass


def _exchange(
    host: str,
    port: int,
    admin_password: str,
    commands: list[dict[str, Any]],
    *,
    ca_file: str | None = None,
    timeout_s: float = 10.0,
) -> list[dict[str, Any]]:
    """Send ``commands`` in one message and return the plugin's responses, in order."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ADMIN_ACCOUNT, protocol=mqtt.MQTTv5)
    client.username_pw_set(ADMIN_ACCOUNT, admin_password)
    if ca_file:
        client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    tag = uuid.uuid4().hex
    for n, command in enumerate(commands):
        command["correlationData"] = f"{tag}-{n}"
    responses: dict[str, dict[str, Any]] = {}
    subscribed, done = threading.Event(), threading.Event()
    failure: list[str] = []

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
        if rc.is_failure:
            failure.append(f"the broker refused the admin account: {rc}")
            done.set()
            return
        c.subscribe(f"{CONTROL_TOPIC}/response", qos=1)

    def on_subscribe(_c: mqtt.Client, _u: object, _m: int, codes: Any, _p: object) -> None:
        if any(rc.is_failure for rc in codes):
            failure.append("the admin account may not read the plugin's responses")
            done.set()
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        for response in json.loads(msg.payload).get("responses", []):
            key = str(response.get("correlationData", ""))
            if key.startswith(tag):
                responses[key] = response
        if len(responses) == len(commands):
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        if not subscribed.wait(timeout_s) and not failure:
            raise DynsecError("no answer from the broker's dynamic-security plugin")
        if not failure:
            payload = json.dumps({"commands": commands}).encode()
            client.publish(CONTROL_TOPIC, payload, qos=1)
            if not done.wait(timeout_s):
                raise DynsecError("the dynamic-security plugin did not answer every command")
    finally:
        client.disconnect()
        client.loop_stop()
    if failure:
        raise DynsecError(failure[0])
    return [responses[f"{tag}-{n}"] for n in range(len(commands))]


def _check(responses: list[dict[str, Any]]) -> None:
    for response in responses:
        error = response.get("error")
        if error and not any(word in str(error).lower() for word in _ALREADY):
            raise DynsecError(f"{response.get('command')}: {error}")


def list_clients(host: str, port: int, admin_password: str, **kw: Any) -> set[str]:
    [response] = _exchange(
        host,
        port,
        admin_password,
        [{"command": "listClients", "verbose": False, "count": -1, "offset": 0}],
        **kw,
    )
    _check([response])
    return set(response.get("data", {}).get("clients", []))


def add_accounts(
    host: str, port: int, admin_password: str, accounts: Sequence[BrokerAccount], **kw: Any
) -> None:
    """Before their password reaches the password file: an account is never usable
    without its client-id binding and ACLs."""
    if accounts:
        commands = [c for a in accounts for c in create_commands(a)]
        _check(_exchange(host, port, admin_password, commands, **kw))


def remove_accounts(
    host: str, port: int, admin_password: str, names: Sequence[str], **kw: Any
) -> None:
    """After their password left the password file; the plugin disconnects them."""
    if names:
        commands = [c for name in names for c in delete_commands(name, own_role(name))]
        _check(_exchange(host, port, admin_password, commands, **kw))
