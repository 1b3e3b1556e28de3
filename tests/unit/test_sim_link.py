"""The simulated clock and the device side of the local link: time runs at the chosen
speed, the client waits for a gateway that is not up yet, and a streamed simulation
delivers exactly the frames the kits recorded, in order."""

from __future__ import annotations

import math
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from firmware_sim.clock import SimClock, to_ms
from firmware_sim.devices import KitSimulator
from firmware_sim.link_client import LinkClient, run_sim, send_frames

START = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_sim_clock_runs_speed_times_faster() -> None:
    fake = FakeTime()
    clock = SimClock(START, 60.0, monotonic=fake.monotonic, sleep=fake.sleep)
    assert clock.now_ms() == to_ms(START)
    fake.now += 2.0
    assert clock.now_ms() == to_ms(START) + 120_000
    assert clock.sleep_until(to_ms(START) + 180_000)
    assert fake.slept == [pytest.approx(1.0)]
    assert clock.now_ms() == to_ms(START) + 180_000
    assert clock.sleep_until(to_ms(START))  # the past: no sleep
    assert len(fake.slept) == 1
    clock.advance_to(to_ms(START) + 3_600_000)
    assert clock.now_ms() == to_ms(START) + 3_600_000
    clock.advance_to(to_ms(START))  # never backward
    assert clock.now_ms() == to_ms(START) + 3_600_000
    fake.now += 1.0
    assert clock.now_ms() == to_ms(START) + 3_660_000
    assert clock.now() == datetime(2025, 6, 1, 7, 1, tzinfo=UTC)


def test_infinite_speed_moves_only_when_told() -> None:
    fake = FakeTime()
    clock = SimClock(START, math.inf, monotonic=fake.monotonic, sleep=fake.sleep)
    fake.now += 100
    assert clock.now_ms() == to_ms(START)
    assert clock.sleep_until(to_ms(START) + 5000)
    assert clock.now_ms() == to_ms(START) + 5000
    assert fake.slept == []
    stop = threading.Event()
    stop.set()
    assert not clock.sleep_until(to_ms(START) + 6000, stop)


def test_clock_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClock(START, 0)
    with pytest.raises(ValueError, match="aware"):
        SimClock(datetime(2025, 1, 1), 1.0)


class Collector(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        self.lines: list[bytes] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    with collector.lock:
                        collector.lines.append(line)

        super().__init__(("127.0.0.1", port), Handler)

    def received(self) -> list[bytes]:
        with self.lock:
            return list(self.lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def wait_for_lines(server: Collector, count: int) -> list[bytes]:
    done = threading.Event()
    for _ in range(200):
        if len(server.received()) >= count:
            break
        done.wait(0.05)
    return server.received()


def test_client_waits_for_a_gateway_that_is_not_up_yet() -> None:
    port = free_port()
    stop = threading.Event()
    result: list[int] = []
    sender = threading.Thread(
        target=lambda: result.append(send_frames("127.0.0.1", port, [b"a\n", b"b\n"], stop))
    )
    sender.start()
    threading.Event().wait(0.4)  # a few refused attempts
    server = Collector(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sender.join(10)
        assert result == [2]
        assert wait_for_lines(server, 2) == [b"a\n", b"b\n"]
    finally:
        server.shutdown()
        server.server_close()


def test_client_gives_up_when_stopped() -> None:
    stop = threading.Event()
    client = LinkClient("127.0.0.1", free_port(), stop, backoff_initial_s=0.01)
    threading.Timer(0.2, stop.set).start()
    assert not client.send(b"x\n")


def test_run_sim_streams_exactly_what_the_kits_recorded(collector: Collector) -> None:
    kits = [KitSimulator("pat-a", 1, START), KitSimulator("pat-b", 2, START)]
    clock = SimClock(START, math.inf)
    stop = threading.Event()
    until = to_ms(START) + 3 * 3_600_000
    sent = run_sim(kits, clock, "127.0.0.1", collector.server_address[1], stop, until_ms=until)
    emitted = sorted((f for k in kits for f in k.emitted), key=lambda f: f.rx_ms)
    assert sent == len(emitted) > 100
    assert wait_for_lines(collector, sent) == [f.line for f in emitted]
    assert clock.now_ms() == until


def test_run_sim_at_a_finite_speed_paces_frames(collector: Collector) -> None:
    kit = KitSimulator("pat-c", 3, START)
    clock = SimClock(START, 3600.0)  # an hour a second
    stop = threading.Event()
    until = to_ms(START) + 1_800_000  # half an hour: about half a second
    sent = run_sim([kit], clock, "127.0.0.1", collector.server_address[1], stop, until_ms=until)
    assert sent == len(kit.emitted) > 20
    assert clock.now_ms() >= until
    assert len(wait_for_lines(collector, sent)) == sent
