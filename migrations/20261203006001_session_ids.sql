-- A public id for each session, for the account page and the sessions API
-- (`GET/DELETE /api/v1/account/sessions[/{id}]`). The primary key stays
-- the SHA-256 of the cookie value, which is never shown.
alter table sessions add column id uuid not null default gen_random_uuid();
create unique index sessions_public_id on sessions (id);
