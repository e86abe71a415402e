-- The refresh engine's bookkeeping beside the token itself.

-- Stable-mode force refreshes are limited by WeChat (20 a day, 30 s apart):
-- we count them per app per Beijing day so we never ask beyond the limit.
alter table token_state
    add column force_refresh_day date,
    add column force_refresh_count integer not null default 0 check (force_refresh_count >= 0),
    add column last_force_refresh_at timestamptz,
    -- Outcome of the last attempt, for health at a glance.
    add column last_outcome text check (last_outcome in ('success', 'unchanged', 'failure', 'skipped'));

-- Dashboards list failures of the last 24 h per app.
create index refresh_log_app_failures on refresh_log (app_id, created_at desc) where outcome = 'failure';

-- Token changes are announced on channel tokenvault_tokens (app id as
-- payload): every replica drops its cached copy, and a row that became due
-- earlier (new app, edited app, invalidated token) wakes the refreshers, so it
-- is refreshed within a second by whichever replica gets there first.
create function notify_token_change() returns trigger
language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        perform pg_notify('tokenvault_tokens', old.app_id::text);
        return old;
    end if;
    if tg_op = 'INSERT'
       or new.version is distinct from old.version
       or new.next_refresh_at < old.next_refresh_at then
        perform pg_notify('tokenvault_tokens', new.app_id::text);
    end if;
    return new;
end;
$$;
create trigger token_state_notify after insert or update or delete on token_state
    for each row execute function notify_token_change();
