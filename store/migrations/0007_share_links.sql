-- Shared links for a patient's home physician: a random token (only its SHA-256 kept),
-- one patient, read only, an expiry, revocable, optionally guarded by a 6-digit second
-- code (argon2-hashed) with a limited number of attempts; every use is audited.

CREATE TABLE IF NOT EXISTS share_links (
    link_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patients,
    token_sha256     bytea NOT NULL UNIQUE,
    language         text NOT NULL,
    units            text NOT NULL CHECK (units IN ('metric', 'us')),
    recipient        text CHECK (length(recipient) <= 200),
    created_by       bigint NOT NULL REFERENCES clinicians,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_by       bigint REFERENCES clinicians,
    code_hash        text,
    code_failures    integer NOT NULL DEFAULT 0,
    locked_at        timestamptz,
    last_used_at     timestamptz,
    uses             integer NOT NULL DEFAULT 0,
    CHECK (expires_at > created_at)
);
CREATE INDEX IF NOT EXISTS share_links_patient_idx ON share_links (patient_id, created_at);

-- A browser that gave the right second code: its own random token, hashed, per link.
CREATE TABLE IF NOT EXISTS share_sessions (
    token_sha256  bytea PRIMARY KEY,
    link_id       bigint NOT NULL REFERENCES share_links ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- What the team writes for the home physician, and how to reach the team.
ALTER TABLE patients ADD COLUMN IF NOT EXISTS discharge_instructions text
    CHECK (length(discharge_instructions) <= 4000);
ALTER TABLE patients ADD COLUMN IF NOT EXISTS medications text
    CHECK (length(medications) <= 4000);
ALTER TABLE care_teams ADD COLUMN IF NOT EXISTS contact_name text;
ALTER TABLE care_teams ADD COLUMN IF NOT EXISTS contact_phone text;
ALTER TABLE care_teams ADD COLUMN IF NOT EXISTS contact_email text;
