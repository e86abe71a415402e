//! One app: shown (with the secret's last characters, or with its latest
//! refresh attempts), edited and removed.

use serde_json::json;

use super::{Actor, audit_event, find, reload};
use crate::crypto::Binding;
use crate::db;
use crate::db::apps::AppRow;
use crate::db::tokens::LogRow;
use crate::domain::{
    AccountType, AppKind, AuditAction, FieldError, Name, Role, TokenMode, parse_app_secret,
    parse_wecom_secret,
};
use crate::error::ApiError;
use crate::secret::AppSecret;
use crate::state::AppState;

/// An app as [`show`] answers it.
#[derive(Debug)]
pub struct Shown {
    /// The app.
    pub app: AppRow,
    /// The last characters of its secret (signed-in owners and admins only).
    pub secret_hint: Option<String>,
}

/// The app `appid` (viewers and up), with the last 4 characters of its
/// secret for owners and admins signed in: never for an API key, read-only
/// or not (a key is a machine's credential; a leaked one tells nothing of
/// the appsecret).
pub async fn show(state: &AppState, actor: &Actor, appid: &str) -> Result<Shown, ApiError> {
    let (scope, app) = find(state, actor, Role::Viewer, appid).await?;
    let secret_hint = if scope.role.at_least(Role::Admin) && scope.api_key_id.is_none() {
        let ct = db::apps::secret_ciphertext(&state.pool, app.id)
            .await?
            .ok_or(ApiError::NotFound("app"))?;
        state
            .crypto
            .decrypt_text(&ct, &Binding::app_secret(app.tenant_id, app.id))
            .ok()
            .map(|s| AppSecret::from(s).hint())
    } else {
        None
    };
    Ok(Shown { app, secret_hint })
}

/// An app with its latest refresh attempts.
#[derive(Debug)]
pub struct AppWithLog {
    /// The app.
    pub app: AppRow,
    /// Its latest attempts, newest first.
    pub log: Vec<LogRow>,
}

/// The app `appid` with its latest `entries` refresh attempts (viewers and up).
pub async fn show_with_log(
    state: &AppState,
    actor: &Actor,
    appid: &str,
    entries: i64,
) -> Result<AppWithLog, ApiError> {
    let (scope, app) = find(state, actor, Role::Viewer, appid).await?;
    let log = db::tokens::list_log(
        &state.pool,
        scope.tenant_id,
        Some(app.id),
        false,
        None,
        entries,
    )
    .await?;
    Ok(AppWithLog { app, log })
}

/// The app `appid`, when the actor may change it (owners and admins): for
/// a page that refuses a change before looking at what it is.
pub async fn editable(state: &AppState, actor: &Actor, appid: &str) -> Result<AppRow, ApiError> {
    Ok(find(state, actor, Role::Admin, appid).await?.1)
}

/// Changes to an app; `None` leaves a field as it is.
#[derive(Default)]
#[allow(
    clippy::option_option,
    reason = "the secondary secret can be left alone, set or cleared"
)]
pub struct AppChanges<'a> {
    /// New display name.
    pub name: Option<&'a str>,
    /// New AppSecret.
    pub secret: Option<&'a AppSecret>,
    /// New secondary AppSecret; `Some(None)` clears it.
    pub secondary_secret: Option<Option<&'a AppSecret>>,
    /// New token mode.
    pub token_mode: Option<TokenMode>,
    /// New label: mini-program or official account (WeChat apps only).
    pub account_type: Option<AccountType>,
    /// Switch refreshing on or off.
    pub enabled: Option<bool>,
}

/// The changes with every field checked.
#[allow(clippy::option_option, reason = "as in `AppChanges`")]
struct Checked {
    name: Option<Name>,
    secret: Option<AppSecret>,
    secondary: Option<Option<AppSecret>>,
}

