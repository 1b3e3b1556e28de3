"""The ingest benchmark, quick mode, end to end: it is how the ingest targets are measured,
so it must keep working and its figures must rest on a drain that lost nothing, stored
nothing twice (the load replays messages) and saw no broker drop. Node-RED stays out: it
needs npm and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ingest_throughput import main

pytestmark = pytest.mark.e2e


def test_the_quick_ingest_benchmark_stores_every_reading_once(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    doc = main(["--quick", "--no-node-red", "--out", str(out)])

    assert json.loads(out.read_text()) == doc
    runs = {(r["consumer"], r["workers"], r["replay"], r["flavour"]) for r in doc["results"]}
    assert {("ingest", 1, True, "postgres"), ("ingest", 2, True, "postgres")} <= runs
    assert ("ingest", 1, False, "postgres") in runs
    for r in doc["results"]:
        # de-duplication is part of what is measured, and what it costs
        assert (r["replayed_messages"] > 0) == r["replay"]
        assert r["messages"] == r["readings"] // r["readings_per_message"] + r["replayed_messages"]
        assert r["rows_stored"] == r["readings"] == r["distinct_keys"]
        assert r["broker_dropped_delta"] == 0
        assert r["exact"]
        assert r["rows_per_s"] > 0
        assert r["round_rates"] == [round(r["rows_per_s"])]  # quick: one round
        assert r["copy_rows_per_s"] > 0
        workers = [f"ingest-{w + 1}" for w in range(r["workers"])]
        assert set(r["cpu_s"]) == {*workers, "mosquitto", "postgres"}
        assert all(r["cpu_s"][w] > 0 for w in workers)
        assert r["cpu_s"]["postgres"] > 0
    assert r["readings_per_message"] == 1000

    assert set(doc["ratios"]) >= {
        "ingest_to_copy",
        "ingest_no_replay_to_copy",
        "two_workers_scaling",
    }
    assert doc["hypertable"] in ("run", "absent")
    machine = doc["machine"]
    assert machine["cpus"] >= 1
    assert machine["cpu_model"]
    versions = doc["versions"]
    assert {"python", "postgres", "mosquitto", "timescaledb"} <= set(versions)
    assert versions["postgres"][0].isdigit()
    assert versions["mosquitto"][0].isdigit()
