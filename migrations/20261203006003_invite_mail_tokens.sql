-- An invite created with an email is also mailed to it, with a token of its
-- own: joining through the mailed link verifies the address (it proves the
-- person reads that mailbox); joining through the link shown to the inviter
-- does not. Only the token's SHA-256 is stored.
alter table invites add column mail_token_hash bytea unique;
