"""The home physician's window: ``/s/{token}`` and what hangs under it (second-code form,
trend series, printable summary, FHIR export). Read only, ``noindex``, never cached,
rate limited per client address, in the link's language; every use audited. A link that
is unknown, expired, revoked or locked gets a page saying so, in its language, with the
team's contact, and nothing about the patient."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import deque
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import NullTranslations
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.common import documents, fhir_export, patient_data, questions, wound_photos
from api.common.guards import Conn
from api.common.i18n import SHARE_LANGUAGE_NAMES, format_instant, locale_for
from api.common.patient_data import CHART_METRICS
from api.common.questionnaires import response_views
from api.common.schemas import Instant
from api.common.sessions import client_address, secure_cookies
from api.common.share_links import (
    CODE_MAX_FAILURES,
    SHARE_LANGUAGES,
    Link,
    LinkState,
    check_code,
    record_use,
    resolve,
)
from api.common.share_text import (
    LINK_UNUSABLE,
    METRICS,
    OTHER_RULE,
    PRIORITIES,
    RULES,
    UNIT_WORDS,
    UNKNOWN_METRIC,
)
from api.common.units import convert, unit_label
from vitals.catalogue import BY_NAME

router = APIRouter(prefix="/s", include_in_schema=False)
SESSION_COOKIE = "postop_share"
LANG_COOKIE = "postop_share_lang"  # the language the physician switched to, per link
CODE_CSRF_COOKIE = "postop_share_form"
ASK_CSRF_COOKIE = "postop_share_ask"  # the question form's token
NO_STORE = {
    "Cache-Control": "no-store, private",
    "Pragma": "no-cache",
    "X-Robots-Tag": "noindex, nofollow, noarchive",
}
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RTL = frozenset({"ar", "he", "fa", "ur"})


class RateLimiter:
    """At most ``limit`` requests per ``window_s`` per client address, in this process
    (a reverse proxy in front adds its own)."""

    def __init__(self, limit: int = 120, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > 10_000:  # forget quiet addresses
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]
            return True


class View:
    """Formatting for one link's viewer: language, locale, units, the patient's zone."""

    def __init__(self, request: Request, language: str, locale: str, units: str, zone: str):
        self.language = language
        self.locale = locale
        self.units = units
        self.zone = zone
        catalogs: dict[str, NullTranslations] = request.app.state.share_catalogs
        self.catalog = catalogs.get(language, catalogs["en"])
        # the patient's questionnaire, its words from the questionnaire catalogs
        self.questionnaires = request.app.state.questionnaires
        questions: dict[str, NullTranslations] = request.app.state.questionnaire_catalogs
        self.questionnaire_gettext = questions.get(language, questions["en"]).gettext

    def t(self, message: str, **values: Any) -> str:
        text = self.catalog.gettext(message)
        return text % values if values else text

    def at(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_instant(value, self.zone, self.locale)

    def day(self, value: date | datetime | None) -> str:
        """A calendar day; an instant is first placed in the patient's zone."""
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(_zone(self.zone)).date()
        return format_date(value, "medium", locale=self.locale)

    def number(self, metric: str, value: float | None) -> str:
        if value is None:
            return "—"
        shown = convert(metric, value, self.units)
        assert shown is not None
        decimals = max(
            BY_NAME[metric].decimals,
            1 if self.units == "us" and metric in ("temp_c", "weight_kg") else 0,
        )
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(shown, format=pattern, locale=self.locale)

    def unit(self, metric: str) -> str:
        label = unit_label(metric, BY_NAME[metric].ucum, self.units)
        return self.t(UNIT_WORDS[label]) if label in UNIT_WORDS else label

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _render(
    request: Request, name: str, view: View, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        f"share/{name}",
        {
            "t": view.t,
            "view": view,
            "lang": view.language,
            "dir": view.direction,
            "language_names": SHARE_LANGUAGE_NAMES,
            **context,
        },
        status_code=status_code,
    )
    page.headers.update(NO_STORE)
    return page


