"""PDF for print: HTML laid out with CSS paged media (A4, margins, the team in the running
header, "page n / N" at the foot) by WeasyPrint. WeasyPrint shapes text with HarfBuzz
through Pango, so Arabic is joined and runs right to left, and fontconfig falls back to a
font that has the glyphs: DejaVu Sans for Latin and Arabic, WenQuanYi Micro Hei for
Chinese. The fonts are checked before a document is made, so a machine without them gets
a sentence naming the Debian packages instead of a PDF of empty boxes.

Chosen over fpdf2 (with uharfbuzz it shapes Arabic too) because WeasyPrint reuses our Jinja
templates, lays out tables across pages and falls back between fonts by itself."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

# font family -> (Debian package, files where Debian puts it)
FONTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "DejaVu Sans": (
        "fonts-dejavu-core",
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",),
    ),
    "DejaVu Sans:bold": (
        "fonts-dejavu-core",
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",),
    ),
    "WenQuanYi Micro Hei": (
        "fonts-wqy-microhei",
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",),
    ),
}
PANGO_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0"


class PdfUnavailable(RuntimeError):
    """The machine lacks what a PDF needs (a font, Pango); the message says what to install."""


def font_stack(language: str) -> str:
    """CSS font-family for a document in ``language``: Chinese first with its own font
    (its punctuation and Latin digits then match), everything else in DejaVu."""
    if language == "zh":
        return '"WenQuanYi Micro Hei", "DejaVu Sans", sans-serif'
    return '"DejaVu Sans", "WenQuanYi Micro Hei", sans-serif'


@functools.cache
def check_fonts() -> None:
    """Raise PdfUnavailable unless every font the documents use is installed (asked to
    fontconfig, which WeasyPrint uses; the known Debian paths when fc-list is absent)."""
    families: set[str] | None = None
    fc_list = shutil.which("fc-list")
    if fc_list is not None:
        out = subprocess.run(
            [fc_list, "--format", "%{family}|%{style}\n"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        families = set()
        for line in out.splitlines():
            names, _, styles = line.partition("|")
            for name in names.split(","):
                families.add(name)
                if "Bold" in styles.split(","):
                    families.add(name + ":bold")
    missing = sorted(
        {
            package
            for family, (package, paths) in FONTS.items()
            if not (
                (families is not None and family in families)
                or any(Path(p).is_file() for p in paths)
            )
        }
    )
    if missing:
        raise PdfUnavailable(
            "PDF documents need the fonts of these Debian packages: "
            + " ".join(missing)
            + " (apt-get install "
            + " ".join(missing)
            + ")."
        )


def render_pdf(html: str) -> bytes:
    """The PDF of one HTML document (its CSS gives the page layout, see PAGE_CSS)."""
    check_fonts()
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except OSError as exc:  # Pango's shared libraries are missing
        raise PdfUnavailable(
            f"PDF documents need Pango (Debian packages {PANGO_PACKAGES}): {exc}"
        ) from None
    # the charts are data: URLs; nothing is fetched from elsewhere (a note typed by a
    # clinician can never make the server fetch an address or read a file)
    fetcher = URLFetcher(allowed_protocols=("data",))
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def page_css(language: str, header: str, page_word: str) -> str:
    """A4 with print margins, the team's name in the running header, "page n / N" at the
    foot, in the document's language and direction. ``header`` and ``page_word`` are
    text (a team's name): every character that could end the CSS string, the rule or
    the <style> element is escaped, so the result may go into <style> unescaped."""

    def quoted(text: str) -> str:
        # a CSS string that cannot end the string, the rule or the <style> element
        escaped = "".join(
            c if c.isalnum() or c in " .,:;()'-—_/" else f"\\{ord(c):x} " for c in text
        )
        return f'"{escaped}"'

    return f"""
@page {{
  size: A4;
  margin: 22mm 18mm 20mm 18mm;
  @top-center {{ content: {quoted(header)}; font-size: 8.5pt; color: #444; }}
  @bottom-center {{
    content: {quoted(page_word)} " " counter(page) " / " counter(pages);
    font-size: 8.5pt; color: #444;
  }}
}}
html {{ font-family: {font_stack(language)}; font-size: 10pt; line-height: 1.35; }}
h1 {{ font-size: 17pt; margin: 0 0 4mm 0; }}
h2 {{ font-size: 12.5pt; margin: 7mm 0 2mm 0; border-bottom: 0.4pt solid #888;
      page-break-after: avoid; }}
h3 {{ font-size: 10.5pt; margin: 4mm 0 1mm 0; page-break-after: avoid; }}
table {{ border-collapse: collapse; width: 100%; margin: 1mm 0 3mm 0; }}
th, td {{ border: 0.4pt solid #999; padding: 1mm 1.5mm; text-align: start;
          vertical-align: top; }}
th {{ background: #eee; }}
tr {{ page-break-inside: avoid; }}
td.num {{ text-align: end; white-space: nowrap; }}
.muted {{ color: #555; }}
.chart {{ page-break-inside: avoid; margin: 2mm 0 4mm 0; }}
.chart img {{ width: 100%; }}
dt {{ font-weight: bold; }}
dd {{ margin: 0 0 2mm 0; }}
.note {{ white-space: pre-wrap; }}
"""
