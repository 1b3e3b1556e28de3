-- The patient's own app: a one-time enrollment link made by the team at discharge binds
-- the patient's phone with a device credential. Both tokens are random and only their
-- SHA-256 is kept. A link is used once, expires, and can be revoked; a credential is
-- revoked by the team, replaced by the next enrolment, and ends with the follow-up.

CREATE TABLE IF NOT EXISTS patient_app_links (
    link_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id     bigint NOT NULL REFERENCES patients,
    token_sha256   bytea NOT NULL UNIQUE,
    created_by     bigint NOT NULL REFERENCES clinicians,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    revoked_at     timestamptz,
    revoked_by     bigint REFERENCES clinicians,
    CHECK (expires_at > created_at)
);
CREATE INDEX IF NOT EXISTS patient_app_links_patient_idx
    ON patient_app_links (patient_id, created_at);

CREATE TABLE IF NOT EXISTS patient_credentials (
    credential_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id     bigint NOT NULL REFERENCES patients,
    link_id        bigint NOT NULL UNIQUE REFERENCES patient_app_links,
    token_sha256   bytea NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    last_seen_at   timestamptz,
    revoked_at     timestamptz,
    -- 'team' (a clinician revoked it) or 'replaced' (a newer enrolment of the patient)
    revoked_reason text CHECK (revoked_reason IN ('team', 'replaced')),
    revoked_by     bigint REFERENCES clinicians,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX IF NOT EXISTS patient_credentials_patient_idx
    ON patient_credentials (patient_id, created_at);

-- Templated messages from the team to the patient (no free text): the kind is a key the
-- catalogs translate; read_at is set by the patient's app when shown.
CREATE TABLE IF NOT EXISTS patient_messages (
    message_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id     bigint NOT NULL REFERENCES patients,
    kind           text NOT NULL CHECK (kind IN
                     ('measure_temperature', 'we_will_call', 'please_call_us', 'go_to_emergency')),
    sent_by        bigint NOT NULL REFERENCES clinicians,
    sent_at        timestamptz NOT NULL DEFAULT now(),
    read_at        timestamptz,
    read_by_credential bigint REFERENCES patient_credentials
);
CREATE INDEX IF NOT EXISTS patient_messages_patient_idx ON patient_messages (patient_id, sent_at);
