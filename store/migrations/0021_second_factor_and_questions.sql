-- Clinicians' second factor (TOTP, RFC 6238, with one-time recovery codes) and the home
-- physician's questions to the care team.

-- The TOTP secret, encrypted with the API's second_factor_key (Fernet) when one is set;
-- the last time step accepted, so that a code is never accepted twice.
ALTER TABLE clinicians ADD COLUMN IF NOT EXISTS totp_secret text;
ALTER TABLE clinicians ADD COLUMN IF NOT EXISTS totp_enrolled_at timestamptz;
ALTER TABLE clinicians ADD COLUMN IF NOT EXISTS totp_last_step bigint;

-- Sessions opened by a password alone before the second factor existed end now.
DELETE FROM web_sessions s USING clinicians c
 WHERE c.clinician_id = s.clinician_id AND c.totp_enrolled_at IS NULL;

-- One-time recovery codes, argon2id hashes like the passwords; used_at set on use.
CREATE TABLE IF NOT EXISTS clinician_recovery_codes (
    code_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clinician_id  bigint NOT NULL REFERENCES clinicians ON DELETE CASCADE,
    code_hash     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    used_at       timestamptz
);
CREATE INDEX IF NOT EXISTS clinician_recovery_codes_idx
    ON clinician_recovery_codes (clinician_id) WHERE used_at IS NULL;

-- A sign-in whose password was right and whose second factor is awaited: the browser
-- holds a random token (only its SHA-256 here), valid a few minutes. When the account
-- has no second factor yet, the secret being enrolled waits here (encrypted too).
CREATE TABLE IF NOT EXISTS login_challenges (
    token_sha256   bytea PRIMARY KEY,
    clinician_id   bigint NOT NULL REFERENCES clinicians ON DELETE CASCADE,
    enrol_secret   text,
    failures       integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS login_challenges_expiry_idx ON login_challenges (expires_at);

-- A question or a piece of news from the home physician, sent from the shared page, and
-- the team's answer. request_key (a random value of the form) makes a resent form
-- harmless.
CREATE TABLE IF NOT EXISTS physician_questions (
    question_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients,
    link_id       bigint NOT NULL REFERENCES share_links,
    kind          text NOT NULL CHECK (kind IN ('question', 'news')),
    body          text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 2000),
    request_key   text NOT NULL CHECK (length(request_key) BETWEEN 8 AND 64),
    asked_at      timestamptz NOT NULL DEFAULT now(),
    answer        text CHECK (length(btrim(answer)) BETWEEN 1 AND 4000),
    answered_at   timestamptz,
    answered_by   bigint REFERENCES clinicians,
    CHECK ((answer IS NULL) = (answered_at IS NULL)),
    UNIQUE (link_id, request_key)
);
CREATE INDEX IF NOT EXISTS physician_questions_patient_idx
    ON physician_questions (patient_id, asked_at);
CREATE INDEX IF NOT EXISTS physician_questions_open_idx
    ON physician_questions (patient_id) WHERE answered_at IS NULL;
