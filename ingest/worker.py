"""The ingest loop: gather a batch (bounded in readings, messages and time), parse it,
write it in one transaction, then ack. A database outage stops the acks and the batch is
retried until it commits; a batch the database rejects for its content is split so the
offending message alone becomes a dead letter and the worker keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from ingest.mqtt_source import Incoming
from ingest.parse import DeadLetter, ParsedReadings, Row, parse_readings, parse_status
from ingest.writer import DeadLetterLimits, WriteResult, prepare, write_batch
from store.aggregates import refresh_aggregates
from vitals.settings import IngestSettings
from vitals.topics import gateway_of
from vitals.wire import GatewayStatus

log = logging.getLogger(__name__)


@dataclass
class Counters:
    messages: int = 0
    inserted: int = 0
    careful_rows: int = 0
    dead_letters: int = 0
    dead_dropped: int = 0
    conflicts: int = 0
    batches: int = 0
    db_retries: int = 0
    started: float = field(default_factory=time.monotonic)


Committed = dict[str, list[tuple[int, int]]]  # per gateway, outbox sequence ranges


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    rows: list[Row]
    dead: list[DeadLetter]
    statuses: list[tuple[str, GatewayStatus]]
    committed: Committed  # what to confirm to each gateway once committed


Parsed = tuple[list[Incoming], ParsedBatch, int]  # items, parsed, parse time (ms)


def parse_batch(items: list[Incoming], now_ms: int, future_tolerance_ms: int) -> ParsedBatch:
    rows: list[Row] = []
    dead: list[DeadLetter] = []
    statuses: list[tuple[str, GatewayStatus]] = []
    committed: Committed = {}
    for item in items:
        if item.topic.endswith("/status"):
            st = parse_status(item.topic, item.payload, now_ms, future_tolerance_ms)
            if st is None:
                continue
            if st.status is not None:
                statuses.append((st.gateway_id, st.status))
            if st.dead is not None:
                dead.append(st.dead)
            continue
        try:
            parsed = parse_readings(item.topic, item.payload, now_ms, future_tolerance_ms)
        except Exception as exc:  # a bug of ours must cost one message, never the worker
            log.exception("could not parse a message; kept as a dead letter")
            reason = f"could not be parsed ({type(exc).__name__})"
            parsed = ParsedReadings(
                [], [DeadLetter(item.topic, gateway_of(item.topic), None, reason, item.payload)]
            )
        rows.extend(parsed.rows)
        dead.extend(parsed.dead)
        span = parsed.seq_span()
        gateway_id = gateway_of(item.topic)
        if span is not None and gateway_id is not None:
            committed.setdefault(gateway_id, []).append(span)
    return ParsedBatch(rows, dead, statuses, committed)


class IngestWorker:
    def __init__(
        self,
        conninfo: str,
        settings: IngestSettings,
        inbox: queue.Queue[Incoming],
        ack: Callable[[list[Incoming], Committed], None],
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._conninfo = conninfo
        self._settings = settings
        self._inbox = inbox
        self._ack = ack
        self._clock_ms = clock_ms
        self._conn: psycopg.Connection | None = None
        self._limits = DeadLetterLimits(
            settings.dead_letters_per_gateway_hour, settings.dead_letter_payload_bytes
        )
        self.counters = Counters()
        self._dirty_since_refresh = False
        self._last_refresh = time.monotonic()
        self._last_log = time.monotonic()

    # -- batching -----------------------------------------------------------------
    def _collect(self, stop: threading.Event) -> list[Incoming]:
        try:
            first = self._inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        items = [first]
        readings_estimate = len(first.payload) // 90
        deadline = time.monotonic() + self._settings.batch_max_wait_s
        while (
            len(items) < self._settings.batch_max_messages
            and readings_estimate < self._settings.batch_max_readings
            and not stop.is_set()
        ):
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._inbox.get(timeout=remaining)
                    if remaining > 0
                    else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
            items.append(item)
            readings_estimate += len(item.payload) // 90
        return items

    # -- database -----------------------------------------------------------------
    def _connection(self, stop: threading.Event) -> psycopg.Connection | None:
        delay = 0.2
        while self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
                prepare(conn)
                self._conn = conn
            except psycopg.OperationalError as exc:
                self.counters.db_retries += 1
                log.warning(
                    "database unavailable (%s); retrying in %.1f s", type(exc).__name__, delay
                )
                if stop.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)
        return self._conn

    def _write(self, batch: ParsedBatch, stop: threading.Event) -> WriteResult | None:
        """Write until committed; None only if asked to stop first (nothing is acked)."""
        delay = 0.2
        while True:
            conn = self._connection(stop)
            if conn is None:
                return None
            try:
                return write_batch(conn, batch.rows, batch.dead, batch.statuses, self._limits)
            except psycopg.OperationalError as exc:
                self.counters.db_retries += 1
                log.warning("write failed (%s); retrying in %.1f s", type(exc).__name__, delay)
                self._close()
                if stop.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _parse(self, items: list[Incoming]) -> Parsed:
        now_ms = self._clock_ms()
        tolerance_ms = int(self._settings.future_tolerance_s * 1000)
        return items, parse_batch(items, now_ms, tolerance_ms), now_ms

    def _store(
        self, items: list[Incoming], batch: ParsedBatch, now_ms: int, stop: threading.Event
    ) -> Committed | None:
        """Write the items; what to confirm to the gateways, or None if asked to stop."""
        tolerance_ms = int(self._settings.future_tolerance_s * 1000)
        try:
            result = self._write(batch, stop)
        except psycopg.Error as exc:
            # The database refused the content (not an outage): isolate the culprit.
            log.error(
                "batch rejected by the database (%s); writing message by message",
                type(exc).__name__,
            )
            return self._store_one_by_one(items, stop, now_ms, tolerance_ms)
        if result is None:
            return None
        self._account(result, len(items))
        return batch.committed

    def _store_one_by_one(
        self, items: list[Incoming], stop: threading.Event, now_ms: int, tolerance_ms: int
    ) -> Committed | None:
        committed: Committed = {}
        for item in items:
            batch = parse_batch([item], now_ms, tolerance_ms)
            try:
                result = self._write(batch, stop)
            except psycopg.Error as exc:
                letter = DeadLetter(
                    item.topic,
                    None,
                    None,
                    f"rejected by the database: {type(exc).__name__}",
                    item.payload,
                )
                # kept whole as a dead letter: confirmed, or the gateway would resend forever
                result = self._write(ParsedBatch([], [letter], [], {}), stop)
            if result is None:
                return None
            self._account(result, 1)
            for gateway_id, spans in batch.committed.items():
                committed.setdefault(gateway_id, []).extend(spans)
        return committed

    def _account(self, result: WriteResult, messages: int) -> None:
        c = self.counters
        c.messages += messages
        c.inserted += result.inserted
        c.careful_rows += result.careful_rows
        c.dead_letters += result.dead_letters
        c.dead_dropped += result.dead_dropped
        c.conflicts += result.conflicts
        c.batches += 1
        if result.inserted:
            self._dirty_since_refresh = True

    def _maybe_refresh(self) -> None:
        if not self._dirty_since_refresh:
            return
        if time.monotonic() - self._last_refresh < self._settings.refresh_aggregates_s:
            return
        conn = self._conn
        if conn is None:
            return
        try:
            refresh_aggregates(conn)
            self._dirty_since_refresh = False
            self._last_refresh = time.monotonic()
        except psycopg.OperationalError:
            self._close()

    def _housekeeping(self) -> None:
        self._maybe_refresh()
        if time.monotonic() - self._last_log > 30:
            c = self.counters
            log.info(
                "ingest: %d messages, %d readings stored (%d checked one by one as possible"
                " replays), %d conflicting values kept aside, %d dead letters (%d more"
                " beyond the hourly bound, counted only), %d db retries",
                c.messages,
                c.inserted,
                c.careful_rows,
                c.conflicts,
                c.dead_letters,
                c.dead_dropped,
                c.db_retries,
            )
            self._last_log = time.monotonic()

    def _produce(self, ready: queue.Queue[Parsed | None], stop: threading.Event) -> None:
        """Collect and parse the next batch while the previous one is being written."""
        try:
            while not stop.is_set():
                items = self._collect(stop)
                if items:
                    ready.put(self._parse(items))
        finally:
            ready.put(None)

    def run(self, stop: threading.Event) -> None:
        ready: queue.Queue[Parsed | None] = queue.Queue(maxsize=2)
        producer = threading.Thread(
            target=self._produce, args=(ready, stop), name="ingest-parse", daemon=True
        )
        producer.start()
        self._last_log = time.monotonic()
        while True:
            try:
                parsed = ready.get(timeout=1.0)
            except queue.Empty:
                self._housekeeping()
                continue
            if parsed is None:
                break
            items, batch, now_ms = parsed
            committed = self._store(items, batch, now_ms, stop)
            if committed is None:
                break
            self._ack(items, committed)
            self._housekeeping()
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        self._close()
