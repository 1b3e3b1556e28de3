"""Operations endpoints of the API (issue 16): ``/metrics`` is not open to the world
when no token is set, ``/ready`` says not ready when the MQTT broker is down (a dead
broker sends no last will), and links sent to people use the configured public address."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from tests.api.conftest import World, world  # noqa: F401 - the API tests' small world
from tests.conftest import Broker
from vitals.settings import ApiSettings, MqttSettings, Settings

API_PASSWORD = "api-account-test-password"


def _settings(db: str, broker: Broker | None = None, **api: object) -> Settings:
    mqtt = MqttSettings(
        port=broker.port if broker else 1,
        username="api",
        password=SecretStr(API_PASSWORD),
    )
    return Settings(
        database_url=SecretStr(db),
        mqtt=mqtt,
        api=ApiSettings(ready_broker_every_s=0.01, **api),  # type: ignore[arg-type]
    )


def test_metrics_without_a_token_answer_only_on_this_machine(db: str) -> None:
    with TestClient(create_app(_settings(db)), client=("203.0.113.7", 40000)) as outside:
        assert outside.get("/metrics").status_code == 403
    with TestClient(create_app(_settings(db)), client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
        # a reverse proxy on this machine forwards outside clients from loopback
        assert local.get("/metrics", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 403
        assert local.get("/metrics", headers={"Forwarded": "for=198.51.100.2"}).status_code == 403


def test_metrics_with_a_token_need_it_even_locally(db: str) -> None:
    app = create_app(_settings(db, metrics_token=SecretStr("s3cret-metrics-token")))
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        refused = local.get("/metrics", headers={"Accept-Language": "fr"})
        assert refused.status_code == 401
        assert refused.json()["detail"] == "Les métriques demandent le jeton (bearer) configuré."
        ok = local.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
        assert ok.status_code == 200
        assert "postop_api_requests_total" in ok.text


def test_not_ready_while_the_broker_is_down(db: str, broker: Broker) -> None:
    broker.add_account("api", API_PASSWORD)
    with TestClient(create_app(_settings(db, broker))) as client:
        assert client.get("/ready").json()["status"] == "ready"
        broker.server.stop(kill=True)  # kill -9: no last will, nothing else says it
        time.sleep(0.05)  # past the probe's cache period
        try:
            down = client.get("/ready")
            assert down.status_code == 503
            assert "MQTT broker" in down.json()["reason"]
        finally:
            broker.server.start()
        time.sleep(0.05)
        assert client.get("/ready").json()["status"] == "ready"


def test_not_ready_when_the_broker_refuses_the_account(db: str, broker: Broker) -> None:
    settings = _settings(db, broker)
    settings.mqtt.password = SecretStr("not-the-password")
    with TestClient(create_app(settings)) as client:
        refused = client.get("/ready")
    assert refused.status_code == 503
    assert "refused" in refused.json()["reason"]


@pytest.mark.parametrize("base", ["https://postop.example.org", "https://h.example/postop/"])
def test_share_links_use_the_public_base_url(world: World, base: str) -> None:  # noqa: F811
    settings = _settings(world.db, public_base_url=base)
    with TestClient(create_app(settings)) as physician:
        res = physician.post(
            "/api/v1/session",
            json={"email": world.emails["physician"], "password": "correct horse battery staple"},
        )
        physician.headers["X-CSRF-Token"] = res.json()["csrf_token"]
        made = physician.post(
            f"/api/v1/patients/{world.patient_a}/share-links",
            json={"language": "en", "second_code": False},
        )
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(base.rstrip("/") + "/s/"), url


def test_push_links_use_the_public_base_url() -> None:
    from alerts.alert_store import Notice
    from alerts.notify import push_message

    notice = Notice(alert_id=42, patient_id=1, reason="opened", priority="high", tier=0)
    assert push_message(notice, "https://postop.example.org").url == (
        "https://postop.example.org/alerts/42"
    )
    assert push_message(notice).url == "/alerts/42"


def test_metrics_show_each_service_view_of_the_broker(db: str) -> None:
    """What ingest and the alerts engine recorded of an unreachable broker (issue 16)."""
    import psycopg

    from store.service_status import record

    with psycopg.connect(db, autocommit=True) as conn:
        record(conn, "ingest", "ingest-1", False, time.time() - 120)
        record(conn, "alerts", "engine", True, None)
    with TestClient(create_app(_settings(db)), client=("127.0.0.1", 40000)) as local:
        text = local.get("/metrics").text
    assert 'postop_broker_reachable{instance="ingest-1",service="ingest"} 0.0' in text
    assert 'postop_broker_reachable{instance="engine",service="alerts"} 1.0' in text
    down = next(
        line
        for line in text.splitlines()
        if line.startswith('postop_broker_down_seconds{instance="ingest-1"')
    )
    assert float(down.split()[-1]) >= 119
    assert "postop_system_alerts_open 0.0" in text


def test_metrics_count_what_ingest_dropped_or_set_aside(db: str) -> None:
    """A gateway over its hourly dead-letter bound and a reading re-sent with another value
    show in /metrics, so an operator sees them without reading the tables."""
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dead_letter_budget (gateway_id, hour, stored, dropped) VALUES"
            " ('gw-a', date_trunc('hour', now()), 1000, 37),"
            " ('gw-b', date_trunc('hour', now()), 3, 0),"
            " ('gw-c', date_trunc('hour', now()) - interval '3 days', 1000, 500)"
        )
        conn.execute(
            "INSERT INTO reading_conflicts (gateway_id, seq, device_id, metric_id, time,"
            " stored_value, stored_flags, value, flags)"
            " VALUES ('gw-a', 7, 'ox-1', 1, now(), 96, 0, 91, 0)"
        )
    with TestClient(create_app(_settings(db)), client=("127.0.0.1", 40000)) as local:
        text = local.get("/metrics").text
    assert "postop_dead_letters_dropped_24h 37.0" in text
    assert "postop_gateways_over_dead_letter_budget_24h 1.0" in text
    assert "postop_reading_conflicts_24h 1.0" in text
