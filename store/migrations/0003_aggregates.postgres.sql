-- Trend aggregates, plain PostgreSQL flavour: materialized views that ingest refreshes
-- (CONCURRENTLY, hence the unique indexes) standing in for continuous aggregates.

CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_1m AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, patient_id, metric_id,
       count(value) AS n, avg(value) AS value_avg, min(value) AS value_min, max(value) AS value_max
FROM vitals GROUP BY 1, 2, 3
WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS vitals_1m_uq ON vitals_1m (patient_id, metric_id, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_1h AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, patient_id, metric_id,
       count(value) AS n, avg(value) AS value_avg, min(value) AS value_min, max(value) AS value_max
FROM vitals GROUP BY 1, 2, 3
WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS vitals_1h_uq ON vitals_1h (patient_id, metric_id, bucket);
