-- The audit log's actions, reconciled: every name of `AuditAction`
-- (src/domain/audit.rs, whose test compares them with this list), with
-- two-factor sign-in, alert channels, ticket switches, operators' views and
-- ended sessions. The next change to the list adds a migration like this one.
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
    'operator.viewed',
    'totp.enabled',
    'totp.disabled',
    'totp.failed',
    'totp.recovery_code_used',
    'totp.recovery_codes_regenerated',
    'tenant.totp_policy_changed',
    'session.ended',
    'alert_channel.created',
    'alert_channel.deleted',
    'alert_channel.tested',
    'app.ticket_switched'
));
