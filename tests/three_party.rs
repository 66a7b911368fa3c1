//! Three-party convergence: `crm.people` mapped to HubSpot contacts and Zendesk users, with a
//! real `ferry run` process killed (SIGKILL) at random points and restarted while psql, the
//! HubSpot simulator and the Zendesk simulator edit at the same time — same and different
//! fields, inserts and deletes, on both apps' own edit paths. Some people exist in both apps
//! before the first sync (matched on email). Afterwards the hub and both apps hold the same
//! people with the same values, every recorded conflict is one where two sides changed the
//! field, every final value is one somebody wrote, and nothing is a dead letter. Then, with
//! ferry left running, echo counts are exact: an edit in one app is one write to the other app
//! and none back to its origin; a hub edit is one write to each app.

mod harness;

use std::time::{Duration, Instant};

use harness::parties::{HubPerson, World, HUBSPOT_ONLY, SHARED};
use harness::{eventually, obj, props, Sql};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const STEPS: usize = 300;
/// Milliseconds between one party's edits.
const PACE: std::ops::Range<u64> = 0..16;
/// Hub columns edited by everyone; HubSpot calls `name` `firstname`.
const FIELDS: [&str; 2] = ["name", "phone"];

/// psql: inserts, deletes, and name / phone updates on random rows.
async fn hub_side(w: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = w.hub.client().await.unwrap();
    let owner = w.owner();
    for step in 0..STEPS {
        let ids: Vec<i64> = c
            .query(
                "select id from crm.people where email <> $1 order by id",
                &[&owner],
            )
            .await
            .unwrap()
            .iter()
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

/// HubSpot's own UI: creates, archives, firstname / phone updates.
async fn hubspot_side(w: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4b5);
    let owner = w.owner();
    for step in 0..STEPS {
        let ids: Vec<String> = w
            .hubspot_records()
            .into_iter()
            .filter(|(e, _)| *e != owner)
            .map(|(_, (_, id))| id)
            .collect();
        let roll = rng.random_range(0..100);
        let value = format!("hs-{step}");
        if roll < 8 || ids.is_empty() {
            w.note("name", Some(&value));
            let email = format!("hs{step}@example.com");
            w.hubspot
                .app_create(
                    "contacts",
                    props(&[("email", &email), ("firstname", &value)]),
                )
                .unwrap();
        } else if roll < 12 {
            let _ = w
                .hubspot
                .app_archive("contacts", &ids[rng.random_range(0..ids.len())]);
        } else {
            let id = &ids[rng.random_range(0..ids.len())];
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            w.note(field, Some(&value));
            let property = if field == "name" { "firstname" } else { field };
            // may have been archived meanwhile
            let _ = w
                .hubspot
                .app_update("contacts", id, props(&[(property, &value)]));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(PACE))).await;
    }
}

/// Zendesk's own UI: creates, deletes, name / phone updates.
async fn zendesk_side(w: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x2e4);
    let owner = w.owner();
    for step in 0..STEPS {
        let ids: Vec<u64> = w
            .zendesk_records()
            .into_iter()
            .filter(|(e, _)| *e != owner)
            .map(|(_, (_, id))| id.parse().unwrap())
            .collect();
        let roll = rng.random_range(0..100);
        let value = format!("zd-{step}");
        if roll < 8 || ids.is_empty() {
            w.note("name", Some(&value));
            let email = format!("zd{step}@example.com");
            w.zendesk
                .app_create("users", obj(json!({"email": email, "name": value})))
                .unwrap();
        } else if roll < 12 {
            let _ = w
                .zendesk
                .app_delete("users", ids[rng.random_range(0..ids.len())]);
        } else {
            let id = ids[rng.random_range(0..ids.len())];
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            w.note(field, Some(&value));
            let _ = w
                .zendesk
                .app_update("users", id, obj(json!({ field: value })));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(PACE))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_hubspot_and_zendesk_converge_through_sigkills() {
    let w = World::start().await;
    let mut ferry = w.spawn();
    // first sync: both apps' people in one table, the shared ones matched on email
    let people = HUBSPOT_ONLY + SHARED + 12 + 1;
    eventually("the first sync", Duration::from_secs(60), || async {
        // the table appears once ferry has applied its configuration
        let linked: i64 = w
            .hub
            .client()
            .await
            .ok()?
            .query_one(
                "select count(*) from crm.people where hubspot_id is not null and zendesk_id is not null",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (linked == people as i64).then_some(())
    })
    .await;
    w.quiesce().await;
    assert_eq!(w.difference().await, None, "after the first sync");

    let t0 = Instant::now();
    let mut kills = 0;
    {
        let load = async {
            tokio::join!(hub_side(&w, 1), hubspot_side(&w, 2), zendesk_side(&w, 3));
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
    // Zendesk's export shows a change once its minute has passed: let the poll see everything
    w.zendesk.clock().advance(Duration::from_secs(61));
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
    let dead: String = {
        let c = w.hub.client().await.unwrap();
        c.query_one(
            "select coalesce(string_agg(operation || ': ' || error, '; '), '') from ferry.dead_letters",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    };
    if converged.is_err() {
        w.explain().await;
        panic!("no convergence: {why:?}; dead letters: {dead}");
    }
    w.quiesce().await;
    assert_eq!(w.difference().await, None, "still equal once quiet");
    println!(
        "converged {:?} after the workload began: {} people",
        t0.elapsed(),
        w.hub_people().await.len()
    );
    assert_eq!(dead, "", "no dead letters");

    // every final value is one somebody wrote
    {
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

    // echo counts, ferry running: an app edit is one write to the other app, none back; a hub
    // edit is one write to each app
    let people: Vec<(String, HubPerson)> = w
        .hub_people()
        .await
        .into_iter()
        .filter(|(e, _)| *e != w.owner())
        .collect();
    assert!(people.len() >= 15, "enough people left: {}", people.len());
    let (h0, z0) = (
        w.hubspot.stats().records_written,
        w.zendesk.stats().records_written,
    );
    for (i, (email, (_, hid, zid))) in people.iter().take(15).enumerate() {
        let value = format!("echo-{i}");
        match i % 3 {
            0 => w
                .hubspot
                .app_update(
                    "contacts",
                    hid.as_deref().unwrap(),
                    props(&[("phone", &value)]),
                )
                .unwrap(),
            1 => w
                .zendesk
                .app_update(
                    "users",
                    zid.as_deref().unwrap().parse().unwrap(),
                    obj(json!({"phone": value})),
                )
                .unwrap(),
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
    let (h1, z1) = (
        w.hubspot.stats().records_written,
        w.zendesk.stats().records_written,
    );
    assert_eq!(
        (h1 - h0, z1 - z0),
        (10, 10),
        "writes to (HubSpot, Zendesk): 5 Zendesk edits + 5 hub edits to HubSpot, 5 HubSpot edits + 5 hub edits to Zendesk"
    );
    drop(ferry);
    w.hubspot.shutdown();
    w.zendesk.shutdown();
}
