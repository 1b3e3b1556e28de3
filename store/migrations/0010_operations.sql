-- Operations (issue 16): alerts about the system itself, and what each service knows of
-- its broker connection.

-- A technical alert that concerns a care team's monitoring as a whole, not one patient:
-- "no reading from any home gateway for 15 min" means every alert rule is blind. One open
-- per team and kind; resolved when the condition clears.
CREATE TABLE IF NOT EXISTS system_alerts (
    system_alert_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id          bigint NOT NULL REFERENCES care_teams,
    kind             text NOT NULL,
    priority         text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    opened_at        timestamptz NOT NULL,
    resolved_at      timestamptz,
    evidence         jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS system_alerts_one_open_uq ON system_alerts (team_id, kind)
    WHERE resolved_at IS NULL;

-- Each service instance's view of the MQTT broker, for /metrics and the operators: a
-- dead broker sends no last will, so the services say it themselves.
CREATE TABLE IF NOT EXISTS service_status (
    service            text NOT NULL,
    instance           text NOT NULL,
    broker_reachable   boolean NOT NULL,
    broker_down_since  timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, instance)
);
