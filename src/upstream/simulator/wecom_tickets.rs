//! WeCom's JS-SDK tickets in the simulator: `GET /cgi-bin/get_jsapi_ticket`
//! (the company's ticket, one per corpid) and `GET /cgi-bin/ticket/get?
//! type=agent_config` (one per app, i.e. per secret).
//!
//! Checks in this order: the token (41001 missing, 40014 unknown or ended
//! early, 42001 expired), the type of `ticket/get` (40058), WeCom's hourly
//! limits per ticket API (400 fetches an hour per company, 100 per app;
//! 45009 "api freq out of limit"); then the same ticket while it lives,
//! always with the full lifetime as `expires_in` (as WeChat's tickets), and
//! a new one afterwards. Each call counts in the token's credential.

use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use rand::Rng as _;

use super::wecom::{Inner, WecomSim, error};

/// A refusal: WeCom's errcode and errmsg.
type Refusal = (i32, &'static str);

fn new_ticket() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(86)
        .map(char::from)
        .collect()
}

const HOUR: Duration = Duration::from_secs(3600);

/// Which ticket a call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The company's (`get_jsapi_ticket`).
    Company,
    /// The app's (`ticket/get?type=agent_config`).
    Agent,
}

/// Count one call in `scope` unless `limit` calls were made this hour.
fn spend(inner: &mut Inner, scope: String, limit: u32, now: Instant) -> bool {
    let entry = inner.hourly.entry(scope).or_insert((now, 0));
    if now.duration_since(entry.0) >= HOUR {
        *entry = (now, 0);
    }
    if entry.1 >= limit {
        return false;
    }
    entry.1 += 1;
    true
}

impl WecomSim {
    /// Set WeCom's hourly ticket limits (per company, per app) for tests.
    pub fn set_ticket_limits(&self, per_company: u32, per_app: u32) {
        *self
            .ticket_limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (per_company, per_app);
    }

    /// One ticket call: the ticket and its `expires_in`, or the refusal.
    fn ticket(
        &self,
        token: Option<&str>,
        which: Which,
        kind: Option<&str>,
    ) -> Result<(String, u64), Refusal> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err((41001, "access_token missing"));
        };
        let (per_company, per_app) = *self
            .ticket_limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some((corpid, secret, issued)) = inner.tokens.get(token).cloned() else {
            return Err((40014, "invalid access_token"));
        };
        let key = (corpid.clone(), secret);
        let Some(cred) = inner.credentials.get_mut(&key) else {
            return Err((40014, "invalid access_token"));
        };
        match which {
            Which::Company => cred.stats.company_ticket_calls += 1,
            Which::Agent => cred.stats.agent_ticket_calls += 1,
        }
        if now.duration_since(issued) >= self.lifetime {
            return Err((42001, "access_token expired"));
        }
        if cred.token.as_ref().is_none_or(|(t, _)| t != token) {
            return Err((40014, "invalid access_token"));
        }
        if which == Which::Agent && kind != Some("agent_config") {
            return Err((40058, "invalid parameter: type"));
        }
        let api = match which {
            Which::Company => "jsapi",
            Which::Agent => "agent_config",
        };
        let company = format!("{corpid}:{api}");
        let app = format!("{}:{}:{api}", key.0, key.1);
        let fits = inner
            .hourly
            .get(&company)
            .is_none_or(|(at, n)| now.duration_since(*at) >= HOUR || *n < per_company);
        if !fits || !spend(inner, app, per_app, now) {
            return Err((45009, "api freq out of limit"));
        }
        spend(inner, company, per_company, now);
        let lifetime = self.ticket_lifetime;
        let slot = match which {
            Which::Company => inner.company_tickets.get_mut(&corpid),
            Which::Agent => inner
                .credentials
                .get_mut(&key)
                .and_then(|c| c.agent_ticket.as_mut()),
        };
        let ticket = match slot {
            Some((t, dies)) if *dies > now => t.clone(),
            _ => {
                let ticket = new_ticket();
                let record = (ticket.clone(), now + lifetime);
                match which {
                    Which::Company => {
                        inner.company_tickets.insert(corpid, record);
                    }
                    Which::Agent => {
                        if let Some(c) = inner.credentials.get_mut(&key) {
                            c.agent_ticket = Some(record);
                        }
                    }
                }
                ticket
            }
        };
        Ok((ticket, lifetime.as_secs()))
    }
}

