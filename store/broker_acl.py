"""What each MQTT account may do, enforced by the broker at CONNECT and SUBSCRIBE.

Mosquitto 2.0's ACL file is checked only when a message is delivered: any account may
subscribe to anything (even ``$share/ingest/...``, where it takes its turn in ingest's
round robin and the broker then drops what it may not read), and any account may
connect with any client id (kicking off whoever held it). The dynamic-security plugin
checks subscriptions at SUBSCRIBE and can bind an account to one client id, but does not
substitute ``%u``: so every account gets its own client entry and, for a gateway, its
own role, derived here from the database (gateways and service accounts), which stays
the source of truth. Passwords stay in Mosquitto's password file (the database keeps only
their hashes, which dynamic security's control API cannot take); the plugin holds the
authorisation. ``docs``: store/README.md, section "Broker accounts".
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from vitals.topics import (
    READINGS_FILTER,
    STATUS_FILTER,
    ack_topic,
    config_topic,
    readings_topic,
    shared,
    status_topic,
)

ADMIN_ACCOUNT = "broker-admin"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_FILE = "dynamic-security.json"
# account kinds stored with each service account (mqtt_service_accounts.role)
SERVICE_ROLES = ("ingest", "api", "observer")


@dataclass(frozen=True, slots=True)
class Acl:
    """One dynamic-security ACL entry (always an allow: everything else is denied)."""

    kind: str  # publishClientSend | publishClientReceive | subscribeLiteral | subscribePattern
    topic: str

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.kind, "topic": self.topic, "priority": 0, "allow": True}


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    name: str
    password_hash: str | None  # Mosquitto ``$7$`` hash; None for the password file's own
    role: str  # the dynamic-security role holding ``acls``
    acls: tuple[Acl, ...]
    # the only client id this account may use; None only for test and bench observers
    client_id: str | None

    @property
    def bound(self) -> bool:
        return self.client_id is not None


def gateway_account(gateway_id: str, password_hash: str | None) -> BrokerAccount:
    """A home gateway: its own topics only, its own id as client id."""
    acls = (
        Acl("publishClientSend", readings_topic(gateway_id)),
        Acl("publishClientSend", status_topic(gateway_id)),
        Acl("subscribeLiteral", config_topic(gateway_id)),
        Acl("subscribeLiteral", ack_topic(gateway_id)),
        Acl("publishClientReceive", config_topic(gateway_id)),
        Acl("publishClientReceive", ack_topic(gateway_id)),
    )
    return BrokerAccount(gateway_id, password_hash, f"gateway:{gateway_id}", acls, gateway_id)


def ingest_account(
    name: str, password_hash: str | None, share_group: str = "ingest"
) -> BrokerAccount:
    """One ingest worker: its own account, client id = account name; it alone (with the
    other workers) may join the shared subscription."""
    acls = (
        Acl("subscribeLiteral", shared(share_group, READINGS_FILTER)),
        Acl("subscribeLiteral", shared(share_group, STATUS_FILTER)),
        Acl("publishClientReceive", READINGS_FILTER),
        Acl("publishClientReceive", STATUS_FILTER),
        Acl("publishClientSend", ack_topic("+")),
    )
    return BrokerAccount(name, password_hash, "postop-ingest", acls, name)


def api_account(name: str, password_hash: str | None) -> BrokerAccount:
    """The web app: publishes each gateway's retained configuration."""
    acls = (Acl("publishClientSend", config_topic("+")),)
    return BrokerAccount(name, password_hash, "postop-api", acls, name)


def observer_account(
    name: str, password_hash: str | None, topics: Sequence[str] = ("#",)
) -> BrokerAccount:
    """Reads ``topics`` and sends nothing, under any client id: for tests and benches that
    watch the wire (never provisioned by ``postop up`` or in production)."""
    acls = tuple(
        acl
        for topic in topics
        for acl in (Acl("subscribePattern", topic), Acl("publishClientReceive", topic))
    )
    return BrokerAccount(name, password_hash, f"observer:{name}", acls, None)


