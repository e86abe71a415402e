//! Bodies of two-factor sign-in: a new enrolment, recovery codes, the
//! organisation's requirement.

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::two_factor::Enrolment;

/// A new enrolment: what an authenticator app needs (shown once).
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The secret, base32, to type into an authenticator app by hand.
    pub secret: String,
    /// The `otpauth://totp/…` URI an authenticator app scans as a QR code.
    pub otpauth_uri: String,
}

impl From<Enrolment> for TotpEnrolment {
    fn from(e: Enrolment) -> Self {
        Self {
            secret: e.secret.expose_secret().to_string(),
            otpauth_uri: e.otpauth_uri.expose_secret().to_string(),
        }
    }
}

/// Ten one-use recovery codes, shown this once (only their hashes are kept).
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a code (`xxxx-xxxx-xxxx-xxxx`).
    pub recovery_codes: Vec<String>,
}

impl From<Vec<SecretString>> for RecoveryCodes {
    fn from(codes: Vec<SecretString>) -> Self {
        Self {
            recovery_codes: codes
                .iter()
                .map(|c| c.expose_secret().to_string())
                .collect(),
        }
    }
}

/// The organisation's two-factor requirement.
#[derive(Serialize, ToSchema)]
pub struct OrganizationPolicy {
    /// Every member must sign in with two factors.
    pub require_totp: bool,
}
