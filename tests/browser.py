"""Debian's Chromium driven by Playwright (never a downloaded browser), with the flags
this closed network needs, and a folder that keeps what the tests want a person to see."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("POSTOP_TEST_ARTIFACTS", Path(__file__).resolve().parent / "artifacts")
)
FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def raw_identifiers() -> set[str]:
    """Words of the database and the alerts engine that must never reach a reader's eyes:
    rule, protocol, parameter, state and device-kind ids, engine evidence keys, NEWS2
    sign and metric names, UCUM annotations. Every rule id of ``RULE_TITLES`` is in (a
    test checks it lists every shipped protocol's rules)."""
    from api.common.labels import PARAMS, PROTOCOL_TITLES, RULE_TITLES

    return (
        (set(RULE_TITLES) - {"fever"})  # an English word, free text may hold it
        | set(PROTOCOL_TITLES)
        | (set(PARAMS) - {"threshold"})  # an English word too
        | {
            "condition_cleared",
            "condition_returned",
            "auto_resolved",
            "opened_late",
            "follow_up_ended",
            "escalated_to_tier_1",
            "pulse_oximeter",
            "bp_cuff",
            "hr_patch",
            "silent_s",
            "offline_s",
            "confirmation_requested",
            "usual_pulse",
            "irregular_readings",
            "scored_params",
            "last_reading_ms",
            "on_oxygen",
            "resp_rate_per_min",
            "heart_rate_bpm",
            "bp_systolic_mmhg",
            "patient_read",
            "share_view",
            "{steps}",
            "Cel",
            "mm[Hg]",
        }
    )


def visible_raw(text: str) -> set[str]:
    import re

    return {
        word
        for word in raw_identifiers()
        if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)
    }


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
