"""The API stops when asked even while a clinician's page holds its live stream open.

uvicorn, on shutdown, waits for open responses to finish; the live updates (Server-Sent
Events) never do, so a restart (a deployment, `postop up` stopped) hung until the process
was killed. The server now gives open responses a short grace, then ends them; the page's
EventSource reconnects to the next instance by itself (``retry: 3000``)."""

from __future__ import annotations

import threading
import time

import httpx

from tests.api.conftest import World, credentials
from tests.api_server import start
from vitals.settings import Settings


def test_the_api_stops_within_its_grace_while_a_live_stream_is_open(
    world: World, app_settings: Settings
) -> None:
    served = start(app_settings)
    settings, base = served.settings, served.base_url
    signed_in = httpx.post(
        f"{base}/api/v1/session", json=credentials(settings, world.emails["coordinator"])
    )
    assert signed_in.status_code == 200, signed_in.text
    lines: list[str] = []
    ended = threading.Event()

    def listen() -> None:
        with httpx.Client(
            cookies=signed_in.cookies, timeout=httpx.Timeout(5.0, read=60.0)
        ) as client:
            try:
                with client.stream("GET", f"{base}/api/v1/events") as res:
                    assert res.status_code == 200
                    for line in res.iter_lines():
                        lines.append(line)
            except httpx.HTTPError:
                pass  # the server ended the stream: what a browser then reconnects after
            finally:
                ended.set()

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while "retry: 3000" not in lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "retry: 3000" in lines, lines  # the stream is open

    asked_ms = time.monotonic()
    served.stop()  # what SIGTERM does
    took_s = time.monotonic() - asked_ms
    assert not served.thread.is_alive(), "the API still runs with a live stream open"
    assert took_s < settings.api.shutdown_grace_s + 5, took_s
    assert ended.wait(5), "the live stream was not ended"
