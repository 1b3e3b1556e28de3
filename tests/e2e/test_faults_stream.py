"""Faults in the middle of a live stream, over real processes: Mosquitto restarted, the
alerts engine killed with SIGKILL, then PostgreSQL crashed, while three homes keep
measuring, one of them desaturating. Every reading must be stored exactly once, and the
desaturation must give exactly one alert: not missed across the outage, not opened a
second time by the restarted engine or after the database's restart. A device must not
be able to read another home's topics either."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from alerts.vapid import generate
from gateway.outbox import Outbox
from postop.local_postgres import LocalPostgres
from postop.ports import free_port
from tests.conftest import INGEST_PASSWORD, Broker
from tests.e2e.conftest import Kit, count_rows
from tests.e2e.test_gateway_e2e import gateway_process, send_frames
from tests.mqtt_clients import connect
from tests.stack import ServiceProcess, wait_for
from vitals.link import entry_frame
from vitals.topics import ack_topic, readings_topic, status_topic

STEP_MS = 2_000  # a reading every 2 s: a continuous oximeter
MINUTE_MS = 60_000


def _spo2_frames(device: str, start_ms: int, end_ms: int, desat_from_ms: int | None) -> list[bytes]:
    frames = []
    for t in range(start_ms, end_ms, STEP_MS):
        low = desat_from_ms is not None and t >= desat_from_ms
        frames.append(
            entry_frame(device, "spo2_pct", 84.0 if low else 96.0 + (t // STEP_MS) % 2, t)
        )
    return frames


def _outbox_holds(box: Outbox, at_least: int) -> Callable[[], bool]:
    """A wait predicate on one gateway's outbox depth, bound to this outbox now."""
    return lambda: box.depth() >= at_least


def _outbox_empty(box: Outbox) -> Callable[[], bool]:
    return lambda: box.depth() == 0


