//! The compose deployment's database connection is verified: the
//! certificate `deploy/db-certificate.sh` makes (as the compose file says
//! to) lets tokenvault connect with `sslmode=verify-full`, and a server
//! reached by a name the certificate does not carry is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::Sandbox;
use crate::helpers::smtp::free_port;

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join(name).is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

/// `program` as the `postgres` user when this test runs as root.
fn as_server_user(sandbox: &Sandbox, program: &Path) -> Command {
    if nix::unistd::Uid::effective().is_root() {
        let mut cmd = sandbox.command("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        sandbox.command(program)
    }
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {said}");
    said
}

/// A PostgreSQL server with TLS on a free port, stopped when dropped.
struct TlsServer<'a> {
    sandbox: &'a Sandbox,
    dir: PathBuf,
}

impl Drop for TlsServer<'_> {
    fn drop(&mut self) {
        let mut stop = as_server_user(self.sandbox, &pg_bin("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.join("pg"))
            .args(["-m", "immediate", "stop"]);
        let _ = stop.output();
    }
}

#[test]
fn the_compose_database_certificate_is_verified() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/db-certificate.sh");
    let certs = dir.join("secrets");
    let mut make = sandbox.command("sh");
    make.arg(&script).arg(&certs).arg("localhost");
    run(make);
    std::fs::write(dir.join("pw"), "compose-db-password\n").unwrap();
    if nix::unistd::Uid::effective().is_root() {
        run({
            let mut c = sandbox.command("chown");
            c.args(["-R", "postgres"]).arg(&dir);
            c
        });
    }
    let mut initdb = as_server_user(&sandbox, &pg_bin("initdb"));
    initdb
        .arg("-D")
        .arg(dir.join("pg"))
        .args(["-U", "tokenvault", "--auth=scram-sha-256"]);
    initdb.arg(format!("--pwfile={}", dir.join("pw").display()));
    run(initdb);
    let port = free_port();
    let options = format!(
        "-p {port} -k {d} -c listen_addresses=127.0.0.1 -c ssl=on \
         -c ssl_cert_file={d}/secrets/db_server.crt -c ssl_key_file={d}/secrets/db_server.key",
        d = dir.display()
    );
    let mut start = as_server_user(&sandbox, &pg_bin("pg_ctl"));
    start
        .arg("-D")
        .arg(dir.join("pg"))
        .arg("-l")
        .arg(dir.join("pg.log"));
    start.args(["-w", "-o", &options, "start"]);
    run(start);
    let _server = TlsServer {
        sandbox: &sandbox,
        dir: dir.clone(),
    };

    let migrate = |host: &str| {
        let url = format!(
            "postgres://tokenvault@{host}:{port}/postgres?sslmode=verify-full&sslrootcert={}",
            certs.join("db_ca.pem").display()
        );
        sandbox
            .tokenvault()
            .env("DATABASE_URL", url)
            .env("TOKENVAULT_DATABASE_PASSWORD_FILE", dir.join("pw"))
            .arg("migrate")
            .output()
            .unwrap()
    };
    let out = migrate("localhost");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    // The same server by a name its certificate does not carry: refused.
    let out = migrate("127.0.0.1");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("certificate"), "{said}");
    assert!(!said.contains("compose-db-password"), "{said}");
}
