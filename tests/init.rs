//! A guided first run: `ferry init` writes a starter that applies cleanly, and a missing
//! configuration points to it.

mod harness;

use std::process::Command;

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_DATABASE_URL")
        .output()
        .expect("ferry runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_applies_cleanly_and_a_missing_file_points_to_it() {
    let dir = std::env::temp_dir().join(format!("ferry-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferry.toml");
    let _ = std::fs::remove_file(&path);
    let config = path.to_str().unwrap();

    let missing = ferry(&["--config", config, "apply"]);
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("ferry init"), "{said}");

    let out = ferry(&["--config", config, "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("export HUBSPOT_TOKEN"), "{said}");
    let again = ferry(&["--config", config, "init"]);
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );

    // what `ferry apply --dry-run` does with it, on a fresh hub
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = ferry::config::Config::parse(&text, config).expect("the starter is valid");
    let (_, url) = harness::fresh_db().await;
    let hub = ferry::hub::Hub::connect(&url).await.unwrap();
    ferry::hub::migrate::migrate(&hub).await.unwrap();
    let report = ferry::hub::schema::apply_with(&hub, &parsed, true)
        .await
        .expect("the starter applies cleanly");
    assert!(
        report
            .tables_created
            .iter()
            .any(|t| t == "hubspot.contacts"),
        "{report}"
    );
    let created: Option<String> = hub
        .client()
        .await
        .unwrap()
        .query_one("select to_regclass('hubspot.contacts')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, None, "the dry run created nothing");
    std::fs::remove_dir_all(&dir).unwrap();
}
