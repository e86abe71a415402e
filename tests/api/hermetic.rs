//! Nothing in the checkout or in the shell changes a test's outcome. The
//! tests that start processes or parse settings run again in a child process
//! of this test binary, as on a machine someone has used: every setting of
//! `tokenvault` exported with a value that would change an outcome, a
//! `DATABASE_URL` of another project, a leftover data directory (with a key
//! file) in the working directory, and the port the settings name taken, as
//! by a service still running from `cargo run`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

use crate::helpers::{default_settings, sim_settings};

/// Someone else's master key: valid, and not the key of any test database.
const OTHER_KEY: &str = "other:c29tZW9uZSBlbHNlcyBtYXN0ZXIga2V5LCAzMiBCISE=";

/// What the child runs (substring filters): every test that starts a
/// `tokenvault` process, and the in-process settings probe below.
const RERUN: &[&str] = &[
    "cli::",
    "crypto::service_refuses_to_start_with_the_wrong_keys",
    "crypto::keys_commands_rotate_and_report",
    "accounts::operators_see_every_tenant_and_nothing_secret",
    "refresh::a_replica_killed_mid_refresh_is_taken_over",
    "simulator::the_wechat_sim_command_answers_curl_like_wechat",
    "hermetic::in_process_settings_probe",
];

/// Variable the parent passes the settings it expects to the probe in.
const EXPECTED: &str = "HERMETIC_EXPECTED_SETTINGS";

/// Every environment variable a `tokenvault` command reads as a setting.
fn setting_variables() -> BTreeSet<String> {
    fn collect(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            collect(sub, out);
        }
    }
    let mut names = BTreeSet::new();
    collect(&tokenvault::cli::Cli::command(), &mut names);
    names
}

/// A shell someone has used: each variable set to a valid value that would
/// change a test's outcome if it reached the test.
fn used_shell(taken: &str, data_dir: &Path) -> Vec<(String, String)> {
    let data = data_dir.display().to_string();
    let key_file = data_dir.join("master.key").display().to_string();
    let mut env: Vec<(String, String)> = setting_variables()
        .into_iter()
        .map(|name| {
            let value = match name.as_str() {
                "DATABASE_URL" => "postgres://someone:pw@127.0.0.1:1/another_project".into(),
                "TOKENVAULT_BIND" | "TOKENVAULT_SIM_BIND" => taken.into(),
                "TOKENVAULT_DATA_DIR" => data.clone(),
                "TOKENVAULT_MASTER_KEY_FILE" | "TOKENVAULT_DATABASE_PASSWORD_FILE" => {
                    key_file.clone()
                }
                "TOKENVAULT_MASTER_KEYS" => OTHER_KEY.into(),
                "TOKENVAULT_ACTIVE_KEY_ID" => "other".into(),
                "TOKENVAULT_LOG" => "debug".into(),
                "TOKENVAULT_LOG_FORMAT" => "json".into(),
                "TOKENVAULT_SECURE_COOKIES"
                | "TOKENVAULT_SIM_DEMO"
                | "TOKENVAULT_ALERTS_ALLOW_PRIVATE_TARGETS"
                | "TOKENVAULT_INSECURE_UPSTREAM" => "true".into(),
                "TOKENVAULT_PUBLIC_URL" => "https://someone-elses.example".into(),
                "TOKENVAULT_WECHAT_API_BASE" | "TOKENVAULT_WECOM_API_BASE" => {
                    "http://127.0.0.1:9100".into()
                }
                "TOKENVAULT_REPLICA_ID" => "someone-elses-replica".into(),
                "TOKENVAULT_REFRESH_MARGIN" => "0.9".into(),
                "TOKENVAULT_REFRESH_JITTER" => "0.5".into(),
                "TOKENVAULT_RETRY_BASE"
                | "TOKENVAULT_CONFIG_RETRY"
                | "TOKENVAULT_REFRESH_TICK"
                | "TOKENVAULT_STABLE_RENEW_WINDOW"
                | "TOKENVAULT_STATS_CACHE_SECONDS"
                | "TOKENVAULT_CLASSIC_OVERLAP"
                | "TOKENVAULT_INVALIDATE_MIN_AGE"
                | "TOKENVAULT_HEARTBEAT_SECONDS"
                | "TOKENVAULT_KEY_USE_FLUSH_SECONDS"
                | "TOKENVAULT_AUDIT_FLUSH_SECONDS"
                | "TOKENVAULT_LOG_PRUNE_SECONDS"
                | "TOKENVAULT_SESSION_PRUNE_SECONDS"
                | "TOKENVAULT_THROTTLE_PRUNE_SECONDS"
                | "TOKENVAULT_ALERT_POLL_SECONDS"
                | "TOKENVAULT_ALERT_RETRY_BASE"
                | "TOKENVAULT_MAIL_SEND_SECONDS" => "3600".into(),
                "TOKENVAULT_SMTP_URL" => "smtp://someone:secret@127.0.0.1:1".into(),
                "TOKENVAULT_MAIL_FROM" => "someone <someone@elsewhere.test>".into(),
                "TOKENVAULT_DB_MAX_CONNECTIONS" | "TOKENVAULT_SIM_TOKEN_LENGTH" => "16".into(),
                "TOKENVAULT_SESSION_IDLE_MINUTES"
                | "TOKENVAULT_SESSION_MAX_HOURS"
                | "TOKENVAULT_LOGIN_ATTEMPTS_PER_ACCOUNT"
                | "TOKENVAULT_LOGIN_ATTEMPTS_PER_ADDRESS"
                | "TOKENVAULT_UPSTREAM_TIMEOUT"
                | "TOKENVAULT_REFRESH_CONCURRENCY"
                | "TOKENVAULT_REFRESH_LOG_DAYS"
                | "TOKENVAULT_SIM_TOKEN_LIFETIME"
                | "TOKENVAULT_SIM_OVERLAP"
                | "TOKENVAULT_SIM_STABLE_RENEW_WINDOW"
                | "TOKENVAULT_SIM_DAILY_QUOTA"
                | "TOKENVAULT_SIM_MINUTE_QUOTA"
                | "TOKENVAULT_FAILED_KEY_AUTH_PER_MINUTE"
                | "TOKENVAULT_PASSWORD_HASH_CONCURRENCY"
                | "TOKENVAULT_PASSWORD_HASH_WAIT_MS"
                | "TOKENVAULT_MAX_APPS_PER_TENANT"
                | "TOKENVAULT_INVALIDATES_PER_HOUR"
                | "TOKENVAULT_ON_DEMAND_CONCURRENCY"
                | "TOKENVAULT_ON_DEMAND_PER_TENANT"
                | "TOKENVAULT_DB_READ_CONNECTIONS"
                | "TOKENVAULT_KEY_READ_RATE"
                | "TOKENVAULT_ALERT_TIMEOUT"
                | "TOKENVAULT_ALERT_DAMPING_MINUTES"
                | "TOKENVAULT_ALERT_SUMMARY_THRESHOLD" => "1".into(),
                "TOKENVAULT_ALERT_SUMMARY_GATHER_SECONDS" => "300".into(),
                "TOKENVAULT_TRUSTED_PROXIES" => "0.0.0.0/0,::/0".into(),
                "TOKENVAULT_METRICS_TOKEN" => "someone-elses-metrics-token".into(),
                "TOKENVAULT_REFRESH_NOW_COOLDOWN" => "86400".into(),
                "TOKENVAULT_DAILY_UPSTREAM_BUDGET" => "10".into(),
                "TOKENVAULT_SCHEDULER_RESERVE" => "9".into(),
                "TOKENVAULT_SIM_APPS_FILE" => {
                    data_dir.join("no-such-apps.json").display().to_string()
                }
                other => panic!(
                    "{other} is a new setting: give it a value in used_shell() that would \
                     change a test's outcome"
                ),
            };
            (name, value)
        })
        .collect();
    // Read by `tokenvault operator create`, not a flag.
    env.push((
        "TOKENVAULT_OPERATOR_PASSWORD".into(),
        "someone else's password".into(),
    ));
    env
}

