//! A person's time zone: pages show times in it when one is chosen, in
//! the browser's own zone otherwise.

use super::Actor;
use crate::db;
use crate::domain::FieldError;
use crate::error::ApiError;
use crate::state::AppState;

/// The zone names a person may choose from, sorted: read from the
/// database once per process (its zone catalogue does not change while it
/// runs), not on every account page.
pub async fn choices(state: &AppState) -> Result<&'static [String], ApiError> {
    static CHOICES: tokio::sync::OnceCell<Vec<String>> = tokio::sync::OnceCell::const_new();
    let names = CHOICES
        .get_or_try_init(|| db::time_zones::names(&state.pool))
        .await?;
    Ok(names)
}

/// The signed-in person chooses `zone` (an IANA name such as
/// `Asia/Shanghai`, or `UTC`); empty goes back to the browser's zone. A
/// name the database does not know is a validation error on `time_zone`.
pub async fn choose(
    state: &AppState,
    actor: &Actor,
    zone: &str,
) -> Result<Option<String>, ApiError> {
    let user = actor.require_session()?;
    let zone = zone.trim();
    let chosen = if zone.is_empty() {
        None
    } else {
        if zone.len() > 64 || !db::time_zones::is_known(&state.pool, zone).await? {
            return Err(ApiError::Validation(vec![FieldError::new(
                "time_zone",
                "unknown_time_zone",
                "not a time zone name such as Asia/Shanghai",
            )]));
        }
        Some(zone.to_string())
    };
    db::time_zones::set(&state.pool, user.user_id, chosen.as_deref()).await?;
    Ok(chosen)
}
