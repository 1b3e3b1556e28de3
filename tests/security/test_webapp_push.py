"""Issue 16, Web Push: a subscription endpoint on a private address made the alerts
engine POST inside our network (SSRF); and a clinician of two care teams heard one
team's alerts only (subscriptions were keyed on the endpoint alone)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from pydantic import SecretStr

from alerts.alert_store import Notice
from alerts.notify import CareTeamNotifier
from alerts.protocol import builtin_protocols
from alerts.webpush import DeliveryOutcome, PushMessage, PushNotifier
from tests.push_endpoint import PushEndpoint
from tests.security.webapp_world import Clients, World, add_clinician, clients, world
from tests.stack import wait_for
from vitals.settings import ApiSettings, Settings

__all__ = ["clients", "world"]

MSG = PushMessage("postop: New alert", "A patient needs review.", "/alerts/1", "alert-1")
PRIVATE_ENDPOINTS = [
    "https://127.0.0.1/push/x",
    "https://localhost/push/x",
    "https://10.0.0.8/push/x",
    "https://192.168.1.1/push/x",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/push/x",
    "https://[::ffff:127.0.0.1]/push/x",
    "https://224.0.0.1/push/x",
    "https://0.0.0.0/push/x",
    "https://2130706433/push/x",  # 127.0.0.1 as one number
    "http://8.8.8.8/push/x",  # public, but not https
]


@pytest.fixture
def app_settings(world: World) -> Settings:
    """The API as production runs it: private push endpoints refused."""
    return Settings(database_url=SecretStr(world.db), api=ApiSettings(login_max_failures=3))


def _keys() -> dict[str, str]:
    return {"p256dh": "B" + "A" * 86, "auth": "c2VjcmV0c2VjcmV0"}


def _pusher(pem: str, outcomes: list[DeliveryOutcome], **kw: object) -> PushNotifier:
    lock = threading.Lock()

    def record(o: DeliveryOutcome) -> None:
        with lock:
            outcomes.append(o)

    n = PushNotifier(pem, "mailto:t@postop.invalid", record, base_delay_s=0.05, **kw)  # type: ignore[arg-type]
    n.start()
    return n


@pytest.mark.parametrize("endpoint", PRIVATE_ENDPOINTS)
def test_the_api_refuses_a_push_endpoint_that_is_not_a_public_https_host(
    world: World, clients: Clients, endpoint: str
) -> None:
    client = clients.signed_in(world.emails["physician"])  # English
    res = client.post("/api/v1/push/subscriptions", json={"endpoint": endpoint, "keys": _keys()})
    assert res.status_code == 422, res.text
    assert "public" in res.json()["detail"]
    with psycopg.connect(world.db) as conn:
        assert conn.execute("SELECT count(*) FROM push_subscriptions").fetchone() == (0,)


def test_the_refusal_speaks_french_to_a_french_clinician(world: World, clients: Clients) -> None:
    client = clients.signed_in(world.emails["coordinator"])
    res = client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": "https://127.0.0.1/push/x", "keys": _keys()},
    )
    assert res.status_code == 422
    assert "publique" in res.json()["detail"]


def test_the_engine_never_posts_to_a_private_endpoint(push: tuple[str, PushEndpoint]) -> None:
    """A subscription stored before the API checked (or written around it)."""
    pem, endpoint = push
    outcomes: list[DeliveryOutcome] = []
    pusher = _pusher(pem, outcomes)  # the production default: no private endpoints
    pusher.submit([endpoint.subscribe(1)], MSG)
    wait_for(lambda: len(outcomes) == 1, 10, "the outcome")
    pusher.stop()
    assert endpoint.received == []
    assert endpoint.rejected == []
    assert not outcomes[0].delivered
    assert outcomes[0].gone  # the subscription is dropped


def test_the_engine_follows_no_redirect(push: tuple[str, PushEndpoint]) -> None:
    pem, endpoint = push
    outcomes: list[DeliveryOutcome] = []
    sub = endpoint.subscribe(1)
    target = endpoint.subscribe(2)
    endpoint.answer("ep1", (307, {"Location": target.endpoint}))
    pusher = _pusher(pem, outcomes, allow_private_endpoints=True, max_attempts=1)
    pusher.submit([sub], MSG)
    wait_for(lambda: len(outcomes) == 1, 10, "the outcome")
    pusher.stop()
    assert endpoint.received == []
    assert outcomes[0].error == "HTTP 307"


def test_a_clinician_of_two_teams_hears_both_teams_alerts(
    world: World, push: tuple[str, PushEndpoint]
) -> None:
    pem, endpoint = push
    settings = Settings(
        database_url=SecretStr(world.db),
        api=ApiSettings(push_allow_private_endpoints=True),  # the tests' local endpoint
    )
    email = "both-teams@hopital.example"
    add_clinician(world.db, email, "coordinator", [world.team_a, world.team_b])
    made = Clients(settings)
    try:
        client = made.signed_in(email)
        sub = endpoint.subscribe(1)
        res = client.post(
            "/api/v1/push/subscriptions",
            json={"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
        )
        assert res.status_code == 201, res.text
    finally:
        made.close()
    team = CareTeamNotifier(world.db, builtin_protocols())
    outcomes: list[DeliveryOutcome] = []
    pusher = _pusher(pem, outcomes, allow_private_endpoints=True)
    team.pusher = pusher
    try:
        with psycopg.connect(world.db, autocommit=True) as conn:
            team(
                conn,
                [
                    Notice(world.alert_a, world.patient_a, "high", 0, "opened"),
                    Notice(world.alert_b, world.patient_b, "medium", 0, "opened"),
                ],
            )
        wait_for(lambda: len(outcomes) >= 2, 15, "two pushes")
    finally:
        pusher.stop()
    assert sorted(r.payload["url"] for r in endpoint.received) == sorted(
        [f"/alerts/{world.alert_a}", f"/alerts/{world.alert_b}"]
    )
