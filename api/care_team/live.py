"""Live updates for open dashboards: one LISTEN connection per API process (alert
changes and newly ingested readings), fanned out to each browser's Server-Sent Events
stream, filtered to the patients of that clinician's teams (and home physicians'
questions, asked or answered). Events carry ids only;
the page fetches what changed through the audited API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg

log = logging.getLogger(__name__)

# patient_reported: the patient app stored something the team sees (a wound photo)
CHANNELS = (
    "alerts_changed",
    "vitals_ingested",
    "system_alerts_changed",
    "questions_changed",
    "patient_reported",
)
QUEUE_MAX = 256
KEEPALIVE_S = 15.0


@dataclass(frozen=True, slots=True)
class LiveEvent:
    # "alert", "vitals", "question", "system", "reported" (the patient sent something:
    # ``what`` says which) or "resync" when a slow browser missed events
    kind: str
    patient_ids: tuple[int, ...]
    data: dict[str, object]
    team_id: int | None = None  # a system alert concerns a care team, not a patient


def _parse(channel: str, payload: str) -> LiveEvent | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if channel == "alerts_changed":
        return LiveEvent("alert", (int(body["patient_id"]),), body)
    if channel == "system_alerts_changed":
        return LiveEvent("system", (), {}, int(body["team_id"]))
    if channel == "questions_changed":  # a home physician's question, or its answer
        return LiveEvent("question", (int(body["patient_id"]),), {})
    if channel == "patient_reported":
        return LiveEvent("reported", (int(body["patient_id"]),), {"what": str(body["what"])})
    # a questionnaire response names itself, so a patient page can fetch it
    extra: dict[str, object] = {}
    if "questionnaire" in body:
        extra["questionnaire"] = int(body["questionnaire"])
    return LiveEvent("vitals", tuple(int(p) for p in body.get("patients", [])), extra)


@dataclass
class Broadcaster:
    conninfo: str
    _queues: set[asyncio.Queue[LiveEvent]] = field(default_factory=set)
    _task: asyncio.Task[None] | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="live-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                async with conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {channel}")
                    self.connected.set()
                    # anything may have changed while we were not listening
                    self._publish(LiveEvent("resync", (), {}))
                    async for note in conn.notifies():
                        event = _parse(note.channel, note.payload)
                        if event is not None:
                            self._publish(event)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                self.connected.clear()
                log.warning("live updates: database unavailable (%s)", type(exc).__name__)
                await asyncio.sleep(2.0)

    def _publish(self, event: LiveEvent) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled browser: tell it to reload its data
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(LiveEvent("resync", (), {}))

    async def stream(self, patient_ids: set[int], team_ids: frozenset[int]) -> AsyncIterator[str]:
        """SSE lines for one browser, forever (the response ends when it disconnects)."""
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(QUEUE_MAX)
        self._queues.add(queue)
        try:
            yield "retry: 3000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                shown = [p for p in event.patient_ids if p in patient_ids]
                if event.kind == "system":
                    if event.team_id not in team_ids:
                        continue
                elif event.kind != "resync" and not shown:
                    continue
                body = json.dumps({"patients": shown, **event.data})
                yield f"event: {event.kind}\ndata: {body}\n\n"
        finally:
            self._queues.discard(queue)
