"""A device registered through the API reaches its gateway: the retained
``devices/{gateway}/config`` (the devices it pairs with, by address) is published after
the database commit. With the broker down the registration still succeeds; the
configuration stays pending in the database and is published once the broker answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.care_team.gateway_configs import ConfigPublisher
from postop.ports import free_port
from store.broker_acl import api_account
from store.mqtt_accounts import hash_password
from tests.api.conftest import World, credentials
from tests.conftest import OBSERVER_PASSWORD, Broker
from tests.mqtt_clients import connect
from tests.second_factor import TEST_KEY
from tests.stack import wait_for
from vitals.settings import ApiSettings, MqttSettings, Settings
from vitals.topics import config_topic

# broker accounts are shared by the whole test session: named after this test file
API_ACCOUNT = "api-test-gateway-config"
API_PASSWORD = "api-test-gateway-config-password"


def mqtt_settings(port: int) -> MqttSettings:
    return MqttSettings(port=port, username=API_ACCOUNT, password=SecretStr(API_PASSWORD))


@pytest.fixture
def app_settings(world: World, broker: Broker) -> Settings:
    """The API with its broker account on the session's broker."""
    broker.server.add_account(api_account(API_ACCOUNT, hash_password(API_PASSWORD)))
    return Settings(
        database_url=SecretStr(world.db),
        api=ApiSettings(vapid_public_key="BPublicKeyForTests", second_factor_key=TEST_KEY),
        mqtt=mqtt_settings(broker.port),
    )


@pytest.fixture
def admin_of() -> Iterator[Callable[[Settings], TestClient]]:
    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings), headers={"Accept-Language": "en"})
        client.__enter__()
        clients.append(client)
        res = client.post("/api/v1/session", json=credentials(settings, "admin@hopital.example"))
        assert res.status_code == 200, res.text
        client.headers["X-CSRF-Token"] = res.json()["csrf_token"]
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def retained_config(broker: Broker, gateway_id: str, wait_s: float = 3.0) -> Any:
    """The retained configuration the broker holds for a gateway (None: none)."""
    got: list[Any] = []
    arrived = threading.Event()
    client = connect(f"observer-gwcfg-{gateway_id}", "observer", OBSERVER_PASSWORD, broker.port)
    try:

        def on_message(_c: object, _u: object, msg: Any) -> None:
            got.append(json.loads(msg.payload))
            arrived.set()

        client.on_message = on_message
        client.subscribe(config_topic(gateway_id), qos=1)
        arrived.wait(wait_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[-1] if got else None


def pending_rows(db: str) -> list[tuple[str, int]]:
    with psycopg.connect(db) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT gateway_id, attempts FROM gateway_config_pending ORDER BY gateway_id"
            ).fetchall()
        ]


def test_a_device_registered_through_the_api_reaches_its_gateways_config(
    admin_of: Callable[[Settings], TestClient], app_settings: Settings, world: World, broker: Broker
) -> None:
    client = admin_of(app_settings)
    assert client.post("/api/v1/gateways", json={"gateway_id": "gw-cfg-001"}).status_code == 201
    cuff = {
        "device_id": "bp-cfg-001",
        "kind": "bp-cuff",
        "gateway_id": "gw-cfg-001",
        "ble_address": "c4:93:98:db:c9:e5",
    }
    res = client.post("/api/v1/devices", json=cuff)
    assert res.status_code == 201, res.text
    assert res.json()["ble_address"] == "C4:93:98:DB:C9:E5"
    listed = [{"id": "bp-cfg-001", "address": "C4:93:98:DB:C9:E5", "kind": "bp-cuff"}]
    wait_for(
        lambda: (retained_config(broker, "gw-cfg-001") or {}).get("devices") == listed,
        20,
        "the gateway's configuration on the broker",
    )
    # a device with no radio (typed into the hub) is registered, never listed for pairing
    diary = {"device_id": "diary-cfg-001", "kind": "pain-diary", "gateway_id": "gw-cfg-001"}
    assert client.post("/api/v1/devices", json=diary).status_code == 201
    scale = {**cuff, "device_id": "sc-cfg-001", "kind": "scale", "ble_address": "C4:93:98:DB:C9:E6"}
    assert client.post("/api/v1/devices", json=scale).status_code == 201
    wait_for(
        lambda: (
            [d["id"] for d in (retained_config(broker, "gw-cfg-001") or {}).get("devices", [])]
            == ["bp-cfg-001", "sc-cfg-001"]
        ),
        20,
        "the second device in the configuration",
    )
    wait_for(lambda: not pending_rows(world.db), 10, "nothing left pending")
    # an address in another form, or one already another device's: a readable refusal
    bad = client.post(
        "/api/v1/devices", json={**cuff, "device_id": "x-cfg-1", "ble_address": "C4:93"}
    )
    assert bad.status_code == 422
    assert "ble_address" in bad.json()["detail"] or "Bluetooth" in bad.json()["detail"]
    taken = client.post("/api/v1/devices", json={**cuff, "device_id": "x-cfg-2"})
    assert taken.status_code == 409
    assert taken.json()["detail"] == (
        "The Bluetooth address C4:93:98:DB:C9:E5 is already another device's."
    )
    fr = client.post(
        "/api/v1/devices",
        json={**cuff, "device_id": "x-cfg-3"},
        headers={"Accept-Language": "fr"},
    )
    assert fr.status_code == 409
    assert "Bluetooth" in fr.json()["detail"]
    assert fr.json()["detail"] != taken.json()["detail"]


def test_with_the_broker_down_provisioning_succeeds_and_the_config_follows(
    admin_of: Callable[[Settings], TestClient], app_settings: Settings, world: World, broker: Broker
) -> None:
    down = app_settings.model_copy(update={"mqtt": mqtt_settings(free_port())})  # nothing there
    client = admin_of(down)
    assert client.post("/api/v1/gateways", json={"gateway_id": "gw-cfg-002"}).status_code == 201
    cuff = {
        "device_id": "bp-cfg-002",
        "kind": "bp-cuff",
        "gateway_id": "gw-cfg-002",
        "ble_address": "C4:93:98:DB:C9:F0",
    }
    res = client.post("/api/v1/devices", json=cuff)
    assert res.status_code == 201, res.text  # the broker's absence is not the admin's problem
    wait_for(
        lambda: dict(pending_rows(world.db)).get("gw-cfg-002", 0) >= 1,
        10,
        "a failed attempt noted",
    )
    assert retained_config(broker, "gw-cfg-002", wait_s=1.0) is None
    # the broker answers again (here: a publisher that reaches it): the pending list goes
    published = ConfigPublisher(world.db, mqtt_settings(broker.port)).publish_pending()
    assert published >= 1
    config = retained_config(broker, "gw-cfg-002")
    assert config == {
        "devices": [{"id": "bp-cfg-002", "address": "C4:93:98:DB:C9:F0", "kind": "bp-cuff"}]
    }
    assert "gw-cfg-002" not in dict(pending_rows(world.db))
