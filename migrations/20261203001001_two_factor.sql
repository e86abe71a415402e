-- Two-factor sign-in with TOTP (RFC 6238).
-- One row per person who started enrolling; `confirmed_at` is set once a
-- code proved the authenticator works, and only then is a code asked for at
-- sign-in. The secret is an AES-256-GCM ciphertext under the key ring,
-- bound to the user and the field (`Binding::totp_secret`). `last_step` is
-- the last 30-second time step a code was accepted for: a code is taken
-- once per step (no replay).
create table user_totp (
    user_id            uuid primary key references users (id) on delete cascade,
    secret_ciphertext  bytea not null,
    confirmed_at       timestamptz,
    last_step          bigint,
    created_at         timestamptz not null default now()
);

-- Ten one-use recovery codes per enrolled person: SHA-256 of the code
-- (80 random bits), never the code itself.
create table totp_recovery_codes (
    user_id    uuid not null references users (id) on delete cascade,
    code_hash  bytea not null,
    used_at    timestamptz,
    primary key (user_id, code_hash)
);

-- Owners can require two-factor sign-in of every member.
alter table tenants add column require_totp boolean not null default false;

-- A session started for someone who must enrol first (an operator, or a
-- member of an organisation that requires two-factor sign-in) can do
-- nothing but enrol and sign out.
alter table sessions add column totp_enrolment_only boolean not null default false;
