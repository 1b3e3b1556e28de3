"""The gateway's durable outbox: every decoded reading is committed to SQLite (WAL) before
anything else happens to it, and leaves only once the broker has acknowledged the MQTT
message that carried it. Killed, rebooted or offline for days, the gateway replays from
here in sequence order with the original timestamps.

The outbox row id is the per-gateway sequence number on the wire (AUTOINCREMENT: never
reused, even after the newest rows were deleted).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    device  TEXT NOT NULL,
    metric  TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    value   REAL,
    flags   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected_frames (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    rx_ms   INTEGER NOT NULL,
    device  TEXT,
    frame   BLOB NOT NULL,
    reason  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_KEEP_REJECTED = 10_000


@dataclass(frozen=True, slots=True)
class OutboxReading:
    device: str
    metric: str
    time_ms: int
    value: float | None
    flags: int


@dataclass(frozen=True, slots=True)
class PendingReading:
    seq: int
    device: str
    metric: str
    time_ms: int
    value: float | None
    flags: int

    def wire(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "device": self.device,
            "metric": self.metric,
            "time_ms": self.time_ms,
            "value": self.value,
            "flags": self.flags,
        }


class Outbox:
    """Thread-safe: the local link threads append, the uplink thread reads and deletes."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # readings are health data: the file is the gateway's alone (SQLite gives its
        # -wal and -shm files the database file's mode); earlier files are tightened too
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if part.exists():
                part.chmod(0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, readings: Iterable[OutboxReading]) -> int:
        """Commit readings; returns how many. Durable once this returns."""
        rows = [(r.device, r.metric, r.time_ms, r.value, r.flags) for r in readings]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO outbox (device, metric, time_ms, value, flags) VALUES (?,?,?,?,?)",
                rows,
            )
            self._db.execute("COMMIT")
        return len(rows)

    def reject(self, rx_ms: int, device: str | None, frame: bytes, reason: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "INSERT INTO rejected_frames (rx_ms, device, frame, reason) VALUES (?,?,?,?)",
                (rx_ms, device, frame, reason),
            )
            self._db.execute(
                "DELETE FROM rejected_frames WHERE id <= ?",
                ((cur.lastrowid or 0) - _KEEP_REJECTED,),
            )
            self._db.execute("COMMIT")

    def pending_after(self, seq: int, limit: int) -> list[PendingReading]:
        """The oldest readings with a sequence number above ``seq``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, device, metric, time_ms, value, flags FROM outbox"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [PendingReading(*row) for row in rows]

    def delete_range(self, lo: int, hi: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (lo, hi))

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def rejected_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM rejected_frames").fetchone()[0])

    def rejected(self) -> list[tuple[str | None, str]]:
        with self._lock:
            return [
                (d, r)
                for d, r in self._db.execute(
                    "SELECT device, reason FROM rejected_frames ORDER BY id"
                )
            ]

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value",
                (key, value),
            )
