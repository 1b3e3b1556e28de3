-- Clinicians' security keys and passkeys (WebAuthn), a second factor offered where the
-- browser has it, beside the TOTP code and the recovery codes (migration 0021).

-- One row per registered authenticator: its credential id and COSE public key as the
-- browser gave them at registration, the signature counter it last reported (a lower or
-- equal one later means a cloned key: refused), its transports (hints for the browser),
-- the name the clinician gave it.
CREATE TABLE IF NOT EXISTS clinician_security_keys (
    key_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clinician_id   bigint NOT NULL REFERENCES clinicians ON DELETE CASCADE,
    credential_id  bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 16 AND 1023),
    public_key     bytea NOT NULL,
    sign_count     bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    transports     text[] NOT NULL DEFAULT '{}',
    name           text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 60),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz
);
CREATE INDEX IF NOT EXISTS clinician_security_keys_clinician_idx
    ON clinician_security_keys (clinician_id);

-- A WebAuthn challenge waiting for the browser's answer, bound to what asked for it:
-- the pending sign-in (the SHA-256 of its login_challenges token) or the session that
-- registers a key (the SHA-256 of its session token). Deleted when used, right or
-- wrong, and useless after its expiry.
CREATE TABLE IF NOT EXISTS security_key_challenges (
    bound_sha256   bytea NOT NULL,
    purpose        text NOT NULL CHECK (purpose IN ('register', 'sign_in')),
    clinician_id   bigint NOT NULL REFERENCES clinicians ON DELETE CASCADE,
    challenge      bytea NOT NULL,
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (bound_sha256, purpose)
);
CREATE INDEX IF NOT EXISTS security_key_challenges_expiry_idx
    ON security_key_challenges (expires_at);
