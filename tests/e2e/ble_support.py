"""What the BLE end-to-end tests share: a kit provisioned in the database, its devices as
bumble peripherals on a virtual radio (in this process, on their own loop), a gateway
process that is a real BLE central on a virtual controller, its configuration published
retained as the backend would, and what the database must hold afterwards.

The gateway writes bumble's btsnoop trace of its HCI traffic into its work folder; when a
test fails, the trace and the gateway's log are copied to the test artifacts
(``tests/artifacts/ble/TEST/``, or under ``POSTOP_TEST_ARTIFACTS``), which CI keeps."""

from __future__ import annotations

import json
import math
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.ble_peripheral import KEPT, SimPeripheral, ble_address
from firmware_sim.clock import SimClock, to_ms
from firmware_sim.devices import DeviceKind, KitSimulator, Schedule

from postop.ports import free_port
from store.broker_acl import api_account
from store.mqtt_accounts import hash_password
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.browser import ARTIFACTS
from tests.conftest import Broker
from tests.daytime import daytime_zone
from tests.mqtt_clients import connect
from tests.stack import ServiceProcess, wait_for
from vitals.catalogue import BY_NAME
from vitals.flags import ReadingFlag
from vitals.topics import config_topic

# the devices measure by day and the patient sleeps at night: the kits live where this
# run's moment is mid-afternoon, so the hours a test covers are waking hours whenever
# it runs (a Paris home failed in CI at 23:39, its spot checks skipped asleep)
HOME_TZ = daytime_zone(datetime.now(UTC), hour=15)
API_PASSWORD = "api-test-password"
GLUCOSE = 0x2A18
PLX_SPOT_CHECK = 0x2A5E
# what the gateway derives from a patch's RR intervals (vitals.rhythm)
RHYTHM_METRICS = {"rr_rmssd_ms", "rr_irregularity"}


