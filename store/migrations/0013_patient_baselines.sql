-- What the alert rules need to judge a patient against their own normal (issue 17):
-- the usual values the hospital recorded at discharge (the rules otherwise learn them
-- from the first day's readings), a beta-blocker that blunts the pulse's rise, and known
-- sleep apnoea / obesity hypoventilation (night-time dips expected). The patient's time
-- zone (where their night is) is already patients.time_zone.
ALTER TABLE patients ADD COLUMN IF NOT EXISTS discharge_sbp_mmhg real
    CHECK (discharge_sbp_mmhg BETWEEN 60 AND 250);
ALTER TABLE patients ADD COLUMN IF NOT EXISTS discharge_hr_bpm real
    CHECK (discharge_hr_bpm BETWEEN 30 AND 180);
ALTER TABLE patients ADD COLUMN IF NOT EXISTS discharge_weight_kg real
    CHECK (discharge_weight_kg BETWEEN 20 AND 350);
ALTER TABLE patients ADD COLUMN IF NOT EXISTS beta_blocker boolean NOT NULL DEFAULT false;
ALTER TABLE patients ADD COLUMN IF NOT EXISTS sleep_apnoea boolean NOT NULL DEFAULT false;
