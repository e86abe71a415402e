//! WeCom (企业微信) in the simulator: `GET /cgi-bin/gettoken?corpid=&corpsecret=`,
//! and the JS-SDK tickets (`wecom_tickets`).
//!
//! One token per app secret (never per corpid alone): while it is valid the
//! same token comes back with its remaining `expires_in`; once it expired, or
//! ended early (the [`WecomSim::end_token_early`] fault: WeCom may end a
//! token before its time), the next call issues a new one. Errors in
//! WeCom's order: corpid missing 41002, secret missing 41004, unknown
//! corpid 40013, wrong secret 40001. Counters per credential (corpid and
//! secret), for the tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Counters of one WeCom credential (a corpid and one app's secret).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WecomStats {
    /// Calls to `gettoken` with this secret, failed or not.
    pub gettoken_calls: u64,
    /// New tokens issued.
    pub issued_tokens: u64,
    /// Calls to `get_jsapi_ticket` (the company's ticket) with one of this
    /// secret's tokens, failed or not.
    #[serde(default)]
    pub company_ticket_calls: u64,
    /// Calls to `ticket/get?type=agent_config` with one of its tokens.
    #[serde(default)]
    pub agent_ticket_calls: u64,
}

#[derive(Debug, Default)]
pub(super) struct Credential {
    pub(super) token: Option<(String, Instant)>,
    pub(super) stats: WecomStats,
    /// The app's `agent_config` ticket and when it dies.
    pub(super) agent_ticket: Option<(String, Instant)>,
}

/// Everything the WeCom side keeps.
#[derive(Debug, Default)]
pub(super) struct Inner {
    /// By (corpid, secret).
    pub(super) credentials: HashMap<(String, String), Credential>,
    /// Every token issued (and not yet forgotten): its credential and when
    /// it was issued.
    pub(super) tokens: HashMap<String, (String, String, Instant)>,
    /// The company's JS-SDK ticket, by corpid.
    pub(super) company_tickets: HashMap<String, (String, Instant)>,
    /// Ticket calls in the current hour, by scope (company or app, per API).
    pub(super) hourly: HashMap<String, (Instant, u32)>,
}

/// The WeCom side of the simulator.
#[derive(Debug)]
pub struct WecomSim {
    pub(super) lifetime: Duration,
    token_length: usize,
    pub(super) ticket_lifetime: Duration,
    /// WeCom's hourly ticket limits per API: (per company, per app).
    pub(super) ticket_limits: Mutex<(u32, u32)>,
    inner: Mutex<Inner>,
}

pub(super) fn error(code: i32, msg: &str) -> HttpResponse {
    let rid: u32 = rand::thread_rng().r#gen();
    HttpResponse::Ok().json(json!({ "errcode": code, "errmsg": format!("{msg}, rid: {rid:08x}") }))
}

impl WecomSim {
    /// Tokens living `lifetime`, `token_length` characters long; JS-SDK
    /// tickets living `ticket_lifetime`, within WeCom's hourly limits (400
    /// fetches per company and 100 per app, per ticket API).
    pub fn new(lifetime: Duration, token_length: usize, ticket_lifetime: Duration) -> Self {
        Self {
            lifetime,
            token_length: token_length.max(16),
            ticket_lifetime,
            ticket_limits: Mutex::new((400, 100)),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Add an app's secret to the company `corpid` (kept if it exists).
    pub fn add(&self, corpid: &str, secret: &str) {
        self.lock()
            .credentials
            .entry((corpid.to_string(), secret.to_string()))
            .or_default();
    }

    /// The counters of one credential (zero when unknown).
    pub fn stats(&self, corpid: &str, secret: &str) -> WecomStats {
        self.lock()
            .credentials
            .get(&(corpid.to_string(), secret.to_string()))
            .map(|c| c.stats)
            .unwrap_or_default()
    }

    /// The credential's token, if it is still valid.
    pub fn current_token(&self, corpid: &str, secret: &str) -> Option<String> {
        self.lock()
            .credentials
            .get(&(corpid.to_string(), secret.to_string()))
            .and_then(|c| c.token.clone())
            .filter(|(_, issued)| issued.elapsed() < self.lifetime)
            .map(|(t, _)| t)
    }

    /// The fault WeCom warns of: the credential's token ends now, before
    /// its time; the next `gettoken` issues a new one.
    pub fn end_token_early(&self, corpid: &str, secret: &str) {
        if let Some(c) = self
            .lock()
            .credentials
            .get_mut(&(corpid.to_string(), secret.to_string()))
        {
            c.token = None;
        }
    }

    pub(super) fn gettoken(&self, corpid: Option<&str>, secret: Option<&str>) -> HttpResponse {
        let Some(corpid) = corpid.filter(|c| !c.is_empty()) else {
            return error(41002, "corpid missing");
        };
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return error(41004, "corpsecret missing");
        };
        let mut guard = self.lock();
        let inner = &mut *guard;
        if !inner.credentials.keys().any(|(c, _)| c == corpid) {
            return error(40013, "invalid corpid");
        }
        let Some(cred) = inner
            .credentials
            .get_mut(&(corpid.to_string(), secret.to_string()))
        else {
            return error(40001, "invalid credential");
        };
        cred.stats.gettoken_calls += 1;
        let now = Instant::now();
        let (token, issued) = match &cred.token {
            Some((t, issued)) if now.duration_since(*issued) < self.lifetime => {
                (t.clone(), *issued)
            }
            _ => {
                let token: String = rand::thread_rng()
                    .sample_iter(&rand::distributions::Alphanumeric)
                    .take(self.token_length)
                    .map(char::from)
                    .collect();
                cred.token = Some((token.clone(), now));
                cred.stats.issued_tokens += 1;
                let lifetime = self.lifetime;
                inner
                    .tokens
                    .retain(|_, (_, _, at)| now.duration_since(*at) < lifetime * 2);
                inner
                    .tokens
                    .insert(token.clone(), (corpid.to_string(), secret.to_string(), now));
                (token, now)
            }
        };
        let left = self.lifetime.saturating_sub(now.duration_since(issued));
        HttpResponse::Ok().json(json!({
            "errcode": 0,
            "errmsg": "ok",
            "access_token": token,
            "expires_in": left.as_secs().max(1),
        }))
    }
}

/// Register WeCom's routes.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cgi-bin/gettoken", web::route().to(gettoken))
        .route(
            "/cgi-bin/get_jsapi_ticket",
            web::get().to(super::wecom_tickets::get_jsapi_ticket),
        )
        .route(
            "/cgi-bin/ticket/get",
            web::get().to(super::wecom_tickets::get_agent_ticket),
        )
        .route(
            "/sim/wecom/ticket-limits",
            web::put().to(super::wecom_tickets::put_limits),
        )
        .route("/sim/wecom/apps", web::put().to(put_app))
        .route("/sim/wecom/stats", web::post().to(stats));
}