def _alerts(db: str) -> list[tuple[int, str, str, int]]:
    """(patient, rule, state, opening events) of every alert ever opened: live, or late
    (the first readings come as history, so an episode may look over before it goes on)."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.patient_id, a.rule_id, a.state,"
            " (SELECT count(*) FROM alert_events e"
            "  WHERE e.alert_id = a.alert_id AND e.transition IN ('opened', 'opened_late'))"
            " FROM alerts a ORDER BY a.alert_id"
        ).fetchall()
    return [(int(p), str(r), str(s), int(n)) for p, r, s, n in rows]


def test_broker_restart_engine_killed_and_database_crash_mid_stream_miss_and_double_nothing(
    db: str,
    pg: LocalPostgres,
    broker: Broker,
    make_kit: Callable[..., Kit],
    ingest: ServiceProcess,
    workdir: Path,
) -> None:
    kits = [make_kit(f"gw-stream-{i}", ("ox",)) for i in range(3)]
    sick = kits[0]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = ANY(%s)",
            ([k.patient_id for k in kits],),
        )
    keys = generate()
    alerts = ServiceProcess(
        "alerts.main",
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_ALERTS__VAPID_PRIVATE_KEY": keys.private_pem,
            "POSTOP_ALERTS__TICK_S": "2",
        },
        workdir / "alerts",
    ).start()
    gateways: list[tuple[ServiceProcess, int, Outbox]] = []
    try:
        wait_for(lambda: "alerts engine running" in alerts.log(), 30, "the alerts engine")
        for kit in kits:
            port = free_port()
            folder = workdir / kit.gateway_id
            gw = gateway_process(kit.gateway_id, kit.password, broker, folder, port).start()
            gateways.append((gw, port, Outbox(folder / "outbox.sqlite3")))

        # the last 40 minutes, then the present: the sick patient below 88 % from minute 10
        end_ms = int(time.time() * 1000) // STEP_MS * STEP_MS
        start_ms = end_ms - 40 * MINUTE_MS
        desat_ms = start_ms + 10 * MINUTE_MS

        def frames(lo: int, hi: int) -> list[list[bytes]]:
            return [
                _spo2_frames(k.devices[0], lo, hi, desat_ms if k is sick else None) for k in kits
            ]

        sent = 0

        def send(part: list[list[bytes]]) -> int:
            for (_gw, port, _box), batch in zip(gateways, part, strict=True):
                send_frames(port, batch)
            return sum(len(b) for b in part)

        # 1. twenty minutes while all is well
        sent += send(frames(start_ms, start_ms + 20 * MINUTE_MS))
        wait_for(lambda: count_rows(db) == sent, 60, "the first 20 minutes stored")

        # 2. Mosquitto goes down while the homes keep measuring: their outboxes hold it
        broker.server.stop()
        outage = frames(start_ms + 20 * MINUTE_MS, start_ms + 34 * MINUTE_MS)
        sent += send(outage)
        for (_gw, _port, box), batch in zip(gateways, outage, strict=True):
            wait_for(_outbox_holds(box, len(batch)), 30, "the outage in the outbox")
        broker.server.start()
        sent += send(frames(start_ms + 34 * MINUTE_MS, end_ms))  # while they reconnect
        wait_for(lambda: count_rows(db) == sent, 120, "the outage delivered")
        wait_for(
            lambda: any(a[:2] == (sick.patient_id, "spo2_critical") for a in _alerts(db)),
            30,
            "the desaturation alert",
        )

        # 3. the alerts engine dies, SIGKILL, with the alert open; the homes keep measuring
        alerts.kill()
        now_ms = int(time.time() * 1000) // STEP_MS * STEP_MS
        sent += send(frames(end_ms, now_ms))
        alerts.start()
        wait_for(lambda: count_rows(db) == sent, 60, "the present stored")
        time.sleep(4.0)  # the restarted engine has looked at the open alert

        # 4. PostgreSQL crashes with the alert open; the homes keep measuring
        pg.stop("immediate")
        later_ms = max(int(time.time() * 1000) // STEP_MS * STEP_MS, now_ms + 5 * STEP_MS)
        sent += send(frames(now_ms, later_ms))
        time.sleep(3.0)  # ingest and the engine both lose their connections
        pg.start()
        wait_for(lambda: count_rows(db) == sent, 60, "the readings sent during the crash")
        for _gw, _port, box in gateways:
            wait_for(_outbox_empty(box), 60, "every outbox to empty")
        wait_for(lambda: "database unavailable" in alerts.log(), 30, "the engine to notice")
        time.sleep(6.0)  # several ticks of the restarted engine over the whole stream
        with psycopg.connect(db) as conn:
            per_device = conn.execute(
                "SELECT device_id, count(*), count(DISTINCT time), min(time), max(time)"
                " FROM vitals GROUP BY device_id ORDER BY device_id"
            ).fetchall()
        found = _alerts(db)
    finally:
        alerts.stop()
        for gw, _port, box in gateways:
            gw.stop()
            box.close()
        print(f"--- alerts log ---\n{alerts.log()[-3000:]}")

    # every reading exactly once, from the first to the last
    each = (later_ms - start_ms) // STEP_MS
    assert count_rows(db) == sent == 3 * each
    assert len(per_device) == 3
    for _device, n, distinct, first, last in per_device:
        assert n == distinct == each
        assert int(first.timestamp() * 1000) == start_ms
        assert int(last.timestamp() * 1000) == later_ms - STEP_MS
    assert count_rows(db, "dead_letters") == 0
    # one alert per patient and rule, opened once; the sick patient's is still standing
    keys_seen = [(p, r) for p, r, _s, _n in found]
    assert len(keys_seen) == len(set(keys_seen)), found
    assert all(n == 1 for *_rest, n in found), found
    critical = [a for a in found if a[:2] == (sick.patient_id, "spo2_critical")]
    assert [a[2] for a in critical] == ["active"]
    well = {k.patient_id for k in kits[1:]}
    assert [a for a in found if a[0] in well and a[1].startswith(("spo2", "news2"))] == []


def test_a_gateway_cannot_read_another_homes_topics(
    broker: Broker, make_kit: Callable[..., Kit]
) -> None:
    """Mosquitto grants any subscription but delivers only what the ACL lets this user read:
    the probe subscribes to the other home's topics and to everything, and must receive
    nothing but its own acknowledgement."""
    mine, theirs = make_kit("gw-reader"), make_kit("gw-victim")
    probe = connect(mine.gateway_id, mine.gateway_id, mine.password, broker.port)
    received: list[str] = []
    probe.on_message = lambda _c, _u, msg: received.append(msg.topic)
    victim = connect(theirs.gateway_id, theirs.gateway_id, theirs.password, broker.port)
    service = connect("ingest-3", "ingest-3", INGEST_PASSWORD, broker.port)
    try:
        for topic in (
            readings_topic(theirs.gateway_id),
            ack_topic(theirs.gateway_id),
            "devices/+/readings",
            "devices/+/ack",
            "#",
        ):
            probe.subscribe(topic, qos=1)
        probe.subscribe(ack_topic(mine.gateway_id), qos=1)
        time.sleep(0.5)  # the SUBACKs
        victim.publish(readings_topic(theirs.gateway_id), b"not for the neighbours", qos=1)
        victim.publish(status_topic(theirs.gateway_id), b"online", qos=1)
        service.publish(ack_topic(theirs.gateway_id), b"theirs", qos=1).wait_for_publish(5)
        service.publish(ack_topic(mine.gateway_id), b"mine", qos=1).wait_for_publish(5)
        wait_for(lambda: bool(received), 10, "the probe's own acknowledgement")
        time.sleep(1.0)  # anything else the broker would wrongly deliver
    finally:
        for client in (probe, victim, service):
            client.disconnect()
            client.loop_stop()
    # its own ack once per matching subscription (its topic, devices/+/ack, #), nothing else
    assert set(received) == {ack_topic(mine.gateway_id)}, received