def admin_account(password_hash: str) -> BrokerAccount:
    """Whoever runs the broker: sends dynamic-security commands and reads their answers."""
    topic = "$CONTROL/dynamic-security/#"
    acls = (
        Acl("publishClientSend", topic),
        Acl("publishClientReceive", topic),
        Acl("subscribePattern", topic),
    )
    return BrokerAccount(ADMIN_ACCOUNT, password_hash, "postop-admin", acls, ADMIN_ACCOUNT)


def service_account(name: str, role: str, password_hash: str | None) -> BrokerAccount:
    if role == "ingest":
        return ingest_account(name, password_hash)
    if role == "api":
        return api_account(name, password_hash)
    if role == "observer":
        return observer_account(name, password_hash)
    raise ValueError(f"unknown MQTT service role {role!r}")


def accounts_from_db(
    conn: psycopg.Connection, extra: Iterable[BrokerAccount] = ()
) -> list[BrokerAccount]:
    """Every account the broker must know: the service accounts (stored and ``extra``,
    which win) and each gateway holding a password. A gateway named like a service
    account is left out: it could otherwise claim that service's client id."""
    by_name = {a.name: a for a in extra}
    for name, role, hashed in conn.execute(
        "SELECT name, role, mqtt_password_hash FROM mqtt_service_accounts ORDER BY name"
    ).fetchall():
        by_name.setdefault(name, service_account(name, role, hashed))
    reserved = set(by_name) | {ADMIN_ACCOUNT}
    for gateway_id, hashed in conn.execute(
        "SELECT gateway_id, mqtt_password_hash FROM gateways"
        " WHERE mqtt_password_hash IS NOT NULL ORDER BY gateway_id"
    ).fetchall():
        if gateway_id not in reserved:
            by_name[gateway_id] = gateway_account(gateway_id, hashed)
    return sorted(by_name.values(), key=lambda a: a.name)


def _dynsec_password(password_hash: str) -> dict[str, Any]:
    """Mosquitto's ``$7$iterations$salt$digest`` (PBKDF2-SHA512) as dynamic security
    stores it: the same salt, digest and iterations, in separate fields."""
    _, kind, iterations, salt_b64, digest_b64 = password_hash.split("$")
    if kind != "7" or len(base64.b64decode(salt_b64)) != 12:
        raise ValueError("dynamic security needs a $7$ hash with a 12-byte salt")
    return {"password": digest_b64, "salt": salt_b64, "iterations": int(iterations)}


def client_json(account: BrokerAccount, *, with_password: bool) -> dict[str, Any]:
    client: dict[str, Any] = {
        "username": account.name,
        "roles": [{"rolename": account.role, "priority": 0}],
    }
    if account.client_id is not None:
        client["clientid"] = account.client_id
    if with_password and account.password_hash is not None:
        client.update(_dynsec_password(account.password_hash))
    return client


def role_json(account: BrokerAccount) -> dict[str, Any]:
    return {"rolename": account.role, "acls": [acl.as_json() for acl in account.acls]}


def dynsec_config(accounts: Sequence[BrokerAccount], admin: BrokerAccount) -> dict[str, Any]:
    """The plugin's JSON file, written before the broker starts. Only the admin account
    authenticates through the plugin (it has no line in the password file)."""
    roles: dict[str, dict[str, Any]] = {}
    for account in [*accounts, admin]:
        roles.setdefault(account.role, role_json(account))
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            *(client_json(a, with_password=False) for a in accounts),
            client_json(admin, with_password=True),
        ],
        "groups": [],
        "roles": list(roles.values()),
    }


def create_commands(account: BrokerAccount) -> list[dict[str, Any]]:
    """Dynamic-security commands adding one account (an existing role is kept)."""
    return [
        {"command": "createRole", **role_json(account)},
        {"command": "createClient", **client_json(account, with_password=False)},
    ]


def delete_commands(name: str, role: str | None) -> list[dict[str, Any]]:
    """Removing an account (the plugin disconnects it); its own role goes with it."""
    commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": name}]
    if role is not None:
        commands.append({"command": "deleteRole", "rolename": role})
    return commands


def own_role(name: str) -> str:
    """The per-account role a gateway had (shared service roles are never deleted)."""
    return f"gateway:{name}"
