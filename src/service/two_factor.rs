//! Two-factor sign-in with TOTP (RFC 6238: HMAC-SHA1, six digits, 30-second
//! steps, one step of skew either way), with `totp-rs`.
//!
//! Enrolling makes a 160-bit secret, kept encrypted under the key ring
//! (`Binding::totp_secret`); a code confirms it and gives ten one-use
//! recovery codes (80 random bits each, stored as SHA-256 hashes, shown
//! once). A code is taken once per time step (`db::totp::take_step`, under
//! the row's update), so a code seen by someone else cannot be replayed.
//! Every code typed goes through the sign-in throttle, like a password,
//! and every refused one is audited. Operators, and the members of an
//! organisation that requires it, must enrol: until they do, their
//! sessions can do nothing else (`totp_enrolment_only`).

use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

use super::{Actor, Visitor};
use crate::crypto::Binding;
use crate::db;
use crate::db::audit::AuditEvent;
use crate::db::totp::TotpRow;
use crate::domain::{AuditAction, FieldError, Role, TenantId, UserId, credential};
use crate::error::ApiError;
use crate::state::AppState;

/// Recovery codes given at confirmation (and when regenerated).
pub const RECOVERY_CODES: usize = 10;
/// The issuer an authenticator app shows.
const ISSUER: &str = "tokenvault";
/// Bytes of a secret (160 bits, as RFC 4226 recommends).
const SECRET_BYTES: usize = 20;
/// Bytes of a recovery code (80 bits: 16 base32 characters).
const RECOVERY_BYTES: usize = 10;

/// A new enrolment: what an authenticator app needs.
pub struct Enrolment {
    /// The secret in base32, to type in by hand.
    pub secret: SecretString,
    /// The `otpauth://totp/…` URI (the QR code's content).
    pub otpauth_uri: SecretString,
}

/// Where a person stands with two-factor sign-in.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// A code is asked for at sign-in.
    pub enabled: bool,
    /// An enrolment waits for its confirming code.
    pub enrolling: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// They must have it (an operator, or their organisation requires it).
    pub required: bool,
    /// Whether their organisation requires it (`None` for operators).
    pub organisation_requires: Option<bool>,
}

/// What proved the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A code of the authenticator app.
    Code,
    /// A recovery code (now spent).
    RecoveryCode,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("two-factor: {e}"))
}

/// The TOTP of `secret` for account `email`.
fn totp(secret: &[u8], email: &str) -> Result<Totp, ApiError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(email.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(internal)
}

fn now_seconds() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// A code as typed: digits and letters only, lower-case.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The stored form of a recovery code.
fn recovery_hash(normalised: &str) -> Vec<u8> {
    credential::hash(&format!("tokenvault/recovery/v1\0{normalised}")).to_vec()
}

/// Ten new recovery codes (`xxxx-xxxx-xxxx-xxxx`, base32) and their hashes.
fn new_recovery_codes() -> (Vec<SecretString>, Vec<Vec<u8>>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = Zeroizing::new([0u8; RECOVERY_BYTES]);
            rand::rngs::OsRng.fill_bytes(bytes.as_mut());
            let text = Zeroizing::new(
                totp_rs::Secret::from(bytes.to_vec())
                    .to_base32()
                    .to_ascii_lowercase(),
            );
            let hash = recovery_hash(&text);
            let shown = text
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            (SecretString::from(shown), hash)
        })
        .unzip()
}

/// The sign-in throttle, for codes as for passwords.
fn throttle(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    email: &str,
) -> Result<(), ApiError> {
    state
        .auth
        .throttle
        .check(client, Some(email))
        .map_err(ApiError::TooManyRequests)
}

/// Whether `role` in `tenant_id` must sign in with two factors.
pub async fn required_for(
    state: &AppState,
    role: Role,
    tenant_id: Option<TenantId>,
) -> Result<bool, ApiError> {
    if role == Role::Operator {
        return Ok(true);
    }
    match tenant_id {
        Some(t) => Ok(db::totp::tenant_requires(&state.pool, t).await?),
        None => Ok(false),
    }
}

