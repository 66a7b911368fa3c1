//! Start-up refusals: each bad setup ends ferry with one clear sentence and exit status 1,
//! never a panic.

mod harness;

use std::process::Command;

const GOOD_MAPPING: &str = r#"
[[mappings]]
connection = "hubspot"
object = "contacts"
table = "hubspot.contacts"
fields = [{ column = "email", property = "email" }]
"#;

fn connection(kind: &str, token_env: &str) -> String {
    format!(
        "[engine]\nlisten = \"127.0.0.1:0\"\n\n[connections.hubspot]\nkind = \"{kind}\"\nbase_url = \"http://127.0.0.1:9\"\ntoken_env = \"{token_env}\"\n{GOOD_MAPPING}"
    )
}

/// Runs `ferry run` with the given config and database URL; returns (status, stderr).
fn ferry_run(config: &str, db_url: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!(
        "ferry-startup-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferry.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--config")
        .arg(&path)
        .arg("run")
        .env("FERRY_DATABASE_URL", db_url)
        .env("FERRY_STARTUP_TOKEN", "t")
        .env_remove("FERRY_STARTUP_MISSING")
        .env("FERRY_LOG", "off")
        .output()
        .expect("ferry runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn assert_one_sentence(stderr: &str, expect: &str) {
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line: {stderr}");
    assert!(lines[0].starts_with("ferry: "), "{stderr}");
    assert!(
        lines[0].contains(expect),
        "expected `{expect}` in: {stderr}"
    );
}

#[test]
fn wrong_database_url() {
    let (code, err) = ferry_run(
        &connection("hubspot", "FERRY_STARTUP_TOKEN"),
        "postgres://ferry@127.0.0.1:1/nowhere",
    );
    assert_eq!(code, 1);
    assert_one_sentence(
        &err,
        "cannot connect to the hub database postgres://ferry@127.0.0.1:1/nowhere",
    );
}

#[test]
fn unparseable_database_url() {
    let (code, err) = ferry_run(
        &connection("hubspot", "FERRY_STARTUP_TOKEN"),
        "postgres://ferry@127.0.0.1:notaport/x",
    );
    assert_eq!(code, 1);
    assert_one_sentence(&err, "the database URL is not valid");
}

#[test]
fn unknown_connector_kind() {
    let (code, err) = ferry_run(
        &connection("pipedrive", "FERRY_STARTUP_TOKEN"),
        "postgres://unused@127.0.0.1:1/x",
    );
    assert_eq!(code, 1);
    assert_one_sentence(
        &err,
        "connection `hubspot`: unknown connector kind `pipedrive` (known: hubspot, zendesk, salesforce, stripe, rest)",
    );
}

#[test]
fn missing_environment_variable() {
    let (code, err) = ferry_run(
        &connection("hubspot", "FERRY_STARTUP_MISSING"),
        "postgres://unused@127.0.0.1:1/x",
    );
    assert_eq!(code, 1);
    assert_one_sentence(
        &err,
        "environment variable FERRY_STARTUP_MISSING (token_env) is not set",
    );
}

#[test]
fn server_without_logical_wal_level() {
    // a second cluster, restarted with wal_level=replica
    let pg = harness::new_cluster("replica");
    pg.stop();
    let conf = pg.dir.join("pg/postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nwal_level = replica\n");
    std::fs::write(&conf, text).unwrap();
    let pg = ferry::hub::embedded::EmbeddedPg::start(&pg.dir).unwrap();
    let (code, err) = ferry_run(
        &connection("hubspot", "FERRY_STARTUP_TOKEN"),
        &pg.url("postgres"),
    );
    pg.stop();
    let _ = std::fs::remove_dir_all(&pg.dir);
    assert_eq!(code, 1);
    assert_one_sentence(&err, "the hub server has wal_level=replica; ferry needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL");
}

#[tokio::test]
async fn role_without_replication() {
    let (_, url) = harness::fresh_db().await;
    let hub = ferry::hub::Hub::connect(&url).await.unwrap();
    hub.client()
        .await
        .unwrap()
        .batch_execute("create role plain_user login")
        .await
        .unwrap();
    let plain = url.replacen("postgres@", "plain_user@", 1);
    let (code, err) = ferry_run(&connection("hubspot", "FERRY_STARTUP_TOKEN"), &plain);
    assert_eq!(code, 1);
    assert_one_sentence(
        &err,
        "role plain_user lacks the REPLICATION attribute: run ALTER ROLE plain_user REPLICATION;",
    );
}
