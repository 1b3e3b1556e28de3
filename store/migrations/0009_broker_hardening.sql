-- Issue 16, hardening after an attacker's tries (broker and ingest).

-- A status stamped far in the future (a forged or broken gateway clock) used to outrank
-- every later status and hide the home going offline. Ingest now refuses such statuses;
-- a row already pinned this way falls back to the time it was received.
UPDATE gateway_status SET status_at = updated_at
WHERE status_at > updated_at + interval '5 minutes';

-- Every MQTT service account has a kind, which decides what the broker lets it do
-- (store/broker_acl.py); each ingest worker has its own account, bound to its client id.
ALTER TABLE mqtt_service_accounts ADD COLUMN IF NOT EXISTS role text;
UPDATE mqtt_service_accounts SET role = CASE WHEN name = 'api' THEN 'api' ELSE 'ingest' END
WHERE role IS NULL;
ALTER TABLE mqtt_service_accounts ALTER COLUMN role SET NOT NULL;
ALTER TABLE mqtt_service_accounts ALTER COLUMN role SET DEFAULT 'ingest';
DO $$ BEGIN
    ALTER TABLE mqtt_service_accounts ADD CONSTRAINT mqtt_service_accounts_role_check
        CHECK (role IN ('ingest', 'api', 'observer'));
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- Dead letters keep a bounded prefix of what arrived (payload) with the SHA-256 and the
-- size of the whole of it: 50 messages of 1.9 MB no longer add 93 MB to the database.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS payload_size integer;

-- At most a set number of dead letters per gateway and hour (ingest setting
-- dead_letters_per_gateway_hour); what came beyond is counted here, never silently lost.
CREATE TABLE IF NOT EXISTS dead_letter_budget (
    gateway_id  text NOT NULL,          -- '' when the topic named no gateway
    hour        timestamptz NOT NULL,
    stored      integer NOT NULL DEFAULT 0,
    dropped     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway_id, hour)
);
CREATE INDEX IF NOT EXISTS dead_letter_budget_dropped_idx
    ON dead_letter_budget (hour) WHERE dropped > 0;

-- A second reading with the same device, metric and measured time but another value or
-- flags: the first committed value stays (alerts may have acted on it) and the
-- disagreement is kept here for a person to review. An identical re-delivery leaves
-- nothing; the same conflicting reading delivered twice leaves one row.
CREATE TABLE IF NOT EXISTS reading_conflicts (
    conflict_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    gateway_id    text NOT NULL,
    seq           bigint NOT NULL,
    device_id     text NOT NULL,
    metric_id     smallint NOT NULL,
    time          timestamptz NOT NULL,
    stored_value  double precision,
    stored_flags  smallint NOT NULL,
    value         double precision,
    flags         smallint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS reading_conflicts_once_idx ON reading_conflicts
    (device_id, metric_id, time, coalesce(value, 'NaN'::float8), flags);
CREATE INDEX IF NOT EXISTS reading_conflicts_received_idx ON reading_conflicts (received_at);
