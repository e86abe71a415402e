//! Building a replica: its shared state ([`build_state`]) and its HTTP
//! application. `Application::build` binds nothing itself (the caller hands
//! it a listener, port 0 in tests) and starts nothing: the caller runs the
//! server and starts the background jobs (`crate::jobs::start`) on
//! [`Application::state`] side by side (`crate::cli`, the tests, the
//! benchmarks).

use std::net::TcpListener;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::{App, HttpServer, web};
use sqlx::PgPool;
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::auth::password::PasswordHasher;
use crate::auth::{AuthState, KeyAuthThrottle, KeyVerifier, LoginThrottle};
use crate::config::Settings;
use crate::crypto::KeyRing;
use crate::db;
use crate::error::problem_response;
use crate::http::request_log::RedactedRootSpan;
use crate::refresh::engine::{EngineConfig, RefreshEngine};
use crate::refresh::gate::Limits;
use crate::refresh::metrics::Metrics;
use crate::refresh::policy::Timing;
use crate::state::AppState;
use crate::ui;
use crate::upstream::wechat::WeChatClient;

/// Largest JSON body accepted by any endpoint.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A built, not yet running, HTTP server.
pub struct Application {
    port: u16,
    server: Server,
    state: Arc<AppState>,
}

impl Application {
    /// Build the server on `listener`, with a key ring already checked
    /// against the database (`keys::open_key_ring`).
    pub fn build(
        settings: Settings,
        pool: PgPool,
        crypto: Arc<KeyRing>,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let state = build_state(settings, pool, crypto)?;
        Self::build_on(state, listener)
    }

    /// Build the server of a replica whose state is `state` on `listener`.
    pub fn build_on(state: Arc<AppState>, listener: TcpListener) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::http::security_headers,
                ))
                .wrap(TracingLogger::<RedactedRootSpan>::new())
                // Outermost: token reads answered from memory, before the
                // logger and the router (see src/api/token_fast_path.rs).
                .wrap(actix_web::middleware::from_fn(api::token_fast_path::serve))
                .app_data(data.clone())
                .app_data(json_config())
                .app_data(path_config())
                .app_data(query_config())
                .app_data(form_config())
                .configure(api::configure)
                .configure(ui::configure)
                .default_service(web::to(ui::ops::not_found))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    /// The state of this replica, for its background jobs.
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until stopped through the handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Bind `addr`, with an error that says what to do when it is taken.
pub fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} (TOKENVAULT_BIND): {e}; stop whatever uses that address or choose another with --bind"
        )
    })
}

/// The state of one replica: its settings, pools, caches, throttles and
/// refresh engine, with a key ring already checked against the database.
pub fn build_state(
    settings: Settings,
    pool: PgPool,
    crypto: Arc<KeyRing>,
) -> anyhow::Result<Arc<AppState>> {
    let auth = AuthState {
        keys: Arc::new(KeyVerifier::with_read_rate(nonzero(settings.key_read_rate))),
        throttle: LoginThrottle::new(
            nonzero(settings.login_attempts_per_account),
            nonzero(settings.login_attempts_per_address),
        ),
        key_failures: KeyAuthThrottle::new(nonzero(settings.failed_key_auth_per_minute)),
        passwords: PasswordHasher::new(
            usize::try_from(settings.password_hash_concurrency).unwrap_or(1),
            Duration::from_millis(settings.password_hash_wait_ms),
        ),
    };
    let stats = crate::stats::Stats::new(Duration::from_secs(settings.stats_cache_seconds), &auth);
    let engine = Arc::new(build_engine(&settings, &pool, Arc::clone(&crypto))?);
    Ok(Arc::new(AppState {
        pool,
        settings,
        auth,
        crypto,
        engine,
        stats,
    }))
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as E;
            let (status, code) = match &err {
                E::OverflowKnownLength { .. } | E::Overflow { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
                }
                E::ContentType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
                E::Deserialize(e) if e.is_data() => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
                }
                _ => (StatusCode::BAD_REQUEST, "invalid_json"),
            };
            let detail = match code {
                "body_too_large" => {
                    format!("the request body is larger than {MAX_JSON_BODY} bytes")
                }
                "unsupported_media_type" => {
                    "send the body as JSON with Content-Type: application/json".into()
                }
                _ => err.to_string(),
            };
            actix_web::error::InternalError::from_response(
                err,
                problem_response(status, code, detail),
            )
            .into()
        })
}

