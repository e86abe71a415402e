//! The simulator's HTTP endpoints: WeChat's under `/cgi-bin/`, control under `/sim/`.
//!
//! WeChat answers almost everything with HTTP 200 and an errcode, including
//! malformed requests, so these handlers parse leniently and never reject a
//! request through actix's extractor errors.

use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{CallStart, Credentials, Issued, Mishap, SimState, TokenCheck, WxError};
use super::{AppSpec, Fault, SimError, TokenKind, errcode};

/// The addresses `getcallbackip` lists (WeChat's real ones look like this).
const CALLBACK_IPS: [&str; 4] = [
    "101.226.103.0/25",
    "101.226.62.0/26",
    "140.207.54.0/25",
    "182.254.11.0/25",
];

/// Register every route.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cgi-bin/token", web::route().to(classic_token))
        .route("/cgi-bin/stable_token", web::route().to(stable_token))
        .route("/cgi-bin/getcallbackip", web::route().to(check_token))
        .route("/cgi-bin/ticket/getticket", web::route().to(get_ticket))
        .route("/cgi-bin/clear_quota", web::route().to(clear_quota))
        .route("/sim/apps/{appid}", web::put().to(put_app))
        .route("/sim/apps/{appid}/stats", web::get().to(app_stats))
        .route("/sim/apps/{appid}/faults", web::post().to(add_fault))
        .route("/sim/apps/{appid}/faults", web::delete().to(clear_faults))
        .route("/sim/apps/{appid}/errcode", web::post().to(add_errcode))
        .route("/sim/stats", web::get().to(all_stats))
        .route("/sim/reset", web::post().to(reset))
        .default_service(web::to(unknown_path));
}

async fn classic_token(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    let params = query_params(req.query_string());
    let creds = Credentials {
        grant_type: param(&params, "grant_type"),
        appid: param(&params, "appid"),
        secret: param(&params, "secret"),
    };
    let ip = peer_ip(&req);
    let start = state.begin_call(creds.appid.as_deref(), TokenKind::Classic, false);
    if let Some(res) = suffer(&state, &start, ip).await {
        return res;
    }
    let state = state.into_inner();
    let issued = complete(start.latency, move || state.classic_token(&creds, ip)).await;
    token_answer(issued, &start)
}

/// Wait the injected latency, then do the call's work in a task of its own:
/// like WeChat, the simulator finishes a call whose client gave up (timed
/// out or hung up), so the token it issues exists although nobody got it.
async fn complete(
    latency: std::time::Duration,
    work: impl FnOnce() -> Result<Issued, WxError> + Send + 'static,
) -> Result<Issued, WxError> {
    let task = tokio::spawn(async move {
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        work()
    });
    task.await.unwrap_or(Err(WxError {
        code: errcode::BUSY,
        ip: None,
    }))
}

async fn stable_token(req: HttpRequest, body: Bytes, state: web::Data<SimState>) -> HttpResponse {
    if req.method() != Method::POST {
        return wx_error(errcode::REQUIRE_POST.into());
    }
    let Some((creds, force)) = stable_request(&body) else {
        return wx_error(errcode::DATA_FORMAT.into());
    };
    let ip = peer_ip(&req);
    let start = state.begin_call(creds.appid.as_deref(), TokenKind::Stable, force);
    if let Some(res) = suffer(&state, &start, ip).await {
        return res;
    }
    let state = state.into_inner();
    let issued = complete(start.latency, move || state.stable_token(&creds, force, ip)).await;
    token_answer(issued, &start)
}

/// The stable-token body: a JSON object whose fields, when present, have
/// WeChat's types. `None` means 47001.
fn stable_request(body: &[u8]) -> Option<(Credentials, bool)> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let text = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let force = match map.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return None,
    };
    let creds = Credentials {
        grant_type: text("grant_type")?,
        appid: text("appid")?,
        secret: text("secret")?,
    };
    Some((creds, force))
}

/// Play the injected mishap, if any, after the injected latency (the lock
/// is not held); without one, the latency is waited where the work is done.
async fn suffer(state: &SimState, start: &CallStart, ip: IpAddr) -> Option<HttpResponse> {
    let mishap = start.mishap?;
    if !start.latency.is_zero() {
        tokio::time::sleep(start.latency).await;
    }
    let res = match mishap {
        Mishap::Hang => {
            // Actix keeps running a handler whose client went away, so the
            // hang ends after `hang`, when the app's faults are cleared, or
            // when the server stops (which drops this future).
            let sleep = tokio::time::sleep(state.config.hang);
            match &start.release {
                Some(release) => {
                    tokio::select! {
                        () = sleep => {}
                        () = release.notified() => {}
                    }
                }
                None => sleep.await,
            }
            wx_error(errcode::BUSY.into())
        }
        Mishap::HttpStatus(status) => gateway_error(status),
        Mishap::BadJson => HttpResponse::Ok()
            .content_type("application/json; encoding=utf-8")
            .body(r#"{"access_token":"86_Xr3kP0qLmA9vT2wYb","expires_in":72"#),
        Mishap::Close => HttpResponse::Ok()
            .content_type("application/json; encoding=utf-8")
            .body(DroppedConnection),
        Mishap::Errcode(code) => wx_error(WxError { code, ip: Some(ip) }),
    };
    Some(res)
}

fn token_answer(result: Result<Issued, WxError>, start: &CallStart) -> HttpResponse {
    match result {
        Ok(issued) => {
            if let Some(guard) = &start.guard {
                guard.succeeded();
            }
            wechat_json(&json!({
                "access_token": issued.access_token,
                "expires_in": issued.expires_in,
            }))
        }
        Err(e) => wx_error(e),
    }
}

async fn check_token(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    let params = query_params(req.query_string());
    let Some(token) = param(&params, "access_token").filter(|t| !t.is_empty()) else {
        return wx_error(errcode::TOKEN_MISSING.into());
    };
    match state.check_token(&token) {
        TokenCheck::Valid => wechat_json(&json!({ "ip_list": CALLBACK_IPS })),
        TokenCheck::Invalid(code) => wx_error(code.into()),
    }
}

async fn get_ticket(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    let params = query_params(req.query_string());
    let token = param(&params, "access_token");
    let kind = param(&params, "type");
    match state.ticket(token.as_deref(), kind.as_deref()) {
        Ok(t) => wechat_json(&json!({
            "errcode": 0,
            "errmsg": "ok",
            "ticket": t.ticket,
            "expires_in": t.expires_in,
        })),
        Err(e) => wx_error(e),
    }
}

/// `POST /cgi-bin/clear_quota {"appid"}`: WeChat also wants an `access_token`
/// and limits this API itself; the simulator needs only the appid.
async fn clear_quota(body: Bytes, state: web::Data<SimState>) -> HttpResponse {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
        return wx_error(errcode::DATA_FORMAT.into());
    };
    let Some(appid) = map
        .get("appid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return wx_error(errcode::APPID_MISSING.into());
    };
    match state.reset_quota(appid) {
        Ok(()) => wechat_json(&json!({"errcode": 0, "errmsg": "ok"})),
        Err(_) => wx_error(errcode::INVALID_APPID.into()),
    }
}

