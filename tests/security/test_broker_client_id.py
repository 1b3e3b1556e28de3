"""Finding 1 of issue 16: with one gateway's password, an attacker connected under the
client id of an ingest worker or of another home, and the broker dropped that client's
connection to let the newcomer in, again and again. A client id now belongs to one
account: any other account using it is refused at CONNECT, and the holder stays."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.conftest import Broker
from tests.e2e.conftest import NOW_MS, Kit, count_rows, ingest, make_kit  # noqa: F401
from tests.mqtt_clients import Publisher, spo2_batch
from tests.security.broker_probe import Probe
from tests.stack import ServiceProcess, wait_for

INGEST_CLIENT_ID = "ingest-1"  # the ingest fixture's worker


def test_a_gateway_cannot_take_over_another_clients_id(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
    ingest: ServiceProcess,  # noqa: F811
) -> None:
    attacker, victim = make_kit("gw-attacker"), make_kit("gw-victim")
    home = Publisher(victim.gateway_id, victim.password, broker.port)
    home_drops: list[object] = []
    home.client.on_disconnect = lambda *args: home_drops.append(args)
    try:
        for stolen in (victim.gateway_id, INGEST_CLIENT_ID):
            for _ in range(3):  # "again and again"
                probe = Probe(stolen, attacker.gateway_id, attacker.password, broker.port)
                accepted = probe.accepted
                probe.close()
                assert not accepted, f"the broker let gw-attacker use client id {stolen!r}"
        time.sleep(0.5)
        # the home and the ingest worker were never cut off, and the pipeline still works
        mid = home.publish(spo2_batch(victim.gateway_id, victim.devices[0], 0, 50, NOW_MS))
        home.wait_acks([mid])
        wait_for(lambda: count_rows(db) == 50, 20, "the home's readings")
        assert home_drops == []
        assert "disconnected from broker" not in ingest.log()
    finally:
        home.close()


def test_a_gateway_connects_with_its_own_client_id_only(
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
) -> None:
    kit = make_kit("gw-own-id")
    own = Probe(kit.gateway_id, kit.gateway_id, kit.password, broker.port)
    other = Probe(f"{kit.gateway_id}-2", kit.gateway_id, kit.password, broker.port)
    own.close()
    other.close()
    assert own.accepted
    assert not other.accepted