/// The engine of this replica, with the WeChat client the settings name.
fn build_engine(
    settings: &Settings,
    pool: &PgPool,
    crypto: Arc<KeyRing>,
) -> anyhow::Result<RefreshEngine> {
    if settings.scheduler_reserve >= settings.daily_upstream_budget {
        anyhow::bail!(
            "TOKENVAULT_SCHEDULER_RESERVE ({}) must be smaller than TOKENVAULT_DAILY_UPSTREAM_BUDGET ({})",
            settings.scheduler_reserve,
            settings.daily_upstream_budget
        );
    }
    let upstream_timeout = Duration::from_secs(settings.upstream_timeout);
    let client = WeChatClient::new(
        &settings.wechat_api_base,
        upstream_timeout.min(Duration::from_secs(5)),
        upstream_timeout,
    )?
    .with_wecom_base(&settings.wecom_api_base);
    let stable_window = Duration::from_secs(settings.stable_renew_window);
    let config = EngineConfig {
        timing: Timing {
            margin: settings.refresh_margin,
            jitter: settings.refresh_jitter,
            stable_window,
            retry_base: Duration::from_secs_f64(settings.retry_base),
            retry_cap: Duration::from_secs(300).max(Duration::from_secs_f64(settings.retry_base)),
            config_retry: Duration::from_secs_f64(settings.config_retry),
        },
        limits: Limits {
            daily_calls: settings.daily_upstream_budget,
            scheduler_reserve: settings.scheduler_reserve,
            bypass_interval: Duration::from_secs(settings.refresh_now_cooldown),
            invalidate_min_age: Duration::from_secs(settings.invalidate_min_age),
            invalidates_per_hour: settings.invalidates_per_hour,
            stable_window,
            ..Limits::default()
        },
        concurrency: usize::try_from(settings.refresh_concurrency).unwrap_or(8),
        on_demand_concurrency: usize::try_from(settings.on_demand_concurrency).unwrap_or(8),
        on_demand_per_tenant: usize::try_from(settings.on_demand_per_tenant).unwrap_or(2),
        // Longer than the upstream timeout: a waiter outlasts the holder's call.
        lock_timeout: upstream_timeout + Duration::from_secs(5),
        upstream_timeout,
        classic_overlap: Duration::from_secs(settings.classic_overlap),
        replica_id: replica_id(settings.replica_id.as_deref()),
        tick: Duration::from_secs(settings.refresh_tick),
        alert_damping: Duration::from_secs(u64::from(settings.alerts.damping_minutes) * 60),
        alert_gather: settings.alerts.summary_gather(),
    };
    // The engine's own connections: every scheduled and on-demand refresh
    // holds one during its upstream call, and token reads keep a few more,
    // so the web UI and the rest of the API can never take them (nor the
    // other way round).
    let engine_pool = db::pool_beside(
        pool,
        settings.refresh_concurrency
            + settings.on_demand_concurrency
            + settings.db_read_connections
            + 1,
    );
    Ok(RefreshEngine::new(
        engine_pool,
        crypto,
        Arc::new(client),
        config,
        Arc::new(Metrics::default()),
    ))
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |h| h.trim().to_string())
}

/// A replica id: the configured one, or a random one (never the host
/// name: the heartbeat records that beside the id, for operators only).
pub fn replica_id(configured: Option<&str>) -> String {
    configured.map_or_else(
        || format!("tv-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
        str::to_string,
    )
}

/// Page forms: large enough that a 10,000-character field gets a field
/// error rather than a refused request.
fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(MAX_JSON_BODY * 4)
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let res = problem_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource: the id in the path is not valid".into(),
        );
        actix_web::error::InternalError::from_response(err, res).into()
    })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let res = problem_response(StatusCode::BAD_REQUEST, "invalid_query", err.to_string());
        actix_web::error::InternalError::from_response(err, res).into()
    })
}
