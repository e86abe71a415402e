//! The WeChat client: `GET /cgi-bin/token` (classic) and
//! `POST /cgi-bin/stable_token` (stable, with or without `force_refresh`);
//! for WeCom apps, WeCom's `GET /cgi-bin/gettoken?corpid=…&corpsecret=…`
//! at its own base (one token per app secret).

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{
    BoxFuture, ErrorClass, FetchFailure, FetchOutcome, FetchRequest, FreshTicket, FreshToken,
    TicketOutcome, TokenProvider, errcodes,
};
use crate::domain::{AppKind, TicketType, TokenMode};

/// Largest answer accepted; a token answer is a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;
/// Longest token kept (WeChat promises at least 512; we keep far more whole).
pub const MAX_TOKEN_CHARS: usize = 16 * 1024;
/// Longest lifetime believed (WeChat says "within 7200 s").
const MAX_EXPIRES_IN: u64 = 7 * 24 * 3600;

/// Client for WeChat's token endpoints, with one shared connection pool.
#[derive(Debug, Clone)]
pub struct WeChatClient {
    http: reqwest::Client,
    base: String,
    wecom_base: String,
}

impl WeChatClient {
    /// A client for `base_url` (e.g. `https://api.weixin.qq.com`) with a
    /// connect timeout and a timeout for the whole request.
    pub fn new(
        base_url: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("tokenvault/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            wecom_base: "https://qyapi.weixin.qq.com".to_string(),
        })
    }

    /// The same client with WeCom's API at `base_url` (default
    /// `https://qyapi.weixin.qq.com`).
    #[must_use]
    pub fn with_wecom_base(mut self, base_url: &str) -> Self {
        self.wecom_base = base_url.trim_end_matches('/').to_string();
        self
    }

    /// A WeCom app's token: `gettoken` with its corpid and its own secret
    /// (WeCom answers the same token while it is valid; `force` means nothing).
    async fn call_wecom(&self, request: FetchRequest<'_>) -> FetchOutcome {
        let corpid = request.appid.corpid().unwrap_or_default();
        let response = self
            .http
            .get(format!("{}/cgi-bin/gettoken", self.wecom_base))
            .query(&[
                ("corpid", corpid),
                ("corpsecret", request.secret.expose_secret()),
            ])
            .send()
            .await
            .map_err(network_failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(transient(format!("WeCom answered HTTP {status}")));
        }
        let body = read_limited(response).await?;
        parse_answer_of(&body, errcodes::wecom::classify)
    }

    async fn call(&self, request: FetchRequest<'_>) -> FetchOutcome {
        if request.appid.kind() == AppKind::Wecom {
            return self.call_wecom(request).await;
        }
        let secret = request.secret.expose_secret();
        let builder = match request.mode {
            TokenMode::Classic => self
                .http
                .get(format!("{}/cgi-bin/token", self.base))
                .query(&[
                    ("grant_type", "client_credential"),
                    ("appid", request.appid.as_str()),
                    ("secret", secret),
                ]),
            TokenMode::Stable => self
                .http
                .post(format!("{}/cgi-bin/stable_token", self.base))
                .json(&serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": request.appid.as_str(),
                    "secret": secret,
                    "force_refresh": request.force_refresh,
                })),
        };
        let response = builder.send().await.map_err(network_failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(transient(format!("WeChat answered HTTP {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(transient(
                "WeChat's answer is too large to be a token".into(),
            ));
        }
        let body = read_limited(response).await?;
        parse_answer(&body)
    }

    async fn call_ticket(
        &self,
        access_token: &SecretString,
        ticket_type: TicketType,
    ) -> TicketOutcome {
        let response = self
            .http
            .get(format!("{}/cgi-bin/ticket/getticket", self.base))
            .query(&[
                ("access_token", access_token.expose_secret()),
                ("type", ticket_type.as_str()),
            ])
            .send()
            .await
            .map_err(network_failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(transient(format!("WeChat answered HTTP {status}")));
        }
        let body = read_limited(response).await?;
        parse_ticket_answer(&body)
    }

    /// A WeCom ticket: the company's (`jsapi`: `get_jsapi_ticket`) or the
    /// app's (`agent_config`: `ticket/get?type=agent_config`).
    async fn call_wecom_ticket(
        &self,
        access_token: &SecretString,
        ticket_type: TicketType,
    ) -> TicketOutcome {
        let token = ("access_token", access_token.expose_secret());
        let builder = match ticket_type {
            TicketType::AgentConfig => self
                .http
                .get(format!("{}/cgi-bin/ticket/get", self.wecom_base))
                .query(&[token, ("type", "agent_config")]),
            _ => self
                .http
                .get(format!("{}/cgi-bin/get_jsapi_ticket", self.wecom_base))
                .query(&[token]),
        };
        let response = builder.send().await.map_err(network_failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(transient(format!("WeCom answered HTTP {status}")));
        }
        let body = read_limited(response).await?;
        parse_ticket_answer_of(&body, errcodes::wecom::classify)
    }
}

