-- Issue 16, hardening after an attacker's tries (broker and ingest).

-- A status stamped far in the future (a forged or broken gateway clock) used to outrank
-- every later status and hide the home going offline. Ingest now refuses such statuses;
-- a row already pinned this way falls back to the time it was received.
UPDATE gateway_status SET status_at = updated_at
WHERE status_at > updated_at + interval '5 minutes';
