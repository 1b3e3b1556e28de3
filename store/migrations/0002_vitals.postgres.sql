-- One row per reading, plain PostgreSQL flavour (the embedded default and the tests).
-- `value` is NULL only when the device reported a special value (see vitals/flags.py).

CREATE TABLE IF NOT EXISTS vitals (
    time        timestamptz NOT NULL,
    patient_id  bigint NOT NULL,
    device_id   text NOT NULL,
    metric_id   smallint NOT NULL,
    value       double precision,
    flags       smallint NOT NULL DEFAULT 0
);
-- Re-delivery is harmless: one reading per sensor, metric and measured time.
CREATE UNIQUE INDEX IF NOT EXISTS vitals_device_metric_time_uq ON vitals (device_id, metric_id, time);
CREATE INDEX IF NOT EXISTS vitals_patient_metric_time_idx ON vitals (patient_id, metric_id, time DESC);

-- TimescaleDB's time_bucket, over date_bin with TimescaleDB's default origin (a Monday),
-- so that the same queries bucket identically on both flavours.
CREATE OR REPLACE FUNCTION time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT date_bin(bucket_width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') $$;
