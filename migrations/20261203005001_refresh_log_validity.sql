-- The app page's refresh timeline draws the token's validity as a band:
-- each attempt records until when the app's stored token was valid after
-- it (a new token's expiry, a kept token's expiry, shortened when a lost
-- call made it untrusted; null when the app held no token).
alter table refresh_log add column valid_until timestamptz;

-- The dashboard's sparklines and the timelines read an app's or an
-- organisation's attempts of a window grouped by time and outcome: the
-- existing (app_id, created_at) and (tenant_id, created_at) indexes find
-- the rows; this one lets the service-wide charts read a day's outcomes
-- and latencies from the index alone. It has the key of the old
-- refresh_log_created index and serves every query that one did, so that
-- one goes: one index less to maintain on every refresh-log insert.
create index refresh_log_created_outcome on refresh_log (created_at) include (outcome, latency_ms);
drop index refresh_log_created;