/// The in-process settings every test app runs with, as text.
fn settings_as_text() -> String {
    format!(
        "{:#?}\n{:#?}",
        default_settings(),
        sim_settings("http://127.0.0.1:1")
    )
}

#[test]
fn tests_pass_in_a_used_shell() {
    let scratch = tempfile::tempdir().unwrap();
    // A checkout in which the README's first command has run: its data
    // directory, with a key file that belongs to no test database.
    let checkout = scratch.path().join("checkout");
    let leftover = checkout.join(".tokenvault");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("master.key"), format!("{OTHER_KEY}\n")).unwrap();
    // The service from the first command, still running on the port the
    // shell's TOKENVAULT_BIND names.
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = service.local_addr().unwrap().to_string();

    let out = Command::new(std::env::current_exe().unwrap())
        .args(RERUN)
        .arg("--include-ignored")
        .envs(used_shell(&taken, &leftover))
        .env(EXPECTED, settings_as_text())
        .current_dir(&checkout)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests failed in a used shell:\n{stdout}\n{stderr}"
    );
    // Each filter ran at least one test: a renamed test cannot pass unseen.
    for filter in RERUN {
        assert!(
            stdout.contains(&format!("test {filter}")),
            "no test matched {filter:?} in the used shell:\n{stdout}"
        );
    }
    assert!(stdout.contains(" 0 failed;"), "{stdout}");
    assert!(
        std::fs::read_to_string(leftover.join("master.key")).unwrap() == format!("{OTHER_KEY}\n"),
        "a test wrote into the leftover data directory"
    );
}

/// Run only by [`tests_pass_in_a_used_shell`], in its polluted environment:
/// the settings of in-process test apps are those of a clean shell.
#[test]
#[ignore = "a probe that tests_pass_in_a_used_shell runs in a polluted environment"]
fn in_process_settings_probe() {
    let expected = std::env::var(EXPECTED)
        .unwrap_or_else(|_| panic!("run by hermetic::tests_pass_in_a_used_shell, with {EXPECTED}"));
    assert_eq!(settings_as_text(), expected);
}
