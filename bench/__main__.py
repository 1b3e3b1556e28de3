"""``uv run python -m bench`` (or ``postop bench``): every benchmark in turn, each printing
its table and writing its JSON to bench/results/, then one summary table of the figures
the targets are about, written to bench/results/summary.json with the machine and the
versions. ``--quick`` runs every scenario small (a check that they work, not a measure);
names select scenarios: ``python -m bench ingest node-red``.

``ingest``, ``scaling`` and ``node-red`` share one run (one broker, one PostgreSQL server,
the same messages): ingest with one worker is measured whenever any of them is asked for,
since every ratio is to it or to COPY in the same run. Each scenario has a time limit; one
that fails or overruns is reported as FAILED in the table, the others still run, and the
command exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from bench import (
    alert_latency,
    ble_gateway,
    ingest_throughput,
    node_red_peer,
    rules_speed,
    trend_query,
)

RESULTS = Path(__file__).resolve().parent / "results"
INGEST_GROUP = ("ingest", "scaling", "node-red")

Row = tuple[str, str, str, str]  # scenario, measured, reference or target, verdict


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _ingest_rows(doc: dict[str, Any]) -> list[Row]:
    r = doc["ratios"]
    results = doc["results"]
    copy = results[0]["copy_rows_per_s"]
    rows: list[Row] = [
        (
            "ingest x1 / raw COPY (plain PostgreSQL)",
            f"{r['ingest_to_copy']:.2f}",
            f">= 0.50 (COPY {copy:,.0f} rows/s)",
            _verdict(r["ingest_to_copy"] >= 0.5),
        )
    ]
    if "ingest_no_replay_to_copy" in r:
        plain = r["ingest_no_replay_to_copy"]
        rows.append(
            ("same, no message replayed", f"{plain:.2f}", ">= 0.50", _verdict(plain >= 0.5))
        )
    if "hypertable_ingest_to_copy" in r:
        h = r["hypertable_ingest_to_copy"]
        rows.append(
            ("ingest x1 / raw COPY (hypertable)", f"{h:.2f}", ">= 0.50", _verdict(h >= 0.5))
        )
    else:
        rows.append(("ingest x1 / raw COPY (hypertable)", "absent", "no timescaledb", "-"))
    if "two_workers_scaling" in r:
        rows.append(("ingest x2 / ingest x1", f"{r['two_workers_scaling']:.2f}", "-", "-"))
    for kind in ingest_throughput.NODE_RED_FLOWS:
        key = f"ingest_to_{kind.replace('-', '_')}"
        if key in r:
            label = node_red_peer.FLOWS[kind][0]
            rows.append((f"ingest x1 / {label}", f"{r[key]:.2f}", ">= 5", _verdict(r[key] >= 5)))
    stored = sum(x["rows_stored"] for x in results)
    sent = sum(x["readings"] for x in results)
    rows.append(
        ("rows stored / readings sent", f"{stored:,} / {sent:,}", "equal", _verdict(stored == sent))
    )
    dropped = sum(x["broker_dropped_delta"] for x in results)
    rows.append(("broker dropped messages", str(dropped), "0", _verdict(dropped == 0)))
    return rows


def _ingest_group(names: set[str], quick: bool) -> tuple[list[Row], dict[str, Any]]:
    argv = ["--quick"] if quick else []
    if "scaling" not in names:
        argv.append("--no-scaling")
    if "node-red" not in names:
        argv.append("--no-node-red")
    doc = ingest_throughput.main(argv, check=False)  # lost readings show as NOT met below
    return _ingest_rows(doc), doc


def _rules(quick: bool) -> list[Row]:
    rules_speed.main(patients=1000, sample=50) if quick else rules_speed.main()
    res = json.loads((RESULTS / "rules_speed.json").read_text())["result"]
    same = "identical results" if res["identical_on_sample"] else "DIFFERENT results"
    return [
        (
            "rules: numpy / plain loop speed-up",
            f"{res['speedup']:.0f}x",
            same,
            _verdict(res["identical_on_sample"]),
        )
    ]


def _latency(quick: bool) -> list[Row]:
    if quick:
        alert_latency.main(background_rps=500, probes=5, homes=3)
    else:
        alert_latency.main()
    doc = json.loads((RESULTS / "alert_latency.json").read_text())
    return [
        (
            "alert latency under load p50 / p99",
            f"{doc['p50_s']:.2f} / {doc['p99_s']:.2f} s",
            f"missed {doc['missed']} of {doc['probes']}",
            _verdict(doc["missed"] == 0),
        )
    ]


def _trend(quick: bool) -> list[Row]:
    trend_query.main(runs=10 if quick else 60)
    doc = json.loads((RESULTS / "trend_query_postgres.json").read_text())
    t = {x["what"].split(" (")[0]: x for x in doc["timings"]}
    agg, http = t["aggregate"]["p95_ms"], t["HTTP GET /trends"]["p95_ms"]
    return [
        (
            "trend query 30 d p95: aggregate / HTTP",
            f"{agg:.1f} / {http:.1f} ms",
            f"raw rows x{doc['raw_over_aggregate_p95']:.0f}; HTTP < 100 ms",
            _verdict(http < 100),
        )
    ]


def _ble(quick: bool) -> list[Row]:
    doc = ble_gateway.main(quick=quick)
    rate = doc["six_devices_back_in_range"]
    first = doc["connect_to_first_reading_ms"]
    return [
        (
            "BLE: six devices back in range (virtual radio)",
            f"{rate['readings_per_s']:.0f} readings/s",
            f"{rate['readings_in_outbox']} of {rate['readings_expected']} readings",
            _verdict(doc["exact"]),
        ),
        (
            "BLE: in range -> first reading, slowest type",
            f"{max(first.values()):.0f} ms",
            ", ".join(f"{k} {v:.0f}" for k, v in first.items()),
            _verdict(max(first.values()) < 60_000),
        ),
    ]


OTHERS: dict[str, Callable[[bool], list[Row]]] = {
    "rules": _rules,
    "latency": _latency,
    "trend": _trend,
    "ble": _ble,
}
SCENARIOS = (*INGEST_GROUP, *OTHERS)
# seconds: several times what each takes on a 2-core machine, so only a hang reaches them
LIMITS = {"ingest": 900, "rules": 300, "latency": 300, "trend": 600, "ble": 600}


class Overrun(Exception):
    """A scenario went past its time limit."""


@contextmanager
def _time_limit(seconds: int, what: str) -> Iterator[None]:
    """Raise ``Overrun`` in the main thread after ``seconds``; the scenario's own context
    managers then stop its services."""

    def alarm(_sig: int, _frame: FrameType | None) -> None:
        raise Overrun(f"{what} did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def table(rows: Sequence[Row]) -> str:
    head: Row = ("scenario", "measured", "reference / target", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the chosen scenarios; returns the summary (also written as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    names = set(args.names or SCENARIOS)
    rows: list[Row] = []
    failures: dict[str, str] = {}
    ingest_doc: dict[str, Any] | None = None
    started = time.monotonic()
    plan: list[tuple[str, Callable[[], list[Row]]]] = []
    if names & set(INGEST_GROUP):

        def ingest_group() -> list[Row]:
            nonlocal ingest_doc
            group_rows, ingest_doc = _ingest_group(names, args.quick)
            if not all(r["exact"] for r in ingest_doc["results"]):
                failures["ingest"] = "rows stored differ from readings sent, or messages dropped"
            return group_rows

        plan.append(("ingest", ingest_group))
    plan += [(n, partial(f, args.quick)) for n, f in OTHERS.items() if n in names]
    for name, scenario in plan:
        label = "+".join(n for n in INGEST_GROUP if n in names) if name == "ingest" else name
        print(f"\n== {label} ==", flush=True)
        try:
            with _time_limit(LIMITS[name], label):
                rows += scenario()
        except Exception as exc:  # one scenario's failure must not hide the others' figures
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"{label} FAILED: {exc}", file=sys.stderr, flush=True)
            failures[label] = str(exc)
            rows.append((label, "FAILED", message[:70], "FAILED"))
    print(f"\n{table(rows)}\n({time.monotonic() - started:.0f} s)")
    summary = {
        "at": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        "scenarios": sorted(names, key=SCENARIOS.index),
        "duration_s": round(time.monotonic() - started, 1),
        **ingest_throughput.environment(),
        "rows": [
            dict(zip(("scenario", "measured", "target", "verdict"), r, strict=True)) for r in rows
        ],
        "failures": failures,
        "ingest": ingest_doc,
    }
    out = RESULTS / "summary.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written to {out}")
    return summary


if __name__ == "__main__":
    sys.exit(1 if main()["failures"] else 0)
