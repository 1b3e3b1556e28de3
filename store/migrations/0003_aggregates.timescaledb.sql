-- Trend aggregates, TimescaleDB flavour: continuous aggregates refreshed by policies.
-- Late data (a home offline for days) lands in already materialized buckets; the
-- invalidation log makes the next refresh within start_offset recompute them.

CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_1m WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, patient_id, metric_id,
       count(value) AS n, avg(value) AS value_avg, min(value) AS value_min, max(value) AS value_max
FROM vitals GROUP BY 1, 2, 3
WITH NO DATA;
-- (continuous aggregates take no UNIQUE index; buckets are unique by construction)
CREATE INDEX IF NOT EXISTS vitals_1m_patient_idx ON vitals_1m (patient_id, metric_id, bucket);
SELECT add_continuous_aggregate_policy('vitals_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute',
    if_not_exists => TRUE);

CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_1h WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, patient_id, metric_id,
       count(value) AS n, avg(value) AS value_avg, min(value) AS value_min, max(value) AS value_max
FROM vitals GROUP BY 1, 2, 3
WITH NO DATA;
CREATE INDEX IF NOT EXISTS vitals_1h_patient_idx ON vitals_1h (patient_id, metric_id, bucket);
SELECT add_continuous_aggregate_policy('vitals_1h', start_offset => INTERVAL '35 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes',
    if_not_exists => TRUE);
