//! The refresh benchmark's parts: the apps' names and secrets, the
//! machine, the database's counters, the replicas, the upstream ceiling and
//! the readers. `refresh.rs` runs them in order.

use super::*;

pub(crate) fn appid(i: usize) -> String {
    format!("wx{i:016x}")
}

pub(crate) fn secret(i: usize) -> String {
    format!(
        "{:032x}",
        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x005e_c2e7
    )
}

/// The machine the figures belong to.
pub(crate) fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "cpu": cpu,
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "load_average_at_start": load,
    })
}

/// One replica: its address, pool and server handle.
pub(crate) struct Replica {
    pub(crate) address: String,
    pub(crate) pool: PgPool,
    pub(crate) server: actix_web::dev::ServerHandle,
    /// Its background jobs (the refresh engine among them).
    pub(crate) jobs: tokenvault::jobs::Jobs,
}

/// What the readers saw.
#[derive(Default)]
pub(crate) struct ReadCounters {
    pub(crate) served: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) examples: std::sync::Mutex<Vec<String>>,
}

/// `pg_stat_database` counters of the benchmark database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DbStats {
    pub(crate) active_ms: f64,
    pub(crate) xact_commit: i64,
    pub(crate) xact_rollback: i64,
}

pub(crate) async fn db_stats(pool: &PgPool) -> anyhow::Result<DbStats> {
    let (active_ms, xact_commit, xact_rollback): (f64, i64, i64) = sqlx::query_as(
        "select active_time, xact_commit, xact_rollback from pg_stat_database
          where datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    Ok(DbStats {
        active_ms,
        xact_commit,
        xact_rollback,
    })
}

/// Attempts logged, with and without a time bound.
pub(crate) async fn attempts_between(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from refresh_log where created_at >= $1 and created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?)
}

/// Token calls of the registered apps, and how many apps ever had two in flight.
pub(crate) fn upstream_calls(stats: &BTreeMap<String, AppStats>) -> (u64, u64) {
    stats
        .iter()
        .filter(|(a, _)| !a.starts_with(BASELINE_PREFIX))
        .fold((0, 0), |(calls, dup), (_, s)| {
            (
                calls + s.classic_calls + s.stable_calls,
                dup + u64::from(s.max_in_flight > 1),
            )
        })
}

/// Calls per second that raw clients get from the simulator at the replicas'
/// total concurrency: the most any engine could do.
pub(crate) async fn upstream_ceiling(
    sim: &SimHandle,
    args: &Args,
    latency: &Fault,
) -> anyhow::Result<Option<f64>> {
    if args.baseline_seconds == 0 {
        return Ok(None);
    }
    let workers = args.concurrency as usize * args.replicas;
    let client = reqwest::Client::new();
    let calls = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.baseline_seconds);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let appid = format!("{BASELINE_PREFIX}{w:012x}");
        let secret = secret(w);
        sim.add_app(&appid, &secret);
        sim.inject(&appid, latency.clone())?;
        let url = format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}",
            sim.base_url()
        );
        let (client, calls) = (client.clone(), Arc::clone(&calls));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if let Ok(res) = client.get(&url).send().await
                    && res.bytes().await.is_ok()
                {
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let rate = calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!(
        "upstream ceiling: {workers} raw clients against the simulator ({} ms latency): {rate:.0} calls/s",
        args.latency_ms
    );
    Ok(Some(rate))
}

pub(crate) async fn start_replica(
    pg: &EmbeddedPostgres,
    sim: &SimHandle,
    args: &Args,
    lifetime_s: u64,
    pool_size: u32,
    ring: &Arc<KeyRing>,
) -> anyhow::Result<Replica> {
    let window = (lifetime_s / 10).max(1).to_string();
    let settings = tokenvault::cli::Cli::try_parse_from([
        "tokenvault",
        "--wechat-api-base",
        &sim.base_url(),
        "--upstream-timeout",
        "10",
        "--refresh-tick",
        "1",
        "--stable-renew-window",
        &window,
        "--refresh-margin",
        "0.2",
        "--refresh-jitter",
        "0.05",
        "--retry-base",
        "0.5",
        "--config-retry",
        "5",
        "--refresh-concurrency",
        &args.concurrency.to_string(),
        "--db-max-connections",
        &pool_size.to_string(),
    ])?
    .settings;
    let pool = tokenvault::db::connect(pg.connect_options("tokenvault"), pool_size).await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let app = Application::build(settings, pool.clone(), Arc::clone(ring), listener)?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.handle();
    let jobs = tokenvault::jobs::start(&app.state());
    tokio::spawn(app.run_until_stopped());
    Ok(Replica {
        address,
        pool,
        server,
        jobs,
    })
}

/// Read tokens of random apps from random replicas and check each with the
/// simulator's business endpoint, as a client would use it.
pub(crate) async fn reader(
    replicas: Vec<String>,
    sim: String,
    key: String,
    apps: usize,
    pause: Duration,
    stop: Arc<AtomicBool>,
    counters: Arc<ReadCounters>,
) {
    let client = reqwest::Client::new();
    let note = |what: String| {
        if let Ok(mut e) = counters.examples.lock()
            && e.len() < 10
        {
            e.push(what);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let (r, i) = {
            let mut rng = rand::thread_rng();
            (rng.gen_range(0..replicas.len()), rng.gen_range(0..apps))
        };
        let appid = appid(i);
        let res = client
            .get(format!("{}/api/v1/apps/{appid}/token", replicas[r]))
            .bearer_auth(&key)
            .send()
            .await;
        match res {
            Ok(res) if res.status() == 200 => {
                let Ok(body) = res.json::<Value>().await else {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let token = body["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let expires_at = body["expires_at"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
                counters.served.fetch_add(1, Ordering::Relaxed);
                if expires_at.is_none_or(|e| e <= Utc::now()) {
                    counters.expired.fetch_add(1, Ordering::Relaxed);
                    note(format!(
                        "{appid} via replica {r}: expires_at {expires_at:?} already past"
                    ));
                }
                let check = client
                    .get(format!("{sim}/cgi-bin/getcallbackip"))
                    .query(&[("access_token", &token)])
                    .send()
                    .await;
                match check {
                    Ok(c) => match c.json::<Value>().await {
                        Ok(v) if v["errcode"].as_i64().unwrap_or(0) != 0 => {
                            counters.rejected.fetch_add(1, Ordering::Relaxed);
                            note(format!("{appid} via replica {r}: WeChat said {v}"));
                        }
                        Ok(_) => {}
                        Err(_) => {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(res) if res.status() == 503 => {
                counters.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Ok(res) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                note(format!("{appid} via replica {r}: HTTP {}", res.status()));
            }
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(pause).await;
    }
}
