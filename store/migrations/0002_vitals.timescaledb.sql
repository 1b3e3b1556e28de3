-- One row per reading, TimescaleDB flavour: hypertable with daily chunks, compression of
-- chunks older than 7 days segmented by patient and metric, raw retention of 2 years
-- (the hourly aggregates are kept; see store/README.md for the retention choice).

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE IF NOT EXISTS vitals (
    time        timestamptz NOT NULL,
    patient_id  bigint NOT NULL,
    device_id   text NOT NULL,
    metric_id   smallint NOT NULL,
    value       double precision,
    flags       smallint NOT NULL DEFAULT 0
);
SELECT create_hypertable('vitals', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE);
CREATE UNIQUE INDEX IF NOT EXISTS vitals_device_metric_time_uq ON vitals (device_id, metric_id, time);
CREATE INDEX IF NOT EXISTS vitals_patient_metric_time_idx ON vitals (patient_id, metric_id, time DESC);

ALTER TABLE vitals SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id, metric_id',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('vitals', INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_retention_policy('vitals', INTERVAL '730 days', if_not_exists => TRUE);