/// Whether a new session of this person may only enrol: they must have
/// two-factor sign-in (operators, members of an organisation that requires
/// it) and have not turned it on.
pub async fn must_enrol(
    state: &AppState,
    user_id: UserId,
    role: Role,
    tenant_id: Option<TenantId>,
) -> Result<bool, ApiError> {
    Ok(required_for(state, role, tenant_id).await? && enabled(state, user_id).await?.is_none())
}

/// The confirmed enrolment of `user_id`, if two-factor sign-in is on.
pub async fn enabled(state: &AppState, user_id: UserId) -> Result<Option<TotpRow>, ApiError> {
    Ok(db::totp::get(&state.pool, user_id)
        .await?
        .filter(|r| r.confirmed_at.is_some()))
}

/// Check `code` against `row`: a code of the authenticator for a time step
/// not used yet, or (when `recovery` allows) an unused recovery code,
/// which is spent.
async fn check(
    state: &AppState,
    user_id: UserId,
    email: &str,
    row: &TotpRow,
    code: &str,
    recovery: bool,
) -> Result<Option<Proof>, ApiError> {
    let code = normalise(code);
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let secret = state
            .crypto
            .decrypt(&row.secret_ciphertext, &Binding::totp_secret(user_id))
            .map_err(internal)?;
        let Some(step) = totp(&secret, email)?.check(&code, now_seconds()) else {
            return Ok(None);
        };
        let step = i64::try_from(step).map_err(internal)?;
        let fresh = db::totp::take_step(&state.pool, user_id, step).await?;
        return Ok(fresh.then_some(Proof::Code));
    }
    if recovery && code.len() == 16 {
        let spent =
            db::totp::use_recovery_code(&state.pool, user_id, &recovery_hash(&code)).await?;
        return Ok(spent.then_some(Proof::RecoveryCode));
    }
    Ok(None)
}

/// Check the second factor of a sign-in whose password was right against
/// the person's enrolment `row` (from [`enabled`]): throttled like a
/// password; a refusal and a recovery code used are audited (`audit`
/// builds the entry: the organisation, the person, the address).
pub async fn verify(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    (user_id, email): (UserId, &str),
    row: &TotpRow,
    code: &str,
    audit: impl Fn(AuditAction) -> AuditEvent,
) -> Result<Proof, ApiError> {
    throttle(state, client, email)?;
    state.auth.throttle.slow_down(email).await;
    let Some(proof) = check(state, user_id, email, row, code, true).await? else {
        db::audit::record(&state.pool, audit(AuditAction::TotpFailed).target(email)).await?;
        return Err(ApiError::Unauthenticated(
            "wrong two-factor code: it is wrong, was used already, or its time has passed",
        ));
    };
    if proof == Proof::RecoveryCode {
        let left = db::totp::recovery_codes_left(&state.pool, user_id).await?;
        let event = audit(AuditAction::TotpRecoveryCodeUsed)
            .target(email)
            .detail(serde_json::json!({ "recovery_codes_left": left }));
        db::audit::record(&state.pool, event).await?;
    }
    Ok(proof)
}

/// A sign-in's audit entry builder for `visitor` signing in as this person.
pub fn visitor_audit(
    visitor: &Visitor,
    tenant_id: Option<TenantId>,
    user_id: UserId,
) -> impl Fn(AuditAction) -> AuditEvent + '_ {
    move |action| AuditEvent {
        tenant_id,
        actor_user_id: Some(user_id),
        ..visitor.audit(action)
    }
}

/// A signed-in person's code for a change to their two-factor sign-in: a
/// wrong one is audited and refused with a field error.
async fn require_code(
    state: &AppState,
    actor: &Actor,
    row: &TotpRow,
    code: &str,
    recovery: bool,
) -> Result<Proof, ApiError> {
    let me = actor.require_session()?;
    if let Some(proof) = check(state, me.user_id, &me.email, row, code, recovery).await? {
        return Ok(proof);
    }
    let event = actor
        .audit(AuditAction::TotpFailed)
        .target(me.email.as_str());
    db::audit::record(&state.pool, event).await?;
    Err(wrong_code())
}

fn wrong_code() -> ApiError {
    ApiError::field(FieldError::new(
        "code",
        "wrong_code",
        "this code is wrong, was used already, or its time has passed: type the current code of your authenticator app",
    ))
}

