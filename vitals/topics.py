"""MQTT topic names. The only key on the wire is the gateway id: no patient identity."""

from __future__ import annotations

import re

GATEWAY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$")

READINGS_FILTER = "devices/+/readings"
STATUS_FILTER = "devices/+/status"
INGEST_SHARE_GROUP = "ingest"


def readings_topic(gateway_id: str) -> str:
    return f"devices/{gateway_id}/readings"


def status_topic(gateway_id: str) -> str:
    return f"devices/{gateway_id}/status"


def ack_topic(gateway_id: str) -> str:
    """Ingest -> gateway: which sequence numbers are committed in the database."""
    return f"devices/{gateway_id}/ack"


def config_topic(gateway_id: str) -> str:
    return f"devices/{gateway_id}/config"


def shared(group: str, topic_filter: str) -> str:
    return f"$share/{group}/{topic_filter}"


def gateway_of(topic: str) -> str | None:
    """The gateway id in ``devices/{id}/...``, or None for any other topic."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "devices" and GATEWAY_ID_RE.match(parts[1]):
        return parts[1]
    return None
