"""What makes the patient app installable and usable on a bad connection: the web app
manifest (in the patient's language), its own service worker scoped to ``/p/``, the
icons (drawn once with Pillow, no image file in the repository), and the offline page
the worker keeps: the team's phone and the emergency number, nothing clinical."""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from PIL import Image, ImageDraw

from api.common.guards import Conn
from api.common.patient_app import PATIENT_LANGUAGES
from api.patient.access import PREFIX, Patient
from api.patient.screen import patient_page
from api.patient.view import RTL, PatientView

router = APIRouter(prefix=PREFIX, include_in_schema=False)
THEME = "#1a365d"
BACKGROUND = "#f7fafc"
ICON_SIZES = (192, 512)


@router.get("/manifest.webmanifest")
def manifest(request: Request, lang: str = "en") -> Response:
    language = lang if lang in PATIENT_LANGUAGES else "en"
    view = PatientView(request, language)
    name = view.t("My follow-up")
    body = {
        "id": f"{PREFIX}/",
        "name": name,
        "short_name": name,
        "lang": language,
        "dir": "rtl" if language in RTL else "ltr",
        "start_url": f"{PREFIX}/",
        "scope": f"{PREFIX}/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": BACKGROUND,
        "theme_color": THEME,
        "icons": [
            {"src": f"{PREFIX}/icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png"}
            for s in ICON_SIZES
        ]
        + [
            {
                "src": f"{PREFIX}/icon-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            }
        ],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@cache
def icon_png(size: int) -> bytes:
    """A white cross on the app's colour, inside the maskable safe zone (80 %)."""
    img = Image.new("RGB", (size, size), THEME)
    draw = ImageDraw.Draw(img)
    arm, half = size * 0.13, size * 0.27
    c = size / 2
    radius = int(size * 0.04)
    draw.rounded_rectangle((c - arm, c - half, c + arm, c + half), radius, fill="white")
    draw.rounded_rectangle((c - half, c - arm, c + half, c + arm), radius, fill="white")
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


@router.get("/icon-{size}.png")
def icon(size: int) -> Response:
    if size not in ICON_SIZES:
        return Response(status_code=404)
    return Response(
        icon_png(size), media_type="image/png", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/sw.js")
def service_worker() -> FileResponse:
    """The patient app's own worker: its scope is ``/p/`` and never the team's pages."""
    path = Path(str(resources.files("api") / "static" / "patient" / "sw.js"))
    return FileResponse(
        path,
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": f"{PREFIX}/", "Cache-Control": "no-cache"},
    )


@router.get("/offline")
def offline(request: Request, conn: Conn, caller: Patient) -> Response:
    """Kept by the service worker and shown when a screen cannot load: whom to call."""
    return patient_page(request, conn, caller, "patient/offline.html", nav="offline")
