-- The audit log's actions, with those of tickets: an app's JS-SDK ticket
-- turned on or off. Exactly the names of `AuditAction`
-- (src/domain/audit.rs, whose test compares them with this list).
alter table audit_log drop constraint audit_log_action_known;
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
    'operator.created',
    'email.verification_sent',
    'email.verified',
    'password.reset_requested',
    'password.reset',
    'password.changed',
    'app.ticket_switched'
));
