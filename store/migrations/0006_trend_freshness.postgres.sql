-- Plain PostgreSQL: when each stand-in aggregate was last refreshed, so trend queries
-- read the view up to that point and raw rows after it (what TimescaleDB's real-time
-- aggregation does by itself).
CREATE TABLE IF NOT EXISTS aggregate_refreshes (
    view          text PRIMARY KEY,
    refreshed_at  timestamptz NOT NULL
);
