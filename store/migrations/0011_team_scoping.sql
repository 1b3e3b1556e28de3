-- Hardening after an attacker's tries (issue 16), the storage half:
--  * gateways belong to a care team (and their devices with them): a team's admin
--    provisions only its own kit, and a device is enrolled only on a patient of the
--    team that owns it, checked here so that no path around the API can do otherwise;
--  * sign-in throttling counts each attempt in one statement before the password is
--    checked (parallel attempts cannot all pass the check);
--  * a browser's push subscription is kept once per care team of its clinician.

ALTER TABLE gateways ADD COLUMN IF NOT EXISTS team_id bigint REFERENCES care_teams;
CREATE INDEX IF NOT EXISTS gateways_team_idx ON gateways (team_id);

-- Existing gateways: the one team whose patients their devices were enrolled on; with a
-- single care team in the database, that team. Any other stays without a team: the API
-- treats it as unknown until an operator sets its team (UPDATE gateways SET team_id).
UPDATE gateways g SET team_id = t.team_id
  FROM (SELECT d.gateway_id, min(p.team_id) AS team_id
          FROM devices d JOIN enrollments e USING (device_id) JOIN patients p USING (patient_id)
         GROUP BY d.gateway_id HAVING count(DISTINCT p.team_id) = 1) t
 WHERE g.gateway_id = t.gateway_id AND g.team_id IS NULL;
UPDATE gateways SET team_id = (SELECT min(team_id) FROM care_teams)
 WHERE team_id IS NULL AND (SELECT count(*) FROM care_teams) = 1;

-- A device is enrolled only on a patient of its gateway's team.
CREATE OR REPLACE FUNCTION enrollment_in_device_team() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    device_team bigint;
    patient_team bigint;
BEGIN
    SELECT g.team_id INTO device_team
      FROM devices d JOIN gateways g USING (gateway_id) WHERE d.device_id = NEW.device_id;
    SELECT team_id INTO patient_team FROM patients WHERE patient_id = NEW.patient_id;
    IF device_team IS NOT NULL AND device_team IS DISTINCT FROM patient_team THEN
        RAISE EXCEPTION 'device % belongs to another care team than patient %',
            NEW.device_id, NEW.patient_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS enrollments_in_device_team ON enrollments;
CREATE TRIGGER enrollments_in_device_team BEFORE INSERT OR UPDATE OF device_id, patient_id
    ON enrollments FOR EACH ROW EXECUTE FUNCTION enrollment_in_device_team();

-- A device moves only to a gateway of the team of the patients it is (or will be)
-- enrolled on.
CREATE OR REPLACE FUNCTION device_stays_in_team() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_team bigint;
BEGIN
    SELECT team_id INTO new_team FROM gateways WHERE gateway_id = NEW.gateway_id;
    IF new_team IS NOT NULL AND EXISTS (
        SELECT 1 FROM enrollments e JOIN patients p USING (patient_id)
         WHERE e.device_id = NEW.device_id AND p.team_id <> new_team
           AND (upper_inf(e.valid) OR upper(e.valid) > now())) THEN
        RAISE EXCEPTION 'device % is enrolled on a patient of another care team than gateway %',
            NEW.device_id, NEW.gateway_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS devices_stay_in_team ON devices;
CREATE TRIGGER devices_stay_in_team BEFORE INSERT OR UPDATE OF gateway_id
    ON devices FOR EACH ROW EXECUTE FUNCTION device_stays_in_team();

