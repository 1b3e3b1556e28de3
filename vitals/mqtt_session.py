"""How every postop MQTT client connects: MQTT v5, its account, TLS when a CA is
configured, a persistent session (clean start off, an expiry), automatic reconnection."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vitals.settings import MqttSettings


def new_client(settings: MqttSettings, client_id: str, username: str | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    user = settings.username or username
    if user:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(user, password)
    if settings.tls_ca_file:
        client.tls_set(
            ca_certs=str(settings.tls_ca_file),
            certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
            keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client


def connect_persistent(
    client: mqtt.Client,
    settings: MqttSettings,
    session_expiry_s: int,
    receive_maximum: int | None = None,
) -> None:
    """Connect in the background (paho's loop thread reconnects on its own)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    client.connect_async(
        settings.host,
        settings.port,
        keepalive=settings.keepalive_s,
        clean_start=False,
        properties=props,
    )
    client.loop_start()
