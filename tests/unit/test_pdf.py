"""The PDF machinery without a database: a missing font is a sentence naming the Debian
package, a team's name cannot break out of the page's CSS, and a document fetches
nothing outside itself."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from api.common import pdf


@pytest.fixture
def fresh_font_check() -> Iterator[None]:
    pdf.check_fonts.cache_clear()
    yield
    pdf.check_fonts.cache_clear()


def test_a_missing_font_names_its_debian_package(
    monkeypatch: pytest.MonkeyPatch, fresh_font_check: None
) -> None:
    monkeypatch.setattr(
        pdf, "FONTS", {"No Such Font Family": ("fonts-nothing-here", ("/nonexistent.ttf",))}
    )
    with pytest.raises(pdf.PdfUnavailable, match="apt-get install fonts-nothing-here"):
        pdf.render_pdf("<p>x</p>")


def test_the_fonts_of_this_machine_are_found(fresh_font_check: None) -> None:
    pdf.check_fonts()  # DejaVu and WenQuanYi Micro Hei (CI installs them)


def test_a_team_name_cannot_leave_the_css_string() -> None:
    css = pdf.page_css("fr", 'Team "A" } </style><img src="http://example.org/x">', "Page")
    header = next(line for line in css.splitlines() if "@top-center" in line)
    assert "<" not in css
    assert header.count('"') == 2  # one string, opened and closed


def _images(pdf_bytes: bytes, tmp: Path) -> int:
    out = tmp / "doc.pdf"
    out.write_bytes(pdf_bytes)
    listed = subprocess.run(
        ["pdfimages", "-list", str(out)], capture_output=True, check=True, text=True
    ).stdout
    return len(listed.splitlines()) - 2  # two header lines


@pytest.mark.skipif(shutil.which("pdfimages") is None, reason="poppler-utils")
def test_a_document_fetches_nothing_outside_itself(tmp_path: Path) -> None:
    picture = tmp_path / "picture.png"
    Image.new("RGB", (20, 20), "red").save(picture)
    inline = "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()
    css = f"<style>{pdf.page_css('en', 'T', 'Page')}</style>"
    # the same picture: embedded, it is drawn; as a file or a web address, never read
    assert _images(pdf.render_pdf(f'{css}<img src="{inline}">'), tmp_path) == 1
    outside = f'{css}<img src="file://{picture}"><img src="http://127.0.0.1:9/x.png">'
    assert _images(pdf.render_pdf(outside), tmp_path) == 0