-- A gateway's team never changes once set; a gateway without one joins a team only if
-- its devices' current and future enrollments are that team's patients.
CREATE OR REPLACE FUNCTION gateway_team_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.team_id IS NOT DISTINCT FROM OLD.team_id THEN
        RETURN NEW;
    END IF;
    IF OLD.team_id IS NOT NULL THEN
        RAISE EXCEPTION 'gateway % belongs to care team % for good', OLD.gateway_id, OLD.team_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (
        SELECT 1 FROM devices d JOIN enrollments e USING (device_id)
          JOIN patients p USING (patient_id)
         WHERE d.gateway_id = NEW.gateway_id AND p.team_id <> NEW.team_id
           AND (upper_inf(e.valid) OR upper(e.valid) > now())) THEN
        RAISE EXCEPTION 'gateway % has devices enrolled on patients of another care team',
            NEW.gateway_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS gateways_team_fixed ON gateways;
CREATE TRIGGER gateways_team_fixed BEFORE UPDATE OF team_id
    ON gateways FOR EACH ROW EXECUTE FUNCTION gateway_team_fixed();

-- Sign-in throttling: one counter row per key (account, account and address, address),
-- incremented by INSERT ... ON CONFLICT DO UPDATE ... RETURNING before the password is
-- checked. A window ends ``lockout`` after its last attempt.
CREATE TABLE IF NOT EXISTS login_attempts (
    key       text PRIMARY KEY,
    attempts  integer NOT NULL,
    last_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_last_idx ON login_attempts (last_at);
DROP TABLE IF EXISTS login_failures;

-- One row per (endpoint, team): a clinician in two teams hears both teams' alerts.
ALTER TABLE push_subscriptions DROP CONSTRAINT IF EXISTS push_subscriptions_endpoint_key;
CREATE UNIQUE INDEX IF NOT EXISTS push_subscriptions_endpoint_team_uq
    ON push_subscriptions (endpoint, team_id);

-- Dates no follow-up can have (a year-9999 typo the API let through before it bounded
-- them) made pages fail and stopped the next start of the stack. An enrollment "until
-- 9999" means no end: it becomes open-ended; an impossible discharge or surgery date is
-- cleared, with an audit row keeping the value; the database refuses new ones.
UPDATE enrollments SET valid = tstzrange(lower(valid), NULL, '[)')
 WHERE NOT upper_inf(valid) AND upper(valid) >= '2200-01-01';
WITH cleared AS (
    UPDATE patients p SET discharged_at = NULL
      FROM patients o
     WHERE o.patient_id = p.patient_id
       AND o.discharged_at NOT BETWEEN '1990-01-01' AND '2200-01-01'
 RETURNING p.patient_id, o.discharged_at AS old)
INSERT INTO audit_log (actor, action, patient_id, detail)
SELECT 'system:migration-0011', 'impossible_date_cleared', patient_id,
       jsonb_build_object('field', 'discharged_at', 'value', old::text)
  FROM cleared;
WITH cleared AS (
    UPDATE patients p SET surgery_date = NULL
      FROM patients o
     WHERE o.patient_id = p.patient_id
       AND o.surgery_date NOT BETWEEN '1990-01-01' AND '2200-01-01'
 RETURNING p.patient_id, o.surgery_date AS old)
INSERT INTO audit_log (actor, action, patient_id, detail)
SELECT 'system:migration-0011', 'impossible_date_cleared', patient_id,
       jsonb_build_object('field', 'surgery_date', 'value', old::text)
  FROM cleared;
-- a follow-up "ended in 9999" has not ended: the patient stays followed
UPDATE patients SET follow_up_ended_at = NULL WHERE follow_up_ended_at >= '2200-01-01';
ALTER TABLE patients DROP CONSTRAINT IF EXISTS patients_dates_plausible;
ALTER TABLE patients ADD CONSTRAINT patients_dates_plausible CHECK (
    discharged_at BETWEEN '1990-01-01' AND '2200-01-01'
    AND surgery_date BETWEEN '1990-01-01' AND '2200-01-01'
    AND follow_up_ended_at < '2200-01-01');
ALTER TABLE enrollments DROP CONSTRAINT IF EXISTS enrollments_end_plausible;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_end_plausible CHECK (
    upper_inf(valid) OR upper(valid) < '2200-01-01');
