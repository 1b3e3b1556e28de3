"""Keeping a local Mosquitto's accounts in step with the database: when the API
registers or re-keys a gateway it NOTIFYs ``mqtt_accounts_changed``; this derives the
accounts again and makes the running broker match them (client-id binding and ACLs over
the dynamic-security control topic first, then the password file and a SIGHUP), so the
new gateway can connect at once, confined to its own topics and client id."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import psycopg

from postop.dynsec_control import DynsecError
from postop.local_mosquitto import LocalMosquitto
from store.broker_acl import BrokerAccount, accounts_from_db
from store.mqtt_accounts import ACCOUNTS_CHANNEL

log = logging.getLogger(__name__)


def follow_broker_accounts(
    conninfo: str,
    broker: LocalMosquitto,
    stop: threading.Event,
    services: Sequence[BrokerAccount] = (),
) -> threading.Thread:
    def sync(conn: psycopg.Connection) -> None:
        accounts = accounts_from_db(conn, services)
        broker.apply_accounts(accounts)
        log.info("broker accounts in step with the database (%d accounts)", len(accounts))

    def run() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {ACCOUNTS_CHANNEL}")
                    sync(conn)  # whatever changed while we were not listening
                    while not stop.is_set():
                        if list(conn.notifies(timeout=1.0, stop_after=1)):
                            sync(conn)
            except (psycopg.OperationalError, DynsecError, OSError) as exc:
                log.warning("broker accounts not synchronised (%s); retrying", exc)
                stop.wait(2.0)

    thread = threading.Thread(target=run, name="broker-accounts", daemon=True)
    thread.start()
    return thread
