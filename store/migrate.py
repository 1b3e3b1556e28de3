"""Numbered SQL migrations, applied in order, each once, each in its own transaction.

Files are ``NNNN_name.sql`` (both flavours) or ``NNNN_name.<flavour>.sql`` (one per
flavour, same number). Applying twice is a no-op; concurrent runs serialise on an
advisory lock. After the SQL, the ``metrics`` table is synchronised with the catalogue.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from store.flavour import Flavour, detect
from vitals.catalogue import CATALOGUE

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<flavour>[a-z]+))?\.sql$")
_LOCK_KEY = 0x706F73746F70  # "postop"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_for(flavour: Flavour) -> list[Migration]:
    found: dict[int, Migration] = {}
    for entry in resources.files("store.migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if match is None:
            continue
        if match["flavour"] not in (None, flavour.value):
            continue
        version = int(match["version"])
        if version in found:
            raise RuntimeError(f"two migrations numbered {version:04d} for {flavour}")
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def migrate(conninfo: str) -> list[Migration]:
    """Apply what is missing; returns the migrations applied by this call."""
    applied: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            flavour = detect(conn)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, flavour text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for mig in migrations_for(flavour):
                if mig.version in done:
                    continue
                log.info("applying migration %04d_%s (%s)", mig.version, mig.name, flavour)
                # continuous aggregates cannot be created inside a transaction block
                if flavour is Flavour.TIMESCALEDB and "timescaledb.continuous" in mig.sql:
                    conn.execute(mig.sql.encode())
                    _record(conn, mig, flavour)
                else:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        _record(conn, mig, flavour)
                applied.append(mig)
            _sync_metrics(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def _record(conn: psycopg.Connection, mig: Migration, flavour: Flavour) -> None:
    conn.execute(
        "INSERT INTO schema_migrations (version, name, flavour) VALUES (%s, %s, %s)",
        (mig.version, mig.name, flavour.value),
    )


def _sync_metrics(conn: psycopg.Connection) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO metrics (metric_id, name, ucum, loinc, plausible_min, plausible_max, kind)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (metric_id) DO UPDATE SET name = EXCLUDED.name, ucum = EXCLUDED.ucum,"
            " loinc = EXCLUDED.loinc, plausible_min = EXCLUDED.plausible_min,"
            " plausible_max = EXCLUDED.plausible_max, kind = EXCLUDED.kind",
            [
                (m.metric_id, m.name, m.ucum, m.loinc, m.plausible_min, m.plausible_max, m.kind)
                for m in CATALOGUE
            ],
        )
