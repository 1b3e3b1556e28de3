-- When the care team answers a home physician (shown on shared pages beside its phone
-- and e-mail): free text in the team's words, e.g. "Mon-Fri 8:00-18:00; nights: on-call".
ALTER TABLE care_teams ADD COLUMN IF NOT EXISTS contact_hours text;
