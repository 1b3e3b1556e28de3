"""The FastAPI application: clinician pages, ``/api/v1`` (OpenAPI at /openapi.json),
live updates, the service worker, health, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import html
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import fastapi_offline
import plotly
import psycopg
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.care_team import (
    consents,
    documents,
    pages,
    questionnaires,
    questions,
    rest,
    security_keys,
    wound_photos,
)
from api.care_team import patient_app as team_patient_app
from api.care_team.gateway_configs import ConfigPublisher
from api.care_team.live import Broadcaster
from api.common.database import Database
from api.common.errors import BUSY, reader_language, translate, validation_sentence
from api.common.guards import NotSignedIn
from api.common.i18n import load_catalogs
from api.common.labels import N_
from api.common.monitoring_report import DocumentTools
from api.common.questionnaires import load_questionnaire_catalogs
from api.common.second_factor import SecretBox
from api.common.security_keys import relying_party
from api.common.share_links import SHARE_LANGUAGES
from api.home_physician import share_pages
from api.home_physician.share_pages import RateLimiter
from api.metrics import ApiMetrics
from api.patient import enrollment, pwa
from api.patient import messages as patient_messages
from api.patient import pages as patient_pages
from api.patient import photos as patient_photos
from api.patient import questionnaire as patient_questionnaire
from api.patient import reminders as patient_reminders
from api.patient.access import PatientRefused
from api.patient.view import patient_catalogs
from store.service_status import broker_states
from vitals.broker_probe import BrokerWatch
from vitals.questionnaire import load_questionnaires
from vitals.settings import Settings

log = logging.getLogger(__name__)
# Plotly's browser bundle as the plotly package on PyPI ships it (never copied here)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Swagger UI's bundle and style as the fastapi-offline package on PyPI ships them (no CDN:
# the pages' Content-Security-Policy allows scripts from this site only)
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"
METRICS_NEED_TOKEN = N_("The metrics need the configured bearer token.")
METRICS_LOCAL_ONLY = N_(
    "The metrics answer only on this machine unless POSTOP_API__METRICS_TOKEN is set."
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data: blob:; connect-src 'self'; worker-src 'self';"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _wants_html(request: Request) -> bool:
    """A person's browser on a page of the clinician app (not the API, not a shared link,
    whose pages answer for themselves)."""
    path = request.url.path
    if path.startswith(("/api/", "/s/", "/static/", "/docs-assets/")) or path in (
        "/openapi.json",
        "/metrics",
        "/health",
        "/ready",
    ):
        return False
    return "text/html" in request.headers.get("accept", "") or request.method == "GET"


PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _local_unproxied(request: Request) -> bool:
    """The TCP peer is a loopback address and no proxy header is present (a reverse proxy
    on this machine makes every outside client look local)."""
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
    return loopback and not any(h in request.headers for h in PROXY_HEADERS)


def create_app(settings: Settings) -> FastAPI:
    db = Database(settings.database_url.get_secret_value(), settings.api.pool_max_size)
    if settings.api.second_factor_key is None:
        log.warning(
            "POSTOP_API__SECOND_FACTOR_KEY is not set: clinicians' TOTP secrets are stored"
            " unencrypted (`postop second-factor-key` makes a key)"
        )
    else:
        SecretBox(settings.api.second_factor_key).check()  # a malformed key stops here
    live = Broadcaster(settings.database_url.get_secret_value())
    metrics = ApiMetrics()
    broker = BrokerWatch(
        settings.mqtt, settings.mqtt.username or "api", settings.api.ready_broker_every_s
    )
    gateway_configs = ConfigPublisher(settings.database_url.get_secret_value(), settings.mqtt)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        db.open()
        live.start()
        gateway_configs.start()  # and publishes what an earlier run left pending
        yield
        gateway_configs.stop()
        await live.stop()
        db.close()

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="postop",
        version="0.1.0",
        description="Remote post-operative monitoring: clinician API. Sign in with"
        " POST /api/v1/session; send the returned csrf_token as X-CSRF-Token on changes.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.live = live
    app.state.gateway_configs = gateway_configs
    app.state.catalogs = load_catalogs()
    app.state.share_catalogs = load_catalogs("share", SHARE_LANGUAGES)
    app.state.patient_catalogs = patient_catalogs()
    app.state.questionnaires = load_questionnaires()
    app.state.questionnaire_catalogs = load_questionnaire_catalogs()
    # security keys (WebAuthn): the RP id and origins, from the settings
    app.state.relying_party = relying_party(settings.api)
    app.state.share_limiter = RateLimiter(settings.api.share_requests_per_minute, 60.0)
    # autoescapes .html templates
    app.state.templates = Jinja2Templates(directory=str(resources.files("api") / "templates"))
    app.state.documents = DocumentTools(app.state.templates.env, app.state.share_catalogs)

    security_headers = dict(SECURITY_HEADERS)
    if settings.api.hsts:
        security_headers["Strict-Transport-Security"] = (
            f"max-age={settings.api.hsts_max_age_s}; includeSubDomains"
        )

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await metrics.middleware(request, call_next)
        for name, value in security_headers.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        # Starlette answers an unhandled error outside every middleware: this answer
        # carries the security headers itself (the error is still logged by the server)
        log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
        if request.url.path.startswith("/api/"):
            response: Response = JSONResponse({"detail": "internal error; try again"}, 500)
        else:
            catalog = app.state.catalogs[reader_language(request)]
            text = html.escape(
                catalog.gettext("Something went wrong on the server. Try again in a moment.")
            )
            response = HTMLResponse(
                f"<!doctype html><title>postop</title><p>{text}</p>", status_code=500
            )
        response.headers.update(security_headers)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if request.url.path.startswith("/api/"):
            catalog = request.app.state.catalogs[reader_language(request)]
            return JSONResponse({"detail": catalog.gettext("Sign in first.")}, 401)
        return pages.login_redirect(request)

    @app.exception_handler(PatientRefused)
    async def patient_refused(request: Request, exc: PatientRefused) -> Response:
        return patient_pages.refused(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if patient_pages.is_patient_path(request):
            return patient_pages.http_error(request, 422)
        sentence = validation_sentence(request, list(exc.errors()))
        if _wants_html(request):
            return pages.error_page(request, 422, sentence)
        return JSONResponse({"detail": sentence}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        assert isinstance(exc, HTTPException | StarletteHTTPException)
        fastapi_exc = (
            exc if isinstance(exc, HTTPException) else HTTPException(exc.status_code, exc.detail)
        )
        if patient_pages.is_patient_path(request):
            return patient_pages.http_error(request, exc.status_code, exc.headers)
        sentence = translate(request, fastapi_exc)
        if _wants_html(request) and exc.status_code in (400, 403, 404, 405, 409, 422):
            return pages.error_page(request, exc.status_code, sentence)
        return JSONResponse({"detail": sentence}, exc.status_code, headers=exc.headers)

    @app.exception_handler(PoolTimeout)
    async def busy(request: Request, _exc: PoolTimeout) -> JSONResponse:
        # every database connection stayed taken (a burst of sign-ins, each holding one
        # through its argon2 work): the server is busy, not broken
        log.warning("no database connection free in time")
        return JSONResponse(
            {"detail": translate(request, HTTPException(503, BUSY))},
            503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(psycopg.DataError)
    async def unstorable(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # input the schema let through but PostgreSQL cannot take (a NUL in a query
        # parameter, a date beyond its range): the client's error, said plainly
        log.warning("unstorable request value: %s", type(exc).__name__)
        catalog = request.app.state.catalogs[reader_language(request)]
        return JSONResponse(
            {"detail": catalog.gettext("A value in this request cannot be stored.")}, 422
        )

    app.include_router(rest.router)
    app.include_router(questions.router)
    app.include_router(consents.router)
    app.include_router(consents.pages)
    app.include_router(documents.router)
    app.include_router(wound_photos.router)
    app.include_router(team_patient_app.router)
    app.include_router(pages.router)
    app.include_router(security_keys.router)
    app.include_router(security_keys.pages)
    app.include_router(questionnaires.api_router)
    app.include_router(questionnaires.page_router)
    app.include_router(share_pages.router)
    app.include_router(enrollment.router)
    app.include_router(patient_pages.router)
    app.include_router(patient_messages.router)
    app.include_router(patient_questionnaire.router)
    app.include_router(pwa.router)
    app.include_router(patient_photos.router)
    app.include_router(patient_reminders.router)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(
            PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """Swagger UI from this site's own files; its start-up script is /static/docs.js,
        so the Content-Security-Policy stays 'self' for scripts."""
        page: HTMLResponse = app.state.templates.TemplateResponse(request, "docs.html", {})
        return page

    app.mount("/docs-assets", StaticFiles(directory=str(SWAGGER_UI)), name="docs-assets")

    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        path = Path(str(resources.files("api") / "static" / "sw.js"))
        return FileResponse(
            path,
            media_type="text/javascript",
            headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """The API process is running."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    def ready() -> JSONResponse:
        """The database answers and carries the postop schema, and the MQTT broker accepts
        a connection (probed at most every few seconds): no readings flow without it."""
        try:
            with db.connection(timeout_s=2) as conn:
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        except Exception as exc:  # any failure means not ready; say which, not the details
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
        broker_problem = broker.reason()
        if broker_problem is not None:
            return JSONResponse(
                {"status": "unavailable", "reason": f"MQTT broker {broker_problem}"}, 503
            )
        return JSONResponse({"status": "ready", "schema_version": row[0] if row else None})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus(request: Request) -> Response:
        """Prometheus exposition format: with the configured bearer token, or without one
        only to a client on this machine that no proxy forwarded."""
        token = settings.api.metrics_token
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given, f"Bearer {token.get_secret_value()}"):
                raise HTTPException(401, METRICS_NEED_TOKEN)
        elif not _local_unproxied(request):
            raise HTTPException(403, METRICS_LOCAL_ONLY)
        try:
            with db.connection(timeout_s=2) as conn:
                states = broker_states(conn)
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM system_alerts WHERE resolved_at IS NULL),"
                    " (SELECT coalesce(sum(dropped), 0) FROM dead_letter_budget"
                    "   WHERE hour > now() - interval '24 hours'),"
                    " (SELECT count(DISTINCT gateway_id) FROM dead_letter_budget"
                    "   WHERE hour > now() - interval '24 hours' AND dropped > 0),"
                    " (SELECT count(*) FROM reading_conflicts"
                    "   WHERE received_at > now() - interval '24 hours')"
                ).fetchone()
            counts = [int(v) for v in row] if row else [0, 0, 0, 0]
            metrics.operations(states, *counts)
        except Exception as exc:  # the process metrics still answer without a database
            log.warning("operations metrics unavailable (%s)", type(exc).__name__)
        return metrics.render(live.listeners)

    # after /static/vendor/plotly.min.js, which it would otherwise shadow
    app.mount(
        "/static", StaticFiles(directory=str(resources.files("api") / "static")), name="static"
    )

    return app
