"""``postop alerts``: the rules engine with its notifier, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import psycopg

from alerts.alert_store import Notice
from alerts.battery_requests import BatteryRequests
from alerts.engine import Engine
from alerts.full_set_requests import FullSetRequests
from alerts.notify import CareTeamNotifier
from alerts.protocol import Protocol, builtin_protocols, load_protocol_file
from alerts.remeasure import RemeasureRequests
from alerts.reminders import ReminderSender
from alerts.stale_data import SystemNotice
from alerts.webpush import DeliveryOutcome, PushNotifier
from store.service_status import BrokerMonitor
from vitals.broker_probe import probe_broker
from vitals.service import run_service
from vitals.settings import Settings

log = logging.getLogger(__name__)
# where a reminder's notification opens the patient app (the API serves it)
PATIENT_APP_PATH = "/p/"


def load_protocols(settings: Settings) -> dict[str, Protocol]:
    protocols = builtin_protocols()
    if settings.alerts.protocol_dir is not None:
        for path in sorted(settings.alerts.protocol_dir.glob("*.yaml")):
            proto = load_protocol_file(path)  # a bad file stops start-up with file:line
            protocols[proto.protocol] = proto
    return protocols


def _log_only(_conn: psycopg.Connection, notices: Sequence[Notice]) -> None:
    for n in notices:
        log.info("alert %d %s (%s priority, tier %d)", n.alert_id, n.reason, n.priority, n.tier)


def _log_system(_conn: psycopg.Connection, notices: Sequence[SystemNotice]) -> None:
    for n in notices:
        log.error("system alert %d %s for team %d", n.system_alert_id, n.kind, n.team_id)


def _broker_answers(settings: Settings) -> bool:
    problem = probe_broker(settings.mqtt, "alerts-engine-probe")
    return problem is None or problem.startswith("refused")


def run(settings: Settings, stop: threading.Event) -> None:
    protocols = load_protocols(settings)
    conninfo = settings.database_url.get_secret_value()
    notify: Callable[[psycopg.Connection, Sequence[Notice]], None] = _log_only
    notify_system: Callable[[psycopg.Connection, Sequence[SystemNotice]], None] = _log_system
    pusher: PushNotifier | None = None
    reminders = ReminderSender(conninfo, protocols, None, settings.api.link(PATIENT_APP_PATH))
    # without a VAPID key the requests still reach the patient app's home screen
    requests = RemeasureRequests(conninfo, protocols, None, settings.api.link(PATIENT_APP_PATH))
    batteries = BatteryRequests(conninfo, protocols, None, settings.api.link(PATIENT_APP_PATH))
    full_sets = FullSetRequests(conninfo, protocols, None, settings.api.link(PATIENT_APP_PATH))
    if settings.alerts.vapid_private_key is None:
        log.warning(
            "no VAPID key configured (POSTOP_ALERTS__VAPID_PRIVATE_KEY; `postop vapid`"
            " makes one): alerts are stored and shown, but no Web Push is sent"
        )
    else:
        key = settings.alerts.vapid_private_key.get_secret_value()

        def started(record: Callable[[DeliveryOutcome], None]) -> PushNotifier:
            """A sender of its own per table of subscriptions its outcomes name."""
            sender = PushNotifier(
                key,
                settings.alerts.vapid_subject,
                record,
                max_attempts=settings.alerts.push_max_attempts,
                allow_private_endpoints=settings.alerts.push_allow_private_endpoints,
            )
            sender.start()
            return sender

        team = CareTeamNotifier(conninfo, protocols, settings.api.public_base_url)
        pusher = team.pusher = started(team.record)
        # the patients' phones have their own senders: outcomes name subscriptions of
        # another table
        reminders.pusher = started(reminders.record)
        requests.pusher = started(requests.record)
        batteries.pusher = started(batteries.record)
        full_sets.pusher = started(full_sets.record)

        def notify(conn: psycopg.Connection, notices: Sequence[Notice]) -> None:
            _log_only(conn, notices)
            team(conn, notices)

        def notify_system(conn: psycopg.Connection, notices: Sequence[SystemNotice]) -> None:
            _log_system(conn, notices)
            team.system(conn, notices)

    engine = Engine(
        conninfo,
        protocols,
        notify,
        stale_after_s=settings.alerts.stale_data_s,
        notify_system=notify_system,
        after_round=lambda conn, ids, now_ms: (
            requests(conn, ids, now_ms),
            batteries(conn, ids, now_ms),
            full_sets(conn, ids, now_ms),
        ),
    )
    # the engine needs no broker, but it is the one always running: it says when the
    # broker stays unreachable (any answer, even a refusal, means the broker is up)
    BrokerMonitor(
        conninfo,
        "alerts",
        "engine",
        f"{settings.mqtt.host}:{settings.mqtt.port}",
        lambda: _broker_answers(settings),
        settings.mqtt.down_log_s,
        every_s=15.0,
    ).start(stop)
    if reminders.pusher is not None:
        threading.Thread(
            target=reminders.run, args=(stop, settings.alerts.tick_s), name="reminders", daemon=True
        ).start()
    log.info("alerts engine running with protocols %s", ", ".join(sorted(protocols)))
    try:
        engine.run(stop, settings.alerts.tick_s, settings.alerts.debounce_s)
    finally:
        if pusher is not None:
            pusher.stop()
        for sender in (reminders, requests, batteries, full_sets):
            if sender.pusher is not None:
                sender.pusher.stop()


def main(settings: Settings | None = None) -> None:
    run_service(run, settings)


if __name__ == "__main__":
    main()
