"""The gateway as a real process: offline for a simulated day (broker down), killed with
SIGKILL while full, restarted: everything reaches the database exactly once, published
in sequence order, with the original measured times; a desaturation that began and ended
during the outage raises one alert, marked late, when its readings arrive."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from alerts.vapid import generate
from gateway.outbox import Outbox
from postop.ports import free_port
from tests.conftest import OBSERVER_PASSWORD, Broker
from tests.e2e.conftest import NOW_MS, Kit, count_rows
from tests.mqtt_clients import connect
from tests.stack import ServiceProcess, wait_for
from vitals.link import entry_frame

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow

MakeKit = Callable[..., Kit]


def gateway_process(
    gateway_id: str,
    password: str,
    broker: Broker,
    workdir: Path,
    link_port: int,
    device_tz: str = "UTC",
) -> ServiceProcess:
    return ServiceProcess(
        "gateway.main",
        {
            "POSTOP_MQTT__PORT": str(broker.port),
            "POSTOP_MQTT__USERNAME": gateway_id,
            "POSTOP_MQTT__PASSWORD": password,
            "POSTOP_GATEWAY__GATEWAY_ID": gateway_id,
            "POSTOP_GATEWAY__DEVICE_TIMEZONE": device_tz,
            "POSTOP_GATEWAY__OUTBOX_PATH": str(workdir / "outbox.sqlite3"),
            "POSTOP_GATEWAY__LINK_PORT": str(link_port),
            "POSTOP_GATEWAY__UPLOAD_LINGER_S": "0.2",
            "POSTOP_GATEWAY__ACK_TIMEOUT_S": "5",
            "POSTOP_LOG_LEVEL": "DEBUG",
        },
        workdir,
    )


def send_frames(port: int, frames: list[bytes]) -> None:
    wait_for(lambda: _port_open(port), 30, "the gateway's local link")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(frames))


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class SeqWatcher:
    """Records the sequence numbers of every readings message the broker delivers."""

    def __init__(self, broker: Broker, gateway_id: str) -> None:
        self.seqs: list[int] = []
        self._lock = threading.Lock()
        self.client = connect(
            f"watch-{gateway_id}", "observer", OBSERVER_PASSWORD, broker.port, persistent=True
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe(f"devices/{gateway_id}/readings", qos=1)
        assert subscribed.wait(10)

    def first_sightings(self) -> list[int]:
        """Each sequence number once, in the order the broker first delivered it."""
        seen: set[int] = set()
        first: list[int] = []
        with self._lock:
            for s in self.seqs:
                if s not in seen:
                    seen.add(s)
                    first.append(s)
        return first

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seqs.extend(r["seq"] for r in json.loads(msg.payload)["readings"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def request_log() -> Iterator[list[ServiceProcess]]:
    """Processes stopped at teardown, whatever happened, with their log printed (pytest
    shows it when the test fails)."""
    procs: list[ServiceProcess] = []
    yield procs
    for proc in procs:
        proc.stop()
        print(f"--- {proc.module} log (tail) ---\n{proc.log()[-4000:]}")


def test_offline_for_a_day_then_killed_then_back_loses_nothing_and_keeps_order(
    db: str,
    broker: Broker,
    make_kit: MakeKit,
    ingest: ServiceProcess,
    workdir: Path,
    request_log: list[ServiceProcess],
) -> None:
    kit = make_kit("gw-offline", ("patch", "ox"))
    patch, oximeter = kit.devices
    day_ms = 86_400_000
    start_ms = NOW_MS - day_ms
    # a simulated day of continuous monitoring, every second: heart rate and respiratory
    # rate from the patch, SpO2 from the oximeter; 259,200 readings pile up in the outbox
    # and, at noon, six minutes below 88 % (long enough for spo2_critical, not spo2_low)
    desat_ms = start_ms + day_ms // 2
    frames = []
    for i in range(day_ms // 1000):
        t = start_ms + i * 1000
        low = desat_ms <= t < desat_ms + 6 * 60_000
        frames.append(entry_frame(patch, "heart_rate_bpm", 70 + i % 20, t))
        frames.append(entry_frame(patch, "resp_rate_per_min", 14 + i % 4, t))
        frames.append(entry_frame(oximeter, "spo2_pct", 85 if low else 95 + i % 4, t))
    expected = len(frames)
    assert expected == 259_200
    alerts = ServiceProcess(
        "alerts.main",
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_ALERTS__VAPID_PRIVATE_KEY": generate().private_pem,
            "POSTOP_ALERTS__TICK_S": "2",
        },
        workdir / "alerts",
    ).start()
    request_log.append(alerts)

    watcher = SeqWatcher(broker, kit.gateway_id)  # its session outlives the broker restart
    broker.server.stop()  # the home's internet is down
    link_port = free_port()
    gw = gateway_process(kit.gateway_id, kit.password, broker, workdir / "gw", link_port).start()
    request_log.append(gw)
    send_frames(link_port, frames[: expected // 2])
    box = Outbox(workdir / "gw" / "outbox.sqlite3")
    wait_for(lambda: box.depth() == expected // 2, 60, "the first half in the outbox")
    gw.kill()  # the hub is unplugged while full
    gw.start()
    send_frames(link_port, frames[expected // 2 :])
    wait_for(lambda: box.depth() == expected, 60, "the whole day in the outbox")

    broker.server.start()  # back online
    wait_for(lambda: count_rows(db) >= expected, 120, f"{expected} rows")
    wait_for(lambda: box.depth() == 0, 30, "the outbox to empty")
    with psycopg.connect(db) as conn:
        per_device = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT (metric_id, time)), min(time), max(time)"
            " FROM vitals GROUP BY device_id ORDER BY device_id"
        ).fetchall()
    assert [(d, n, k) for d, n, k, _lo, _hi in per_device] == [
        (oximeter, expected // 3, expected // 3),
        (patch, expected * 2 // 3, expected * 2 // 3),
    ]
    for *_counts, first, last in per_device:
        assert int(first.timestamp() * 1000) == start_ms
        assert int(last.timestamp() * 1000) == start_ms + day_ms - 1000
    assert count_rows(db) == expected
    # the backlog crossed the broker in sequence order: re-sends may repeat, never reorder
    wait_for(lambda: len(watcher.first_sightings()) >= expected, 30, "the watcher's copy")
    first = watcher.first_sightings()
    assert len(first) == expected
    assert first == sorted(first)
    # the episode was over a day before its readings came: one alert, late, with its times
    wait_for(lambda: count_rows(db, "late_readings") == 0, 30, "the engine to examine them")
    with psycopg.connect(db) as conn:
        clinical = conn.execute(
            "SELECT rule_id, late, state, (extract(epoch FROM condition_onset_at) * 1000)::bigint,"
            " (extract(epoch FROM condition_cleared_at) * 1000)::bigint"
            " FROM alerts WHERE kind = 'clinical'"
        ).fetchall()
    assert [r[:3] for r in clinical] == [("spo2_critical", True, "active")], clinical
    onset_ms, cleared_ms = clinical[0][3:]
    # the rules see one-minute means settled over five minutes (their median: a few
    # seconds of motion artefact is no fall), so the run starts and ends about 2.5 min
    # after the readings do, give or take the minute at either end of the episode
    assert desat_ms + 60_000 < onset_ms < desat_ms + 4 * 60_000, onset_ms - desat_ms
    assert desat_ms + 7 * 60_000 < cleared_ms < desat_ms + 10 * 60_000, cleared_ms - desat_ms
    watcher.close()
    gw.stop()
    box.close()


def test_rows_stay_in_the_outbox_until_ingest_confirms_the_commit(
    db: str, broker: Broker, make_kit: MakeKit, workdir: Path, request_log: list[ServiceProcess]
) -> None:
    from tests.e2e.conftest import ingest_env

    kit = make_kit("gw-confirm", ("patch",))
    frames = [
        entry_frame(kit.devices[0], "heart_rate_bpm", 80, NOW_MS + i * 1000) for i in range(300)
    ]
    link_port = free_port()
    gw = gateway_process(kit.gateway_id, kit.password, broker, workdir / "gw", link_port).start()
    request_log.append(gw)
    box = Outbox(workdir / "gw" / "outbox.sqlite3")
    # ingest has a session (so the broker queues for it) but is not running; the same
    # client id as the other tests' worker, so no extra member joins the shared group
    ingest = ServiceProcess("ingest.main", ingest_env(db, broker), workdir / "ingest").start()
    wait_for(lambda: "subscribed to readings" in ingest.log(), 30, "ingest to subscribe")
    ingest.stop()
    send_frames(link_port, frames)
    wait_for(lambda: "published readings" in gw.log() or box.depth() == 300, 30, "the frames")
    time.sleep(3.0)  # the broker has PUBACKed by now; the rows must still be here
    assert box.depth() == 300
    assert count_rows(db) == 0
    ingest.start()
    request_log.append(ingest)
    wait_for(lambda: box.depth() == 0, 60, "the confirmed rows to leave the outbox")
    assert count_rows(db) == 300
    gw.stop()
    ingest.stop()
    box.close()
