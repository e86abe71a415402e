-- Every token tokenvault stored, by a keyed hash (HMAC-SHA256 under a key
-- derived from the master key named by key_id), so the WeChat-compatible
-- getticket finds the app of a token without decrypting any token. A row
-- lives as long as WeChat accepts its token: its own expiry, or the classic
-- overlap once a newer classic token replaced it.
create table served_tokens (
    token_hash  bytea primary key check (length(token_hash) = 32),
    key_id      text not null,
    app_id      uuid not null,
    tenant_id   uuid not null,
    expires_at  timestamptz not null,
    foreign key (app_id, tenant_id) references apps (id, tenant_id) on delete cascade
);
create index served_tokens_app on served_tokens (app_id, expires_at);
