-- The alerts engine's requests to the patient's phone (measure again: 0022; charge a
-- device: 0024) end with the follow-up: ending it marks every open one done with
-- done_reason 'follow_up_ended', so that no phone keeps asking the patient to charge a
-- device the team no longer watches (a battery request closes only when the device
-- reports again, which a returned kit never does).
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_done_reason_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_done_reason_check CHECK (
    done_reason IN ('measured', 'alert_closed', 'charged', 'follow_up_ended'));
