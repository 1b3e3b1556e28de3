"""Finding 2 of issue 16: a gateway subscribed to ingest's shared subscription
``$share/ingest/devices/+/readings``; the broker gave it its turn in the round robin and
then dropped what it may not read: half of every home's readings never reached ingest.
Subscriptions are now authorised at SUBSCRIBE: a gateway may subscribe only to its own
configuration and acknowledgements; everything else gets a failure reason code."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.conftest import Broker
from tests.e2e.conftest import NOW_MS, Kit, count_rows, ingest, make_kit  # noqa: F401
from tests.mqtt_clients import Publisher, spo2_batch
from tests.security.broker_probe import Probe
from tests.stack import ServiceProcess, wait_for
from vitals.topics import ack_topic, config_topic, readings_topic, status_topic


def test_a_gateway_may_subscribe_only_to_its_own_downlink(
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
) -> None:
    mine, theirs = make_kit("gw-sub-rogue"), make_kit("gw-sub-other")
    probe = Probe(mine.gateway_id, mine.gateway_id, mine.password, broker.port)
    try:
        refused = {
            topic: probe.subscribe(topic)
            for topic in (
                "$share/ingest/devices/+/readings",
                "$share/ingest/devices/+/status",
                "$share/rogue/devices/+/readings",
                f"$share/ingest/{config_topic(mine.gateway_id)}",
                "devices/+/readings",
                "devices/+/config",
                "devices/+/ack",
                readings_topic(theirs.gateway_id),
                config_topic(theirs.gateway_id),
                ack_topic(theirs.gateway_id),
                status_topic(mine.gateway_id),
                f"devices/{mine.gateway_id}/#",
                "#",
                "$SYS/#",
            )
        }
        own = {
            t: probe.subscribe(t)
            for t in (config_topic(mine.gateway_id), ack_topic(mine.gateway_id))
        }
    finally:
        probe.close()
    assert {t: rc.is_failure for t, rc in refused.items()} == {t: True for t in refused}
    assert {t: rc.is_failure for t, rc in own.items()} == {t: False for t in own}


def test_a_rogue_shared_subscriber_holds_back_no_reading(
    db: str,
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
    ingest: ServiceProcess,  # noqa: F811
) -> None:
    rogue, home = make_kit("gw-share-rogue"), make_kit("gw-share-home")
    probe = Probe(rogue.gateway_id, rogue.gateway_id, rogue.password, broker.port)
    pub = Publisher(home.gateway_id, home.password, broker.port)
    try:
        probe.subscribe("$share/ingest/devices/+/readings")
        mids = [
            pub.publish(spo2_batch(home.gateway_id, home.devices[0], b * 10, 10, NOW_MS))
            for b in range(20)
        ]
        pub.wait_acks(mids)
        wait_for(lambda: count_rows(db) == 200, 20, "every reading, none held back")
        time.sleep(0.3)
    finally:
        pub.close()
        probe.close()
    assert count_rows(db) == 200
    assert probe.received == []
