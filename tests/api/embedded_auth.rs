//! The embedded PostgreSQL admits only its own superuser with the SCRAM
//! password kept in the data directory (mode 0600): whoever reaches its
//! socket without the password (another process of the `postgres` system
//! user when tokenvault runs as root) is refused. A cluster made by an older
//! tokenvault, which trusted its socket, is upgraded on start, and says so.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokenvault::db::embedded::{EmbeddedOptions, EmbeddedPostgres, PASSWORD_FILE};

use crate::helpers::Sandbox;

fn start(data_dir: &Path) -> EmbeddedPostgres {
    let options = EmbeddedOptions {
        ephemeral: true,
        max_connections: None,
    };
    EmbeddedPostgres::start(data_dir, &options).expect("start the embedded cluster")
}

/// The socket of `pg` as the superuser, with `password` if any (never
/// PostgreSQL's environment variables or a `.pgpass`).
fn as_superuser(pg: &EmbeddedPostgres, password: Option<&str>) -> PgConnectOptions {
    let options = PgConnectOptions::new_without_pgpass()
        .socket(pg.socket_dir())
        .port(5432)
        .username("tokenvault")
        .database("postgres");
    match password {
        Some(p) => options.password(p),
        None => options,
    }
}

/// Connections with the cluster's password succeed; without it, or with
/// another, they are refused by password authentication.
async fn only_the_password_is_admitted(pg: &EmbeddedPostgres) {
    let mut ok = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("the cluster's own password is admitted");
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut ok)
        .await
        .unwrap();
    assert_eq!(one, 1);
    for password in [None, Some(""), Some("wrong password")] {
        let refused = PgConnection::connect_with(&as_superuser(pg, password)).await;
        let err = refused
            .err()
            .unwrap_or_else(|| panic!("{password:?} admitted"));
        assert!(err.to_string().contains("password"), "{err}");
    }
}

fn check_files(data_dir: &Path) {
    let file = data_dir.join(PASSWORD_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    assert!(std::fs::read_to_string(&file).unwrap().trim().len() >= 32);
    let hba = std::fs::read_to_string(data_dir.join("pg/pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(rules, ["local all tokenvault scram-sha-256"], "{hba}");
}

#[tokio::test]
async fn the_embedded_cluster_admits_only_its_password() {
    let sandbox = Sandbox::new();
    let data_dir = sandbox.data_dir();
    let dir = data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || start(&dir))
        .await
        .unwrap();
    check_files(&data_dir);
    only_the_password_is_admitted(&pg).await;
    let first = std::fs::read_to_string(data_dir.join(PASSWORD_FILE)).unwrap();
    tokio::task::spawn_blocking(move || pg.stop())
        .await
        .unwrap()
        .unwrap();

    // A cluster of an older tokenvault: trust on the socket, no password file.
    std::fs::write(data_dir.join("pg/pg_hba.conf"), "local all all trust\n").unwrap();
    std::fs::remove_file(data_dir.join(PASSWORD_FILE)).unwrap();
    let out = sandbox.tokenvault().arg("migrate").output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("upgraded the embedded PostgreSQL"), "{said}");
    let second = std::fs::read_to_string(data_dir.join(PASSWORD_FILE)).unwrap();
    assert_ne!(first, second, "a new password for the upgraded cluster");
    assert!(
        !said.contains(second.trim()),
        "the password is never printed"
    );

    let dir = data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || start(&dir))
        .await
        .unwrap();
    check_files(&data_dir);
    only_the_password_is_admitted(&pg).await;
    // Started again, nothing more to upgrade: the same password.
    assert_eq!(
        std::fs::read_to_string(data_dir.join(PASSWORD_FILE)).unwrap(),
        second
    );
    tokio::task::spawn_blocking(move || pg.stop())
        .await
        .unwrap()
        .unwrap();

    // The cluster removed to start afresh, its password file left behind:
    // the new cluster gets a password of its own, never none.
    std::fs::remove_dir_all(data_dir.join("pg")).unwrap();
    let dir = data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || start(&dir))
        .await
        .unwrap();
    check_files(&data_dir);
    only_the_password_is_admitted(&pg).await;
    assert_ne!(
        std::fs::read_to_string(data_dir.join(PASSWORD_FILE)).unwrap(),
        second
    );
    tokio::task::spawn_blocking(move || pg.stop())
        .await
        .unwrap()
        .unwrap();
}
