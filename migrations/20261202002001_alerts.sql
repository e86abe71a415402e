-- Alerts: channels per organisation, events written in the transaction that
-- changes an app's health, and one delivery row per event and channel (the
-- outbox the delivery job claims with FOR UPDATE SKIP LOCKED).

create table alert_channels (
    id                uuid primary key,
    tenant_id         uuid not null references tenants (id) on delete cascade,
    kind              text not null check (kind in ('webhook', 'wecom', 'feishu', 'dingtalk')),
    name              text not null check (length(name) between 1 and 100),
    -- The target URL under the key ring (a robot's URL is its credential),
    -- and the same URL with its credentials masked, for lists.
    url_ciphertext    bytea not null,
    url_display       text not null check (length(url_display) between 1 and 2100),
    -- The signing secret under the key ring (binding: tenant, channel, field).
    secret_ciphertext bytea,
    events            text[] not null,
    -- AppIDs the channel is limited to; empty: every app.
    appids            text[] not null default '{}',
    created_at        timestamptz not null default now()
);
create index alert_channels_tenant on alert_channels (tenant_id, created_at);

create table alert_events (
    id          uuid primary key,
    tenant_id   uuid not null references tenants (id) on delete cascade,
    event_type  text not null check (event_type in
                    ('app.failing', 'app.recovered', 'app.token_expiring', 'app.secret_promoted', 'test')),
    appid       text,
    app_name    text,
    errcode     integer,
    errmsg      text,
    occurred_at timestamptz not null default now()
);
create index alert_events_tenant on alert_events (tenant_id, occurred_at);

create table alert_deliveries (
    -- The delivery id receivers see in X-Tokenvault-Delivery: stable across retries.
    id              uuid primary key,
    event_id        uuid not null references alert_events (id) on delete cascade,
    channel_id      uuid not null references alert_channels (id) on delete cascade,
    tenant_id       uuid not null references tenants (id) on delete cascade,
    status          text not null default 'pending' check (status in ('pending', 'delivered', 'dead')),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_attempt_at timestamptz,
    http_status     integer,
    latency_ms      integer,
    answer          text,
    error           text,
    created_at      timestamptz not null default now(),
    unique (event_id, channel_id)
);
create index alert_deliveries_due on alert_deliveries (next_attempt_at) where status = 'pending';
create index alert_deliveries_channel on alert_deliveries (channel_id, created_at desc);
