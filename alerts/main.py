"""``postop alerts``: the rules engine with its notifier, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import psycopg

from alerts.alert_store import Notice
from alerts.engine import Engine
from alerts.protocol import Protocol, builtin_protocols, load_protocol_file
from vitals.service import run_service
from vitals.settings import Settings

log = logging.getLogger(__name__)


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


def run(settings: Settings, stop: threading.Event) -> None:
    protocols = load_protocols(settings)
    notify: Callable[[psycopg.Connection, Sequence[Notice]], None] = _log_only
    if settings.alerts.vapid_private_key is None:
        log.warning(
            "no VAPID key configured (POSTOP_ALERTS__VAPID_PRIVATE_KEY): alerts are "
            "stored and shown, but no Web Push is sent"
        )
    else:
        log.error("Web Push is not available in this version yet; alerts are stored only")
    engine = Engine(settings.database_url.get_secret_value(), protocols, notify)
    log.info("alerts engine running with protocols %s", ", ".join(sorted(protocols)))
    engine.run(stop, settings.alerts.tick_s, settings.alerts.debounce_s)


def main(settings: Settings | None = None) -> None:
    run_service(run, settings)


if __name__ == "__main__":
    main()
