-- The audit log records only the actions tokenvault knows: exactly the
-- names of `AuditAction` (src/domain/audit.rs, whose test compares them with
-- this list). Every action recorded so far is one of them. A new action
-- needs a migration that replaces this constraint.
alter table audit_log add constraint audit_log_action_known check (action in (
    'signin',
    'signin.failed',
    'signout',
    'tenant.created',
    'tenant.app_limit_changed',
    'member.joined',
    'member.role_changed',
    'member.removed',
    'invite.created',
    'invite.withdrawn',
    'api_key.created',
    'api_key.revoked',
    'app.registered',
    'app.edited',
    'app.deleted',
    'app.refreshed',
    'token.read',
    'token.invalidated',
    'token.invalidate_refused',
    'operator.created'
));
