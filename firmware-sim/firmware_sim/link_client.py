"""The device side of the local link: frame lines written to the gateway over TCP, paced
by the simulated clock.

Like a real kit that keeps measuring while the hub reboots, the client keeps trying:
when the gateway is not up (or goes away) it reconnects with exponential backoff and
resends the line that failed. A line the kernel accepted just before the gateway died
may be lost, as a BLE notification would be; the pipeline downstream of the gateway is
the part that guarantees delivery.
"""

from __future__ import annotations

import heapq
import logging
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence

from firmware_sim.clock import SimClock
from firmware_sim.devices import KitSimulator

log = logging.getLogger(__name__)


class LinkClient:
    """One TCP connection to a gateway's local link that comes back by itself."""

    def __init__(
        self,
        host: str,
        port: int,
        stop: threading.Event,
        *,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.stop = stop
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.connects = 0
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket | None:
        """A connected socket, waiting as long as it takes; None if stopped."""
        delay = self.backoff_initial_s
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(
                    (self.host, self.port), timeout=self.connect_timeout_s
                )
            except OSError as exc:
                log.info(
                    "gateway %s:%d not reachable (%s); retry in %.1fs",
                    self.host,
                    self.port,
                    exc,
                    delay,
                )
                if self.stop.wait(delay):
                    return None
                delay = min(delay * 2, self.backoff_max_s)
                continue
            sock.settimeout(None)
            self.connects += 1
            log.info("connected to gateway %s:%d", self.host, self.port)
            return sock
        return None

    def send(self, line: bytes) -> bool:
        """Write one frame line, reconnecting as needed; False if stopped first."""
        while not self.stop.is_set():
            if self._sock is None:
                self._sock = self._connect()
                if self._sock is None:
                    return False
            try:
                self._sock.sendall(line)
                return True
            except OSError as exc:
                log.info("link to gateway lost (%s); reconnecting", exc)
                self.close()
        return False

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def send_frames(host: str, port: int, lines: Iterable[bytes], stop: threading.Event) -> int:
    """Write every line as fast as the gateway takes them; how many were written."""
    client = LinkClient(host, port, stop)
    sent = 0
    try:
        for line in lines:
            if not client.send(line):
                break
            sent += 1
    finally:
        client.close()
    return sent


def _merged(
    kits: Sequence[KitSimulator], start_ms: int, end_ms: int
) -> Iterator[tuple[int, bytes]]:
    return heapq.merge(*(k.frames_between(start_ms, end_ms) for k in kits), key=lambda f: f[0])


def run_sim(
    kits: Sequence[KitSimulator],
    clock: SimClock,
    host: str,
    port: int,
    stop_event: threading.Event,
    *,
    until_ms: int | None = None,
    window_ms: int = 600_000,
) -> int:
    """Stream the kits' frames to the gateway at ``host:port``, each when the simulated
    clock reaches its reception time, from now until ``until_ms`` (or forever) or until
    ``stop_event``; returns how many frames were written. Frames are generated a
    window of simulated time at a time."""
    client = LinkClient(host, port, stop_event)
    sent = 0
    start = clock.now_ms()
    try:
        while until_ms is None or start < until_ms:
            end = start + window_ms if until_ms is None else min(start + window_ms, until_ms)
            for rx_ms, line in _merged(kits, start, end):
                if not clock.sleep_until(rx_ms, stop_event) or not client.send(line):
                    return sent
                sent += 1
            if not clock.sleep_until(end, stop_event):
                return sent
            start = end
    finally:
        client.close()
    return sent