impl TokenProvider for WeChatClient {
    fn fetch<'a>(&'a self, request: FetchRequest<'a>) -> BoxFuture<'a, FetchOutcome> {
        let platform = request.appid.kind();
        Box::pin(async move { self.call(request).await.map_err(|f| f.of(platform)) })
    }

    fn fetch_ticket<'a>(
        &'a self,
        access_token: &'a SecretString,
        ticket_type: TicketType,
        app: AppKind,
    ) -> BoxFuture<'a, TicketOutcome> {
        Box::pin(async move {
            match app {
                AppKind::Wechat => self.call_ticket(access_token, ticket_type).await,
                AppKind::Wecom => self.call_wecom_ticket(access_token, ticket_type).await,
            }
            .map_err(|f| f.of(app))
        })
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, FetchFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network_failure)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(transient(
                "WeChat's answer is too large to be a token".into(),
            ));
        }
    }
    Ok(body)
}

fn transient(errmsg: String) -> FetchFailure {
    FetchFailure {
        class: ErrorClass::Transient,
        errcode: None,
        errmsg,
        outcome_unknown: false,
        platform: AppKind::Wechat,
    }
}

/// Network errors, described without the URL (it carries the secret for
/// classic fetches). Any error but a failure to connect may come after
/// WeChat received the request: its outcome is unknown.
fn network_failure(e: reqwest::Error) -> FetchFailure {
    let outcome_unknown = !e.is_connect();
    let what = if e.is_timeout() {
        "WeChat did not answer in time"
    } else if e.is_connect() {
        "cannot connect to WeChat"
    } else if e.is_body() || e.is_decode() {
        "the connection to WeChat broke while reading the answer"
    } else {
        "the request to WeChat failed"
    };
    let e = e.without_url();
    let detail = crate::report::error_chain(&e);
    FetchFailure {
        outcome_unknown,
        ..transient(format!("{what}: {detail}"))
    }
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Number>,
    errcode: Option<i64>,
    errmsg: Option<String>,
}

/// Parse a token answer: the success shape, the errcode shape, or a
/// malformed answer (transient; never stored).
pub fn parse_answer(body: &[u8]) -> FetchOutcome {
    parse_answer_of(body, errcodes::classify)
}

/// Parse a token answer, classifying an errcode with `classify` (each
/// platform has its table).
fn parse_answer_of(body: &[u8], classify: fn(i64) -> ErrorClass) -> FetchOutcome {
    let malformed =
        |why: &str| transient(format!("WeChat's answer is malformed ({why}); not stored"));
    let answer: Answer =
        serde_json::from_slice(body).map_err(|_| malformed("not JSON of the expected shape"))?;
    match answer.errcode {
        Some(code) if code != 0 => {
            let errmsg = answer
                .errmsg
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect();
            return Err(FetchFailure {
                class: classify(code),
                errcode: Some(code),
                errmsg,
                outcome_unknown: false,
                platform: AppKind::Wechat,
            });
        }
        _ => {}
    }
    let token = answer
        .access_token
        .ok_or_else(|| malformed("no access_token"))?;
    if token.is_empty()
        || token.chars().count() > MAX_TOKEN_CHARS
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(malformed(
            "access_token is empty, too long or has invalid characters",
        ));
    }
    let expires_in = answer
        .expires_in
        .and_then(|n| n.as_u64())
        .filter(|s| (1..=MAX_EXPIRES_IN).contains(s))
        .ok_or_else(|| malformed("expires_in missing or out of range"))?;
    Ok(FreshToken {
        access_token: SecretString::from(token),
        expires_in: Duration::from_secs(expires_in),
    })
}

#[derive(Deserialize)]
struct TicketAnswer {
    ticket: Option<String>,
    expires_in: Option<serde_json::Number>,
    errcode: Option<i64>,
    errmsg: Option<String>,
}

/// Parse a ticket answer: `{errcode: 0, ticket, expires_in}`, an errcode, or
/// a malformed answer (transient; never stored).
pub fn parse_ticket_answer(body: &[u8]) -> TicketOutcome {
    parse_ticket_answer_of(body, errcodes::classify_ticket)
}