/// Start enrolling the signed-in person: a new secret (replacing an
/// unconfirmed one). Refused while two-factor sign-in is on.
pub async fn start(state: &AppState, actor: &Actor) -> Result<Enrolment, ApiError> {
    let me = actor.require_session()?;
    let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let totp = totp(&secret, &me.email)?;
    let ciphertext = state
        .crypto
        .encrypt(&secret, &Binding::totp_secret(me.user_id))
        .map_err(internal)?;
    if !db::totp::start(&state.pool, me.user_id, &ciphertext).await? {
        return Err(ApiError::Conflict {
            code: "totp_enabled",
            detail:
                "two-factor sign-in is on already: turn it off first to enrol another authenticator"
                    .into(),
        });
    }
    Ok(Enrolment {
        secret: SecretString::from(totp.secret().to_base32()),
        otpauth_uri: SecretString::from(totp.to_url().map_err(internal)?),
    })
}

/// The enrolment of the signed-in person that waits for its confirming
/// code, shown again (to them only) until confirmed.
pub async fn pending(state: &AppState, actor: &Actor) -> Result<Option<Enrolment>, ApiError> {
    let me = actor.require_session()?;
    let Some(row) = db::totp::get(&state.pool, me.user_id)
        .await?
        .filter(|r| r.confirmed_at.is_none())
    else {
        return Ok(None);
    };
    let secret = state
        .crypto
        .decrypt(&row.secret_ciphertext, &Binding::totp_secret(me.user_id))
        .map_err(internal)?;
    let totp = totp(&secret, &me.email)?;
    Ok(Some(Enrolment {
        secret: SecretString::from(totp.secret().to_base32()),
        otpauth_uri: SecretString::from(totp.to_url().map_err(internal)?),
    }))
}

/// Confirm the enrolment with a code of the authenticator: two-factor
/// sign-in is on, and the ten recovery codes are returned (only now).
pub async fn confirm(
    state: &AppState,
    actor: &Actor,
    code: &str,
) -> Result<Vec<SecretString>, ApiError> {
    let me = actor.require_session()?;
    throttle(state, actor.client, &me.email)?;
    let row = db::totp::get(&state.pool, me.user_id)
        .await?
        .filter(|r| r.confirmed_at.is_none())
        .ok_or_else(|| ApiError::Conflict {
            code: "totp_not_enrolling",
            detail: "no enrolment is waiting: start one with POST /api/v1/account/totp".into(),
        })?;
    require_code(state, actor, &row, code, false).await?;
    let (codes, hashes) = new_recovery_codes();
    let mut tx = state.pool.begin().await?;
    if !db::totp::confirm(&mut *tx, me.user_id, &row.secret_ciphertext).await? {
        return Err(ApiError::Conflict {
            code: "totp_not_enrolling",
            detail: "this enrolment was confirmed or replaced meanwhile: start again with POST /api/v1/account/totp".into(),
        });
    }
    db::totp::replace_recovery_codes(&mut tx, me.user_id, &hashes).await?;
    db::totp::release_sessions(&mut *tx, me.user_id).await?;
    let event = actor
        .audit(AuditAction::TotpEnabled)
        .target(me.email.as_str());
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(codes)
}

/// A confirmed enrolment of the signed-in person, or a conflict.
async fn enabled_or_conflict(state: &AppState, user_id: UserId) -> Result<TotpRow, ApiError> {
    enabled(state, user_id)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "totp_not_enabled",
            detail: "two-factor sign-in is not on".into(),
        })
}

