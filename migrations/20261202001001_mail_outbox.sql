-- Outgoing mail: a transactional outbox. A use case inserts the mail in its
-- own transaction; the mail job of any replica claims due rows with
-- `select ... for update skip locked`, sends, and marks them sent in the
-- same transaction, so one mail is sent by one replica.
--
-- Bodies hold one-use links: they are stored encrypted with the key ring
-- (binding: nil tenant, the mail's id, field `mail_outbox.body`) and erased
-- once the mail is sent or abandoned. Recipient and subject are headers the
-- operator page shows.
create table mail_outbox (
    id               uuid primary key,
    recipient        text not null check (length(recipient) between 3 and 254),
    subject          text not null check (length(subject) between 1 and 300),
    -- What caused it (e.g. `email.verify`, `password.reset`), for operators.
    kind             text not null check (kind ~ '^[a-z][a-z0-9_.]{0,62}$'),
    body_ciphertext  bytea,
    status           text not null default 'queued' check (status in ('queued', 'sent', 'failed')),
    attempts         integer not null default 0 check (attempts >= 0),
    next_attempt_at  timestamptz not null default now(),
    last_error       text check (length(last_error) <= 500),
    created_at       timestamptz not null default now(),
    sent_at          timestamptz,
    constraint mail_outbox_body_while_queued check ((status = 'queued') = (body_ciphertext is not null))
);
create index mail_outbox_due on mail_outbox (next_attempt_at) where status = 'queued';
create index mail_outbox_recent on mail_outbox (created_at desc);

-- The language of a person's mails.
alter table users add column language text not null default 'en' check (language in ('en', 'zh-CN'));