/// [`parse_ticket_answer`] with a platform's own errcode classes.
fn parse_ticket_answer_of(body: &[u8], classify: fn(i64) -> ErrorClass) -> TicketOutcome {
    let malformed =
        |why: &str| transient(format!("WeChat's answer is malformed ({why}); not stored"));
    let answer: TicketAnswer =
        serde_json::from_slice(body).map_err(|_| malformed("not JSON of the expected shape"))?;
    if let Some(code) = answer.errcode.filter(|c| *c != 0) {
        return Err(FetchFailure {
            class: classify(code),
            errcode: Some(code),
            errmsg: answer
                .errmsg
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect(),
            outcome_unknown: false,
            platform: AppKind::Wechat,
        });
    }
    let ticket = answer.ticket.ok_or_else(|| malformed("no ticket"))?;
    if ticket.is_empty()
        || ticket.chars().count() > MAX_TOKEN_CHARS
        || !ticket.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(malformed(
            "ticket is empty, too long or has invalid characters",
        ));
    }
    let expires_in = answer
        .expires_in
        .and_then(|n| n.as_u64())
        .filter(|s| (1..=MAX_EXPIRES_IN).contains(s))
        .ok_or_else(|| malformed("expires_in missing or out of range"))?;
    Ok(FreshTicket {
        ticket: SecretString::from(ticket),
        expires_in: Duration::from_secs(expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ticket_answers() {
        let ok = parse_ticket_answer(
            br#"{"errcode":0,"errmsg":"ok","ticket":"bxLdikRXVbTPdHSM05e5u5sUoXNKd8","expires_in":7200}"#,
        )
        .unwrap();
        assert_eq!(ok.ticket.expose_secret(), "bxLdikRXVbTPdHSM05e5u5sUoXNKd8");
        assert_eq!(ok.expires_in, Duration::from_secs(7200));
        let rejected =
            parse_ticket_answer(br#"{"errcode":40001,"errmsg":"invalid credential"}"#).unwrap_err();
        assert_eq!(rejected.errcode, Some(40001));
        assert_eq!(rejected.class, ErrorClass::Transient);
        for bad in [
            &br#"{"errcode":0,"errmsg":"ok","expires_in":7200}"#[..],
            b"<html>",
            br#"{"errcode":0,"ticket":"","expires_in":7200}"#,
        ] {
            let f = parse_ticket_answer(bad).unwrap_err();
            assert_eq!((f.class, f.errcode), (ErrorClass::Transient, None));
        }
    }

    #[test]
    fn parses_success_and_errcode_shapes() {
        let ok = parse_answer(br#"{"access_token":"ACCESS_TOKEN","expires_in":7200}"#).unwrap();
        assert_eq!(ok.access_token.expose_secret(), "ACCESS_TOKEN");
        assert_eq!(ok.expires_in, Duration::from_secs(7200));
        // WeCom's shape carries errcode 0 with the token.
        assert!(
            parse_answer(br#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7000}"#)
                .is_ok()
        );
        let err = parse_answer(br#"{"errcode":40164,"errmsg":"invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist rid: 1"}"#).unwrap_err();
        assert_eq!(err.class, ErrorClass::Configuration);
        assert_eq!(err.errcode, Some(40164));
        assert!(err.errmsg.contains("1.2.3.4"));
        assert_eq!(
            parse_answer(br#"{"errcode":-1,"errmsg":"system error"}"#)
                .unwrap_err()
                .class,
            ErrorClass::Transient
        );
        assert_eq!(
            parse_answer(br#"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#)
                .unwrap_err()
                .class,
            ErrorClass::Quota
        );
    }

    #[test]
    fn refuses_malformed_answers() {
        for bad in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"{\"access_token\":\"abc\"",
            b"{}",
            b"{\"access_token\":\"\",\"expires_in\":7200}",
            b"{\"access_token\":\"a b\",\"expires_in\":7200}",
            b"{\"access_token\":\"abc\"}",
            b"{\"access_token\":\"abc\",\"expires_in\":0}",
            b"{\"access_token\":\"abc\",\"expires_in\":-5}",
            b"{\"access_token\":\"abc\",\"expires_in\":\"7200\"}",
            b"{\"access_token\":42,\"expires_in\":7200}",
            b"null",
        ] {
            let err = parse_answer(bad).unwrap_err();
            assert_eq!(
                err.class,
                ErrorClass::Transient,
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(err.errcode.is_none());
        }
    }

    #[test]
    fn keeps_long_tokens_whole() {
        let token = "A".repeat(4096);
        let body = format!(r#"{{"access_token":"{token}","expires_in":7200}}"#);
        assert_eq!(
            parse_answer(body.as_bytes())
                .unwrap()
                .access_token
                .expose_secret(),
            token
        );
    }
}
