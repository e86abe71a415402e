//! Every action the audit log records, in one list. Stored as text with a
//! check constraint listing exactly these names; the web UI names each in
//! both languages (`audit_action_<name with _ for .>`).

use serde::{Deserialize, Serialize};

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// An action in the audit log.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type,
        )]
        #[sqlx(type_name = "text")]
        pub enum AuditAction {
            $($(#[$doc])* #[serde(rename = $name)] #[sqlx(rename = $name)] $variant,)*
        }

        impl AuditAction {
            /// Every action, in the order the audit page offers them.
            pub const ALL: &[AuditAction] = &[$(Self::$variant,)*];

            /// The name as stored and sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The action named `name`, if there is one.
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|a| a.as_str() == name)
            }
        }
    };
}

// Written out rather than derived: the derive does not see the names the
// macro above gives the variants, and would document the variants' Rust
// names instead of the names sent.
impl utoipa::PartialSchema for AuditAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An action in the audit log."))
            .enum_values(Some(Self::ALL.iter().map(|a| a.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for AuditAction {}

actions! {
    /// A person signed in.
    SignIn = "signin",
    /// A sign-in was refused (wrong password, unknown email).
    SignInFailed = "signin.failed",
    /// A person signed out.
    SignOut = "signout",
    /// An organisation was created (sign-up).
    TenantCreated = "tenant.created",
    /// An operator changed an organisation's app limit.
    TenantAppLimitChanged = "tenant.app_limit_changed",
    /// Someone joined through an invite.
    MemberJoined = "member.joined",
    /// A member's role changed.
    MemberRoleChanged = "member.role_changed",
    /// A member was removed.
    MemberRemoved = "member.removed",
    /// An invite was created.
    InviteCreated = "invite.created",
    /// An invite was withdrawn.
    InviteWithdrawn = "invite.withdrawn",
    /// An API key was created.
    ApiKeyCreated = "api_key.created",
    /// An API key was revoked.
    ApiKeyRevoked = "api_key.revoked",
    /// An app was registered.
    AppRegistered = "app.registered",
    /// An app was edited.
    AppEdited = "app.edited",
    /// An app was deleted.
    AppDeleted = "app.deleted",
    /// A person asked for "refresh now".
    AppRefreshed = "app.refreshed",
    /// Tokens read with a key (one entry per key per minute, with the count).
    TokenRead = "token.read",
    /// A reported token was refreshed (compare-and-refresh).
    TokenInvalidated = "token.invalidated",
    /// Reports the gate refused (per key per minute, with the count).
    TokenInvalidateRefused = "token.invalidate_refused",
    /// An operator of the service was created.
    OperatorCreated = "operator.created",
    /// A mail asking to verify an address was queued.
    EmailVerificationSent = "email.verification_sent",
    /// A person verified their address with the mailed link.
    EmailVerified = "email.verified",
    /// Someone asked for a password reset mail for an account.
    PasswordResetRequested = "password.reset_requested",
    /// A password was reset with a mailed link (every session ended).
    PasswordReset = "password.reset",
    /// A person changed their password (their other sessions ended).
    PasswordChanged = "password.changed",
    /// An operator of the service saw this organisation's data (the
    /// operator page, the organisations list); the target names what.
    OperatorViewed = "operator.viewed",
    /// A person turned on two-factor sign-in (confirmed with a code).
    TotpEnabled = "totp.enabled",
    /// A person turned off two-factor sign-in (with password and code).
    TotpDisabled = "totp.disabled",
    /// A wrong, reused or replayed two-factor code was refused.
    TotpFailed = "totp.failed",
    /// A recovery code was used in place of a two-factor code.
    TotpRecoveryCodeUsed = "totp.recovery_code_used",
    /// A person replaced their recovery codes with ten new ones.
    TotpRecoveryCodesRegenerated = "totp.recovery_codes_regenerated",
    /// An owner turned the organisation's two-factor requirement on or off.
    TenantTotpPolicyChanged = "tenant.totp_policy_changed",
    /// A person ended one of their other sessions, or all of them.
    SessionEnded = "session.ended",
    /// An alert channel was created.
    AlertChannelCreated = "alert_channel.created",
    /// An alert channel was deleted.
    AlertChannelDeleted = "alert_channel.deleted",
    /// A test was sent to an alert channel.
    AlertChannelTested = "alert_channel.tested",
    /// An owner or admin turned one of an app's JS-SDK tickets on or off.
    AppTicketSwitched = "app.ticket_switched",
    /// The recipient of a mail alert channel confirmed it with the mailed link.
    AlertChannelConfirmed = "alert_channel.confirmed",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert!(seen.insert(a.as_str()), "{a:?} twice");
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            assert_eq!(
                serde_json::to_string(a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }

    /// The OpenAPI document names the actions as they are sent.
    #[test]
    fn the_schema_lists_the_names_sent() {
        use utoipa::{PartialSchema as _, ToSchema as _};
        let schema = serde_json::to_value(AuditAction::schema()).unwrap();
        let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(schema["enum"], serde_json::json!(names));
        assert_eq!(schema["type"], "string");
        assert_eq!(AuditAction::name(), "AuditAction");
    }

    /// The database's check constraint lists exactly these names, so no
    /// stored action fails to decode.
    #[test]
    fn the_check_constraint_lists_every_action() {
        let migration = include_str!(
            "../../migrations/20261204002001_alert_summaries_and_mail_confirmation.sql"
        );
        let listed: Vec<&str> = migration
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').strip_prefix('\''))
            .filter_map(|l| l.strip_suffix('\''))
            .collect();
        let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(listed, known);
    }
}
