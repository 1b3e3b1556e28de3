"""Keeping a local Mosquitto's password file in step with the database: when the API
registers or re-keys a gateway it NOTIFYs ``mqtt_accounts_changed``; this re-renders the
file and reloads the broker (SIGHUP), so the new gateway can connect at once. The ACL's
``%u`` pattern already confines it to its own topics."""

from __future__ import annotations

import logging
import threading

import psycopg

from postop.local_mosquitto import LocalMosquitto
from store.mqtt_accounts import ACCOUNTS_CHANNEL, write_password_file

log = logging.getLogger(__name__)


def follow_broker_accounts(
    conninfo: str, broker: LocalMosquitto, stop: threading.Event
) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {ACCOUNTS_CHANNEL}")
                    # whatever changed while we were not listening
                    write_password_file(conn, broker.password_file)
                    broker.reload()
                    while not stop.is_set():
                        if list(conn.notifies(timeout=1.0, stop_after=1)):
                            count = write_password_file(conn, broker.password_file)
                            broker.reload()
                            log.info("broker accounts reloaded (%d accounts)", count)
            except psycopg.OperationalError:
                stop.wait(2.0)

    thread = threading.Thread(target=run, name="broker-accounts", daemon=True)
    thread.start()
    return thread
