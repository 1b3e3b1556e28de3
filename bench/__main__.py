"""``uv run python -m bench`` (or ``postop bench``): every benchmark in turn, each printing
its table and writing its JSON to bench/results/."""

from __future__ import annotations

from bench import alert_latency, ingest_throughput, rules_speed, trend_query


def main() -> None:
    for name, run in (
        ("ingest throughput", ingest_throughput.main),
        ("rules speed", rules_speed.main),
        ("alert latency", alert_latency.main),
        ("trend query", trend_query.main),
    ):
        print(f"\n== {name} ==", flush=True)
        run()


if __name__ == "__main__":
    main()
