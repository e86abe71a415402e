-- JS-SDK tickets of an app (jsapi, wx_card), derived from its access token.
-- A row exists once the app keeps that ticket (the first read turns it on);
-- the row is the lock every replica takes before fetching the ticket.
create table app_tickets (
    app_id              uuid not null,
    tenant_id           uuid not null,
    ticket_type         text not null check (ticket_type in ('jsapi', 'wx_card')),
    -- Encrypted with the key ring, bound to tenant, app and type.
    ticket_ciphertext   bytea,
    fetched_at          timestamptz,
    expires_at          timestamptz,
    -- The version of the token row whose token fetched this ticket.
    token_version       bigint,
    failure_streak      integer not null default 0 check (failure_streak >= 0),
    last_attempt_at     timestamptz,
    last_errcode        integer,
    last_errmsg         text,
    updated_at          timestamptz not null default now(),
    primary key (app_id, ticket_type),
    foreign key (app_id, tenant_id) references apps (id, tenant_id) on delete cascade,
    constraint app_tickets_complete check (
        (ticket_ciphertext is null) = (expires_at is null)
        and (ticket_ciphertext is null) = (fetched_at is null)
    )
);
create trigger app_tickets_updated_at before update on app_tickets
    for each row execute function set_updated_at();
