"""MQTT accounts for Mosquitto: password hashes in its own PBKDF2-SHA512 format (``$7$``)
and the password file rendered from the accounts derived from the database
(``store.broker_acl.accounts_from_db``: the ``gateways`` table plus service accounts).

The database is the source of truth for which gateways may connect; the broker's files
are derived from it (and reloaded with SIGHUP), never edited by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

import psycopg

from store.broker_acl import BrokerAccount

_ITERATIONS = 101  # Mosquitto 2.0's own default for ``$7$`` hashes
_SALT_BYTES = 12


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt_b64), int(iterations)
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def new_secret() -> str:
    """A password for a gateway or service account: 192 random bits, URL-safe."""
    return base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")


ACCOUNTS_CHANNEL = "mqtt_accounts_changed"


def set_gateway_password(conn: psycopg.Connection, gateway_id: str, password: str) -> None:
    """Store the hash; whoever runs the broker re-renders its file on the NOTIFY."""
    conn.execute(
        "INSERT INTO gateways (gateway_id, mqtt_password_hash) VALUES (%s, %s)"
        " ON CONFLICT (gateway_id) DO UPDATE SET mqtt_password_hash = EXCLUDED.mqtt_password_hash",
        (gateway_id, hash_password(password)),
    )
    conn.execute("SELECT pg_notify(%s, %s)", (ACCOUNTS_CHANNEL, gateway_id))


def set_service_account(
    conn: psycopg.Connection, name: str, password: str, role: str = "ingest"
) -> None:
    """A service's account (``role`` one of ``store.broker_acl.SERVICE_ROLES``); every
    ingest worker has its own, named like its client id."""
    conn.execute(
        "INSERT INTO mqtt_service_accounts (name, mqtt_password_hash, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET mqtt_password_hash = EXCLUDED.mqtt_password_hash,"
        " role = EXCLUDED.role",
        (name, hash_password(password), role),
    )
    conn.execute("SELECT pg_notify(%s, %s)", (ACCOUNTS_CHANNEL, name))


def password_file_lines(accounts: Iterable[BrokerAccount]) -> list[str]:
    """Mosquitto's password file: one ``name:hash`` line per account holding a hash."""
    return sorted(f"{a.name}:{a.password_hash}" for a in accounts if a.password_hash)


def write_password_file(path: Path, accounts: Iterable[BrokerAccount]) -> int:
    """Written to a temporary file and renamed, so the broker never reads half a file.
    Returns the number of accounts written."""
    lines = password_file_lines(accounts)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o640)
    tmp.replace(path)
    return len(lines)
