//! Login CSRF: the forms posted before a session exists (sign-in, the
//! second sign-in step, sign-up, forgot and reset password, verifying an
//! address, joining through an invite) carry a pre-session token.
//!
//! Every page rendered for a visitor sets a random value in the
//! `tv_presession` cookie (`HttpOnly`, `SameSite=Lax`) when it has none,
//! and its forms carry `login_token`, an HMAC of that value under a key
//! derived from the master key. A post is taken only when its
//! `login_token` is the HMAC of the cookie it came with: another site can
//! neither read the visitor's cookie nor compute the HMAC, so it cannot
//! sign a visitor in to an account of its choosing, and a token from
//! another browser (a "foreign" token) does not match this browser's
//! cookie. This does not rely on `Origin` or `Sec-Fetch-Site`, which are
//! absent from some requests (they stay an extra check: `super::same_origin`).

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};

use crate::crypto::KeyRing;
use crate::domain::credential;

/// Name of the pre-session cookie.
pub const COOKIE: &str = "tv_presession";
/// Bytes of randomness in the cookie's value.
const VALUE_BYTES: usize = 32;
/// Hours the cookie lives (a form left open longer is sent again).
const COOKIE_HOURS: i64 = 12;
/// What the HMAC covers besides the value (a purpose of its own).
const PURPOSE: &str = "tokenvault/presession/v1";

/// The visitor's pre-session: the cookie's value and the tokens a form may carry.
pub struct PreSession {
    value: String,
    /// Made by this request: the browser has no such cookie yet.
    fresh: bool,
    secure: bool,
    /// The HMAC under each key of the ring, the active key's first.
    tokens: Vec<String>,
}

impl PreSession {
    /// The pre-session of `req` (a new one when it has no well-formed cookie).
    pub fn of(req: &HttpRequest, crypto: &KeyRing, secure: bool) -> Self {
        let existing = req
            .cookie(COOKIE)
            .map(|c| c.value().to_string())
            .filter(|v| well_formed(v));
        let (value, fresh) = match existing {
            Some(v) => (v, false),
            None => (credential::random_token(VALUE_BYTES), true),
        };
        let tokens = crypto.tags(PURPOSE, value.as_bytes());
        Self {
            value,
            fresh,
            secure,
            tokens,
        }
    }

    /// The token this visitor's forms carry in `login_token`.
    pub fn token(&self) -> &str {
        self.tokens.first().map_or("", String::as_str)
    }

    /// The cookie to set, when the browser has none yet.
    pub fn cookie(&self) -> Option<Cookie<'static>> {
        self.fresh.then(|| {
            Cookie::build(COOKIE, self.value.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(self.secure)
                .max_age(CookieDuration::hours(COOKIE_HOURS))
                .finish()
        })
    }

    /// Whether `sent` (a form's `login_token`) belongs to this browser's
    /// cookie: never when the post came without the cookie.
    pub fn accepts(&self, sent: &str) -> bool {
        !self.fresh
            && self
                .tokens
                .iter()
                .any(|t| credential::constant_time_eq(t.as_bytes(), sent.as_bytes()))
    }
}

/// A value this module could have made (anything else is replaced).
fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ring(id: &str) -> KeyRing {
        let entry = crate::crypto::generate_entry(id).unwrap();
        KeyRing::parse(&entry).unwrap()
    }

    #[test]
    fn a_token_is_accepted_only_with_its_own_cookie() {
        let crypto = ring("k1");
        let first = PreSession::of(&TestRequest::default().to_http_request(), &crypto, false);
        assert!(
            !first.accepts(first.token()),
            "no cookie came with the post"
        );
        let cookie = first.cookie().expect("a new cookie");
        let back = TestRequest::default().cookie(cookie).to_http_request();
        let same = PreSession::of(&back, &crypto, false);
        assert!(same.cookie().is_none(), "the cookie is kept");
        assert!(same.accepts(first.token()));
        assert!(!same.accepts(""));
        assert!(!same.accepts("forged"));
        let other = PreSession::of(&TestRequest::default().to_http_request(), &crypto, false);
        let other_back = TestRequest::default()
            .cookie(other.cookie().unwrap())
            .to_http_request();
        assert!(
            !PreSession::of(&other_back, &crypto, false).accepts(first.token()),
            "a foreign token"
        );
        let under_other_key = PreSession::of(&back, &ring("k2"), false);
        assert!(!under_other_key.accepts(first.token()));
    }

    #[test]
    fn malformed_cookies_are_replaced() {
        let crypto = ring("k1");
        let req = TestRequest::default()
            .cookie(Cookie::new(COOKIE, "short"))
            .to_http_request();
        assert!(PreSession::of(&req, &crypto, true).cookie().is_some());
    }
}
