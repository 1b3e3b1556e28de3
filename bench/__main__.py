"""``uv run python -m bench`` (or ``postop bench``): every benchmark in turn, each printing
its table and writing its JSON to bench/results/, then one summary table of the ratios
the targets are about, written to bench/results/summary.json with the machine and the
versions. ``--quick`` runs every scenario small (a check that they work, not a measure);
names select scenarios: ``python -m bench ingest trend``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import alert_latency, ingest_throughput, rules_speed, trend_query

RESULTS = Path(__file__).resolve().parent / "results"

Row = tuple[str, str, str, str]  # scenario, measured, reference or target, verdict


def _ingest(quick: bool) -> list[Row]:
    if quick:
        ingest_throughput.main(["--readings", "40000", "--node-red-readings", "8000"])
    else:
        ingest_throughput.main([])
    doc = json.loads((RESULTS / "ingest_throughput.json").read_text())
    r = doc["ratios"]
    rows: list[Row] = [
        (
            "ingest x1 / raw COPY",
            f"{r['ingest_to_copy']:.2f}",
            ">= 0.50",
            "met" if r["ingest_to_copy"] >= 0.5 else "NOT met",
        )
    ]
    if "two_workers_scaling" in r:
        rows.append(("ingest x2 / ingest x1", f"{r['two_workers_scaling']:.2f}", "-", "-"))
    for key, label in (
        ("ingest_to_node_red", "ingest x1 / Node-RED batch flow"),
        ("ingest_to_node_red_per_reading", "ingest x1 / Node-RED per-reading flow"),
    ):
        if key in r:
            rows.append((label, f"{r[key]:.2f}", ">= 5", "met" if r[key] >= 5 else "NOT met"))
    dropped = sum(x["broker_dropped_delta"] for x in doc["results"])
    rows.append(
        ("broker dropped messages", str(dropped), "0", "met" if dropped == 0 else "NOT met")
    )
    return rows


def _rules(quick: bool) -> list[Row]:
    rules_speed.main(patients=1000, sample=50) if quick else rules_speed.main()
    res = json.loads((RESULTS / "rules_speed.json").read_text())["result"]
    same = "identical results" if res["identical_on_sample"] else "DIFFERENT results"
    return [("rules: numpy / plain loop speed-up", f"{res['speedup']:.0f}x", same, "-")]


def _latency(quick: bool) -> list[Row]:
    if quick:
        alert_latency.main(background_rps=500, probes=5, homes=3)
    else:
        alert_latency.main()
    doc = json.loads((RESULTS / "alert_latency.json").read_text())
    ok = "met" if doc["missed"] == 0 else "NOT met"
    return [
        (
            "alert latency under load p50 / p99",
            f"{doc['p50_s']:.2f} / {doc['p99_s']:.2f} s",
            f"missed {doc['missed']}",
            ok,
        )
    ]


def _trend(quick: bool) -> list[Row]:
    trend_query.main(runs=10 if quick else 60)
    doc = json.loads((RESULTS / "trend_query_postgres.json").read_text())
    t = {x["what"].split(" (")[0]: x for x in doc["timings"]}
    agg = t["aggregate"]["p95_ms"]
    return [
        (
            "trend query 30 d p95 (aggregate)",
            f"{agg:.1f} ms",
            f"raw rows x{doc['raw_over_aggregate_p95']:.0f}; < 100 ms",
            "met" if agg < 100 else "NOT met",
        )
    ]


SCENARIOS: dict[str, Callable[[bool], list[Row]]] = {
    "ingest": _ingest,
    "rules": _rules,
    "latency": _latency,
    "trend": _trend,
}


def table(rows: Sequence[Row]) -> str:
    head: Row = ("scenario", "measured", "reference / target", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [head, *rows]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    rows: list[Row] = []
    for name in args.names or list(SCENARIOS):
        print(f"\n== {name} ==", flush=True)
        rows += SCENARIOS[name](args.quick)
    print("\n" + table(rows))
    summary = {
        "at": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        **ingest_throughput.environment(),
        "rows": [
            dict(zip(("scenario", "measured", "reference", "target"), r, strict=True)) for r in rows
        ],
    }
    out = RESULTS / "summary.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written to {out}")
    return summary


if __name__ == "__main__":
    main()
