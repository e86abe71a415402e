-- An invite may name the person it is for: the link then only works for
-- that email, and the members page says whom each open invite is for.
alter table invites add column email text check (email is null or length(email) between 3 and 254);

-- The audit log grows with every token read (one row per key per minute):
-- pages are read newest first by id, optionally for one action.
create index audit_log_tenant_id on audit_log (tenant_id, id desc);
create index audit_log_tenant_action on audit_log (tenant_id, action, id desc);
