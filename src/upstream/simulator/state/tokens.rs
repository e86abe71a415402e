//! The token endpoints' work on the state: WeChat's checks in its order,
//! classic and stable tokens with their quotas, and the check of a token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rand::Rng as _;

use super::{App, Inner, SimState, current_minute};
use crate::upstream::simulator::{SimConfig, errcode};

/// Tokens remembered per app (for 40001 answers about superseded ones);
/// older ones are forgotten and then answer 40014 like any unknown string.
const TOKEN_HISTORY_PER_APP: usize = 1024;

/// Characters of a WeChat-shaped token body.
const TOKEN_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";

/// The credentials of a token request, as sent (absent fields are `None`).
#[derive(Debug, Default)]
pub(in crate::upstream::simulator) struct Credentials {
    pub(in crate::upstream::simulator) grant_type: Option<String>,
    pub(in crate::upstream::simulator) appid: Option<String>,
    pub(in crate::upstream::simulator) secret: Option<String>,
}

/// A token answer: the token and its remaining lifetime in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::upstream::simulator) struct Issued {
    pub(in crate::upstream::simulator) access_token: String,
    pub(in crate::upstream::simulator) expires_in: u64,
}

/// A WeChat error answer: the errcode and, for 40164, the caller's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::upstream::simulator) struct WxError {
    pub(in crate::upstream::simulator) code: i32,
    pub(in crate::upstream::simulator) ip: Option<IpAddr>,
}

impl From<i32> for WxError {
    fn from(code: i32) -> Self {
        Self { code, ip: None }
    }
}

/// What the token-checking endpoint concludes about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::upstream::simulator) enum TokenCheck {
    /// The token is valid.
    Valid,
    /// The token is not valid: answer this errcode.
    Invalid(i32),
}

/// A token issued, with when it dies.
#[derive(Debug)]
pub(super) struct TokenRecord {
    pub(super) appid: String,
    pub(super) expires_at: Instant,
    /// When a newer classic token or a force refresh killed this one early.
    dies_at: Option<Instant>,
}

impl TokenRecord {
    fn kill_at(&mut self, at: Instant) {
        self.dies_at = Some(self.dies_at.map_or(at, |d| d.min(at)));
    }

    pub(super) fn check(&self, now: Instant) -> TokenCheck {
        // A token killed before its natural expiry answers 40001 ("not
        // latest"); one that simply ran out answers 42001.
        match self.dies_at {
            Some(d) if d < self.expires_at && now >= d => {
                TokenCheck::Invalid(errcode::INVALID_CREDENTIAL)
            }
            _ if now >= self.expires_at => TokenCheck::Invalid(errcode::TOKEN_EXPIRED),
            _ => TokenCheck::Valid,
        }
    }
}

impl SimState {
    /// `GET /cgi-bin/token`: a new token on every call; the previous one dies
    /// `classic_overlap` later.
    pub(in crate::upstream::simulator) fn classic_token(
        &self,
        creds: &Credentials,
        ip: IpAddr,
    ) -> Result<Issued, WxError> {
        let cfg = &self.config;
        let mut inner = self.lock();
        let Inner { apps, tokens } = &mut *inner;
        let (appid, app) = authorize(apps, creds, ip)?;
        let used = app.classic.daily.today();
        if *used >= cfg.daily_quota {
            return Err(errcode::DAILY_QUOTA.into());
        }
        *used += 1;
        let now = Instant::now();
        if let Some(previous) = app.classic.current.take()
            && let Some(record) = tokens.get_mut(&previous)
        {
            record.kill_at(now + cfg.classic_overlap);
        }
        let issued = issue(cfg, tokens, &appid, app, now);
        app.classic.current = Some(issued.access_token.clone());
        Ok(issued)
    }

    /// `POST /cgi-bin/stable_token`: the same token while it is valid, a new
    /// one inside the renew window, and force refreshes within their limits.
    pub(in crate::upstream::simulator) fn stable_token(
        &self,
        creds: &Credentials,
        force: bool,
        ip: IpAddr,
    ) -> Result<Issued, WxError> {
        let cfg = &self.config;
        let mut inner = self.lock();
        let Inner { apps, tokens } = &mut *inner;
        let (appid, app) = authorize(apps, creds, ip)?;
        let minute = current_minute();
        if app.stable.minute.0 != minute {
            app.stable.minute = (minute, 0);
        }
        if app.stable.minute.1 >= cfg.stable_minute_quota {
            return Err(errcode::MINUTE_QUOTA.into());
        }
        let used = app.stable.daily.today();
        if *used >= cfg.stable_daily_quota {
            return Err(errcode::DAILY_QUOTA.into());
        }
        *used += 1;
        app.stable.minute.1 += 1;

        let now = Instant::now();
        let current = app
            .stable
            .current
            .as_ref()
            .and_then(|t| tokens.get(t).map(|r| (t, r)))
            .filter(|(_, r)| r.check(now) == TokenCheck::Valid)
            .map(|(t, r)| (t.clone(), r.expires_at.saturating_duration_since(now)));

        if force {
            let forced = app.stable.force_daily.today();
            if *forced >= cfg.force_refresh_daily {
                return Err(errcode::DAILY_QUOTA.into());
            }
            let too_soon = app
                .stable
                .last_force
                .is_some_and(|t| now.duration_since(t) < cfg.force_refresh_min_interval);
            if !too_soon {
                *forced += 1;
                app.stable.last_force = Some(now);
                if let Some((token, _)) = &current
                    && let Some(record) = tokens.get_mut(token)
                {
                    record.kill_at(now);
                }
                let issued = issue(cfg, tokens, &appid, app, now);
                app.stable.current = Some(issued.access_token.clone());
                return Ok(issued);
            }
            // Too soon after the last force refresh: WeChat does not refresh
            // and answers as in normal mode.
        }
        if let Some((token, remaining)) = current
            && remaining > cfg.stable_renew_window
        {
            return Ok(Issued {
                access_token: token,
                expires_in: remaining.as_secs(),
            });
        }
        // Inside the renew window (the old token lives on until its own
        // expiry) or no valid token at all.
        let issued = issue(cfg, tokens, &appid, app, now);
        app.stable.current = Some(issued.access_token.clone());
        Ok(issued)
    }

