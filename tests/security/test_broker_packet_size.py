"""Finding 4 of issue 16, the broker's side: packets beyond what a gateway legitimately
sends are refused by the broker, and a gateway never sends one (it splits a batch)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.outbox import PendingReading
from gateway.uplink import fitting_batch
from tests.conftest import Broker
from tests.e2e.conftest import Kit, make_kit  # noqa: F401
from tests.mqtt_clients import Publisher
from tests.stack import wait_for
from vitals.wire import MAX_MESSAGE_BYTES, MAX_READINGS_PER_MESSAGE


def _longest_rows(n: int) -> list[PendingReading]:
    """Readings with every id and number at its longest (what the wire schema allows)."""
    return [
        PendingReading(
            2**62 + i,
            "d" * 64,
            "resp_rate_per_min",
            32_503_679_999_999,
            -1.2345678901234567e-300,
            7,
        )
        for i in range(n)
    ]


def test_the_largest_batch_fits_and_a_bigger_packet_is_refused(
    broker: Broker,
    make_kit: Callable[..., Kit],  # noqa: F811
) -> None:
    kit = make_kit("gw-" + "g" * 56)  # room for the kit's device ids
    largest, largest_payload = fitting_batch(
        kit.gateway_id, 0, _longest_rows(MAX_READINGS_PER_MESSAGE)
    )
    assert len(largest) == MAX_READINGS_PER_MESSAGE  # the legitimate worst case fits whole
    assert len(largest_payload) <= MAX_MESSAGE_BYTES
    more, more_payload = fitting_batch(
        kit.gateway_id, 0, _longest_rows(2 * MAX_READINGS_PER_MESSAGE)
    )
    assert 0 < len(more) < 2 * MAX_READINGS_PER_MESSAGE  # split: the rest goes next
    assert len(more_payload) <= MAX_MESSAGE_BYTES
    pub = Publisher(kit.gateway_id, kit.password, broker.port)
    drops: list[object] = []
    try:
        acks = pub.wait_acks([pub.publish(largest_payload), pub.publish(more_payload)])
        assert not any(rc.is_failure for rc in acks)
        pub.client.on_disconnect = lambda *args: drops.append(args)
        pub.publish(b" " * 1_900_000)  # the attack's size
        wait_for(lambda: bool(drops), 10, "the broker to refuse the oversized packet")
    finally:
        pub.close()
