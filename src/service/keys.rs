//! API keys: create (the key shown once), list, revoke; and what the keys
//! page needs besides (the apps a new key can be limited to).

use secrecy::SecretString;

use super::Actor;
use crate::auth::api_key;
use crate::db;
use crate::domain::{ApiKeyId, AppId, AuditAction, FieldError, Name, Role};
use crate::error::ApiError;
use crate::state::AppState;

pub use crate::db::api_keys::ApiKeyRow;

/// Most apps one key may be limited to.
const MAX_APPS_PER_KEY: usize = 100;

/// Most apps the keys page offers to limit a new key to (the API's largest page).
const MAX_APP_CHOICES: i64 = 200;

/// A new key as asked for.
pub struct NewKey<'a> {
    /// A name to recognise it by.
    pub name: &'a str,
    /// The `AppID`s it is limited to; empty: every app.
    pub appids: &'a [String],
    /// A read-only key reads tokens and health but changes nothing.
    pub read_only: bool,
}

/// A key just created; `key` is shown once, then only its hash is kept.
pub struct CreatedKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Its name, as stored.
    pub name: String,
    /// The whole key.
    pub key: SecretString,
    /// Its visible prefix.
    pub prefix: String,
}

/// Validate and store a new key with its audit record (all or nothing).
/// Every field is checked, so a form shows all its errors at once.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    input: &NewKey<'_>,
) -> Result<CreatedKey, ApiError> {
    let user_id = actor.require_session()?.user_id;
    let scope = actor.require(Role::Admin)?;
    let name = Name::parse("name", input.name);
    let (app_ids, mut errors) = resolve_apps(state, scope.tenant_id, input.appids).await?;
    let name = match name {
        Ok(name) if errors.is_empty() => name,
        Ok(_) => return Err(ApiError::Validation(errors)),
        Err(e) => {
            errors.insert(0, e);
            return Err(ApiError::Validation(errors));
        }
    };

    let new = api_key::generate();
    let id = ApiKeyId::new();
    let mut tx = state.pool.begin().await?;
    let row = db::api_keys::NewApiKey {
        id,
        tenant_id: scope.tenant_id,
        name: name.as_str(),
        prefix: &new.prefix,
        key_hash: &new.hash,
        read_only: input.read_only,
        app_ids: &app_ids,
        created_by: user_id,
    };
    db::api_keys::insert(&mut tx, &row).await?;
    let detail = serde_json::json!({
        "name": name.as_str(), "read_only": input.read_only, "apps": input.appids,
    });
    let event = actor
        .audit(AuditAction::ApiKeyCreated)
        .target(new.prefix.as_str())
        .detail(detail);
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(CreatedKey {
        id,
        name: name.as_str().to_string(),
        key: new.key,
        prefix: new.prefix,
    })
}

/// The apps of `appids` in the tenant, or what is wrong with the list.
async fn resolve_apps(
    state: &AppState,
    tenant_id: crate::domain::TenantId,
    appids: &[String],
) -> Result<(Vec<crate::domain::AppUuid>, Vec<FieldError>), ApiError> {
    if appids.len() > MAX_APPS_PER_KEY {
        let e = FieldError::new(
            "apps",
            "too_many",
            format!("a key may name at most {MAX_APPS_PER_KEY} apps"),
        );
        return Ok((Vec::new(), vec![e]));
    }
    if appids.iter().any(|a| AppId::parse("apps", a).is_err()) {
        let e = FieldError::new(
            "apps",
            "invalid_appid",
            "every entry of apps must be an AppID such as wx0123456789abcdef",
        );
        return Ok((Vec::new(), vec![e]));
    }
    let (found, missing) = db::api_keys::resolve_appids(&state.pool, tenant_id, appids).await?;
    let mut errors = Vec::new();
    if !missing.is_empty() {
        errors.push(FieldError::new(
            "apps",
            "unknown_app",
            format!("no such app in this organisation: {}", missing.join(", ")),
        ));
    }
    Ok((found, errors))
}

