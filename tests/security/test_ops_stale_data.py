"""No reading from ANY gateway for a set time while gateways are enrolled (issue 16): a
dead broker sends no last will, so nothing else would say that every rule is blind. The
engine's tick opens one system alert per affected care team, pushes it to every browser
of that team, shows it on the team's dashboard, and resolves it when readings flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from alerts.engine import Engine
from alerts.notify import CareTeamNotifier
from alerts.protocol import builtin_protocols
from alerts.stale_data import KIND, SystemNotice
from alerts.vapid import generate
from alerts.webpush import PushNotifier
from api.app import create_app
from tests.api.conftest import PASSWORD, World, world  # noqa: F401 - the API tests' world
from tests.push_endpoint import PushEndpoint
from tests.stack import wait_for
from vitals.settings import Settings

STALE_S = 900


def _open(conn: psycopg.Connection) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT team_id, kind FROM system_alerts WHERE resolved_at IS NULL ORDER BY 1"
    ).fetchall()


def test_no_data_from_any_gateway_alerts_the_enrolled_teams(world: World) -> None:  # noqa: F811
    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    protocols = builtin_protocols()
    team = CareTeamNotifier(world.db, protocols, "https://postop.example.org")
    pusher = PushNotifier(
        keys.private_pem,
        "mailto:team@postop.invalid",
        team.record,
        allow_private_endpoints=True,  # the local endpoint on loopback
    )
    team.pusher = pusher
    pusher.start()
    start = datetime.now(UTC)
    clock = [int(start.timestamp() * 1000)]
    told: list[SystemNotice] = []

    def notify_system(conn: psycopg.Connection, notices: list[SystemNotice]) -> None:
        told.extend(notices)
        team.system(conn, notices)

    try:
        with psycopg.connect(world.db, autocommit=True) as conn:
            for n, (tid, role) in enumerate(
                [(world.team_a, "coordinator"), (world.team_a, "admin"), (world.team_b, "admin")],
                start=1,
            ):
                s = endpoint.subscribe(n)
                conn.execute(
                    "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (tid, role, s.endpoint, s.p256dh, s.auth),
                )
            # the home's gateway last delivered a batch 20 minutes before the engine started
            conn.execute(
                "INSERT INTO gateway_progress (gateway_id, last_seq, last_batch_at)"
                " VALUES ('gw-a-001', 10, %s)",
                (start - timedelta(minutes=20),),
            )
            engine = Engine(
                world.db,
                protocols,
                lambda _c, _n: None,
                clock_ms=lambda: clock[0],
                stale_after_s=STALE_S,
                notify_system=notify_system,  # type: ignore[arg-type]
            )
            engine.evaluate_once(conn, None)
            assert _open(conn) == []  # the engine cannot vouch for a time it was not watching
            clock[0] += (STALE_S + 60) * 1000
            engine.evaluate_once(conn, None)
            engine.evaluate_once(conn, None)  # one alert, not one per round
            # team B has no enrolled home: its monitoring is not affected
            assert _open(conn) == [(world.team_a, KIND)]
            assert [n.team_id for n in told] == [world.team_a]
            wait_for(lambda: len(endpoint.received) >= 2, 15, "the pushes")

            with TestClient(create_app(Settings(database_url=SecretStr(world.db)))) as coordinator:
                signed = coordinator.post(
                    "/api/v1/session",
                    json={"email": world.emails["coordinator"], "password": PASSWORD},
                )
                assert signed.status_code == 200, signed.text
                page = coordinator.get("/")
            assert page.status_code == 200
            assert "Aucune mesure n&#39;arrive plus d&#39;aucune passerelle" in page.text

            # readings arrive again: resolved at the next tick
            conn.execute(
                "UPDATE gateway_progress SET last_batch_at = %s",
                (datetime.fromtimestamp(clock[0] / 1000, UTC),),
            )
            engine.evaluate_once(conn, None)
            assert _open(conn) == []
    finally:
        pusher.stop()
        endpoint.stop()
    # every browser of the affected team, whatever the role; nobody else
    assert sorted(r.endpoint_id for r in endpoint.received) == ["ep1", "ep2"]
    assert all(r.payload["tag"].startswith("system-") for r in endpoint.received)
    assert endpoint.received[0].payload["url"] == "https://postop.example.org/"
    assert endpoint.rejected == []


def test_the_banner_changes_live_on_the_affected_teams_dashboards_only(world: World) -> None:  # noqa: F811
    """An open dashboard learns at once that its team's system alerts changed (SSE
    ``system``), and fetches the banner; another team's dashboards hear nothing."""
    import asyncio

    from api.care_team.live import Broadcaster

    start = datetime.now(UTC)
    clock = [int(start.timestamp() * 1000)]

    async def scenario() -> tuple[list[str], list[str]]:
        live = Broadcaster(world.db)
        live.start()
        await asyncio.wait_for(live.connected.wait(), 15)
        team_a = live.stream(set(), frozenset({world.team_a}))
        team_b = live.stream(set(), frozenset({world.team_b}))
        seen_a: list[str] = []
        seen_b: list[str] = []

        async def drain(stream: object, into: list[str]) -> None:
            async for chunk in stream:  # type: ignore[attr-defined]
                if chunk.startswith("event:"):
                    into.append(chunk.split("\n")[0])

        tasks = [
            asyncio.create_task(drain(team_a, seen_a)),
            asyncio.create_task(drain(team_b, seen_b)),
        ]
        await asyncio.sleep(0.5)  # both streams registered
        seen_a.clear()
        seen_b.clear()

        def engine_tick() -> None:
            with psycopg.connect(world.db, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO gateway_progress (gateway_id, last_seq, last_batch_at)"
                    " VALUES ('gw-a-001', 10, %s) ON CONFLICT (gateway_id)"
                    " DO UPDATE SET last_batch_at = EXCLUDED.last_batch_at",
                    (start - timedelta(minutes=20),),
                )
                engine = Engine(
                    world.db,
                    builtin_protocols(),
                    lambda _c, _n: None,
                    clock_ms=lambda: clock[0],
                    stale_after_s=STALE_S,
                )
                engine.evaluate_once(conn, None)
                clock[0] += (STALE_S + 60) * 1000
                engine.evaluate_once(conn, None)
                assert _open(conn) == [(world.team_a, KIND)]

        await asyncio.to_thread(engine_tick)
        for _ in range(100):
            if seen_a:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # time for a wrong delivery to team B to show
        for t in tasks:
            t.cancel()
        await live.stop()
        return seen_a, seen_b

    seen_a, seen_b = asyncio.run(scenario())
    assert seen_a == ["event: system"]
    assert seen_b == []

    with TestClient(create_app(Settings(database_url=SecretStr(world.db)))) as coordinator:
        signed = coordinator.post(
            "/api/v1/session",
            json={"email": world.emails["coordinator"], "password": PASSWORD},
        )
        assert signed.status_code == 200, signed.text
        banner = coordinator.get("/fragments/system-alerts")
    assert banner.status_code == 200
    assert "Aucune mesure n&#39;arrive plus d&#39;aucune passerelle" in banner.text
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute("UPDATE system_alerts SET resolved_at = now() WHERE resolved_at IS NULL")
