"""The local link endpoint: devices (or the firmware simulator) connect over loopback TCP
and send one JSON frame per line (see vitals/link.py). Each frame is decoded and its
readings committed to the outbox before the next line is read; a frame that cannot be
decoded is kept in the outbox's rejected list with its reason, never a crash.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gateway.gatt_decode import GattDecodeError, decode
from gateway.outbox import Outbox, OutboxReading
from gateway.rhythm_buffer import RhythmBuffer
from vitals.catalogue import BY_NAME
from vitals.flags import ReadingFlag
from vitals.link import MAX_LINE_BYTES, LinkFrame

log = logging.getLogger(__name__)


class FrameHandler:
    """Frame bytes in, outbox rows out; shared by every connection."""

    def __init__(self, outbox: Outbox, device_tz: ZoneInfo, on_stored: Callable[[], None]) -> None:
        self._outbox = outbox
        self._tz = device_tz
        self._on_stored = on_stored
        self._rhythm = RhythmBuffer()
        self.frames = 0
        self.rejected = 0

    def handle(self, line: bytes) -> None:
        self.frames += 1
        try:
            frame = LinkFrame.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            self._reject(0, None, line, f"malformed link frame: {first['msg']}")
            return
        try:
            readings = self._readings(frame)
        except GattDecodeError as exc:
            self._reject(frame.rx_ms, frame.device, line, f"characteristic {frame.char}: {exc}")
            return
        if self._outbox.append(readings):
            self._on_stored()

    def _readings(self, frame: LinkFrame) -> list[OutboxReading]:
        if frame.entry is not None:
            if frame.entry.metric not in BY_NAME:
                raise GattDecodeError(f"unknown metric {frame.entry.metric!r}")
            return [
                OutboxReading(
                    frame.device,
                    frame.entry.metric,
                    frame.rx_ms,
                    frame.entry.value,
                    int(ReadingFlag.GATEWAY_TIME),
                )
            ]
        assert frame.char_uuid is not None
        out = []
        for r in decode(frame.char_uuid, frame.payload, self._tz):
            if r.time_ms is None:  # no time in the characteristic: reception time
                time_ms, flags = frame.rx_ms, r.flags | int(ReadingFlag.GATEWAY_TIME)
            else:
                time_ms, flags = r.time_ms, r.flags
            out.append(OutboxReading(frame.device, r.metric, time_ms, r.value, flags))
            for summary in self._rhythm.add(frame.device, frame.rx_ms, r.rr_ms):
                out.append(
                    OutboxReading(
                        frame.device,
                        summary.metric,
                        summary.time_ms,
                        summary.value,
                        int(ReadingFlag.GATEWAY_TIME),
                    )
                )
        return out

    def _reject(self, rx_ms: int, device: str | None, line: bytes, reason: str) -> None:
        self.rejected += 1
        log.warning("rejected a frame from %s: %s", device or "an unknown device", reason)
        self._outbox.reject(rx_ms, device, line, reason)


class _Handler(socketserver.StreamRequestHandler):
    server: LinkServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                self.server.frames.handle(line[:200])  # rejected as malformed, kept short
                self.rfile.readline()  # drop the rest of the oversized line
                continue
            if line.strip():
                self.server.frames.handle(line.strip())


class LinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, frames: FrameHandler) -> None:
        self.frames = frames
        super().__init__((host, port), _Handler)

    def serve_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="link-server", daemon=True)
        t.start()
        return t
