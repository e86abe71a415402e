//! The charts of what happened, over plain HTTP: an app with 10,000 refresh
//! log rows still renders its page quickly, with its timeline capped (one
//! mark per outcome and bucket, the validity band merged), in both spans;
//! the dashboard draws a sparkline per app, and the service health page
//! its refresh rate and latency percentiles.

use std::time::{Duration, Instant};

use crate::apps::APPID;
use crate::ui::page;

/// Seed `rows` refresh attempts of the app, one a minute back from now:
/// every tenth a failure (errcode 40001), the token valid to the next
/// full hour plus one (so the validity changes once an hour).
async fn seed_log(pool: &sqlx::PgPool, rows: i32) {
    sqlx::query(
        "insert into refresh_log (tenant_id, app_id, trigger, outcome, error_class, errcode,
                                  errmsg, latency_ms, replica, created_at, valid_until)
         select a.tenant_id, a.id, 'schedule',
                case when g % 10 = 0 then 'failure' else 'success' end,
                case when g % 10 = 0 then 'transient' end,
                case when g % 10 = 0 then 40001 end,
                null, 100 + g % 50, 'seed', now() - make_interval(mins => g),
                date_trunc('hour', now() - make_interval(mins => g)) + interval '2 hours'
           from apps a, generate_series(1, $2) g
          where a.appid = $1",
    )
    .bind(APPID)
    .bind(rows)
    .execute(pool)
    .await
    .unwrap();
}

/// Seed a JS-SDK ticket attempt every seven minutes of the last day: their
/// rows hold no token validity, and must not cut the token's band.
async fn seed_ticket_attempts(pool: &sqlx::PgPool) {
    sqlx::query(
        "insert into refresh_log (tenant_id, app_id, trigger, outcome, latency_ms, replica,
                                  created_at, credential)
         select a.tenant_id, a.id, 'schedule', 'success', 80, 'seed',
                now() - make_interval(mins => g * 7), 'jsapi_ticket'
           from apps a, generate_series(1, 200) g
          where a.appid = $1",
    )
    .bind(APPID)
    .execute(pool)
    .await
    .unwrap();
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[tokio::test]
async fn an_app_with_ten_thousand_log_rows_renders_a_capped_timeline_quickly() {
    let (_sim, app, owner) = crate::apps::with_owner_and_app("Acme", "o@acme.test").await;
    seed_log(&app.pool, 10_000).await;
    seed_ticket_attempts(&app.pool).await;
    let url = |p: &str| format!("{}{p}", app.address);
    let get = |path: String| {
        let sent = owner.client.get(url(&path)).send();
        async move {
            let started = Instant::now();
            let (status, html) = page(sent.await.unwrap()).await;
            (status, html, started.elapsed())
        }
    };

    // 24 hours: 5-minute buckets, at most one mark per outcome and bucket.
    let (status, html, took) = get(format!("/apps/{APPID}")).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(3), "the page took {took:?}");
    let in_day: i64 = sqlx::query_scalar(
        "select count(*) from refresh_log where created_at >= now() - interval '24 hours'
            and credential = 'access_token'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(in_day >= 1439, "{in_day}");
    let marks = count(&html, "<g class=\"mark\"");
    assert!((288..=288 * 4 + 4).contains(&marks), "{marks} marks");
    assert!(
        html.contains(&format!("Last 24 hours: {in_day} attempts")),
        "the summary counts every attempt of the window"
    );
    assert!(html.contains("id=\"timeline-chart\""));
    assert!(html.contains("role=\"group\" aria-labelledby=\"timeline-title timeline-desc\""));
    assert!(html.contains("scheduled · errcode 40001"));
    assert!(html.contains("tabindex=\"0\" role=\"img\" aria-label=\""));
    // The token was valid throughout: one merged piece of band, no gap
    // (the ticket attempts between the token's do not cut it).
    let valid = count(&html, "class=\"band-valid\"");
    assert!((1..=2).contains(&valid), "{valid} pieces: {html}");
    assert_eq!(count(&html, "class=\"band-expired\""), 0);
    assert!(html.contains("aria-current=\"true\">Last 24 hours</a>"));
    // The budget chart: calls per hour of the quota day, and the meter.
    assert!(html.contains("id=\"budget-chart\""));
    assert!(count(&html, "class=\"chart-calls\"") <= 24);
    assert!(html.contains("class=\"meter-ok\""));

    // 7 days: 30-minute buckets.
    let (status, html, took) = get(format!("/apps/{APPID}?span=7d")).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(3), "the page took {took:?}");
    let marks = count(&html, "<g class=\"mark\"");
    assert!((300..=336 * 4 + 4).contains(&marks), "{marks} marks");
    let in_week: i64 =
        sqlx::query_scalar("select count(*) from refresh_log where credential = 'access_token'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(in_week > 10_000, "{in_week}");
    assert!(html.contains(&format!("Last 7 days: {in_week} attempts")));
    assert!(html.contains("aria-current=\"true\">Last 7 days</a>"));
    // Chinese too.
    let (status, html, _) = get(format!("/lang/zh-CN?back=/apps/{APPID}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("刷新时间线"), "{html}");
    assert!(html.contains("最近 24 小时："));
    let (status, _, _) = get(format!("/lang/en?back=/apps/{APPID}")).await;
    assert_eq!(status, 200);

    // A span that is not one is a clear 400.
    let (status, html, _) = get(format!("/apps/{APPID}?span=1y")).await;
    assert_eq!(status, 400);
    assert!(html.contains("<title>400 "), "{html}");

    // The dashboard: the app's 24-hour sparkline.
    let (status, html, took) = get("/dashboard".into()).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(3), "the dashboard took {took:?}");
    assert!(html.contains("class=\"sparkline\""));
    assert!(html.contains(&format!("aria-label=\"Last 24 hours: {in_day} attempts, ")));
    assert!(count(&html, "class=\"chart-failure\"") <= 24);

    // The service health page: refreshes per minute and latency percentiles.
    let (status, html, _) = get("/status".into()).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"rate-chart\""));
    assert!(count(&html, "<rect class=\"chart-") <= 144 * 4);
    assert!(html.contains("id=\"pct-chart\""));
    assert!(html.contains("Refreshes per minute, last 24 hours"));
}
