//! The README's first command, tried as a new user would: `ferry demo` brings up PostgreSQL,
//! seeded HubSpot and Zendesk simulators and ferry, prints where they are, and keeps both apps
//! identical through crm.people: a phone changed in Zendesk reaches HubSpot, psql edits reach
//! the apps, an app edit reaches psql; SIGTERM stops everything, PostgreSQL included.

mod harness;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::eventually;
use serde_json::{json, Value};

fn field<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .unwrap_or_else(|| panic!("demo output has no `{prefix}` line: {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_syncs_both_ways_and_stops_cleanly() {
    // the data directory inside a private (0700) one, as a clone in root's home is: as root,
    // the cluster goes where the postgres user can reach it, and the banner says where
    let home = std::env::temp_dir().join(format!(
        "ferry-demo-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let dir = home.join(".ferry");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "demo",
            "--contacts",
            "1000",
            "--sim-listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ferry demo starts");
    // a failed assertion below still stops the demo (and its PostgreSQL)
    let mut stop_on_panic = StopOnDrop(Some(child.id()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // read to the end, so the demo never writes into a closed pipe
        let mut lines = vec![];
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            lines.push(line);
            if !sent && lines.last().is_some_and(|l| l.contains("Press Ctrl-C")) {
                let _ = tx.send(lines.clone());
                sent = true;
            }
        }
        if !sent {
            let _ = tx.send(lines);
        }
    });
    let lines = tokio::task::spawn_blocking(move || {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("demo prints its banner")
    })
    .await
    .unwrap();
    let placed = lines
        .iter()
        .find(|l| l.contains("Press Ctrl-C"))
        .cloned()
        .unwrap_or_default();
    let relocated = placed
        .split("its data is in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .map(|p| std::path::PathBuf::from(p.trim_end_matches([')', ';', '.'])));
    if root {
        let place = relocated
            .clone()
            .expect("the banner says where the data is");
        assert!(
            place.starts_with(ferry::hub::embedded::RELOCATED_ROOT),
            "{placed}"
        );
        assert!(
            placed.contains("the postgres user cannot reach"),
            "{placed}"
        );
    }
    let ready = started.elapsed();
    println!("demo ready after {ready:?}");
    let psql_url = field(&lines, "hub (PostgreSQL):").to_string();
    let sim_url = field(&lines, "HubSpot simulator:").to_string();
    let zd_url = field(&lines, "Zendesk simulator:").to_string();
    let token = lines
        .iter()
        .find_map(|l| l.split("token: ").nth(1))
        .expect("token printed")
        .trim()
        .to_string();
    assert!(psql_url.starts_with("postgres://"), "{psql_url}");
    assert!(sim_url.starts_with("http://127.0.0.1:"), "{sim_url}");

    let (db, conn) = tokio_postgres::connect(&psql_url, tokio_postgres::NoTls)
        .await
        .expect("psql URL works");
    tokio::spawn(conn);
    let (people, in_both): (i64, i64) = {
        let r = db
            .query_one(
                "select count(*), count(*) filter (where hubspot_id is not null and zendesk_id is not null)
                   from crm.people",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    // 1,000 contacts; 250 seeded users, the account's owner and 50 of the contacts in Zendesk
    assert_eq!(people, 1000 + 250 + 1, "one row per person");
    assert!(
        in_both >= 50,
        "the shared people are linked to both apps: {in_both}"
    );
    assert!(ready < Duration::from_secs(60), "demo came up in {ready:?}");

    let http = reqwest::Client::new();
    let get = |id: String| {
        let (http, sim_url, token) = (http.clone(), sim_url.clone(), token.clone());
        async move {
            let v: Value = http
                .get(format!(
                    "{sim_url}/crm/v3/objects/contacts/{id}?properties=phone,firstname"
                ))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(v)
        }
    };

    // psql UPDATE → visible through the simulator's API
    let id: String = db
        .query_one(
            "select hubspot_id from crm.people where email = 'contact1@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    db.execute(
        "update crm.people set phone = '+15550100' where email = 'contact1@example.com'",
        &[],
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    eventually("UPDATE through the API", Duration::from_secs(5), || {
        let f = get(id.clone());
        async move { (f.await?.pointer("/properties/phone")? == "+15550100").then_some(()) }
    })
    .await;
    println!(
        "psql UPDATE visible in the simulator after {:?}",
        t0.elapsed()
    );

    // API PATCH → visible in psql
    let other: String = db
        .query_one(
            "select hubspot_id from crm.people where email = 'contact2@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let status = http
        .patch(format!("{sim_url}/crm/v3/objects/contacts/{other}"))
        .bearer_auth(&token)
        .json(&json!({"properties": {"firstname": "Ada"}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let t0 = Instant::now();
    eventually("PATCH in psql", Duration::from_secs(5), || async {
        let v: Option<String> = db
            .query_one(
                "select firstname from crm.people where email = 'contact2@example.com'",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (v.as_deref() == Some("Ada")).then_some(())
    })
    .await;
    println!("API PATCH visible in psql after {:?}", t0.elapsed());

    // INSERT → a new contact whose id lands in the row
    db.execute(
        "insert into crm.people (email, firstname) values ('grace@example.com', 'Grace')",
        &[],
    )
    .await
    .unwrap();
    let new_id: String = eventually(
        "hubspot_id written back",
        Duration::from_secs(5),
        || async {
            db.query_one(
                "select hubspot_id from crm.people where email = 'grace@example.com'",
                &[],
            )
            .await
            .ok()?
            .get(0)
        },
    )
    .await;
    assert_eq!(
        get(new_id)
            .await
            .and_then(|v| v.pointer("/properties/firstname").cloned()),
        Some(json!("Grace"))
    );

    // the seeds' job: a phone changed in Zendesk reaches HubSpot (and the hub)
    let (hs_id, zd_id): (String, String) = {
        let r = db
            .query_one(
                "select hubspot_id, zendesk_id from crm.people where email = 'contact3@example.com'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    // first, the first sync's own write of this person to Zendesk must be done: a bulk job
    // queued before the edit below but run after it would overwrite the edit inside Zendesk
    // (Zendesk applies jobs in its own order; ferry holds the job's echo back until the job is
    // recorded, and then Zendesk really has the first sync's phone)
    eventually(
        "contact3's first-sync writes recorded",
        Duration::from_secs(30),
        || async {
            let pending: i64 = db
                .query_one(
                    "select count(*) from ferry.outbox o join crm.people p on p.id = o.row_key
                      where p.email = 'contact3@example.com'",
                    &[],
                )
                .await
                .ok()?
                .get(0);
            (pending == 0).then_some(())
        },
    )
    .await;
    let status = http
        .put(format!("{zd_url}/api/v2/users/{zd_id}.json"))
        .basic_auth("agent@example.com/token", Some(&token))
        .json(&json!({"user": {"phone": "+15550199"}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let t0 = Instant::now();
    eventually(
        "Zendesk's phone in HubSpot",
        Duration::from_secs(10),
        || {
            let f = get(hs_id.clone());
            async move { (f.await?.pointer("/properties/phone")? == "+15550199").then_some(()) }
        },
    )
    .await;
    println!(
        "a phone changed in Zendesk reached HubSpot after {:?}",
        t0.elapsed()
    );
    let phone: Option<String> = db
        .query_one(
            "select phone from crm.people where email = 'contact3@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(phone.as_deref(), Some("+15550199"));

    // SIGTERM stops ferry and its PostgreSQL
    drop(db);
    stop_on_panic.0 = None;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "demo exits cleanly: {status}");
    assert!(
        tokio_postgres::connect(&psql_url, tokio_postgres::NoTls)
            .await
            .is_err(),
        "PostgreSQL stopped with the demo"
    );
    if root {
        if let Some(place) = relocated {
            let _ = std::fs::remove_dir_all(place);
        }
    }
    let _ = std::fs::remove_dir_all(&home);
}

/// Sends SIGTERM to the demo when dropped while it is still armed (the test failed midway).
struct StopOnDrop(Option<u32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }
}