/// Turn two-factor sign-in off, with the password and a code (or a
/// recovery code). Refused for those who must have it.
pub async fn disable(
    state: &AppState,
    actor: &Actor,
    password: SecretString,
    code: &str,
) -> Result<(), ApiError> {
    let me = actor.require_session()?;
    throttle(state, actor.client, &me.email)?;
    if required_for(state, me.role, me.tenant_id).await? {
        return Err(ApiError::Conflict {
            code: "totp_required",
            detail: "two-factor sign-in is required for this account: it cannot be turned off"
                .into(),
        });
    }
    let row = enabled_or_conflict(state, me.user_id).await?;
    let stored = db::accounts::credentials(&state.pool, me.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated("the account no longer exists"))?;
    let right = state
        .auth
        .passwords
        .verify(password, Some(stored.password_hash))
        .await?;
    if !right {
        return Err(ApiError::field(FieldError::new(
            "password",
            "wrong_password",
            "this is not your password",
        )));
    }
    require_code(state, actor, &row, code, true).await?;
    let mut tx = state.pool.begin().await?;
    db::totp::remove(&mut tx, me.user_id).await?;
    let event = actor
        .audit(AuditAction::TotpDisabled)
        .target(me.email.as_str());
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Replace the recovery codes with ten new ones, given a current code.
pub async fn regenerate(
    state: &AppState,
    actor: &Actor,
    code: &str,
) -> Result<Vec<SecretString>, ApiError> {
    let me = actor.require_session()?;
    throttle(state, actor.client, &me.email)?;
    let row = enabled_or_conflict(state, me.user_id).await?;
    require_code(state, actor, &row, code, false).await?;
    let (codes, hashes) = new_recovery_codes();
    let mut tx = state.pool.begin().await?;
    db::totp::replace_recovery_codes(&mut tx, me.user_id, &hashes).await?;
    let event = actor
        .audit(AuditAction::TotpRecoveryCodesRegenerated)
        .target(me.email.as_str());
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Where the signed-in person stands with two-factor sign-in.
pub async fn status(state: &AppState, actor: &Actor) -> Result<Status, ApiError> {
    let me = actor.require_session()?;
    let row = db::totp::get(&state.pool, me.user_id).await?;
    let enabled = row.as_ref().is_some_and(|r| r.confirmed_at.is_some());
    let organisation_requires = match me.tenant_id {
        Some(t) => Some(db::totp::tenant_requires(&state.pool, t).await?),
        None => None,
    };
    Ok(Status {
        enabled,
        enrolling: row.is_some() && !enabled,
        recovery_codes_left: if enabled {
            db::totp::recovery_codes_left(&state.pool, me.user_id).await?
        } else {
            0
        },
        required: me.role == Role::Operator || organisation_requires == Some(true),
        organisation_requires,
    })
}

/// An owner requires two-factor sign-in of every member (or stops
/// requiring it); members without it enrol at their next sign-in.
pub async fn set_policy(state: &AppState, actor: &Actor, required: bool) -> Result<bool, ApiError> {
    let scope = actor.require_person(Role::Owner)?;
    let mut tx = state.pool.begin().await?;
    if db::totp::set_tenant_requires(&mut *tx, scope.tenant_id, required).await? {
        let event = actor
            .audit(AuditAction::TenantTotpPolicyChanged)
            .detail(serde_json::json!({ "require_totp": required }));
        db::audit::record(&mut *tx, event).await?;
    }
    tx.commit().await?;
    Ok(required)
}

/// The QR code of `uri` as an SVG element (drawn here: no outside service).
pub fn qr_svg(uri: &SecretString) -> Result<String, ApiError> {
    let code = qrcode::QrCode::new(uri.expose_secret().as_bytes()).map_err(internal)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The renderer starts with an XML declaration, out of place inside HTML.
    Ok(svg
        .find("<svg")
        .map_or(svg.clone(), |at| svg[at..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_typed_back_the_same() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for (code, hash) in codes.iter().zip(&hashes) {
            let shown = code.expose_secret();
            assert_eq!(shown.len(), 19, "{shown}");
            assert_eq!(&recovery_hash(&normalise(shown)), hash);
            assert_eq!(
                &recovery_hash(&normalise(&shown.to_uppercase().replace('-', " "))),
                hash
            );
        }
        assert!(!format!("{:?}", codes[0]).contains(codes[0].expose_secret()));
    }

    #[test]
    fn codes_follow_rfc_6238() {
        // RFC 6238, appendix B: the SHA-1 seed, T = 59 s → 94287082 (8 digits; 6: 287082).
        let t = totp(b"12345678901234567890", "a@b.co").unwrap();
        assert_eq!(t.check("287082", 59), Some(1));
        assert_eq!(t.check("287082", 59 + 30 * 3), None, "too late");
        assert!(
            t.to_url()
                .unwrap()
                .starts_with("otpauth://totp/tokenvault:a%40b.co?")
        );
    }

    #[test]
    fn the_qr_code_is_an_svg_element() {
        let svg = qr_svg(&SecretString::from("otpauth://totp/x?secret=AAAA")).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
    }
}
