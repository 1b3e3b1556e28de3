-- The per-minute trend aggregate, TimescaleDB flavour: how long it keeps late data
-- coming, and how long it is kept.
--
-- Refresh window: a gateway replays its outbox after days offline; readings landing in
-- buckets already materialized are recomputed only by a refresh whose window covers
-- them. 0003 gave vitals_1m 7 days and vitals_1h 35: a home back after 8 days got its
-- readings into the hourly aggregate but never into the minute one, so a chart zoomed to
-- minutes (any span under about 20 days) missed them for good. Both now cover 35 days;
-- each run still only recomputes the buckets that changed (the invalidation log).
SELECT remove_continuous_aggregate_policy('vitals_1m', if_exists => TRUE);
SELECT add_continuous_aggregate_policy('vitals_1m', start_offset => INTERVAL '35 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute',
    if_not_exists => TRUE);

-- Retention: a continuous aggregate keeps its rows for ever unless it has a retention
-- policy of its own (the raw-data policy of 0002, 730 days, never touches it). vitals_1m
-- only serves charts zoomed to minutes; it is kept 90 days (the whole post-operative
-- follow-up, including the 90-day complication window), well past its 35-day refresh
-- window so that a refresh never recomputes a dropped bucket. It holds nothing the raw
-- rows do not: store/trends.py reads raw rows for windows older than this policy's
-- horizon, so a chart of an older period stays complete for as long as the raw rows are
-- kept. vitals_1h keeps no policy: the hourly summary stays with the record
-- (store/README.md, retention choice).
SELECT add_retention_policy('vitals_1m', drop_after => INTERVAL '90 days', if_not_exists => TRUE);
