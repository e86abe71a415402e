//! Types that parse: raw input becomes one of these at the edge, and nothing
//! deeper sees raw strings.

#[macro_use]
mod names;
mod account_type;
mod alert;
mod app;
mod audit;
pub mod browser;
pub mod client;
pub mod credential;
mod email;
pub mod health;
mod ids;
pub mod jssdk;
mod name;
mod password;
mod refresh;
mod role;
mod ticket;

pub use account_type::AccountType;
pub use alert::{ChannelKind, DeliveryStatus, EventType};
pub use app::{AppId, AppKind, TokenMode, parse_app_secret, parse_wecom_secret};
pub use audit::AuditAction;
pub use email::Email;
pub use health::Health;
pub use ids::{
    AlertChannelId, AlertDeliveryId, AlertSummaryId, ApiKeyId, AppUuid, InviteId, SessionId,
    TenantId, UserId,
};
pub use name::Name;
pub use password::NewPassword;
pub use refresh::{ErrorClass, RefreshOutcome, Trigger};
pub use role::Role;
pub use ticket::{Credential, TicketType};

/// Why a field was refused: a stable code and a sentence for people
/// (serialised by `crate::error` with these three fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, utoipa::ToSchema)]
#[error("{message}")]
pub struct FieldError {
    /// The field, as named in the request.
    pub field: &'static str,
    /// Stable machine-readable code, e.g. `too_long`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// Characters that make text look different from what it is: C0/C1 controls,
/// bidirectional overrides and isolates, zero-width characters.
pub(crate) fn has_deceptive_chars(s: &str) -> bool {
    s.chars().any(|c| {
        c.is_control()
            || matches!(c,
                '\u{200B}'..='\u{200F}' // zero-width, LRM/RLM
                | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
                | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{FEFF}' // zero-width no-break space
            )
    })
}
