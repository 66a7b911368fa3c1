//! Test harness: the three-party convergence run. psql and both apps' own UIs edit
//! `crm.people` at once (same and different fields, inserts and deletes) while the ferry
//! process between them is SIGKILLed at random points and restarted. Afterwards the hub and
//! both apps hold the same people with the same values, every recorded conflict is one where
//! two sides changed the field, every final value is one somebody wrote, and nothing is a dead
//! letter. Then, with ferry left running, echo counts are exact: an edit in one app is one
//! write to the other app and none back to its origin; a hub edit is one write to each app.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{HubPerson, Party, World};
use crate::harness::{eventually, Sql};

const STEPS: usize = 300;
/// Milliseconds between one party's edits.
const PACE: std::ops::Range<u64> = 0..16;
/// Hub columns edited by everyone.
const FIELDS: [&str; 2] = ["name", "phone"];

/// psql: inserts, deletes, and name / phone updates on random rows.
async fn hub_side(w: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = w.hub.client().await.unwrap();
    for step in 0..STEPS {
        let ids: Vec<i64> = c
            .query("select id, email from crm.people order by id", &[])
            .await
            .unwrap()
            .iter()
            .filter(|r| w.editable(r.get(1)))
            .map(|r| r.get(0))
            .collect();
        let roll = rng.random_range(0..100);
        let value = format!("hub-{step}");
        if roll < 8 || ids.is_empty() {
            w.note("name", Some(&value));
            c.execute(
                "insert into crm.people (email, name) values ($1, $2)",
                &[&format!("hub{step}@example.com"), &value],
            )
            .await
            .unwrap();
        } else if roll < 12 {
            let id = ids[rng.random_range(0..ids.len())];
            c.execute("delete from crm.people where id = $1", &[&id])
                .await
                .unwrap();
        } else {
            let id = ids[rng.random_range(0..ids.len())];
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            w.note(field, Some(&value));
            let sql = format!("update crm.people set {field} = $1 where id = $2");
            c.execute(&sql, &[&value, &id]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(PACE))).await;
    }
}

/// One app's own UI: creates, deletes, name / phone updates.
async fn app_side(w: &World, app: &dyn Party, prefix: &str, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..STEPS {
        let ids: Vec<String> = app
            .records()
            .into_iter()
            .filter(|(e, _)| w.editable(e))
            .map(|(_, (_, id))| id)
            .collect();
        let roll = rng.random_range(0..100);
        let value = format!("{prefix}-{step}");
        if roll < 8 || ids.is_empty() {
            w.note("name", Some(&value));
            app.create(&format!("{prefix}{step}@example.com"), &value, None);
        } else if roll < 12 {
            app.delete(&ids[rng.random_range(0..ids.len())]);
        } else {
            let id = &ids[rng.random_range(0..ids.len())];
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            w.note(field, Some(&value));
            app.update(id, field, &value);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(PACE))).await;
    }
}

/// The whole run on `w`; `prefixes` name each app's values (`hs-12`, `zd-40`).
/// Waits for the first sync: both apps' people in one table, the shared ones matched on email.
pub async fn first_sync(w: &World) {
    let [a, b] = [&w.apps[0], &w.apps[1]];
    let link_both = format!(
        "select count(*) from crm.people where {}_id is not null and {}_id is not null",
        a.name(),
        b.name()
    );
    eventually("the first sync", Duration::from_secs(60), || async {
        // the table appears once ferry has applied its configuration
        let linked: i64 = w
            .hub
            .client()
            .await
            .ok()?
            .query_one(&link_both, &[])
            .await
            .ok()?
            .get(0);
        (linked == w.people as i64).then_some(())
    })
    .await;
    w.quiesce().await;
    assert_eq!(w.difference().await, None, "after the first sync");
}