impl AppChanges<'_> {
    /// Check every field for an app of `kind` (its secrets have its
    /// platform's form); a validation error names each field that is wrong.
    fn check(&self, kind: AppKind) -> Result<Checked, ApiError> {
        if kind == AppKind::Wecom {
            // WeCom has one token endpoint and no label: these two fields
            // are refused as at registration.
            let misplaced = [
                ("account_type", self.account_type.is_some()),
                ("token_mode", self.token_mode.is_some()),
            ];
            let errors: Vec<FieldError> = misplaced
                .into_iter()
                .filter(|(_, given)| *given)
                .map(|(field, _)| {
                    FieldError::new(field, "not_for_this_kind", "not a field of a WeCom app")
                })
                .collect();
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
        }
        let parse_secret = match kind {
            AppKind::Wechat => parse_app_secret,
            AppKind::Wecom => parse_wecom_secret,
        };
        let checked = (
            self.name.map(|n| Name::parse("name", n)).transpose(),
            self.secret.map(|s| parse_secret("secret", s)).transpose(),
            self.secondary_secret
                .map(|o| o.map(|s| parse_secret("secondary_secret", s)).transpose())
                .transpose(),
        );
        match checked {
            (Ok(name), Ok(secret), Ok(secondary)) => Ok(Checked {
                name,
                secret,
                secondary,
            }),
            (n, s, s2) => Err(ApiError::Validation(
                [n.err(), s.err(), s2.err()].into_iter().flatten().collect(),
            )),
        }
    }

    /// The names of the fields that change, for the audit log.
    fn changed(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("secret", self.secret.is_some()),
            ("secondary_secret", self.secondary_secret.is_some()),
            ("token_mode", self.token_mode.is_some()),
            ("account_type", self.account_type.is_some()),
            ("enabled", self.enabled.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, c)| c.then_some(f))
        .collect()
    }
}

/// Validate and apply `changes` to the app `appid` (owners and admins)
/// with its audit record, all or nothing; the app as it is afterwards.
pub async fn edit(
    state: &AppState,
    actor: &Actor,
    appid: &str,
    changes: &AppChanges<'_>,
) -> Result<AppRow, ApiError> {
    let (scope, app) = find(state, actor, Role::Admin, appid).await?;
    let checked = changes.check(crate::upstream::errcodes::kind_of(&app.appid))?;
    let encrypt = |plain: &AppSecret, binding: Binding| {
        state
            .crypto
            .encrypt(plain.expose_secret().as_bytes(), &binding)
            .map_err(anyhow::Error::from)
    };
    let secret_ct = checked
        .secret
        .as_ref()
        .map(|s| encrypt(s, Binding::app_secret(app.tenant_id, app.id)))
        .transpose()?;
    let secondary_ct = match &checked.secondary {
        Some(Some(s)) => Some(Some(encrypt(
            s,
            Binding::secondary_app_secret(app.tenant_id, app.id),
        )?)),
        Some(None) => Some(None),
        None => None,
    };
    let edit = db::apps::AppEdit {
        name: checked.name.as_ref().map(Name::as_str),
        token_mode: changes.token_mode,
        account_type: changes.account_type,
        secret_ciphertext: secret_ct.as_deref(),
        secondary_secret_ciphertext: secondary_ct.as_ref().map(|o| o.as_deref()),
        enabled: changes.enabled,
    };
    let mut tx = state.pool.begin().await?;
    db::tokens::lock_state(&mut tx, app.id).await?;
    if !db::apps::lock(&mut tx, scope.tenant_id, &app.appid).await? {
        return Err(ApiError::NotFound("app"));
    }
    db::apps::update(&mut tx, app.id, &edit).await?;
    let detail = json!({ "changed": changes.changed(), "enabled": changes.enabled });
    let event = audit_event(
        &scope,
        actor.client,
        AuditAction::AppEdited,
        &app.appid,
        detail,
    );
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    reload(state, &scope, &app.appid).await
}

/// Delete the app `appid` (owners and admins) with its audit record; its
/// token and refresh log go with it. The app as it was.
pub async fn remove(state: &AppState, actor: &Actor, appid: &str) -> Result<AppRow, ApiError> {
    let (scope, app) = find(state, actor, Role::Admin, appid).await?;
    let mut tx = state.pool.begin().await?;
    db::tokens::lock_state(&mut tx, app.id).await?;
    if !db::apps::delete(&mut *tx, scope.tenant_id, &app.appid).await? {
        return Err(ApiError::NotFound("app"));
    }
    let event = audit_event(
        &scope,
        actor.client,
        AuditAction::AppDeleted,
        &app.appid,
        serde_json::Value::Null,
    );
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(app)
}
