"""Each gateway's retained configuration downlink (``devices/{gateway}/config``): the
devices it serves, by id and Bluetooth address, as the database says.

A change to a gateway's devices marks the gateway in ``gateway_config_pending`` in the
change's own transaction; whoever publishes (the API's publisher, ``postop up``) sends
the gateway's current list after the commit and clears the mark only once the broker
acknowledged the retained message, and only if no newer change came meanwhile. A broker
that is down therefore delays a configuration, never loses it, and never refuses the
change; a gateway that was offline gets the retained message when it connects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class PendingConfig:
    gateway_id: str
    changed_at: datetime


def mark_changed(conn: psycopg.Connection, gateway_id: str) -> None:
    """The gateway's device list changed (call inside the change's transaction)."""
    conn.execute(
        "INSERT INTO gateway_config_pending (gateway_id) VALUES (%s)"
        " ON CONFLICT (gateway_id) DO UPDATE SET changed_at = clock_timestamp()",
        (gateway_id,),
    )


def pending(conn: psycopg.Connection, limit: int = 100) -> list[PendingConfig]:
    rows = conn.execute(
        "SELECT gateway_id, changed_at FROM gateway_config_pending ORDER BY changed_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [PendingConfig(r[0], r[1]) for r in rows]


def config_payload(conn: psycopg.Connection, gateway_id: str) -> dict[str, Any]:
    """What the gateway must serve: every device registered to it that has a Bluetooth
    address (an empty list unpairs everything)."""
    rows = conn.execute(
        "SELECT device_id, ble_address, kind FROM devices"
        " WHERE gateway_id = %s AND ble_address IS NOT NULL ORDER BY device_id",
        (gateway_id,),
    ).fetchall()
    return {"devices": [{"id": d, "address": a, "kind": k} for d, a, k in rows]}


def mark_published(conn: psycopg.Connection, item: PendingConfig) -> None:
    """The broker holds the configuration read at or after ``item.changed_at``."""
    conn.execute(
        "DELETE FROM gateway_config_pending WHERE gateway_id = %s AND changed_at <= %s",
        (item.gateway_id, item.changed_at),
    )


def mark_failed(conn: psycopg.Connection, item: PendingConfig, reason: str) -> None:
    conn.execute(
        "UPDATE gateway_config_pending SET attempts = attempts + 1, last_error = %s"
        " WHERE gateway_id = %s",
        (reason[:200], item.gateway_id),
    )