async fn gettoken(req: HttpRequest, sim: web::Data<WecomSim>) -> HttpResponse {
    let params = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    sim.gettoken(get("corpid"), get("corpsecret"))
}

/// A WeCom credential as the control API takes it.
#[derive(Deserialize)]
struct Spec {
    corpid: String,
    secret: String,
}

/// `PUT /sim/wecom/apps {corpid, secret}`: add a WeCom app's secret.
async fn put_app(body: Bytes, sim: web::Data<WecomSim>) -> HttpResponse {
    match serde_json::from_slice::<Spec>(&body) {
        Ok(spec) => {
            sim.add(&spec.corpid, &spec.secret);
            HttpResponse::NoContent().finish()
        }
        Err(e) => HttpResponse::BadRequest().body(format!("expected {{corpid, secret}}: {e}")),
    }
}

/// `POST /sim/wecom/stats {corpid, secret}`: one credential's counters (a
/// POST, so the secret stays out of URLs and logs).
async fn stats(body: Bytes, sim: web::Data<WecomSim>) -> HttpResponse {
    match serde_json::from_slice::<Spec>(&body) {
        Ok(spec) => HttpResponse::Ok().json(sim.stats(&spec.corpid, &spec.secret)),
        Err(e) => HttpResponse::BadRequest().body(format!("expected {{corpid, secret}}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_per_secret_the_same_while_valid() {
        let sim = WecomSim::new(Duration::from_secs(60), 32, Duration::from_secs(60));
        sim.add("ww0123456789abcdef", "secret-a-0123456789");
        sim.add("ww0123456789abcdef", "secret-b-0123456789");
        let _ = sim.gettoken(Some("ww0123456789abcdef"), Some("secret-a-0123456789"));
        let a = sim.current_token("ww0123456789abcdef", "secret-a-0123456789");
        let _ = sim.gettoken(Some("ww0123456789abcdef"), Some("secret-a-0123456789"));
        assert_eq!(
            a,
            sim.current_token("ww0123456789abcdef", "secret-a-0123456789")
        );
        let _ = sim.gettoken(Some("ww0123456789abcdef"), Some("secret-b-0123456789"));
        let b = sim.current_token("ww0123456789abcdef", "secret-b-0123456789");
        assert!(a.is_some() && b.is_some() && a != b);
        let stats = sim.stats("ww0123456789abcdef", "secret-a-0123456789");
        assert_eq!((stats.gettoken_calls, stats.issued_tokens), (2, 1));
        sim.end_token_early("ww0123456789abcdef", "secret-a-0123456789");
        assert_eq!(
            sim.current_token("ww0123456789abcdef", "secret-a-0123456789"),
            None
        );
        let _ = sim.gettoken(Some("ww0123456789abcdef"), Some("secret-a-0123456789"));
        let renewed = sim.current_token("ww0123456789abcdef", "secret-a-0123456789");
        assert!(renewed.is_some() && renewed != a);
    }
}
