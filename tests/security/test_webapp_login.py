"""Issue 16, sign-in and client addresses: X-Forwarded-For was believed from anything on
loopback (the throttle, the shared pages' rate limit and the audit log took a forged
address); one proxy's failures locked everyone behind it out; and parallel wrong
passwords were all checked against a limit meant to stop them. Run against uvicorn as
``postop api`` configures it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from tests import second_factor
from tests.api_server import Serving
from tests.api_server import start as start_api
from tests.second_factor import TEST_KEY
from tests.security.webapp_world import (
    PASSWORD,
    Clients,
    World,
    app_settings,
    clients,
    credentials,
    world,
)
from vitals.settings import ApiSettings, Settings

__all__ = ["app_settings", "clients", "world"]

Serve = Callable[..., str]


@pytest.fixture
def serve(world: World) -> Iterator[Serve]:
    """Start the API under uvicorn (``api.main.server_config``) with these API settings;
    returns its base URL."""
    servers: list[Serving] = []

    def start(**api: object) -> str:
        settings = Settings(
            database_url=SecretStr(world.db),
            log_level="WARNING",
            api=ApiSettings(second_factor_key=TEST_KEY, **api),  # type: ignore[arg-type]
        )
        servers.append(start_api(settings))
        return servers[-1].base_url

    yield start
    for served in servers:
        served.stop()


def _sign_in(
    base: str, email: str, password: str, forged: str | None = None, db: str | None = None
) -> httpx.Response:
    """``db``: also send the account's current second-factor code."""
    headers = {"X-Forwarded-For": forged} if forged else {}
    body = {"email": email, "password": password}
    if db is not None:
        body["code"] = second_factor.code(db, email)
    return httpx.post(
        f"{base}/api/v1/session",
        json=body,
        headers=headers,
        timeout=60,
    )


def test_a_forged_forwarded_for_does_not_escape_the_address_ceiling(
    world: World, serve: Serve
) -> None:
    base = serve(login_max_failures=3, login_max_failures_address=6)
    statuses = [
        _sign_in(base, f"sprayed-{n}@hopital.example", "Winter2026!", f"198.51.100.{n}").status_code
        for n in range(15)
    ]
    assert statuses[:6] == [401] * 6
    assert set(statuses[6:]) == {429}, statuses


def _share_link(base: str, db: str, email: str, patient_id: int) -> str:
    signed = _sign_in(base, email, PASSWORD, db=db)
    assert signed.status_code == 200, signed.text
    res = httpx.post(
        f"{base}/api/v1/patients/{patient_id}/share-links",
        json={"language": "en", "second_code": False},
        cookies=dict(signed.cookies),
        headers={"X-CSRF-Token": signed.json()["csrf_token"]},
    )
    assert res.status_code == 201, res.text
    return f"{base}{res.json()['url']}"


def _addresses(db: str) -> list[str]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT detail->>'address' FROM audit_log WHERE action = 'share_view' ORDER BY audit_id"
        ).fetchall()
    return [r[0] for r in rows]


def test_shared_pages_limit_and_audit_the_real_peer(world: World, serve: Serve) -> None:
    base = serve(share_requests_per_minute=3)
    url = _share_link(base, world.db, world.emails["physician"], world.patient_a)
    statuses = [
        httpx.get(url, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(6)
    ]
    assert statuses[:3] == [200] * 3
    assert set(statuses[3:]) == {429}, statuses
    assert _addresses(world.db) == ["127.0.0.1"] * 3


def test_a_configured_proxy_is_believed(world: World, serve: Serve) -> None:
    base = serve(trusted_proxies=["127.0.0.1/32", "::1"])
    url = _share_link(base, world.db, world.emails["physician"], world.patient_a)
    assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    assert _addresses(world.db) == ["203.0.113.7"]


def test_other_accounts_failures_do_not_lock_out_a_right_password(
    world: World, clients: Clients
) -> None:
    """Behind one hospital proxy every person has the same address."""
    client = clients.anonymous()
    for n in range(15):  # more than the former per-address limit (4 x 3 here)
        res = client.post(
            "/api/v1/session", json={"email": f"typo-{n}@hopital.example", "password": "x"}
        )
        assert res.status_code == 401
    res = client.post(
        "/api/v1/session", json=credentials(clients.settings, world.emails["coordinator"])
    )
    assert res.status_code == 200, res.text


def test_parallel_wrong_passwords_are_checked_no_more_than_the_limit(
    world: World, serve: Serve
) -> None:
    limit = 5
    base = serve(login_max_failures=limit)
    email = world.emails["physician"]
    start = threading.Barrier(40)

    def attempt(n: int) -> int:
        start.wait()
        return _sign_in(base, email, f"guess-{n}").status_code

    with ThreadPoolExecutor(40) as pool:
        statuses = Counter(pool.map(attempt, range(40)))
    # a 401 is a password that was checked; the others were refused before
    assert statuses[401] <= limit, statuses
    assert statuses[401] + statuses[429] == 40, statuses
    assert _sign_in(base, email, PASSWORD).status_code == 429
