//! Building the HTTP application: `Application::build` binds nothing itself
//! (the caller hands it a listener, port 0 in tests) and exposes `port()`.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, NormalizePath, TrailingSlash};
use actix_web::{App, HttpServer, web};
use sqlx::PgPool;
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::config::Settings;
use crate::crypto::KeyRing;
use crate::error::problem_response;

/// Largest JSON body accepted by any endpoint.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Shared state of every request handler.
#[derive(Debug)]
pub struct AppState {
    /// The database pool.
    pub pool: PgPool,
    /// The settings the service started with.
    pub settings: Settings,
    /// The master keys that encrypt secrets at rest, checked against the database.
    pub crypto: Arc<KeyRing>,
}

/// A built, not yet running, HTTP server.
pub struct Application {
    port: u16,
    server: Server,
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
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            pool,
            settings,
            crypto,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(security_headers())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(json_config())
                .configure(api::configure)
                .default_service(web::to(api::not_found))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        Ok(Self { port, server })
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

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
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