def _visitor_view(request: Request) -> View:
    """For a page about no particular link: the browser's language, else English."""

    for part in (request.headers.get("accept-language") or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in SHARE_LANGUAGES:
            return View(request, tag, tag, "metric", "UTC")
    return View(request, "en", "en", "metric", "UTC")


def _team_contact(conn: Conn, team_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT name, contact_name, contact_phone, contact_email, contact_hours FROM care_teams"
        " WHERE team_id = %s",
        (team_id,),
    ).fetchone()
    assert row is not None
    return {"name": row[0], "person": row[1], "phone": row[2], "email": row[3], "hours": row[4]}


def _gate(request: Request, conn: Conn, token: str) -> tuple[LinkState, Link | None, View]:
    if not request.app.state.share_limiter.allow(client_address(request)):
        view = _visitor_view(request)
        raise _Closed(view, "too_many", None, 429)
    state, link = resolve(conn, token, request.cookies.get(SESSION_COOKIE))
    if link is None:
        raise _Closed(_visitor_view(request), "unknown", None, 404)
    row = conn.execute(
        "SELECT home_country, time_zone FROM patients WHERE patient_id = %s", (link.patient_id,)
    ).fetchone()
    assert row is not None
    # the link's language unless the physician chose another on the page
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    language = chosen if chosen in SHARE_LANGUAGES else link.language
    view = View(request, language, locale_for(language, row[0]), link.units, row[1])
    return state, link, view


class _Closed(Exception):
    def __init__(self, view: View, reason: str, link: Link | None, status: int) -> None:
        self.view, self.reason, self.link, self.status = view, reason, link, status


def closed_page(request: Request, conn: Conn, exc: _Closed) -> HTMLResponse:
    contact = _team_contact(conn, exc.link.team_id) if exc.link is not None else None
    return _render(
        request, "closed.html", exc.view, {"reason": exc.reason, "contact": contact}, exc.status
    )


def _open(request: Request, conn: Conn, token: str) -> tuple[Link, View]:
    """The link, if it may be shown now; raises _Closed (or asks for the code) otherwise."""
    state, link, view = _gate(request, conn, token)
    assert link is not None
    if state in (LinkState.EXPIRED, LinkState.REVOKED, LinkState.LOCKED):
        status = 423 if state is LinkState.LOCKED else 410
        raise _Closed(view, state.value, link, status)
    if state is LinkState.NEEDS_CODE:
        raise _NeedsCode(view, link)
    return link, view


class _NeedsCode(Exception):
    def __init__(self, view: View, link: Link) -> None:
        self.view, self.link = view, link


def _code_form(
    request: Request, token: str, view: View, error: str | None, status_code: int = 200
) -> HTMLResponse:
    form_token = secrets.token_urlsafe(24)
    page = _render(
        request,
        "code.html",
        view,
        {"token": token, "form_token": form_token, "error": error},
        status_code,
    )
    page.set_cookie(
        CODE_CSRF_COOKIE,
        form_token,
        httponly=True,
        samesite="strict",
        path=f"/s/{token}",
        secure=secure_cookies(request),
    )
    return page


def _open_page(request: Request, conn: Conn, token: str) -> tuple[Link, View] | Response:
    """For the HTML pages: the link and view, or the page to show instead."""
    try:
        return _open(request, conn, token)
    except _Closed as exc:
        return closed_page(request, conn, exc)
    except _NeedsCode as exc:
        return _code_form(request, token, exc.view, None)


@router.get("/{token}")
def shared_page(token: str, request: Request, conn: Conn) -> Response:
    opened = _open_page(request, conn, token)
    if isinstance(opened, Response):
        return opened
    link, view = opened
    summary = _summary(conn, link, view)
    shared = wound_photos.shared_images(conn, link.patient_id)
    summary["photos"] = [
        {"taken_at": p.taken_at, "width": p.width_px, "height": p.height_px, "src": _data_uri(jpeg)}
        for p, jpeg in shared
    ]
    shown = ["summary", "latest", "alerts", "questions", "questionnaires"]
    shown += [f"wound_photo:{p.photo_id}" for p, _ in shared]
    record_use(conn, link, "share_view", client_address(request), shown)
    return _page_with_questions(request, conn, token, link, view, summary)


def _page_with_questions(
    request: Request,
    conn: Conn,
    token: str,
    link: Link,
    view: View,
    summary: dict[str, Any],
    ask_error: str | None = None,
    draft: tuple[str, str] = ("question", ""),
    status_code: int = 200,
) -> Response:
    """The shared page with this link's questions and a fresh form to ask (its token in
    a cookie of this link's path, checked on sending: no other site can post it)."""
    form_token = secrets.token_urlsafe(24)
    context = {
        "token": token,
        "questions": questions.of_link(conn, link.link_id),
        "ask": {
            "form_token": form_token,
            "request_key": secrets.token_urlsafe(16),
            "error": ask_error,
            "kind": draft[0],
            "body": draft[1],
            "max_chars": questions.MAX_CHARS,
        },
        **summary,
    }
    page = _render(request, "page.html", view, context, status_code)
    page.set_cookie(
        ASK_CSRF_COOKIE,
        form_token,
        httponly=True,
        samesite="strict",
        path=f"/s/{token}",
        secure=secure_cookies(request),
    )
    _keep_language(request, page, token)
    return page


@router.post("/{token}/questions")
def ask_question(
    token: str,
    request: Request,
    conn: Conn,
    body: Annotated[str, Form(max_length=20_000)] = "",
    kind: Annotated[str, Form(max_length=20)] = "question",
    form_token: Annotated[str, Form(max_length=100)] = "",
    request_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The physician's question or news to the team: stored, audited, on the team's
    worklist at once; the page then shows it (and later the answer)."""
    opened = _open_page(request, conn, token)
    if isinstance(opened, Response):
        return opened
    link, view = opened

    def again(message: str, status: int) -> Response:
        summary = _summary(conn, link, view)
        draft = (kind if kind in questions.KINDS else "question", body[: questions.MAX_CHARS])
        return _page_with_questions(
            request, conn, token, link, view, summary, message, draft, status
        )

    expected = request.cookies.get(ASK_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, form_token):
        return again(view.t("The form expired; please try again."), 403)
    text = body.strip()
    if kind not in questions.KINDS or not text:
        return again(view.t("Write your message before sending it."), 422)
    if len(text) > questions.MAX_CHARS:
        return again(
            view.t(
                "Your message is too long: at most %(max)s characters.", max=questions.MAX_CHARS
            ),
            422,
        )
    if not 8 <= len(request_key) <= 64:
        return again(view.t("The form expired; please try again."), 403)
    if questions.recent_count(conn, link.link_id, timedelta(hours=1)) >= questions.PER_HOUR or (
        questions.recent_count(conn, link.link_id, timedelta(days=1)) >= questions.PER_DAY
    ):
        record_use(conn, link, "share_question_refused", client_address(request), [])
        return again(
            view.t(
                "You have sent several messages recently; please wait a little, or call the"
                " care team if it is urgent."
            ),
            429,
        )
    question_id, new = questions.ask(conn, link.link_id, link.patient_id, kind, text, request_key)
    if new:
        record_use(
            conn, link, "share_question", client_address(request), [f"question:{question_id}"]
        )
    return Response(status_code=303, headers={"Location": f"/s/{token}#questions", **NO_STORE})


def _data_uri(jpeg: bytes) -> str:
    """A photo inside the (no-store) page itself: no image URL that the link's token, which
    outlives the physician's visit, would open."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _keep_language(request: Request, response: Response, token: str) -> None:
    chosen = request.query_params.get("lang")
    if chosen in SHARE_LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            str(chosen),
            httponly=True,
            samesite="strict",
            path=f"/s/{token}",
            secure=secure_cookies(request),
        )


@router.post("/{token}/code")
def submit_code(
    token: str,
    request: Request,
    conn: Conn,
    code: Annotated[str, Form(max_length=20)],
    form_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        state, link, view = _gate(request, conn, token)
    except _Closed as exc:
        return closed_page(request, conn, exc)
    assert link is not None
    if state is not LinkState.NEEDS_CODE:
        if state is LinkState.OK:
            return Response(status_code=303, headers={"Location": f"/s/{token}", **NO_STORE})
        return closed_page(request, conn, _Closed(view, state.value, link, 410))
    expected = request.cookies.get(CODE_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, form_token):
        return _code_form(request, token, view, view.t("The form expired; please try again."), 403)
    result, session = check_code(conn, link, code)
    if result is LinkState.LOCKED:
        record_use(conn, link, "share_code_locked", client_address(request), [])
        return closed_page(request, conn, _Closed(view, "locked", link, 423))
    if session is None:
        record_use(conn, link, "share_code_wrong", client_address(request), [])
        left = conn.execute(
            "SELECT %s - code_failures FROM share_links WHERE link_id = %s",
            (CODE_MAX_FAILURES, link.link_id),
        ).fetchone()
        message = (
            view.t("Wrong code.")
            + " "
            + view.t(
                "Attempts left before the link locks: %(left)s.", left=int(left[0]) if left else 0
            )
        )
        return _code_form(request, token, view, message, 401)
    response = Response(status_code=303, headers={"Location": f"/s/{token}", **NO_STORE})
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        path=f"/s/{token}",
        secure=secure_cookies(request),
    )
    return response


@router.get("/{token}/trends")
def shared_trends(
    token: str,
    request: Request,
    conn: Conn,
    metric: Annotated[list[str], Query(min_length=1, max_length=12)],
    range_: Annotated[str, Query(alias="range", pattern="^(24h|7d|30d|follow_up)$")] = "24h",
    start: Instant | None = None,
    end: Instant | None = None,
) -> Response:
    try:
        link, view = _open(request, conn, token)
    except (_Closed, _NeedsCode) as exc:
        return JSONResponse({"detail": exc.view.t(LINK_UNUSABLE)}, 403, headers=NO_STORE)
    unknown = [m for m in metric if m not in METRICS]
    if unknown:
        return JSONResponse({"detail": view.t(UNKNOWN_METRIC)}, 422, headers=NO_STORE)
    now = datetime.now(UTC)
    if start is not None and end is not None and start.tzinfo and end.tzinfo and start < end:
        pass
    elif range_ == "follow_up":
        start, end = patient_data.follow_up_start(conn, link.patient_id) or now - RANGES["30d"], now
    else:
        start, end = now - RANGES.get(range_, RANGES["24h"]), now
    trends = patient_data.trends(
        conn, request.app.state.db.flavour(conn), link.patient_id, metric, start, end, 1000
    )
    record_use(conn, link, "share_trends", client_address(request), sorted(metric))
    body = trends.model_dump(mode="json")
    body.pop("patient_id")
    for series in body["series"]:
        name = series["metric"]
        series["label"] = view.t(METRICS[name])
        series["unit"] = view.unit(name)
        for p in series["points"]:
            for key in ("avg", "min", "max"):
                p[key] = convert(name, p[key], link.units)
    return JSONResponse(body, headers=NO_STORE)


@router.get("/{token}/print")
def shared_print(token: str, request: Request, conn: Conn) -> Response:
    opened = _open_page(request, conn, token)
    if isinstance(opened, Response):
        return opened
    link, view = opened
    summary = _summary(conn, link, view)
    days = _daily(conn, link, view)
    record_use(conn, link, "share_print", client_address(request), ["summary", "daily", "alerts"])
    page = _render(request, "print.html", view, {"token": token, "days": days, **summary})
    _keep_language(request, page, token)
    return page


@router.get("/{token}/fhir")
def shared_fhir(token: str, request: Request, conn: Conn) -> Response:
    try:
        link, _view = _open(request, conn, token)
    except (_Closed, _NeedsCode) as exc:
        return JSONResponse({"detail": exc.view.t(LINK_UNUSABLE)}, 403, headers=NO_STORE)
    now = datetime.now(UTC)
    start = patient_data.follow_up_start(conn, link.patient_id) or now - RANGES["30d"]
    bundle = fhir_export.bundle(
        conn, request.app.state.db.flavour(conn), link.patient_id, start, now
    )
    record_use(conn, link, "share_fhir", client_address(request), ["observations", "devices"])
    return JSONResponse(
        bundle,
        media_type="application/fhir+json",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="follow-up.fhir.json"'},
    )


def _summary(conn: Conn, link: Link, view: View) -> dict[str, Any]:
    row = conn.execute(
        "SELECT pseudonym, procedure, surgery_date, discharged_at, discharge_instructions,"
        " medications, time_zone FROM patients WHERE patient_id = %s",
        (link.patient_id,),
    ).fetchone()
    assert row is not None
    latest = conn.execute(
        "SELECT m.name, v.time, v.value FROM metrics m CROSS JOIN LATERAL ("
        " SELECT time, value FROM vitals WHERE patient_id = %s AND metric_id = m.metric_id"
        " AND value IS NOT NULL ORDER BY time DESC LIMIT 1) v WHERE m.name = ANY(%s)",
        (link.patient_id, list(CHART_METRICS)),
    ).fetchall()
    order = {m: i for i, m in enumerate(CHART_METRICS)}
    alerts = [
        a
        for a in patient_data.alerts(conn, link.patient_id)
        if a.kind == "clinical"  # device and connection problems are the team's business
    ]
    present = sorted({r[0] for r in latest}, key=order.__getitem__)
    return {
        "patient": {
            "pseudonym": row[0],
            "procedure": row[1],
            "surgery_date": row[2],
            "discharged_at": row[3],
            "instructions": row[4],
            "medications": row[5],
            "zone": row[6],
        },
        "latest": sorted(latest, key=lambda r: order[r[0]]),
        "chart_metrics": present or ["spo2_pct", "heart_rate_bpm"],
        "chart_labels": {m: view.t(METRICS[m]) for m in CHART_METRICS},
        "alerts": alerts,
        "rules": RULES,
        "other_rule": OTHER_RULE,
        "metrics": METRICS,
        "priorities": PRIORITIES,
        "contact": _team_contact(conn, link.team_id),
        "reports": documents.current_reports(conn, link.patient_id),
        "language_names_map": dict(SHARE_LANGUAGE_NAMES),
        # the patient's questionnaire answers, in the physician's language
        "reported": response_views(
            conn,
            link.patient_id,
            view.questionnaires,
            view.questionnaire_gettext,
            14,
        ),
        "expires_at": link.expires_at,
        "now": datetime.now(UTC),
    }


def _daily(conn: Conn, link: Link, view: View) -> list[dict[str, Any]]:
    """Per day at the patient's home: min, mean and max of each measured metric."""
    rows = conn.execute(
        "SELECT (time AT TIME ZONE %s)::date AS day, m.name, count(value), avg(value),"
        " min(value), max(value) FROM vitals v JOIN metrics m USING (metric_id)"
        " WHERE v.patient_id = %s AND m.name = ANY(%s) AND v.time > now() - interval '90 days'"
        " GROUP BY 1, 2 ORDER BY 1 DESC",
        (view.zone, link.patient_id, list(CHART_METRICS)),
    ).fetchall()
    days: dict[Any, dict[str, Any]] = {}
    for day, name, n, avg, lo, hi in rows:
        days.setdefault(day, {"day": day, "values": {}})["values"][name] = (n, avg, lo, hi)
    return list(days.values())


@router.get("/{token}/report/{language}")
def shared_report(token: str, language: str, request: Request, conn: Conn) -> Response:
    """The end-of-monitoring report in one language (PDF), audited."""
    return _report(token, language, request, conn, "pdf")


@router.get("/{token}/report/{language}/fhir")
def shared_report_fhir(token: str, language: str, request: Request, conn: Conn) -> Response:
    """The same edition as a FHIR DocumentReference carrying the PDF, audited."""
    return _report(token, language, request, conn, "fhir")


def _report(token: str, language: str, request: Request, conn: Conn, form: str) -> Response:
    opened = _open_page(request, conn, token)
    if isinstance(opened, Response):
        return opened
    link, view = opened
    found = next(
        (d for d in documents.current_reports(conn, link.patient_id) if d.language == language),
        None,
    )
    if found is None:
        return closed_page(request, conn, _Closed(view, "no_report", link, 404))
    record_use(
        conn,
        link,
        "share_report",
        client_address(request),
        [f"end_of_monitoring:{found.document_id}:{language}:{form}"],
    )
    if form == "fhir":
        return JSONResponse(
            documents.fhir(conn, link.patient_id, found.document_id),
            media_type="application/fhir+json",
            headers={
                **NO_STORE,
                "Content-Disposition": f'attachment; filename="report-{language}.fhir.json"',
            },
        )
    body = documents.pdf(conn, link.patient_id, found.document_id)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="report-{language}.pdf"',
        },
    )
