"""Loopback ports for private service instances: free ones, and proof that a listener is
our own child's (a port found free may be taken by another program before our child
binds it; connecting to it then would reach the other program)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import psutil


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could bind ``port`` now. With SO_REUSEADDR, as servers bind: a port
    held only by connections closing (TIME_WAIT) after our last run is free to reuse."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port(port: int, timeout_s: float = 20.0, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening TCP socket on ``port``."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


def wait_own_listener(port: int, pid: Callable[[], int | None], timeout_s: float = 30.0) -> bool:
    """Wait until the process ``pid()`` names (None: it is gone) listens on ``port``;
    False as soon as it is gone, or at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = pid()
        if current is None:
            return False
        if listens(current, port):
            return True
        time.sleep(0.1)
    return False