def dense_schedule(
    now: datetime, tz: ZoneInfo, every_s: int, for_s: int, backfill_h: float
) -> Schedule:
    """The usual day, plus a measurement of every spot device every ``every_s`` seconds
    for the next ``for_s`` seconds (so a short test sees many of them live) and every
    five minutes over the ``backfill_h`` hours before now."""
    local = now.astimezone(tz)
    h0 = local.hour + local.minute / 60 + local.second / 3600
    past = tuple(h0 - k / 12 for k in range(1, int(backfill_h * 12)))
    dense = tuple(h0 + k * every_s / 3600 for k in range(1, for_s // every_s + 1))
    dense = tuple(sorted(h for h in (*past, *dense) if 0.01 < h < 23.99))
    # in time order: a glucose meter numbers its records in the order it takes them
    return Schedule(
        bp_h=tuple(sorted((8.0, 14.0, 20.0, *dense))),
        temperature_h=tuple(sorted((8.25, 14.25, 20.25, *(h + 1 / 3600 for h in dense)))),
        glucose_h=tuple(sorted((7.5, 18.5, *(h + 2 / 3600 for h in dense)))),
        oximeter_spot_checks_h=tuple(
            sorted((9.0, 13.0, 17.0, 21.0, *(h + 3 / 3600 for h in dense)))
        ),
        jitter_min=0.0,
        oximeter_interval_s=10,
        patch_hr_interval_s=10,
    )


def provision(db: str, broker: Broker, gateway_id: str, kit: KitSimulator) -> str:
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(
            conn, f"P-{gateway_id}", ensure_team(conn, "BLE team"), time_zone=HOME_TZ
        )
        password = register_gateway(conn, gateway_id)
        for dev in kit.devices:
            register_device(conn, dev.id, dev.kind.value, gateway_id)
            enroll(conn, dev.id, patient, kit.start - timedelta(days=1))
    broker.add_account(gateway_id, password)
    return password


CONFIG_ACCOUNT = "api-ble-config"


def publish_config(broker: Broker, gateway_id: str, device_ids: Iterable[str]) -> None:
    """The retained configuration downlink, as the backend (the ``api`` account) sends it."""
    # an account with the web app's rights, bound to its own client id like every account
    # of the broker (named apart: other tests of the session make a gateway called "api")
    broker.server.add_account(api_account(CONFIG_ACCOUNT, hash_password(API_PASSWORD)))
    client = connect(CONFIG_ACCOUNT, CONFIG_ACCOUNT, API_PASSWORD, broker.port)
    payload = {
        "devices": [{"id": d, "address": ble_address(d)} for d in device_ids],
        "upload_batch_max": 1000,
    }
    info = client.publish(config_topic(gateway_id), json.dumps(payload), qos=1, retain=True)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def ble_gateway(
    gateway_id: str, password: str, broker: Broker, workdir: Path, hci_port: int
) -> ServiceProcess:
    return ServiceProcess(
        "gateway.main",
        {
            "POSTOP_MQTT__PORT": str(broker.port),
            "POSTOP_MQTT__USERNAME": gateway_id,
            "POSTOP_MQTT__PASSWORD": password,
            "POSTOP_GATEWAY__GATEWAY_ID": gateway_id,
            "POSTOP_GATEWAY__DEVICE_TIMEZONE": HOME_TZ,
            "POSTOP_GATEWAY__OUTBOX_PATH": str(workdir / "outbox.sqlite3"),
            "POSTOP_GATEWAY__LINK_PORT": str(free_port()),
            "POSTOP_GATEWAY__HCI_TRANSPORT": f"tcp-client:127.0.0.1:{hci_port}",
            "POSTOP_GATEWAY__BLE_BONDS_PATH": str(workdir / "bonds" / "bonds.json"),
            "POSTOP_GATEWAY__UPLOAD_LINGER_S": "0.2",
            "POSTOP_GATEWAY__ACK_TIMEOUT_S": "5",
            "BUMBLE_SNOOPER": f"btsnoop:file:{workdir / 'gateway-hci.btsnoop'}",
        },
        workdir,
    )


@dataclass
class Expected:
    """What the database must hold: device-stamped readings exactly (device, metric,
    time) -> (value, flags); gateway-stamped ones by (device, metric) as sorted values
    with the reception times they must lie near."""

    exact: dict[tuple[str, str, int], tuple[float | None, int]] = field(default_factory=dict)
    received: dict[tuple[str, str], list[tuple[float | None, int]]] = field(default_factory=dict)
    implausible: int = 0
    # when each heart-rate notification carrying RR intervals went out, per device: the
    # gateway summarises each minute of them it sees end (rhythm metrics, its own time)
    beats_ms: dict[str, list[int]] = field(default_factory=dict)

    def count(self) -> int:
        return len(self.exact) + sum(len(v) for v in self.received.values())


def expected_rows(kit: KitSimulator, peripherals: dict[str, SimPeripheral]) -> Expected:
    """Every value a device sent and the gateway received (kept and glucose records all
    reach it; continuous values taken while nobody listened are lost on the device).
    A value without a time of its own is expected near the moment it went out."""
    out = Expected()
    for device_id, p in peripherals.items():
        for (_uuid, _value, frame), sent_ms in zip(p.sent, p.sent_at_ms, strict=False):
            for v in frame.values:
                if v.value is not None and not BY_NAME[v.metric].is_plausible(v.value):
                    out.implausible += 1
                    continue
                if v.timestamped:
                    out.exact.setdefault((device_id, v.metric, v.measured_ms), (v.value, v.flags))
                else:
                    out.received.setdefault((device_id, v.metric), []).append((v.value, sent_ms))
            if frame.rr_intervals_s:
                out.beats_ms.setdefault(device_id, []).append(sent_ms)
    return out


def stored_rows(db: str) -> list[tuple[str, str, int, float | None, int]]:
    """What the database holds, the gateway's rhythm summaries left out (see
    ``assert_rhythm_summaries``)."""
    return [r for r in _all_rows(db) if r[1] not in RHYTHM_METRICS]


def wait_stored(db: str, expected: Expected, timeout_s: float = 60) -> None:
    """Wait until the database holds as many readings as were sent; on time-out, say
    what is missing and what ingest set aside."""
    try:
        wait_for(
            lambda: len(stored_rows(db)) >= expected.count(), timeout_s, f"{expected.count()} rows"
        )
    except AssertionError as exc:
        with psycopg.connect(db) as conn:
            dead = conn.execute("SELECT topic, reason FROM dead_letters").fetchall()
        stored = {(d, m, t) for d, m, t, _v, f in stored_rows(db)}
        missing = sorted(k for k in expected.exact if k not in stored)[:20]
        raise AssertionError(f"{exc}; dead letters: {dead}; missing: {missing}") from None


def _all_rows(db: str) -> list[tuple[str, str, int, float | None, int]]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT v.device_id, m.name, (extract(epoch FROM v.time) * 1000)::bigint,"
            " v.value, v.flags FROM vitals v JOIN metrics m USING (metric_id)"
        ).fetchall()
    return [(d, m, int(t), v, f) for d, m, t, v, f in rows]


def assert_stored_exactly(db: str, expected: Expected, tolerance_ms: int = 5000) -> None:
    rows = stored_rows(db)
    exact = {(d, m, t): (v, f) for d, m, t, v, f in rows if not f & ReadingFlag.GATEWAY_TIME}
    assert exact.keys() == expected.exact.keys(), (
        sorted(exact.keys() - expected.exact.keys())[:20],
        sorted(expected.exact.keys() - exact.keys())[:20],
    )
    for key, (value, flags) in expected.exact.items():
        got_value, got_flags = exact[key]
        assert got_flags == flags, key
        assert (got_value is None) == (value is None), key
        if value is not None and got_value is not None:
            assert math.isclose(got_value, value, rel_tol=1e-9), key
    stamped: dict[tuple[str, str], list[tuple[float | None, int]]] = {}
    for d, m, t, v, f in rows:
        if f & ReadingFlag.GATEWAY_TIME:
            stamped.setdefault((d, m), []).append((v, t))
    assert stamped.keys() == expected.received.keys(), (
        "stored but not sent:",
        {k: stamped[k] for k in stamped.keys() - expected.received.keys()},
        "sent but not stored:",
        {k: expected.received[k] for k in expected.received.keys() - stamped.keys()},
    )
    for pair, want_rows in expected.received.items():
        got = sorted(stamped[pair], key=lambda r: r[1])
        want = sorted(want_rows, key=lambda r: r[1])
        assert len(got) == len(want), pair
        assert sorted(v for v, _ in got if v is not None) == sorted(
            v for v, _ in want if v is not None
        ), pair
        for (_, got_t), (_, want_t) in zip(got, want, strict=True):
            assert abs(got_t - want_t) <= tolerance_ms, (pair, got_t, want_t)
    assert_rhythm_summaries(db, expected, tolerance_ms)


def assert_rhythm_summaries(db: str, expected: Expected, tolerance_ms: int) -> None:
    """The gateway's per-minute rhythm summaries: only for a device that sent RR
    intervals, both metrics for each minute, once, stamped within the minute they
    summarise, which it heard beats in. How many minutes closed depends on when the
    notifications came, so their number is not fixed."""
    summaries: dict[tuple[str, int], set[str]] = {}
    for d, m, t, _v, f in _all_rows(db):
        if m in RHYTHM_METRICS:
            assert f & ReadingFlag.GATEWAY_TIME, (d, m, t)
            assert m not in summaries.setdefault((d, t), set()), ("twice", d, m, t)
            summaries[(d, t)].add(m)
    for (device, t), metrics in summaries.items():
        assert metrics == RHYTHM_METRICS, (device, t, metrics)
        beats = expected.beats_ms.get(device, [])
        minute = t // 60_000
        assert any(
            abs(b // 60_000 - minute) <= 1 and abs(b - t) <= 60_000 + tolerance_ms for b in beats
        ), (device, t, "a summary of a minute without beats")


def make_kit(
    key: str,
    kinds: Sequence[DeviceKind],
    *,
    backfill_h: float,
    live_s: int,
    every_s: int = 8,
    dense_s: int | None = None,
) -> tuple[KitSimulator, datetime]:
    """``dense_s`` (default ``live_s``): how long after now the spot devices go on
    measuring every ``every_s`` seconds; only what falls before the simulation's end is
    taken. The live part starts when the test opens it, often long after now: what was
    due meanwhile goes at once."""
    tz = ZoneInfo(HOME_TZ)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=backfill_h)
    schedule = dense_schedule(now, tz, every_s, dense_s or live_s, backfill_h)
    return KitSimulator(key, 11, start, kinds, tz=tz, schedule=schedule), now


def simulation(
    kits: Sequence[BleKit], start: datetime, now: datetime, live_s: int
) -> BleSimulation:
    """Backfill from ``start`` at once, then live (real time) for ``live_s`` seconds, the
    live part held until ``open_live`` (a gateway slow to start on a loaded machine would
    otherwise miss what it must hear)."""
    clock = SimClock(now, 1.0)
    return BleSimulation(
        kits,
        clock,
        start_ms=to_ms(start),
        until_ms=to_ms(now) + live_s * 1000,
        live_gate=threading.Event(),
    )


def open_live(
    sim: BleSimulation,
    live_s: float,
    device_ids: Iterable[str] | None = None,
    timeout_s: float = 300,
) -> None:
    """Once the gateway listens to every device (of ``device_ids``, default all), let the
    live measurements go, for ``live_s`` seconds at least."""
    ids = set(sim.peripherals if device_ids is None else device_ids)
    wait_for(
        lambda: all(p.listened() for i, p in sim.peripherals.items() if i in ids),
        timeout_s,
        "the gateway to listen to every device",
    )
    sim.go_live(live_s)


def keep_artifacts(test_name: str, gateway_workdir: Path) -> Path:
    """Copy the gateway's HCI trace and log out of its (temporary) work folder."""
    target = ARTIFACTS / "ble" / test_name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("gateway-hci.btsnoop", "gateway_main.log"):
        if (gateway_workdir / name).exists():
            shutil.copy2(gateway_workdir / name, target / name)
    return target


def wait_all_kept_sent(
    sim: BleSimulation, device_ids: Iterable[str] | None = None, timeout_s: float = 180
) -> None:
    ids = set(sim.peripherals if device_ids is None else device_ids)
    wait_for(
        lambda: not any(p.holds_unsent() for i, p in sim.peripherals.items() if i in ids),
        timeout_s,
        "every kept record to reach the gateway",
    )


__all__ = ["GLUCOSE", "KEPT", "PLX_SPOT_CHECK"]
