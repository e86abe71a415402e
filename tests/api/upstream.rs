//! The real WeChat client against the simulator: both endpoints, every
//! errcode classified, every kind of upstream trouble a classified failure.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret as _, SecretString};
use tokenvault::domain::{AppId, TokenMode};
use tokenvault::upstream::simulator::{Fault, SimConfig, TokenKind, WeChatSimulator, errcode};
use tokenvault::upstream::wechat::WeChatClient;
use tokenvault::upstream::{ErrorClass, FetchRequest, TokenProvider, errcodes};

use crate::apps::{APPID, SECRET};

fn client(base: &str) -> WeChatClient {
    WeChatClient::new(base, Duration::from_millis(500), Duration::from_millis(800)).unwrap()
}

async fn fetch(
    client: &WeChatClient,
    secret: &str,
    mode: TokenMode,
    force: bool,
) -> Result<tokenvault::upstream::FreshToken, tokenvault::upstream::FetchFailure> {
    let appid = AppId::parse("appid", APPID).unwrap();
    let secret = SecretString::from(secret);
    client
        .fetch(FetchRequest {
            appid: &appid,
            secret: &secret,
            mode,
            force_refresh: force,
        })
        .await
}

#[tokio::test]
async fn fetches_classic_and_stable_tokens() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let c = client(&sim.base_url());
    let classic = fetch(&c, SECRET, TokenMode::Classic, false).await.unwrap();
    assert_eq!(
        classic.access_token.expose_secret(),
        sim.current_token(APPID, TokenKind::Classic).unwrap()
    );
    assert_eq!(classic.expires_in, Duration::from_secs(4));
    let stable = fetch(&c, SECRET, TokenMode::Stable, false).await.unwrap();
    let again = fetch(&c, SECRET, TokenMode::Stable, false).await.unwrap();
    assert_eq!(
        stable.access_token.expose_secret(),
        again.access_token.expose_secret(),
        "same stable token"
    );
    let forced = fetch(&c, SECRET, TokenMode::Stable, true).await.unwrap();
    assert_ne!(
        forced.access_token.expose_secret(),
        stable.access_token.expose_secret()
    );
    assert_eq!(sim.stats(APPID).force_refresh_calls, 1);
}

#[tokio::test]
async fn every_errcode_is_classified_as_the_api_table_says() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let c = client(&sim.base_url());
    for code in errcode::INJECTABLE {
        sim.inject_errcode(APPID, code, 2).unwrap();
        for mode in [TokenMode::Classic, TokenMode::Stable] {
            let f = fetch(&c, SECRET, mode, false).await.unwrap_err();
            assert_eq!(f.errcode, Some(i64::from(code)));
            assert_eq!(f.class, errcodes::classify(i64::from(code)), "{code}");
            assert!(!f.errmsg.contains(SECRET));
        }
    }
    // A wrong secret, for real: 40001, configuration.
    let f = fetch(
        &c,
        "ffffffffffffffffffffffffffffffff",
        TokenMode::Classic,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (f.errcode, f.class),
        (Some(40001), ErrorClass::Configuration)
    );
}

#[tokio::test]
async fn upstream_trouble_is_a_transient_failure_never_a_panic() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let c = client(&sim.base_url());
    let faults = [
        (Fault::Timeout { times: Some(1) }, "did not answer in time"),
        (
            Fault::HttpStatus {
                status: 502,
                times: Some(1),
            },
            "HTTP 502",
        ),
        (Fault::BadJson { times: Some(1) }, "malformed"),
        (Fault::Close { times: Some(1) }, "WeChat"),
        (Fault::Busy { times: Some(1) }, "system error"),
    ];
    for (fault, expected) in faults {
        sim.inject(APPID, fault.clone()).unwrap();
        let started = Instant::now();
        let f = fetch(&c, SECRET, TokenMode::Classic, false)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(f.class, ErrorClass::Transient, "{fault:?}");
        assert!(f.errmsg.contains(expected), "{fault:?}: {}", f.errmsg);
        // The classic URL carries the secret; errors never do.
        assert!(!f.errmsg.contains(SECRET), "{fault:?}: {}", f.errmsg);
        sim.clear_faults(APPID).unwrap();
    }
    // Nothing listening at all.
    let dead = client("http://127.0.0.1:9");
    let f = fetch(&dead, SECRET, TokenMode::Stable, false)
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Transient);
    assert!(f.errmsg.contains("cannot connect"), "{}", f.errmsg);
    // And after the trouble, it works again.
    assert!(fetch(&c, SECRET, TokenMode::Classic, false).await.is_ok());
}