    /// `GET /cgi-bin/getcallbackip`: is this token usable now?
    pub(in crate::upstream::simulator) fn check_token(&self, token: &str) -> TokenCheck {
        let inner = self.lock();
        let Some(record) = inner.tokens.get(token) else {
            return TokenCheck::Invalid(errcode::INVALID_TOKEN);
        };
        if let Some(app) = inner.apps.get(&record.appid) {
            app.counters.check_calls.fetch_add(1, Ordering::SeqCst);
        }
        record.check(Instant::now())
    }
}

/// WeChat's checks, in its order: grant type, presence, appid, secret, IP.
fn authorize<'a>(
    apps: &'a mut HashMap<String, App>,
    creds: &Credentials,
    ip: IpAddr,
) -> Result<(String, &'a mut App), WxError> {
    if creds.grant_type.as_deref() != Some("client_credential") {
        return Err(errcode::INVALID_GRANT_TYPE.into());
    }
    let appid = creds.appid.as_deref().filter(|s| !s.is_empty());
    let Some(appid) = appid else {
        return Err(errcode::APPID_MISSING.into());
    };
    let secret = creds.secret.as_deref().filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return Err(errcode::SECRET_MISSING.into());
    };
    let Some(app) = apps.get_mut(appid) else {
        return Err(errcode::INVALID_APPID.into());
    };
    if secret != app.secret {
        let well_formed = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit());
        return Err(if well_formed {
            errcode::INVALID_CREDENTIAL
        } else {
            errcode::INVALID_SECRET
        }
        .into());
    }
    let ip = ip.to_canonical();
    if let Some(list) = &app.whitelist
        && !list.contains(&ip)
    {
        return Err(WxError {
            code: errcode::IP_NOT_WHITELISTED,
            ip: Some(ip),
        });
    }
    Ok((appid.to_string(), app))
}

fn issue(
    cfg: &SimConfig,
    tokens: &mut HashMap<String, TokenRecord>,
    appid: &str,
    app: &mut App,
    now: Instant,
) -> Issued {
    let access_token = new_token(cfg.token_length);
    tokens.insert(
        access_token.clone(),
        TokenRecord {
            appid: appid.to_string(),
            expires_at: now + cfg.token_lifetime,
            dies_at: None,
        },
    );
    app.history.push_back(access_token.clone());
    while app.history.len() > TOKEN_HISTORY_PER_APP {
        if let Some(old) = app.history.pop_front() {
            tokens.remove(&old);
        }
    }
    app.counters.issued_tokens.fetch_add(1, Ordering::SeqCst);
    Issued {
        access_token,
        expires_in: cfg.token_lifetime.as_secs(),
    }
}

/// A token shaped like WeChat's: a two-digit generation, `_`, then random
/// characters of `[0-9A-Za-z_-]`, `length` characters in all (at least 16).
pub(super) fn new_token(length: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut token = format!("{}_", rng.gen_range(80..100));
    let body = length.max(16).saturating_sub(token.len());
    token.extend(
        (0..body).map(|_| char::from(TOKEN_ALPHABET[rng.gen_range(0..TOKEN_ALPHABET.len())])),
    );
    token
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tokens_have_the_requested_length_and_alphabet() {
        for len in [16, 157, 4096] {
            let t = new_token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| TOKEN_ALPHABET.contains(&b)));
        }
        assert_ne!(new_token(157), new_token(157));
    }

    #[test]
    fn a_token_killed_early_is_not_latest_and_one_run_out_is_expired() {
        let now = Instant::now();
        let mut r = TokenRecord {
            appid: "wx1".into(),
            expires_at: now + Duration::from_secs(10),
            dies_at: None,
        };
        assert_eq!(r.check(now), TokenCheck::Valid);
        assert_eq!(
            r.check(now + Duration::from_secs(10)),
            TokenCheck::Invalid(errcode::TOKEN_EXPIRED)
        );
        r.kill_at(now + Duration::from_secs(2));
        assert_eq!(r.check(now + Duration::from_secs(1)), TokenCheck::Valid);
        assert_eq!(
            r.check(now + Duration::from_secs(3)),
            TokenCheck::Invalid(errcode::INVALID_CREDENTIAL)
        );
        // An overlap past the natural expiry: it simply expires.
        r.dies_at = Some(now + Duration::from_secs(20));
        assert_eq!(
            r.check(now + Duration::from_secs(11)),
            TokenCheck::Invalid(errcode::TOKEN_EXPIRED)
        );
    }
}
