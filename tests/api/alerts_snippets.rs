//! The README's webhook verification snippets, run: the Node and Python ones
//! accept a body signed by tokenvault's own signer, and refuse it when the
//! body, the secret or the signature differ, or the timestamp is old.

use std::time::Duration;

use tokenvault::service::alerts::message::webhook_signature;

const README: &str = include_str!("../../README.md");

/// The fenced block of the README that starts with `marker`.
fn block(marker: &str) -> String {
    let start = README
        .find(marker)
        .unwrap_or_else(|| panic!("README has no block starting {marker}"));
    let rest = &README[start..];
    let end = rest.find("\n```").expect("the block ends");
    rest[..end].to_string()
}

/// Run `program args` with `env`; its trimmed standard output, or `None`
/// when the program is not installed (a failure under CI=true).
async fn run(program: &str, args: &[&str], env: &[(&str, String)]) -> Option<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("finished")
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "{program} is required under CI=true"
            );
            None
        }
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

/// The cases every snippet must judge: (what, environment, expected answer).
type Case = (&'static str, Vec<(&'static str, String)>, &'static str);

fn cases() -> Vec<Case> {
    let body = r#"{"id":"d-1","type":"app.failing","organization":"Acme 商城"}"#;
    let now = chrono::Utc::now().timestamp();
    let sig = webhook_signature("whsec", now, body.as_bytes());
    let old = now - 3600;
    let old_sig = webhook_signature("whsec", old, body.as_bytes());
    let env = |secret: &str, ts: i64, sig: &str, body: &str| {
        vec![
            ("TV_SECRET", secret.to_string()),
            ("TV_TS", ts.to_string()),
            ("TV_SIG", sig.to_string()),
            ("TV_BODY", body.to_string()),
        ]
    };
    vec![
        ("valid", env("whsec", now, &sig, body), "true"),
        (
            "tampered body",
            env("whsec", now, &sig, &body.replace("Acme", "Evil")),
            "false",
        ),
        ("wrong secret", env("other", now, &sig, body), "false"),
        ("old timestamp", env("whsec", old, &old_sig, body), "false"),
    ]
}

#[tokio::test]
async fn the_readme_verification_snippets_accept_tokenvault_signatures_and_nothing_else() {
    let node = format!(
        "{}\nconst h = {{ 'x-tokenvault-timestamp': process.env.TV_TS, \
         'x-tokenvault-signature': process.env.TV_SIG }};\n\
         console.log(verify(process.env.TV_SECRET, h, Buffer.from(process.env.TV_BODY, 'utf8')));",
        block("// verify-webhook (Node")
    );
    let python = format!(
        "{}\nimport os\nh = {{'x-tokenvault-timestamp': os.environ['TV_TS'], \
         'x-tokenvault-signature': os.environ['TV_SIG']}}\n\
         print(str(verify(os.environ['TV_SECRET'], h, os.environ['TV_BODY'].encode())).lower())",
        block("# verify-webhook (Python")
    );
    assert!(block("// verify-webhook (Go").contains("hmac.Equal"));
    for (what, env, expected) in cases() {
        if let Some(out) = run("node", &["--input-type=module", "-e", &node], &env).await {
            assert_eq!(out, expected, "node: {what}");
        }
        if let Some(out) = run("python3", &["-c", &python], &env).await {
            assert_eq!(out, expected, "python: {what}");
        }
    }
}
