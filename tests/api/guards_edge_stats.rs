//! Cached figures: `/metrics` needs its token and measures the database
//! once per interval; the service health likewise, rendered per caller.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::guards_edge::{METRICS_TOKEN, body, metric, scrape, spawn};

#[tokio::test]
async fn metrics_need_the_token_and_measure_the_database_once_per_interval() {
    let app = spawn(&["--stats-cache-seconds", "4"]).await;
    let url = format!("{}/metrics", app.address);
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(body(res).await["code"], "unauthenticated");
    let res = app
        .client
        .get(&url)
        .bearer_auth("metrics-token-for-tests-0124")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let text = res.text().await.unwrap();
    assert!(!text.contains(METRICS_TOKEN));

    // Many scrapes at once: one measurement.
    let measured_at = Instant::now();
    let scrapes: Vec<_> = (0..25)
        .map(|_| {
            let client = app.client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                client
                    .get(url)
                    .bearer_auth(METRICS_TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for s in scrapes {
        assert_eq!(s.await.unwrap(), 200);
    }
    let refreshes = "tokenvault_stats_refreshes_total{cache=\"metrics\"}";
    assert!((metric(&app, refreshes).await - 1.0).abs() < f64::EPSILON);
    let apps = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("tokenvault_apps{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(apps(&scrape(&app).await).abs() < f64::EPSILON);

    // A change in the database shows only once the interval is over.
    let owner = app.signup("Metrics Co", "o@metrics.test").await;
    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": "wx0123456789abcdef", "secret": "0123456789abcdef0123456789abcdef", "verify": false }),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let seen = apps(&scrape(&app).await);
    assert!(
        measured_at.elapsed() < Duration::from_millis(3500),
        "too slow to tell the cache from the database: {:?}",
        measured_at.elapsed()
    );
    assert!(seen.abs() < f64::EPSILON, "still the cached figure");
    // Past the interval (counted from just before the first measurement).
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(measured_at.elapsed())).await;
    assert!((apps(&scrape(&app).await) - 1.0).abs() < f64::EPSILON);
    assert!((metric(&app, refreshes).await - 2.0).abs() < f64::EPSILON);
}

#[tokio::test]
async fn service_health_is_measured_once_per_interval_and_rendered_per_caller() {
    let app = spawn(&["--stats-cache-seconds", "4"]).await;
    let owner = app.signup("Health Co", "o@health.test").await;
    let operator = crate::ui_ops::create_operator(&app, "ops@health.test").await;
    let refreshes = "tokenvault_stats_refreshes_total{cache=\"service_health\"}";
    assert!(metric(&app, refreshes).await.abs() < f64::EPSILON);

    let measured_at = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = if i % 2 == 0 {
                owner.client.clone()
            } else {
                operator.client.clone()
            };
            let url = format!("{}/api/v1/service-health", app.address);
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), 200);
    }
    assert!((metric(&app, refreshes).await - 1.0).abs() < f64::EPSILON);

    // A new replica row appears only after the interval; then the operator
    // sees its host and the tenant does not, from one measurement.
    sqlx::query(
        "insert into replicas (id, hostname, version, started_at, last_seen_at)
         values ('other-replica', 'host-secret', '0.0.1', now(), now())",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let ids = |h: &Value| -> Vec<String> {
        h["replicas"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let h: Value = owner
        .get("/api/v1/service-health")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        measured_at.elapsed() < Duration::from_millis(3500),
        "too slow to tell the cache from the database: {:?}",
        measured_at.elapsed()
    );
    let not_yet = tokenvault::domain::health::replica_label("other-replica");
    assert!(!ids(&h).contains(&not_yet), "{h}");
    // Past the interval (counted from just before the first measurement).
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(measured_at.elapsed())).await;
    let for_tenant: Value = owner
        .get("/api/v1/service-health")
        .await
        .json()
        .await
        .unwrap();
    let for_operator: Value = operator
        .get("/api/v1/service-health")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        for_tenant["checked_at"], for_operator["checked_at"],
        "one measurement"
    );
    // Operators see the id, tenants the opaque label.
    let label = tokenvault::domain::health::replica_label("other-replica");
    let host_of = |h: &Value| {
        h["replicas"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "other-replica" || r["id"] == label.as_str())
            .map_or_else(|| panic!("not listed: {h}"), |r| r["host"].clone())
    };
    assert_eq!(host_of(&for_operator), "host-secret");
    assert!(host_of(&for_tenant).is_null());
    assert!(!for_tenant.to_string().contains("host-secret"));
    assert!(!for_tenant.to_string().contains("other-replica"));
    assert!((metric(&app, refreshes).await - 2.0).abs() < f64::EPSILON);
}