fn render(outcome: Result<(String, u64), Refusal>) -> HttpResponse {
    match outcome {
        Ok((ticket, expires_in)) => HttpResponse::Ok().json(json!({
            "errcode": 0,
            "errmsg": "ok",
            "ticket": ticket,
            "expires_in": expires_in,
        })),
        Err((code, msg)) => error(code, msg),
    }
}

fn query(req: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `GET /cgi-bin/get_jsapi_ticket?access_token=`.
pub(super) async fn get_jsapi_ticket(req: HttpRequest, sim: web::Data<WecomSim>) -> HttpResponse {
    let params = query(&req);
    render(sim.ticket(get(&params, "access_token"), Which::Company, None))
}

/// `GET /cgi-bin/ticket/get?access_token=&type=agent_config`.
pub(super) async fn get_agent_ticket(req: HttpRequest, sim: web::Data<WecomSim>) -> HttpResponse {
    let params = query(&req);
    render(sim.ticket(
        get(&params, "access_token"),
        Which::Agent,
        get(&params, "type"),
    ))
}

#[derive(Deserialize)]
struct Limits {
    per_company: u32,
    per_app: u32,
}

/// `PUT /sim/wecom/ticket-limits {per_company, per_app}`: WeCom's hourly
/// ticket limits, lowered for tests.
pub(super) async fn put_limits(body: Bytes, sim: web::Data<WecomSim>) -> HttpResponse {
    match serde_json::from_slice::<Limits>(&body) {
        Ok(l) => {
            sim.set_ticket_limits(l.per_company, l.per_app);
            HttpResponse::NoContent().finish()
        }
        Err(e) => {
            HttpResponse::BadRequest().body(format!("expected {{per_company, per_app}}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORP: &str = "ww0123456789abcdef";
    const A: &str = "secret-a-0123456789";
    const B: &str = "secret-b-0123456789";

    fn token(sim: &WecomSim, secret: &str) -> String {
        let _ = sim.gettoken(Some(CORP), Some(secret));
        sim.current_token(CORP, secret).unwrap()
    }

    fn code(outcome: Result<(String, u64), Refusal>) -> i32 {
        outcome.map_or_else(|(code, _)| code, |_| 0)
    }

    #[test]
    fn same_ticket_while_valid_per_company_and_per_app() {
        let sim = WecomSim::new(Duration::from_secs(60), 32, Duration::from_secs(60));
        sim.add(CORP, A);
        sim.add(CORP, B);
        let (a, b) = (token(&sim, A), token(&sim, B));
        let ca = sim.ticket(Some(&a), Which::Company, None).unwrap();
        let cb = sim.ticket(Some(&b), Which::Company, None).unwrap();
        assert_eq!(ca, cb, "one company ticket");
        let aa = sim
            .ticket(Some(&a), Which::Agent, Some("agent_config"))
            .unwrap();
        let ab = sim
            .ticket(Some(&b), Which::Agent, Some("agent_config"))
            .unwrap();
        assert_ne!(aa.0, ab.0, "one ticket per app");
        let again = sim.ticket(Some(&a), Which::Agent, Some("agent_config"));
        assert_eq!(again.unwrap(), aa);
        let stats = sim.stats(CORP, A);
        assert_eq!(
            (stats.company_ticket_calls, stats.agent_ticket_calls),
            (1, 2)
        );
    }

    #[test]
    fn bad_tokens_types_and_the_hourly_limits() {
        let sim = WecomSim::new(Duration::from_secs(60), 32, Duration::from_secs(60));
        sim.add(CORP, A);
        sim.add(CORP, B);
        assert_eq!(code(sim.ticket(None, Which::Company, None)), 41001);
        assert_eq!(code(sim.ticket(Some("nope"), Which::Company, None)), 40014);
        let a = token(&sim, A);
        assert_eq!(
            code(sim.ticket(Some(&a), Which::Agent, Some("jsapi"))),
            40058
        );
        sim.set_ticket_limits(3, 2);
        let agent = |t: &str| code(sim.ticket(Some(t), Which::Agent, Some("agent_config")));
        assert_eq!(agent(&a), 0);
        assert_eq!(agent(&a), 0);
        assert_eq!(agent(&a), 45009, "the app's two are spent");
        let b = token(&sim, B);
        assert_eq!(agent(&b), 0);
        assert_eq!(agent(&b), 45009, "the company's three are spent");
        // The company ticket is another API, with limits of its own.
        assert_eq!(code(sim.ticket(Some(&a), Which::Company, None)), 0);
        sim.end_token_early(CORP, A);
        assert_eq!(code(sim.ticket(Some(&a), Which::Company, None)), 40014);
    }
}