async fn unknown_path(req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/sim/") {
        return control_error(
            StatusCode::NOT_FOUND,
            &format!("no such control endpoint: {} {}", req.method(), req.path()),
        );
    }
    wx_error(errcode::INVALID_URL.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutApp {
    secret: String,
    #[serde(default)]
    ip_whitelist: Option<Vec<IpAddr>>,
}

async fn put_app(path: web::Path<String>, body: Bytes, state: web::Data<SimState>) -> HttpResponse {
    let appid = path.into_inner();
    match serde_json::from_slice::<PutApp>(&body) {
        Ok(p) => {
            let spec = AppSpec {
                appid,
                secret: p.secret,
                ip_whitelist: p.ip_whitelist,
            };
            state.put_app(&spec.appid, &spec.secret, spec.ip_whitelist.clone());
            HttpResponse::NoContent().finish()
        }
        Err(e) => control_error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"secret\": \"…\", \"ip_whitelist\": [\"127.0.0.1\"]?}}: {e}"),
        ),
    }
}

async fn app_stats(path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    match state.stats(&path) {
        Some(counters) => HttpResponse::Ok().json(counters),
        None => sim_error(&SimError::UnknownApp(path.into_inner())),
    }
}

async fn all_stats(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "apps": state.all_stats() }))
}

async fn add_fault(
    path: web::Path<String>,
    body: Bytes,
    state: web::Data<SimState>,
) -> HttpResponse {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => done(state.inject(&path, fault)),
        Err(e) => control_error(
            StatusCode::BAD_REQUEST,
            &format!("expected a fault such as {{\"kind\": \"latency\", \"ms\": 100}}: {e}"),
        ),
    }
}

async fn clear_faults(path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    done(state.clear_faults(&path))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddErrcode {
    errcode: i32,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

async fn add_errcode(
    path: web::Path<String>,
    body: Bytes,
    state: web::Data<SimState>,
) -> HttpResponse {
    match serde_json::from_slice::<AddErrcode>(&body) {
        Ok(a) => done(state.inject_errcode(&path, a.errcode, a.times)),
        Err(e) => control_error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"errcode\": 40164, \"times\": 3}}: {e}"),
        ),
    }
}

async fn reset(state: web::Data<SimState>) -> HttpResponse {
    state.reset();
    HttpResponse::NoContent().finish()
}

fn done(result: Result<(), SimError>) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => sim_error(&e),
    }
}

fn sim_error(e: &SimError) -> HttpResponse {
    let status = match e {
        SimError::UnknownApp(_) => StatusCode::NOT_FOUND,
        SimError::InvalidFault(_) | SimError::UnknownErrcode(_) => StatusCode::BAD_REQUEST,
    };
    control_error(status, &e.to_string())
}

fn control_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// The query's pairs; a malformed query reads as empty, as WeChat then
/// answers with the errcode of the first missing parameter.
fn query_params(query: &str) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn param(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn peer_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip().to_canonical())
}

/// WeChat's content type, verbatim (`encoding`, not `charset`).
fn wechat_json(body: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json; encoding=utf-8")
        .body(body.to_string())
}

fn wx_error(e: WxError) -> HttpResponse {
    let errmsg = format!("{} rid: {}", errcode::message(e.code, e.ip), rid());
    wechat_json(&json!({ "errcode": e.code, "errmsg": errmsg }))
}

/// A request id shaped like WeChat's: `6650c1a2-3f9e0b1c-7d2a4e5f`.
fn rid() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{:08x}-{:08x}-{:08x}",
        rng.r#gen::<u32>(),
        rng.r#gen::<u32>(),
        rng.r#gen::<u32>()
    )
}

/// What an nginx gateway in front of WeChat answers when it fails.
fn gateway_error(status: u16) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    HttpResponse::build(status)
        .content_type("text/html")
        .body(format!(
            "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ))
}

/// A body that fails before its first byte: actix then closes the connection
/// without sending the response it had not yet flushed.
struct DroppedConnection;

impl MessageBody for DroppedConnection {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other(
            "connection dropped by the close fault",
        ))))
    }
}
