//! The audit log as the organisation's owners and admins read it.

use super::Actor;
use crate::db;
use crate::domain::{AuditAction, Role};
use crate::error::ApiError;
use crate::state::AppState;

pub use crate::db::audit::AuditRow;

/// Which entries to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionFilter {
    /// Every action.
    All,
    /// Only this one.
    Only(AuditAction),
    /// A well-formed action name that names no action: no entries.
    Unknown,
}

impl ActionFilter {
    /// The filter for an `action` query value. Action names are dotted
    /// lower-case words (`member.joined`); anything else is a bad request.
    pub fn parse(action: Option<&str>) -> Result<Self, ApiError> {
        let Some(a) = action else {
            return Ok(Self::All);
        };
        let well_formed = !a.is_empty()
            && a.len() <= 64
            && a.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
        if !well_formed {
            return Err(ApiError::BadRequest {
                code: "invalid_query",
                detail: "action must be an action name such as member.joined".into(),
            });
        }
        Ok(AuditAction::parse(a).map_or(Self::Unknown, Self::Only))
    }
}

/// A page of the audit log, newest first.
pub struct AuditPage {
    /// The entries.
    pub items: Vec<AuditRow>,
    /// The `before` of the next (older) page, if there may be one.
    pub next_before: Option<i64>,
}

/// A page of the actor's organisation's audit log (owners and admins):
/// entries older than `before`, of the actions `filter` lets through.
pub async fn page(
    state: &AppState,
    actor: &Actor,
    before: Option<i64>,
    filter: ActionFilter,
    limit: i64,
) -> Result<AuditPage, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let action = match filter {
        ActionFilter::All => None,
        ActionFilter::Only(a) => Some(a),
        ActionFilter::Unknown => {
            return Ok(AuditPage {
                items: Vec::new(),
                next_before: None,
            });
        }
    };
    let items = db::audit::list(&state.pool, scope.tenant_id, before, action, limit).await?;
    let next_before = (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(AuditPage { items, next_before })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_filters_parse_names_and_refuse_anything_else() {
        assert_eq!(ActionFilter::parse(None).unwrap(), ActionFilter::All);
        assert_eq!(
            ActionFilter::parse(Some("member.joined")).unwrap(),
            ActionFilter::Only(AuditAction::MemberJoined)
        );
        // Well-formed but unknown: an empty page, not an error.
        assert_eq!(
            ActionFilter::parse(Some("member.flew_away")).unwrap(),
            ActionFilter::Unknown
        );
        for bad in ["", "Member.Joined", "member joined", &"a".repeat(65)] {
            assert!(ActionFilter::parse(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
