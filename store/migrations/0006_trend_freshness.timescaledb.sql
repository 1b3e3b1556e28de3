-- TimescaleDB: real-time aggregation, so a trend includes the minutes not yet
-- materialized (the default became materialized-only in TimescaleDB 2.13).
ALTER MATERIALIZED VIEW vitals_1m SET (timescaledb.materialized_only = false);
ALTER MATERIALIZED VIEW vitals_1h SET (timescaledb.materialized_only = false);
