//! The request log: one span per request, with only what an operator reads
//! and never a secret.

/// The root span of every HTTP request: tracing-actix-web's default fields,
/// but `http.target` is the path only. Query strings may carry secrets
/// (`/cgi-bin/token?…&secret=<API key>`, as WeChat SDKs send it), and every
/// log line inside a request repeats its span's fields. A path whose route
/// has a `{token}` segment (an invite link) is logged as its route.
pub struct RedactedRootSpan;

impl tracing_actix_web::RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use tracing::field::Empty;
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let request_id = actix_web::HttpMessage::extensions(request)
            .get::<tracing_actix_web::RequestId>()
            .copied();
        // The client address as everywhere else (`X-Forwarded-For` only from
        // a trusted proxy: anyone can send it). Every field costs formatting on
        // every request: only what an operator reads is kept. A route with
        // a secret in its path (an invite's `{token}`) logs the pattern.
        let path = request.path();
        let target: &str = if route.contains("{token}") {
            &route
        } else {
            path
        };
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %target,
            http.client_ip = super::identity::client_ip(request.request()).map(tracing::field::display),
            http.status_code = Empty,
            request_id = request_id.map(tracing::field::display),
            exception.message = Empty,
            exception.details = Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, test, web};
    use tracing_actix_web::TracingLogger;

    use super::RedactedRootSpan;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the service logs for one request to `route` at `uri`, whose
    /// handler logs one warning.
    async fn logged(route: &str, uri: &str) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(TracingLogger::<RedactedRootSpan>::new())
                .route(
                    route,
                    web::get().to(|| async {
                        tracing::warn!("something inside the request");
                        HttpResponse::Ok().finish()
                    }),
                ),
        )
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert!(res.status().is_success());
        let logged = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        assert!(logged.contains("something inside the request"), "{logged}");
        logged
    }

    #[actix_web::test]
    async fn log_lines_inside_a_request_never_show_its_query_string() {
        let logged = logged(
            "/cgi-bin/token",
            "/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=tvk_secret_value",
        )
        .await;
        assert!(
            logged.contains("/cgi-bin/token"),
            "the path is kept: {logged}"
        );
        assert!(!logged.contains("tvk_secret_value"), "{logged}");
        assert!(!logged.contains("grant_type"), "{logged}");
    }

    #[actix_web::test]
    async fn log_lines_never_show_an_invite_token_in_the_path() {
        let logged = logged("/invite/{token}", "/invite/invite_token_value").await;
        assert!(logged.contains("/invite/{token}"), "{logged}");
        assert!(!logged.contains("invite_token_value"), "{logged}");
    }
}
