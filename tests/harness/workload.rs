//! A seeded mixed workload of hub edits (inserts, updates, deletes) and the convergence check:
//! the app holds exactly the hub's rows, values equal, no duplicate records.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use ferry::sim::hubspot::HubSpotSim;

/// Runs `changes` single-statement transactions against `url`; returns how many of each kind.
pub async fn run(url: &str, seed: u64, changes: usize) -> (usize, usize, usize) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("workload connects");
    tokio::spawn(conn);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids: Vec<i64> = client
        .query("select id from hubspot.contacts order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (mut ins, mut upd, mut del) = (0, 0, 0);
    for n in 0..changes {
        let roll: f64 = rng.random();
        if roll < 0.2 || ids.len() < 10 {
            let email = format!("w{seed}-{n}@example.com");
            let row = client
                .query_one(
                    "insert into hubspot.contacts (email, firstname, phone) values ($1, $2, $3) returning id",
                    &[&email, &format!("First{n}"), &format!("+1555{:07}", n)],
                )
                .await
                .unwrap();
            ids.push(row.get(0));
            ins += 1;
        } else if roll < 0.9 {
            let id = ids[rng.random_range(0..ids.len())];
            let (col, val) = match rng.random_range(0..3) {
                0 => ("firstname", format!("F{n}")),
                1 => ("company", format!("Co{n}")),
                _ => ("phone", format!("+1666{:07}", n)),
            };
            client
                .execute(
                    &format!("update hubspot.contacts set {col} = $1 where id = $2"),
                    &[&val, &id],
                )
                .await
                .unwrap();
            upd += 1;
        } else {
            let i = rng.random_range(0..ids.len());
            let id = ids.swap_remove(i);
            client
                .execute("delete from hubspot.contacts where id = $1", &[&id])
                .await
                .unwrap();
            del += 1;
        }
    }
    (ins, upd, del)
}

const FIELDS: &[&str] = &["email", "firstname", "lastname", "phone", "company"];

/// Differences between the hub and the app; empty when they agree.
pub async fn differences(url: &str, sim: &HubSpotSim) -> Vec<String> {
    let (client, conn) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => return vec![format!("hub unreachable: {e}")],
    };
    tokio::spawn(conn);
    let rows = match client.query("select id, hubspot_id, email, firstname, lastname, phone, company from hubspot.contacts", &[]).await {
        Ok(r) => r,
        Err(e) => return vec![format!("hub query: {e}")],
    };
    let remote: HashMap<String, _> = sim
        .records("contacts")
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut out = vec![];
    let mut linked = HashSet::new();
    for r in &rows {
        let id: i64 = r.get(0);
        let Some(rid) = r.get::<_, Option<String>>(1) else {
            out.push(format!("row {id} has no remote id"));
            continue;
        };
        linked.insert(rid.clone());
        let Some(rec) = remote.get(&rid) else {
            out.push(format!("row {id}: remote {rid} missing or archived"));
            continue;
        };
        for (i, f) in FIELDS.iter().enumerate() {
            let hub: Option<String> = r.get(i + 2);
            let app = rec.properties.get(*f).cloned();
            if hub != app {
                out.push(format!("row {id} {f}: hub {hub:?} app {app:?}"));
            }
        }
    }
    for rid in remote.keys().filter(|k| !linked.contains(*k)) {
        out.push(format!(
            "remote {rid} has no hub row (duplicate or missed delete)"
        ));
    }
    let mut emails = HashSet::new();
    for rec in remote.values() {
        if let Some(e) = rec.properties.get("email") {
            if !emails.insert(e.to_lowercase()) {
                out.push(format!("duplicate remote email {e}"));
            }
        }
    }
    out
}

/// Waits until hub and app agree; panics with the remaining differences after `timeout`.
pub async fn assert_converges(url: &str, sim: &HubSpotSim, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let diff = differences(url, sim).await;
        if diff.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "hub and app still differ after {timeout:?} ({} differences): {:#?}",
                diff.len(),
                &diff[..diff.len().min(20)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