pub async fn converge(w: World, prefixes: [&str; 2]) {
    let mut ferry = w.spawn();
    let [a, b] = [&w.apps[0], &w.apps[1]];
    first_sync(&w).await;

    let t0 = Instant::now();
    let mut kills = 0;
    {
        let load = async {
            tokio::join!(
                hub_side(&w, 1),
                app_side(&w, a.as_ref(), prefixes[0], 2 ^ 0x4b5),
                app_side(&w, b.as_ref(), prefixes[1], 3 ^ 0x2e4)
            );
        };
        tokio::pin!(load);
        let mut rng = StdRng::seed_from_u64(77);
        loop {
            let pause = Duration::from_millis(rng.random_range(200..900));
            tokio::select! {
                _ = &mut load => break,
                _ = tokio::time::sleep(pause) => {
                    ferry.kill();
                    kills += 1;
                    ferry = w.spawn();
                }
            }
        }
    }
    println!(
        "workload done in {:?}, ferry killed {kills} times",
        t0.elapsed()
    );
    for app in &w.apps {
        app.settle();
    }
    let mut why = None;
    let converged = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            why = w.difference().await;
            if why.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let dead: String = w
        .one("select coalesce(string_agg(operation || ': ' || error, '; '), '') from ferry.dead_letters")
        .await;
    if converged.is_err() {
        w.explain().await;
        panic!("no convergence: {why:?}; dead letters: {dead}");
    }
    for app in &w.apps {
        app.calm();
    }
    w.quiesce().await;
    assert_eq!(w.difference().await, None, "still equal once quiet");
    println!(
        "converged {:?} after the workload began: {} people",
        t0.elapsed(),
        w.hub_people().await.len()
    );
    assert_eq!(dead, "", "no dead letters");
    every_value_written(&w).await;
    // every conflict is a real one: two sides changed the field since the base
    let bogus: i64 = w
        .one(
            "select count(*) from ferry.conflicts
          where hub_value is not distinct from base_value or remote_value is not distinct from base_value
             or hub_value is not distinct from remote_value",
        )
        .await;
    let conflicts: i64 = w.one("select count(*) from ferry.conflicts").await;
    println!("{conflicts} conflicts recorded");
    assert_eq!(
        bogus, 0,
        "conflicts where one side had not changed the field"
    );
    echoes_are_exact(&w).await;
    drop(ferry);
    w.shutdown();
}

/// Every final value is one somebody wrote.
async fn every_value_written(w: &World) {
    let hub = w.hub_people().await;
    let written = w.written.lock().unwrap();
    for ((name, phone), _, _) in hub.values() {
        for (field, v) in [("name", name), ("phone", phone)] {
            if let Some(v) = v {
                assert!(
                    written[field].contains(v),
                    "{field} = {v} was never written"
                );
            }
        }
    }
}

/// With ferry running: an app edit is one write to the other app, none back; a hub edit is
/// one write to each app.
async fn echoes_are_exact(w: &World) {
    let people: Vec<(String, HubPerson)> = w
        .hub_people()
        .await
        .into_iter()
        .filter(|(e, _)| w.editable(e))
        .collect();
    assert!(people.len() >= 15, "enough people left: {}", people.len());
    let before = [w.apps[0].writes(), w.apps[1].writes()];
    for (i, (email, (_, a, b))) in people.iter().take(15).enumerate() {
        let value = format!("echo-{i}");
        match i % 3 {
            0 => w.apps[0].update(a.as_deref().unwrap(), "phone", &value),
            1 => w.apps[1].update(b.as_deref().unwrap(), "phone", &value),
            _ => {
                w.hub
                    .client()
                    .await
                    .unwrap()
                    .execute(
                        "update crm.people set phone = $1 where email = $2",
                        &[&value, email],
                    )
                    .await
                    .unwrap();
            }
        }
    }
    eventually(
        "the echo edits everywhere",
        Duration::from_secs(30),
        || async {
            let hub = w.hub_people().await;
            let all = people.iter().take(15).enumerate().all(|(i, (email, _))| {
                hub.get(email).and_then(|p| p.0 .1.clone()) == Some(format!("echo-{i}"))
            });
            (all && w.difference().await.is_none()).then_some(())
        },
    )
    .await;
    w.quiesce().await;
    let after = [w.apps[0].writes(), w.apps[1].writes()];
    let names = [w.apps[0].name(), w.apps[1].name()];
    assert_eq!(
        (after[0] - before[0], after[1] - before[1]),
        (10, 10),
        "writes to ({}, {}): 5 edits in the other app + 5 hub edits each, none back to the origin",
        names[0],
        names[1]
    );
}
