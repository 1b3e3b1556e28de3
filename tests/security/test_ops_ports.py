"""``postop up``'s ports (issue 16): a server is taken as started only when our own
child holds its port (two stacks started together took each other's and reported the
other's URLs), and a service keeps the port of the earlier run when it is free again
(after a restart the API had moved to a random port, breaking every link sent)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from postop.local_mosquitto import LocalMosquitto, PortTaken
from postop.ports import free_port
from postop.stack import StackPorts


def test_a_broker_whose_port_another_program_holds_is_not_taken_for_ours(workdir: Path) -> None:
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        broker = LocalMosquitto(workdir / "mqtt", port)
        with pytest.raises(PortTaken):
            broker.start(timeout_s=5)
        assert not broker.is_running()


def _time_wait_on(port: int) -> None:
    """Leave a connection in TIME_WAIT on ``port``, as a stopped server does."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()


def test_the_ports_of_the_earlier_run_are_kept_after_a_restart(workdir: Path) -> None:
    state = workdir / "stack.json"
    first = StackPorts(state, None)
    settled = {}
    for name in ("postgres", "mqtt", "api"):
        port = free_port()
        first.preferred[name] = port
        first.settle(name, port)
        settled[name] = port
        _time_wait_on(port)  # the run stops: its connections linger

    again = StackPorts(state, None)
    assert {name: again.candidates(name)[0] for name in settled} == settled


def test_a_port_taken_meanwhile_is_used_for_this_run_only(workdir: Path) -> None:
    state = workdir / "stack.json"
    first = StackPorts(state, None)
    wanted = free_port()
    first.preferred["api"] = wanted
    first.settle("api", wanted)
    with socket.socket() as other:
        other.bind(("127.0.0.1", wanted))
        other.listen()
        second = StackPorts(state, None)
        fallback = second.candidates("api")[0]
        assert fallback != wanted
        second.settle("api", fallback)
    third = StackPorts(state, None)
    assert third.candidates("api")[0] == wanted  # back on the earlier run's port
    assert json.loads(state.read_text())["preferred"]["api"] == wanted


def test_an_explicit_api_port_wins(workdir: Path) -> None:
    state = workdir / "stack.json"
    state.write_text(json.dumps({"postgres": 1, "mqtt": 2, "api": 3}))
    assert StackPorts(state, 8123).preferred["api"] == 8123
    assert StackPorts(state, None).preferred["api"] == 3  # a file from before keeps working


def test_a_kit_port_taken_by_another_program_stops_the_stack(workdir: Path) -> None:
    """A gateway's link port is chosen free and bound by the gateway a moment later: if
    another program (another stack) took it meanwhile, the simulated kit would talk to a
    stranger's gateway. The stack stops with one clear line instead of mixing homes."""
    from postop.stack import NoFreePort, _prove_own
    from postop.supervisor import Child

    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        # a child that never listens (postop --help exits at once)
        child = Child("gateway gw-x", ["--help"], {}, workdir / "gw-x.log")
        child.start()
        try:
            with pytest.raises(NoFreePort, match=f"port {port} was taken"):
                _prove_own(child, port, timeout_s=5)
        finally:
            child.stop()
