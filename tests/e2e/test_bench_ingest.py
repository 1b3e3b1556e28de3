"""The ingest benchmark end to end, small: it must keep working (it is how the ingest
target is measured), drain exactly what was published and see no broker drop."""

from __future__ import annotations

from bench.ingest_throughput import Consumer, environment, ratios, run, table


def test_the_ingest_benchmark_drains_every_reading_without_drops() -> None:
    results = run(
        [Consumer("ingest", 1), Consumer("ingest", 2)],
        total_readings=20_000,
        per_message=500,
        gateways=2,
    )
    assert [(r.consumer, r.workers) for r in results] == [("ingest", 1), ("ingest", 2)]
    for r in results:
        assert r.readings == 20_000
        assert r.broker_dropped_delta == 0
        assert r.rows_per_s > 0
        assert r.copy_rows_per_s > 0
        assert r.consumer_cpu_s > 0
        assert r.postgres_cpu_s > 0
    figures = ratios(results)
    assert set(figures) == {"ingest_to_copy", "two_workers_scaling"}
    assert "ingest x2" in table(results)
    env = environment()
    assert env["machine"]["cpus"] >= 1
    assert {"python", "postgres", "mosquitto", "psycopg"} <= set(env["versions"])
