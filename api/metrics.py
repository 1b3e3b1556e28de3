"""Prometheus metrics of the API process: requests by route template (never by patient
id), their latency, open live streams, and failed sign-ins. No patient data."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from store.service_status import BrokerState


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "postop_api_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "postop_api_request_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.live_streams = Gauge(
            "postop_api_live_streams", "Open Server-Sent Events streams", registry=self.registry
        )
        self.broker_reachable = Gauge(
            "postop_broker_reachable",
            "1 when the service instance reaches the MQTT broker (as it last recorded)",
            ["service", "instance"],
            registry=self.registry,
        )
        self.broker_down = Gauge(
            "postop_broker_down_seconds",
            "How long the service instance has not reached the MQTT broker (0: reachable)",
            ["service", "instance"],
            registry=self.registry,
        )
        self.system_alerts = Gauge(
            "postop_system_alerts_open",
            "Open system-level technical alerts (e.g. no data from any gateway)",
            registry=self.registry,
        )
        self.dead_letters_dropped = Gauge(
            "postop_dead_letters_dropped_24h",
            "Invalid messages not kept as dead letters (over a gateway's hourly bound), 24 h",
            registry=self.registry,
        )
        self.gateways_over_budget = Gauge(
            "postop_gateways_over_dead_letter_budget_24h",
            "Gateways that exceeded their hourly dead-letter bound in the last 24 h",
            registry=self.registry,
        )
        self.reading_conflicts = Gauge(
            "postop_reading_conflicts_24h",
            "Readings re-sent with another value for the same device, metric and time, 24 h",
            registry=self.registry,
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, template, str(response.status_code)).inc()
        self.latency.labels(request.method, template).observe(time.perf_counter() - start)
        return response

    def operations(
        self,
        states: list[BrokerState],
        system_alerts_open: int,
        dropped_24h: int = 0,
        gateways_over_budget_24h: int = 0,
        conflicts_24h: int = 0,
    ) -> None:
        """What the services recorded of the broker, open system alerts, and what ingest
        set aside or dropped (the hourly dead-letter bound, conflicting re-deliveries)."""
        now = time.time()
        for st in states:
            self.broker_reachable.labels(st.service, st.instance).set(1 if st.reachable else 0)
            down = now - st.down_since.timestamp() if st.down_since is not None else 0.0
            self.broker_down.labels(st.service, st.instance).set(down)
        self.system_alerts.set(system_alerts_open)
        self.dead_letters_dropped.set(dropped_24h)
        self.gateways_over_budget.set(gateways_over_budget_24h)
        self.reading_conflicts.set(conflicts_24h)

    def render(self, live_streams: int) -> Response:
        self.live_streams.set(live_streams)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
