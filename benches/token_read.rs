//! Token-read benchmark: `cargo bench --bench token_read`.
//!
//! Loads `GET /api/v1/apps/{appid}/token` (valid API key, cached token) with
//! `wrk` at 64 connections and, in the same run with the same tool and
//! settings, a bare actix-web handler that returns a constant: the ceiling
//! this machine allows. Prints requests/s, p50/p99 latency and the ratio, and
//! writes them to `target/bench/token_read.json`.
//!
//! Options (environment): `BENCH_SECONDS` per load and round (default 10),
//! `BENCH_ROUNDS` (3), `BENCH_CONNECTIONS` (64), `BENCH_THREADS` (2). Needs
//! `wrk` (Debian: `apt-get install wrk`).

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser as _;
use serde_json::{Value, json};
use tokenvault::crypto::KeyRing;
use tokenvault::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use tokenvault::startup::Application;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

const APPID: &str = "wx00000000000000be";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const KEYS: &str = "b1:YmVuY2gta2V5LW9uZS0zMi1ieXRlcy1sb25nLS0tLS0=";

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Parse wrk's latency like "1.23ms", "456.00us" or "1.02s" into milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn run_wrk(url: &str, header: Option<&str>) -> Load {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 64);
    let threads = env_or("BENCH_THREADS", 2);
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--latency"]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap_or_else(|e| {
        eprintln!("cannot run wrk ({e}): install it first (Debian: apt-get install wrk)");
        std::process::exit(2);
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
    };
    let errors: u64 = text
        .lines()
        .filter(|l| l.contains("Non-2xx or 3xx responses") || l.contains("Socket errors"))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
        })
        .sum();
    let load = Load {
        requests_per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: field("50%").and_then(|v| millis(&v)).unwrap_or(f64::NAN),
        p99_ms: field("99%").and_then(|v| millis(&v)).unwrap_or(f64::NAN),
        errors,
    };
    if load.requests_per_second == 0.0 {
        eprintln!(
            "wrk gave no figures:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
    load
}

async fn constant() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"appid":"wx00000000000000be","access_token":"constant","expires_in":7200}"#)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "cpu_model": cpu,
        "memory_gib": mem_kb / 1024 / 1024,
    })
}

