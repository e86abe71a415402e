//! The audit log page: the organisation's log, newest first, a page at a
//! time, optionally one action (owners and admins, as in the API).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};

use super::Page;
use super::i18n::Lang;
use super::pages::{FieldErrors, admin_scope, one, when};
use super::people::role_name;
use crate::domain::AuditAction;
use crate::error::ApiError;
use crate::service::audit::{self, ActionFilter, AuditRow};
use crate::state::AppState;

/// Entries per page of the audit log.
const AUDIT_PAGE_SIZE: i64 = 50;

/// The actions the filter offers: every action recorded for an
/// organisation (an operator's creation belongs to none). Each has a name
/// in both catalogues, [`action_key`].
pub fn offered_actions() -> impl Iterator<Item = AuditAction> {
    AuditAction::ALL
        .iter()
        .copied()
        .filter(|a| *a != AuditAction::OperatorCreated)
}

/// The catalogue key of an action's name: `audit_action_<name with _ for .>`.
fn action_key(action: AuditAction) -> String {
    format!("audit_action_{}", action.as_str().replace('.', "_"))
}

/// Query of the audit page: kept as text, so a mangled link shows a page
/// rather than a bare error.
#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    before: String,
}

/// One audit entry as the page shows it.
#[derive(Serialize)]
struct AuditLine {
    when: String,
    action: String,
    action_name: String,
    actor: Option<String>,
    actor_key: Option<String>,
    target: Option<String>,
    details: Vec<(String, String)>,
    client_ip: Option<String>,
}

/// A detail value as text: roles named in the visitor's language, lists
/// joined, yes/no for flags; `None` for nothing to show.
fn detail_text(lang: Lang, key: &str, value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(
            lang.text(if *b { "audit_yes" } else { "audit_no" })
                .to_string(),
        ),
        Value::String(s) if matches!(key, "role" | "from" | "to") => Some(role_name(lang, s)),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| detail_text(lang, key, v))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Some(other.to_string()),
    }
}

impl AuditLine {
    fn of(lang: Lang, row: AuditRow) -> Self {
        let action_name = lang.text(&action_key(row.action));
        let detail = row.detail.as_object().cloned().unwrap_or_default();
        // An invite's email says more than its id.
        let target = detail
            .get("email")
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .or(row.target);
        let details = detail
            .iter()
            .filter(|(k, _)| k.as_str() != "email")
            .filter_map(|(k, v)| {
                let label = lang.text(&format!("audit_detail_{k}"));
                let label = if label.is_empty() {
                    k.clone()
                } else {
                    label.to_string()
                };
                detail_text(lang, k, v).map(|text| (label, text))
            })
            .collect();
        Self {
            when: when(row.created_at),
            action_name: if action_name.is_empty() {
                row.action.as_str().to_string()
            } else {
                action_name.to_string()
            },
            action: row.action.as_str().to_string(),
            actor: row.actor_email,
            actor_key: row.actor_api_key,
            target,
            details,
            client_ip: row.client_ip,
        }
    }
}

/// GET /audit: the organisation's audit log, newest first, a page at a
/// time, optionally one action (owners and admins, as in the API).
pub async fn audit(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> HttpResponse {
    let actor = match admin_scope(&page).and_then(|_| page.actor(&req)) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let before = match query.before.trim() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                return page.error(&ApiError::BadRequest {
                    code: "invalid_query",
                    detail: "before must be an entry id".into(),
                });
            }
        },
    };
    let wanted = query.action.trim();
    let (action, errors) = match offered_actions().find(|a| a.as_str() == wanted) {
        Some(a) => (Some(a), FieldErrors::new()),
        None if wanted.is_empty() => (None, FieldErrors::new()),
        None => (None, one("action", page.lang.text("audit_unknown_action"))),
    };
    let filter = action.map_or(ActionFilter::All, ActionFilter::Only);
    let found = match audit::page(&state, &actor, before, filter, AUDIT_PAGE_SIZE).await {
        Ok(found) => found,
        Err(e) => return page.error(&e),
    };
    let entries: Vec<AuditLine> = found
        .items
        .into_iter()
        .map(|row| AuditLine::of(page.lang, row))
        .collect();
    let actions: Vec<(&str, &str)> = offered_actions()
        .map(|a| (a.as_str(), page.lang.text(&action_key(a))))
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page.render(
        status,
        "audit.html",
        context! {
            entries => Serde(&entries),
            actions => Serde(&actions),
            action => action.map(AuditAction::as_str).unwrap_or_default(),
            next_before => found.next_before,
            paged => before.is_some(),
            errors => Serde(&errors),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action the filter offers has a name in both languages.
    #[test]
    fn every_audit_action_is_named() {
        for lang in [Lang::En, Lang::Zh] {
            for action in offered_actions() {
                let key = action_key(action);
                assert!(!lang.text(&key).is_empty(), "{key} missing ({lang:?})");
            }
        }
    }

    #[test]
    fn details_read_as_text() {
        let lang = Lang::En;
        assert_eq!(
            detail_text(lang, "to", &serde_json::json!("viewer")).as_deref(),
            Some("Viewer")
        );
        assert_eq!(
            detail_text(lang, "changed", &serde_json::json!(["name", "secret"])).as_deref(),
            Some("name, secret")
        );
        assert_eq!(detail_text(lang, "x", &serde_json::Value::Null), None);
        assert_eq!(
            detail_text(lang, "read_only", &serde_json::json!(true)).as_deref(),
            Some("yes")
        );
    }
}
