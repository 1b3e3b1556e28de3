-- Core reference tables: who is followed, with which kit, over which period.
-- No identity ever travels on MQTT: the gateway id is the only key, and enrollments map
-- each sensor to one patient over a time range.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE IF NOT EXISTS care_teams (
    team_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS patients (
    patient_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pseudonym   text NOT NULL UNIQUE CHECK (length(pseudonym) BETWEEN 3 AND 64),
    team_id     bigint NOT NULL REFERENCES care_teams,
    language    text NOT NULL DEFAULT 'fr',
    time_zone   text NOT NULL DEFAULT 'Europe/Paris',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A home gateway is the MQTT identity: its id is the username and the topic key.
CREATE TABLE IF NOT EXISTS gateways (
    gateway_id          text PRIMARY KEY CHECK (gateway_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$'),
    mqtt_password_hash  text,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- A sensor (oximeter, cuff...) is paired with exactly one gateway at a time.
CREATE TABLE IF NOT EXISTS devices (
    device_id   text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$'),
    kind        text NOT NULL,
    gateway_id  text NOT NULL REFERENCES gateways,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS enrollments (
    enrollment_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id      text NOT NULL REFERENCES devices,
    patient_id     bigint NOT NULL REFERENCES patients,
    valid          tstzrange NOT NULL CHECK (NOT isempty(valid)),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- one patient per device at any instant: readings can never be attributed twice
    EXCLUDE USING gist (device_id WITH =, valid WITH &&)
);

-- Anything ingest could not store, kept whole with a reason a person can read.
CREATE TABLE IF NOT EXISTS dead_letters (
    dead_letter_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    gateway_id      text,
    seq             bigint,
    reason          text NOT NULL,
    payload         bytea NOT NULL,
    -- a re-delivered message must not leave a second copy of the same dead letter
    payload_sha256  bytea NOT NULL,
    UNIQUE (topic, payload_sha256)
);
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at);

CREATE TABLE IF NOT EXISTS gateway_status (
    gateway_id    text PRIMARY KEY,
    online        boolean NOT NULL,
    status_at     timestamptz NOT NULL,
    outbox_depth  integer,
    reason        text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Highest sequence number committed per gateway: lets operators see each home's lag.
CREATE TABLE IF NOT EXISTS gateway_progress (
    gateway_id   text PRIMARY KEY,
    last_seq     bigint NOT NULL,
    last_batch_at timestamptz NOT NULL
);

-- The catalogue of vitals/catalogue.py, synchronised by `postop db migrate`.
CREATE TABLE IF NOT EXISTS metrics (
    metric_id      smallint PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    ucum           text NOT NULL,
    loinc          text,
    plausible_min  double precision NOT NULL,
    plausible_max  double precision NOT NULL,
    kind           text NOT NULL
);
