//! Every request body and form that carries a password, an appsecret, a
//! signing secret, an access token or a one-time token holds it in a
//! masked type from the moment serde reads it: `Debug` of the whole struct
//! shows none of the values sent.

use std::fmt::Debug;

use serde::de::DeserializeOwned;

use crate::api::account_security::{PasswordChange, ResetConfirm, VerificationConfirm};
use crate::api::accounts::{LoginRequest, SignupRequest};
use crate::api::alerts::CreateChannelRequest;
use crate::api::apps::{CreateAppRequest, EditAppRequest, InvalidateRequest};
use crate::api::members::AcceptInviteRequest;
use crate::api::two_factor::{TotpCode, TotpDisable};
use crate::ui::account::PasswordForm;
use crate::ui::accounts::{LoginForm, SignupForm};
use crate::ui::apps::NewAppForm;
use crate::ui::join::JoinForm;
use crate::ui::login_totp::CodeForm;
use crate::ui::pages::SecretForm;
use crate::ui::recovery::{RecoveryForm, TokenQuery};
use crate::ui::two_factor::TwoFactorForm;

/// Values no `Debug` output may contain (each long and unlike any field name).
const SECRETS: [&str; 4] = [
    "pw-0123456789-zebra",
    "secret-abcdef0123456789",
    "token-9876543210-quokka",
    "other-secret-fedcba98765",
];

/// Read `T` from `json`, and check its `Debug` shows none of [`SECRETS`]
/// but does show the mask (so the secret field was read, not skipped).
fn masked<T: DeserializeOwned + Debug>(json: &str) {
    let value: T = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{} from {json}: {e}", std::any::type_name::<T>()));
    let shown = format!("{value:?}");
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains(crate::secret::MASK), "{shown}");
}

#[test]
fn request_bodies_hold_their_secrets_masked() {
    let [pw, secret, token, other] = SECRETS;
    masked::<SignupRequest>(&format!(
        r#"{{"organization":"o","email":"a@b.co","password":"{pw}"}}"#
    ));
    masked::<LoginRequest>(&format!(r#"{{"email":"a@b.co","password":"{pw}"}}"#));
    masked::<LoginRequest>(&format!(
        r#"{{"email":"a@b.co","password":"{pw}","totp":"{token}"}}"#
    ));
    masked::<TotpCode>(&format!(r#"{{"code":"{token}"}}"#));
    masked::<TotpDisable>(&format!(r#"{{"password":"{pw}","code":"{token}"}}"#));
    masked::<ResetConfirm>(&format!(r#"{{"token":"{token}","password":"{pw}"}}"#));
    masked::<PasswordChange>(&format!(
        r#"{{"current_password":"{pw}","new_password":"{other}"}}"#
    ));
    masked::<VerificationConfirm>(&format!(r#"{{"token":"{token}"}}"#));
    masked::<AcceptInviteRequest>(&format!(
        r#"{{"token":"{token}","email":"a@b.co","password":"{pw}"}}"#
    ));
    masked::<CreateAppRequest>(&format!(
        r#"{{"appid":"wx0123456789abcdef","secret":"{secret}"}}"#
    ));
    masked::<EditAppRequest>(&format!(r#"{{"secret":"{secret}"}}"#));
    masked::<InvalidateRequest>(&format!(r#"{{"access_token":"{token}"}}"#));
    masked::<CreateChannelRequest>(&format!(
        r#"{{"kind":"webhook","name":"n","url":"https://example.com/h","secret":"{secret}"}}"#
    ));
}

#[test]
fn posted_forms_hold_their_secrets_masked() {
    let [pw, secret, token, other] = SECRETS;
    masked::<SignupForm>(&format!(
        r#"{{"organization":"o","email":"a@b.co","password":"{pw}"}}"#
    ));
    masked::<LoginForm>(&format!(r#"{{"email":"a@b.co","password":"{pw}"}}"#));
    masked::<JoinForm>(&format!(r#"{{"email":"a@b.co","password":"{pw}"}}"#));
    masked::<NewAppForm>(&format!(
        r#"{{"csrf_token":"c","appid":"wx0123456789abcdef","secret":"{secret}"}}"#
    ));
    masked::<SecretForm>(&format!(
        r#"{{"csrf_token":"c","secret":"{secret}","secondary_secret":"{other}"}}"#
    ));
    masked::<RecoveryForm>(&format!(
        r#"{{"email":"a@b.co","token":"{token}","password":"{pw}"}}"#
    ));
    masked::<TokenQuery>(&format!(r#"{{"token":"{token}"}}"#));
    masked::<CodeForm>(&format!(r#"{{"code":"{token}","login_token":"l"}}"#));
    masked::<TwoFactorForm>(&format!(
        r#"{{"csrf_token":"c","code":"{token}","password":"{pw}"}}"#
    ));
    masked::<PasswordForm>(&format!(
        r#"{{"csrf_token":"c","current_password":"{pw}","new_password":"{other}"}}"#
    ));
}

#[test]
fn a_visitor_shows_no_session_cookie() {
    let visitor = crate::service::Visitor {
        session_cookie: Some(SECRETS[2].to_string()),
        ..Default::default()
    };
    let shown = format!("{visitor:?}");
    assert!(!shown.contains(SECRETS[2]), "{shown}");
    assert!(shown.contains(crate::secret::MASK), "{shown}");
}
