-- Verified addresses and the one-use links mailed to people: email
-- verification and password reset. The link carries a random token; only
-- its SHA-256 is stored. A link is bound to the address it was mailed to.
alter table users add column email_verified_at timestamptz;

create table email_links (
    token_hash  bytea primary key,
    user_id     uuid not null references users (id) on delete cascade,
    purpose     text not null check (purpose in ('verify_email', 'reset_password')),
    email       text not null check (length(email) between 3 and 254),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz
);
create index email_links_user on email_links (user_id, purpose, created_at desc);
