//! Registering an app: the fields checked once for every adapter, the app
//! stored in one transaction under the organisation's app limit, and its
//! first token fetched at once when asked (which verifies the credentials).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, audit_event, reload};
use crate::auth::{Principal, TenantScope};
use crate::crypto::Binding;
use crate::db;
use crate::db::apps::AppRow;
use crate::domain::{
    AccountType, AppId, AppUuid, AuditAction, Name, Role, TokenMode, Trigger, parse_app_secret,
    parse_wecom_secret,
};
use crate::error::ApiError;
use crate::refresh::engine::AttemptOutcome;
use crate::secret::AppSecret;
use crate::state::AppState;

/// A registration, checked field by field: the same rules for the JSON API
/// and the registration page.
pub struct NewAppInput {
    appid: AppId,
    secret: AppSecret,
    name: String,
    mode: TokenMode,
    account_type: Option<AccountType>,
    secondary: Option<AppSecret>,
}

impl NewAppInput {
    /// Check every field; a validation error names each field that is wrong.
    pub fn parse(
        appid: &str,
        secret: &AppSecret,
        name: Option<&str>,
        mode: Option<TokenMode>,
        account_type: Option<AccountType>,
        secondary: Option<&AppSecret>,
    ) -> Result<Self, ApiError> {
        let checked = (
            AppId::parse_wechat("appid", appid),
            parse_app_secret("secret", secret),
            name.map(|n| Name::parse("name", n)).transpose(),
            secondary
                .map(|s| parse_app_secret("secondary_secret", s))
                .transpose(),
        );
        match checked {
            (Ok(appid), Ok(secret), Ok(name), Ok(secondary)) => Ok(Self {
                name: name.map_or_else(|| appid.to_string(), |n| n.to_string()),
                appid,
                secret,
                mode: mode.unwrap_or_default(),
                account_type: Some(account_type.unwrap_or_default()),
                secondary,
            }),
            (a, s, n, s2) => Err(ApiError::Validation(
                [a.err(), s.err(), n.err(), s2.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )),
        }
    }
}

impl NewAppInput {
    /// A WeCom app: its id is `{corpid}-{agentid}`, its secret the app's
    /// Secret (one token per secret); every field checked.
    pub fn parse_wecom(
        corpid: &str,
        agentid: &str,
        secret: &AppSecret,
        name: Option<&str>,
        secondary: Option<&AppSecret>,
    ) -> Result<Self, ApiError> {
        let appid = AppId::wecom(corpid, agentid);
        let checked = (
            parse_wecom_secret("secret", secret),
            name.map(|n| Name::parse("name", n)).transpose(),
            secondary
                .map(|s| parse_wecom_secret("secondary_secret", s))
                .transpose(),
        );
        match (appid, checked) {
            (Ok(appid), (Ok(secret), Ok(name), Ok(secondary))) => Ok(Self {
                name: name.map_or_else(|| appid.to_string(), |n| n.to_string()),
                appid,
                secret,
                // WeCom has one token endpoint, which answers the same token
                // while it is valid: timed like a stable token.
                mode: TokenMode::Stable,
                // WeCom apps are neither mini-programs nor official accounts.
                account_type: None,
                secondary,
            }),
            (a, (s, n, s2)) => Err(ApiError::Validation(
                a.err()
                    .unwrap_or_default()
                    .into_iter()
                    .chain([s.err(), n.err(), s2.err()].into_iter().flatten())
                    .collect(),
            )),
        }
    }
}

/// A registered app and, when its credentials were checked, how the first
/// fetch went.
#[derive(Debug)]
pub struct Registered {
    /// The app as stored.
    pub app: AppRow,
    /// The first fetch (`None`: not checked).
    pub verification: Option<AttemptOutcome>,
}

/// Whether the actor may register apps: owners and admins, and keys that
/// are neither read-only nor limited to some apps. [`register`] asks this
/// itself; an adapter that should refuse before checking the fields asks
/// first.
pub fn may_register(actor: &Actor) -> Result<TenantScope, ApiError> {
    let scope = actor.require(Role::Admin)?;
    if let Principal::ApiKey(k) = &actor.principal
        && k.limited
    {
        return Err(ApiError::Forbidden(
            "this API key is limited to some apps and cannot register new ones",
        ));
    }
    Ok(scope)
}

/// Register an app in the actor's organisation, in one transaction:
/// nothing is stored half-way. With `verify`, its first token is fetched
/// at once (the scheduler fetches it otherwise).
pub async fn register(
    state: &AppState,
    actor: &Actor,
    new: NewAppInput,
    verify: bool,
) -> Result<Registered, ApiError> {
    let scope = may_register(actor)?;
    let registered_at = Utc::now();
    let id = AppUuid::new();
    let appid = new.appid.clone();
    // Verifying fetches the first token itself; the scheduler is the
    // fallback should that request die half-way.
    let first_refresh_at = if verify {
        registered_at + chrono::Duration::seconds(30)
    } else {
        registered_at
    };
    store(state, actor, &scope, id, new, first_refresh_at).await?;
    let verification = if verify {
        let outcome = state
            .engine
            .refresh_now(id, Trigger::Registration, registered_at)
            .await
            .map_err(anyhow::Error::from)?;
        Some(outcome)
    } else {
        None
    };
    let app = reload(state, &scope, appid.as_str()).await?;
    Ok(Registered { app, verification })
}

/// Store the app, its token row and the audit record in one transaction.
async fn store(
    state: &AppState,
    actor: &Actor,
    scope: &TenantScope,
    id: AppUuid,
    new: NewAppInput,
    first_refresh_at: DateTime<Utc>,
) -> Result<(), ApiError> {
    let encrypt = |secret: &AppSecret, binding: Binding| {
        state
            .crypto
            .encrypt(secret.expose_secret().as_bytes(), &binding)
            .map_err(anyhow::Error::from)
    };
    let secret_ct = encrypt(&new.secret, Binding::app_secret(scope.tenant_id, id))?;
    let secondary_ct = new
        .secondary
        .as_ref()
        .map(|s| encrypt(s, Binding::secondary_app_secret(scope.tenant_id, id)))
        .transpose()?;
    let mut tx = state.pool.begin().await?;
    // Room for one more app under the organisation's limit (its row stays
    // locked until this transaction ends: concurrent registrations take turns).
    db::app_limits::claim_app_slot(&mut tx, scope.tenant_id, state.settings.max_apps_per_tenant)
        .await??;
    let inserted = db::apps::insert(
        &mut tx,
        &db::apps::NewApp {
            id,
            tenant_id: scope.tenant_id,
            appid: new.appid.as_str(),
            name: &new.name,
            token_mode: new.mode,
            account_type: new.account_type,
            secret_ciphertext: &secret_ct,
            secondary_secret_ciphertext: secondary_ct.as_deref(),
            first_refresh_at,
        },
    )
    .await;
    match inserted {
        Err(e) if db::apps::is_duplicate_appid(&e) => {
            return Err(ApiError::Conflict {
                code: "app_exists",
                detail: format!(
                    "{} is registered in this organisation already; edit it instead",
                    new.appid
                ),
            });
        }
        other => other?,
    }
    let detail =
        json!({ "name": new.name, "token_mode": new.mode, "account_type": new.account_type });
    let event = audit_event(
        scope,
        actor.client,
        AuditAction::AppRegistered,
        new.appid.as_str(),
        detail,
    );
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// How many apps the actor's organisation may register (the limit an
/// operator set for it, or the service's default).
pub async fn app_limit(state: &AppState, actor: &Actor) -> Result<i64, ApiError> {
    let scope = actor.require(Role::Viewer)?;
    Ok(db::app_limits::effective(
        &state.pool,
        scope.tenant_id,
        state.settings.max_apps_per_tenant,
    )
    .await?)
}
