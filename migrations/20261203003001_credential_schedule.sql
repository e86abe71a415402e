-- Tickets are renewed by the scheduler on their own clock (next_due_at),
-- claimed like token rows (for update skip locked); an owner can turn a
-- ticket off (the scheduler leaves it alone; the next read turns it on).
alter table app_tickets
    add column enabled boolean not null default true,
    add column next_due_at timestamptz;
update app_tickets set next_due_at = coalesce(expires_at, now());
alter table app_tickets alter column next_due_at set not null,
    alter column next_due_at set default now();
create index app_tickets_due on app_tickets (next_due_at) where enabled;

-- Every credential's attempts go to the app's refresh log, named.
alter table refresh_log
    add column credential text not null default 'access_token'
        check (credential in ('access_token', 'jsapi_ticket', 'wx_card_ticket'));
