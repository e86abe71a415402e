-- Guards on the upstream calls every tenant shares (WeChat's quotas, the
-- egress IP's reputation): a per-app daily budget, a person's bypass of a
-- pending backoff at most once a minute, and caches told when a token's
-- trusted life was shortened.

-- Upstream calls per app per quota day (midnight Beijing time, WeChat's day).
-- Keyed by tenant and AppID, not by the app row, so deleting and registering
-- an app again does not hand it a fresh budget; rows of past days are pruned.
create table upstream_budget (
    tenant_id       uuid not null references tenants (id) on delete cascade,
    appid           text not null,
    day             date not null,
    -- Calls of any kind made that day (each attempt with a secondary secret counts too).
    calls           integer not null default 0 check (calls >= 0),
    -- Stable-mode force refreshes that day (WeChat allows 20, 30 s apart).
    forced          integer not null default 0 check (forced >= 0),
    last_forced_at  timestamptz,
    primary key (tenant_id, appid)
);
create index upstream_budget_day on upstream_budget (day);

-- Carry today's force-refresh bookkeeping over from the token rows.
insert into upstream_budget (tenant_id, appid, day, calls, forced, last_forced_at)
select s.tenant_id, a.appid, s.force_refresh_day, 0, s.force_refresh_count, s.last_force_refresh_at
  from token_state s join apps a on a.id = s.app_id
 where s.force_refresh_day is not null
on conflict do nothing;

alter table token_state
    drop column force_refresh_day,
    drop column force_refresh_count,
    drop column last_force_refresh_at,
    -- When a person's "refresh now" last went past a pending retry time.
    add column last_bypass_at timestamptz;

-- A refresh that was not attempted because a guard refused it is logged as
-- 'skipped' (at most once per quota day for a spent budget).

-- Also announce a token whose trusted life was shortened (a classic call of
-- unknown outcome), so no replica keeps serving it from its cache.
create or replace function notify_token_change() returns trigger
language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        perform pg_notify('tokenvault_tokens', old.app_id::text);
        return old;
    end if;
    if tg_op = 'INSERT'
       or new.version is distinct from old.version
       or new.next_refresh_at < old.next_refresh_at
       or new.expires_at < old.expires_at then
        perform pg_notify('tokenvault_tokens', new.app_id::text);
    end if;
    return new;
end;
$$;

-- Invalidations per app in the last hour are counted from the refresh log.
create index refresh_log_app_invalidations on refresh_log (app_id, created_at desc)
    where trigger = 'invalidate';
