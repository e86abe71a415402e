-- Alerts: summaries and mail channels confirmed by their recipient.
--
-- A summary: when many apps of an organisation fail (or recover) at once,
-- their deliveries to one channel are sent as one message; every delivery
-- of the group carries the same summary id (set when the group is first
-- claimed, kept on retries: receivers deduplicate by it) and the same
-- outcome.
alter table alert_deliveries add column summary_id uuid;
create index alert_deliveries_summary on alert_deliveries (summary_id) where summary_id is not null;

-- A mail channel to an address that is not a verified member's is created
-- unconfirmed: nothing but the confirmation mail goes to it until its
-- recipient opens the mailed one-use link (only the token's SHA-256 is kept).
alter table alert_channels add column confirmed_at timestamptz default now();
update alert_channels set confirmed_at = created_at;
alter table alert_channels add column confirm_token_hash bytea unique;
alter table alert_channels add column confirm_expires_at timestamptz;
alter table alert_channels add constraint alert_channels_confirmed_or_pending
    check (confirmed_at is not null or (confirm_token_hash is not null and confirm_expires_at is not null));

-- The audit log's actions: every name of `AuditAction` (src/domain/audit.rs,
-- whose test compares them with this list), with the confirmation of a
-- mail channel. The next change to the list adds a migration like this one.
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
    'app.ticket_switched',
    'alert_channel.confirmed'
));