#[tokio::main]
#[allow(
    clippy::too_many_lines,
    reason = "the benchmark reads as one sequence of steps"
)]
async fn main() -> anyhow::Result<()> {
    // The ceiling: a bare actix-web handler, same workers as tokenvault's default.
    let bare = TcpListener::bind("127.0.0.1:0")?;
    let bare_url = format!("http://{}/token", bare.local_addr()?);
    let bare_server = HttpServer::new(|| App::new().route("/token", web::get().to(constant)))
        .listen(bare)?
        .disable_signals()
        .run();
    let bare_handle = bare_server.handle();
    tokio::spawn(bare_server);

    // tokenvault with its own PostgreSQL and the simulator.
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_path_buf();
    let pg = tokio::task::spawn_blocking(move || {
        EmbeddedPostgres::start(
            &data,
            &EmbeddedOptions {
                ephemeral: true,
                max_connections: Some(100),
            },
        )
    })
    .await??;
    tokenvault::db::ensure_database(&pg, "bench").await?;
    let pool = tokenvault::db::connect(pg.connect_options("bench"), 20).await?;
    tokenvault::db::migrate(&pool).await?;
    let sim = WeChatSimulator::start(SimConfig::default())?;
    sim.add_app(APPID, SECRET);
    // One key reads as fast as wrk can: its read-rate limit is raised so
    // that the benchmark measures reads (the limiter is still consulted on
    // every read, as in production).
    let settings = tokenvault::cli::Cli::try_parse_from([
        "tokenvault",
        "--wechat-api-base",
        &sim.base_url(),
        "--key-read-rate",
        "10000000",
    ])?
    .settings;
    // Logging as the service runs by default (`--log info`, text to stderr):
    // every request gets its span, as in production.
    tokenvault::telemetry::init(&settings.log, settings.log_format);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Application::build(
        settings,
        pool.clone(),
        Arc::new(KeyRing::parse(KEYS)?),
        listener,
    )?;
    let tv_handle = app.handle();
    let jobs = tokenvault::jobs::start(&app.state());
    tokio::spawn(app.run_until_stopped());

    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let signup: Value = client
        .post(format!("{base}/api/v1/signup"))
        .json(&json!({ "organization": "Bench", "email": "bench@bench.test", "password": "correct horse battery" }))
        .send()
        .await?
        .json()
        .await?;
    let csrf = signup["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key: Value = client
        .post(format!("{base}/api/v1/api-keys"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({ "name": "bench", "read_only": true }))
        .send()
        .await?
        .json()
        .await?;
    let key = key["key"].as_str().unwrap_or_default().to_string();
    let registered: Value = client
        .post(format!("{base}/api/v1/apps"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({ "appid": APPID, "secret": SECRET }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        registered["verification"]["ok"] == true,
        "registration failed: {registered}"
    );
    let token_url = format!("{base}/api/v1/apps/{APPID}/token");
    let check = client.get(&token_url).bearer_auth(&key).send().await?;
    anyhow::ensure!(
        check.status() == 200,
        "token read failed: {}",
        check.status()
    );

    eprintln!("warming up…");
    let header = format!("Authorization: Bearer {key}");
    let _ = tokio::task::spawn_blocking({
        let (u, h) = (token_url.clone(), header.clone());
        move || {
            let mut cmd = Command::new("wrk");
            cmd.args(["-t1", "-c8", "-d2s", "-H", &h, &u]).output()
        }
    })
    .await?;

    // Rounds of (ceiling, /healthz, token read), each load in turn: a
    // change in the machine's background load then shows in every figure
    // of a round alike, and the medians over rounds ignore one bad round.
    let rounds = env_or("BENCH_ROUNDS", 3).max(1);
    let healthz_url = format!("{base}/healthz");
    let mut measured: Vec<[Load; 3]> = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: the bare actix-web handler (ceiling)…");
        let u = bare_url.clone();
        let ceiling = tokio::task::spawn_blocking(move || run_wrk(&u, None)).await?;
        eprintln!("round {round}/{rounds}: tokenvault's /healthz (middleware, no auth)…");
        let u = healthz_url.clone();
        let healthz = tokio::task::spawn_blocking(move || run_wrk(&u, None)).await?;
        eprintln!("round {round}/{rounds}: tokenvault's token read…");
        let (u, h) = (token_url.clone(), header.clone());
        let tv = tokio::task::spawn_blocking(move || run_wrk(&u, Some(&h))).await?;
        eprintln!(
            "round {round}/{rounds}: ceiling {:.0}/s, /healthz {:.0}/s, token read {:.0}/s (p99 {:.2} ms): {:.0} %",
            ceiling.requests_per_second,
            healthz.requests_per_second,
            tv.requests_per_second,
            tv.p99_ms,
            100.0 * tv.requests_per_second / ceiling.requests_per_second
        );
        measured.push([ceiling, healthz, tv]);
    }
    let median = |f: &dyn Fn(&[Load; 3]) -> f64| {
        let mut v: Vec<f64> = measured.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let figures = |i: usize| {
        json!({
            "requests_per_second": median(&|r| r[i].requests_per_second),
            "p50_ms": median(&|r| r[i].p50_ms),
            "p99_ms": median(&|r| r[i].p99_ms),
            "errors": measured.iter().map(|r| r[i].errors).sum::<u64>(),
        })
    };
    let ratio = median(&|r| r[2].requests_per_second / r[0].requests_per_second);
    let errors: u64 = measured.iter().map(|r| r[2].errors).sum();
    let rounds_json: Vec<Value> = measured
        .iter()
        .map(|r| {
            json!({
                "ceiling": r[0].requests_per_second,
                "healthz": r[1].requests_per_second,
                "token_read": r[2].requests_per_second,
                "token_read_p99_ms": r[2].p99_ms,
                "ratio": r[2].requests_per_second / r[0].requests_per_second,
            })
        })
        .collect();

    let report = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "machine": machine(),
        "load": { "tool": "wrk", "connections": env_or("BENCH_CONNECTIONS", 64), "threads": env_or("BENCH_THREADS", 2), "seconds": env_or("BENCH_SECONDS", 10), "rounds": rounds },
        "medians": {
            "ceiling": figures(0),
            "healthz": figures(1),
            "token_read": figures(2),
            "ratio": ratio,
        },
        "rounds": rounds_json,
        "targets": { "requests_per_second": 50_000, "p99_ms": 5.0, "ratio": 0.6 },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    println!(
        "medians of {rounds} rounds: token read {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | bare actix {:.0} req/s, p99 {:.2} ms | /healthz {:.0} req/s | ratio {:.0} %",
        median(&|r| r[2].requests_per_second),
        median(&|r| r[2].p50_ms),
        median(&|r| r[2].p99_ms),
        median(&|r| r[0].requests_per_second),
        median(&|r| r[0].p99_ms),
        median(&|r| r[1].requests_per_second),
        ratio * 100.0
    );
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/token_read.json",
        serde_json::to_string_pretty(&report)?,
    )?;

    tokenvault::jobs::stop_replica(jobs, &tv_handle).await;
    bare_handle.stop(true).await;
    pool.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::task::spawn_blocking(move || pg.stop()).await??;
    anyhow::ensure!(errors == 0, "{errors} failed token reads under load");
    Ok(())
}
