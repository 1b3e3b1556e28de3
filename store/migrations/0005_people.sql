-- People and access: clinician accounts in care teams, browser sessions, login
-- throttling, clinicians' notes, what the admin records about a patient, and the
-- latest NEWS2 per patient (written by the alerts engine, read by the dashboard).

CREATE TABLE IF NOT EXISTS clinicians (
    clinician_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
    role           text NOT NULL CHECK (role IN ('coordinator', 'physician', 'admin')),
    password_hash  text NOT NULL,  -- argon2id, never the password
    language       text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    time_zone      text NOT NULL DEFAULT 'Europe/Paris',
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS clinicians_email_uq ON clinicians (lower(email));

CREATE TABLE IF NOT EXISTS clinician_teams (
    clinician_id  bigint NOT NULL REFERENCES clinicians ON DELETE CASCADE,
    team_id       bigint NOT NULL REFERENCES care_teams,
    PRIMARY KEY (clinician_id, team_id)
);

-- The cookie carries a random token; only its SHA-256 is stored.
CREATE TABLE IF NOT EXISTS web_sessions (
    token_sha256  bytea PRIMARY KEY,
    clinician_id  bigint NOT NULL REFERENCES clinicians ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_expiry_idx ON web_sessions (expires_at);

-- Failed logins, by account and by client address, for throttling (shared by every
-- API process).
CREATE TABLE IF NOT EXISTS login_failures (
    key  text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS login_failures_key_idx ON login_failures (key, at);

CREATE TABLE IF NOT EXISTS clinician_notes (
    note_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients,
    clinician_id  bigint NOT NULL REFERENCES clinicians,
    at            timestamptz NOT NULL DEFAULT now(),
    body          text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 4000)
);
CREATE INDEX IF NOT EXISTS clinician_notes_patient_idx ON clinician_notes (patient_id, at);

ALTER TABLE patients ADD COLUMN IF NOT EXISTS home_country text
    CHECK (home_country ~ '^[A-Z]{2}$');
ALTER TABLE patients ADD COLUMN IF NOT EXISTS procedure text;
ALTER TABLE patients ADD COLUMN IF NOT EXISTS surgery_date date;
ALTER TABLE patients ADD COLUMN IF NOT EXISTS home_physician_name text;
ALTER TABLE patients ADD COLUMN IF NOT EXISTS home_physician_email text;
ALTER TABLE patients ADD COLUMN IF NOT EXISTS home_physician_phone text;

ALTER TABLE push_subscriptions ADD COLUMN IF NOT EXISTS clinician_id bigint
    REFERENCES clinicians ON DELETE CASCADE;

CREATE TABLE IF NOT EXISTS patient_news2 (
    patient_id   bigint PRIMARY KEY REFERENCES patients,
    score        smallint NOT NULL,
    band         smallint NOT NULL CHECK (band BETWEEN 0 AND 3),
    complete     boolean NOT NULL,
    computed_at  timestamptz NOT NULL
);

-- Service accounts of the broker (ingest, api...): rendered into Mosquitto's password
-- file with the gateways, so that any process can re-render it after a registration.
CREATE TABLE IF NOT EXISTS mqtt_service_accounts (
    name                text PRIMARY KEY,
    mqtt_password_hash  text NOT NULL
);

-- The overridable parameters of the protocols the alerts engine loaded, published by it
-- at start-up, so that the API accepts only overrides the engine will actually apply.
CREATE TABLE IF NOT EXISTS protocol_params (
    protocol       text NOT NULL,
    rule_id        text NOT NULL,
    rule_title     text NOT NULL,
    priority       text NOT NULL,
    metric         text,
    param          text NOT NULL,
    default_value  double precision NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (protocol, rule_id, param)
);
