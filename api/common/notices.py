"""The information notices a patient reads before deciding: one text file per kind,
version and language, ``api/notices/<kind>/v<version>/<lang>.txt`` (first line the
title, then paragraphs separated by blank lines). A consent records the version and the
language of the notice shown; a published version is never edited, a change is a new
version (v2), so every record keeps pointing at the words the patient actually read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from store.consents import NOTICE_LANGUAGES

NOTICE_KINDS = ("monitoring", "sharing", "transfer")
__all__ = ["NOTICE_KINDS", "NOTICE_LANGUAGES", "Notice", "current_version", "notice", "versions"]
RTL = frozenset({"ar"})
_VERSION = re.compile(r"^v([0-9]{1,3})$")


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    version: int
    language: str
    title: str
    paragraphs: tuple[str, ...]

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"


def versions(kind: str) -> tuple[int, ...]:
    """The published versions of a kind, oldest first."""
    return _versions(kind) if kind in NOTICE_KINDS else ()


@cache
def _versions(kind: str) -> tuple[int, ...]:
    root = resources.files("api") / "notices" / kind
    if not root.is_dir():
        return ()
    found = [int(m[1]) for e in root.iterdir() if (m := _VERSION.match(e.name)) and e.is_dir()]
    return tuple(sorted(found))


def current_version(kind: str) -> int:
    return versions(kind)[-1]


def notice(kind: str, version: int, language: str) -> Notice | None:
    """The notice as published, or None when that kind, version or language does not
    exist (the caller answers with a refusal, never a 500). Only published notices are
    cached: what a request names is checked first."""
    if kind not in NOTICE_KINDS or language not in NOTICE_LANGUAGES:
        return None
    if version not in versions(kind):
        return None
    return _load(kind, version, language)


@cache
def _load(kind: str, version: int, language: str) -> Notice | None:
    path = resources.files("api") / "notices" / kind / f"v{version}" / f"{language}.txt"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    title, _, body = text.partition("\n")
    paragraphs = tuple(p.strip() for p in body.split("\n\n") if p.strip())
    return Notice(kind, version, language, title.strip(), paragraphs)