/// The keys of the actor's organisation, newest first (never the keys
/// themselves; owners and admins).
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<ApiKeyRow>, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    Ok(db::api_keys::list(&state.pool, scope.tenant_id).await?)
}

/// Revoke a key of the actor's organisation, tell every replica, record
/// it; returns the key as it was. Revoking twice is fine.
pub async fn revoke(state: &AppState, actor: &Actor, id: ApiKeyId) -> Result<ApiKeyRow, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let Some(key) = db::api_keys::get(&mut *tx, scope.tenant_id, id).await? else {
        return Err(ApiError::NotFound("API key"));
    };
    db::api_keys::revoke(&mut tx, scope.tenant_id, id, api_key::REVOCATION_CHANNEL).await?;
    let event = actor
        .audit(AuditAction::ApiKeyRevoked)
        .target(key.prefix.as_str());
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    state.auth.keys.evict(id);
    Ok(key)
}

/// An app a new key can be limited to.
pub struct AppChoice {
    /// Its `AppID`.
    pub appid: String,
    /// Its name.
    pub name: String,
}

/// What the keys page shows: the keys, and the apps a new key can be
/// limited to.
pub async fn page(
    state: &AppState,
    actor: &Actor,
) -> Result<(Vec<ApiKeyRow>, Vec<AppChoice>), ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let (keys, apps) = tokio::try_join!(
        db::api_keys::list(&state.pool, scope.tenant_id),
        db::apps::list(&state.pool, scope.tenant_id, None, None, MAX_APP_CHOICES),
    )?;
    let apps = apps
        .into_iter()
        .map(|a| AppChoice {
            appid: a.appid,
            name: a.name,
        })
        .collect();
    Ok((keys, apps))
}

/// An `AppID` for the usage snippets shown with a new key: the first app
/// the key is limited to, else the organisation's first app, else an
/// example.
pub async fn sample_appid(
    state: &AppState,
    actor: &Actor,
    limited_to: &[String],
) -> Result<String, ApiError> {
    if let Some(appid) = limited_to.first() {
        return Ok(appid.clone());
    }
    let scope = actor.require(Role::Viewer)?;
    let apps = db::apps::list(&state.pool, scope.tenant_id, None, None, 1).await?;
    Ok(apps
        .first()
        .map_or_else(|| "wx0123456789abcdef".to_string(), |a| a.appid.clone()))
}

/// The live keys of the actor's organisation created by people who have
/// left it (owners and admins): what the members page offers to revoke.
pub async fn of_departed(state: &AppState, actor: &Actor) -> Result<Vec<ApiKeyRow>, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    Ok(db::api_keys::of_departed(&state.pool, scope.tenant_id).await?)
}

/// Revoke every live key created by `email`, a person who has left the
/// organisation (after the members page's confirmation step); each is
/// audited, every replica told. Returns the keys revoked (none: nothing to
/// do, or `email` is a member's).
pub async fn revoke_departed(
    state: &AppState,
    actor: &Actor,
    email: &str,
) -> Result<Vec<ApiKeyRow>, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let keys: Vec<ApiKeyRow> = db::api_keys::of_departed(&mut *tx, scope.tenant_id)
        .await?
        .into_iter()
        .filter(|k| k.created_by_email.as_deref() == Some(email))
        .collect();
    for key in &keys {
        db::api_keys::revoke(
            &mut tx,
            scope.tenant_id,
            key.id,
            api_key::REVOCATION_CHANNEL,
        )
        .await?;
        let event = actor
            .audit(AuditAction::ApiKeyRevoked)
            .target(key.prefix.as_str())
            .detail(serde_json::json!({ "reason": "creator_left", "created_by": email }));
        db::audit::record(&mut *tx, event).await?;
    }
    tx.commit().await?;
    for key in &keys {
        state.auth.keys.evict(key.id);
    }
    Ok(keys)
}
