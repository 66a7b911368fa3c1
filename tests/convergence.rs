//! Convergence under concurrent edits on both sides, for every conflict policy and several
//! seeds: a random workload edits the hub (SQL) and the app (the simulator's own UI path) at
//! the same time — same and different fields, inserts and deletes — then everything settles.
//! Afterwards hub and app hold the same records with the same values, every recorded conflict
//! is one where both sides changed the field since the base, each decision is the policy's,
//! and every final value is one somebody wrote.

mod harness;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use harness::Ctx;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const FIELDS: [&str; 4] = ["firstname", "lastname", "company", "phone"];
const STEPS: usize = 120;

/// Values written per field, by anyone (plus the seed values).
type Written = Mutex<HashMap<&'static str, HashSet<String>>>;

fn note(written: &Written, field: &'static str, value: &str) {
    written
        .lock()
        .unwrap()
        .entry(field)
        .or_default()
        .insert(value.to_string());
}

async fn hub_side(ctx: &Ctx, seed: u64, written: &Written) {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = ctx.hub.client().await.unwrap();
    for step in 0..STEPS {
        let ids: Vec<i64> = c
            .query("select id from hubspot.contacts order by id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let roll = rng.random_range(0..100);
        if roll < 8 || ids.is_empty() {
            let email = format!("hub-{seed}-{step}@example.com");
            let first = format!("h{seed}-{step}");
            note(written, "firstname", &first);
            c.execute(
                "insert into hubspot.contacts (email, firstname) values ($1, $2)",
                &[&email, &first],
            )
            .await
            .unwrap();
        } else if roll < 12 {
            let id = ids[rng.random_range(0..ids.len())];
            c.execute("delete from hubspot.contacts where id = $1", &[&id])
                .await
                .unwrap();
        } else {
            let id = ids[rng.random_range(0..ids.len())];
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            let value = format!("h{seed}-{step}");
            note(written, field, &value);
            let sql = format!("update hubspot.contacts set {field} = $1 where id = $2");
            c.execute(&sql, &[&value, &id]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..4))).await;
    }
}

async fn app_side(ctx: &Ctx, seed: u64, written: &Written) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for step in 0..STEPS {
        let ids: Vec<String> = ctx
            .sim
            .records("contacts")
            .into_iter()
            .filter(|r| !r.archived)
            .map(|r| r.id)
            .collect();
        let roll = rng.random_range(0..100);
        if roll < 8 || ids.is_empty() {
            let first = format!("a{seed}-{step}");
            note(written, "firstname", &first);
            let mut props = serde_json::Map::new();
            props.insert(
                "email".into(),
                json!(format!("app-{seed}-{step}@example.com")),
            );
            props.insert("firstname".into(), json!(first));
            ctx.sim.app_create("contacts", props).unwrap();
        } else if roll < 12 {
            let id = &ids[rng.random_range(0..ids.len())];
            let _ = ctx.sim.app_archive("contacts", id);
        } else {
            let id = &ids[rng.random_range(0..ids.len())];
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            let value = format!("a{seed}-{step}");
            note(written, field, &value);
            let mut props = serde_json::Map::new();
            props.insert(field.into(), json!(value));
            let _ = ctx.sim.app_update("contacts", id, props); // may have been archived meanwhile
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..4))).await;
    }
}

/// Hub rows by remote id: field → value.
async fn hub_records(ctx: &Ctx) -> BTreeMap<String, BTreeMap<String, String>> {
    let c = ctx.hub.client().await.unwrap();
    let mut out = BTreeMap::new();
    for r in c
        .query(
            "select hubspot_id, firstname, lastname, company, phone, id from hubspot.contacts",
            &[],
        )
        .await
        .unwrap()
    {
        let id: Option<String> = r.get(0);
        let key: i64 = r.get(5);
        let id = id.unwrap_or_else(|| panic!("hub row {key} never reached the app"));
        let mut fields = BTreeMap::new();
        for (i, f) in FIELDS.iter().enumerate() {
            if let Some(v) = r.get::<_, Option<String>>(i + 1) {
                fields.insert(f.to_string(), v);
            }
        }
        out.insert(id, fields);
    }
    out
}

fn app_records(ctx: &Ctx) -> BTreeMap<String, BTreeMap<String, String>> {
    ctx.sim
        .records("contacts")
        .into_iter()
        .filter(|r| !r.archived)
        .map(|r| {
            let fields = FIELDS
                .iter()
                .filter_map(|f| {
                    r.properties
                        .get(*f)
                        .filter(|v| !v.is_empty())
                        .map(|v| (f.to_string(), v.clone()))
                })
                .collect();
            (r.id, fields)
        })
        .collect()
}

async fn converge(policy: &str, seed: u64) {
    // the workload deletes rows on purpose: no mass-delete fuse here
    let ctx = Ctx::start_with(
        20,
        "",
        &format!("conflict_policy = \"{policy}\"\ndelete_fuse = {{ enabled = false }}"),
        "",
    )
    .await;
    ctx.quiesce().await;
    let written: Written = Mutex::new(HashMap::new());
    for r in app_records(&ctx).values() {
        for (f, v) in r {
            let f: &'static str = FIELDS.iter().find(|x| **x == f.as_str()).unwrap();
            note(&written, f, v);
        }
    }
    tokio::join!(
        hub_side(&ctx, seed, &written),
        app_side(&ctx, seed, &written)
    );
    ctx.quiesce().await;
    if policy == "manual" {
        // held fields differ until someone decides: half one way, half the other
        let resolved: i64 = ctx
            .one("select count(ferry.resolve(id, case when id % 2 = 0 then 'hub' else 'remote' end)) from ferry.open_conflicts")
            .await;
        eprintln!("{policy}/{seed}: {resolved} manual conflicts resolved");
        ctx.quiesce().await;
    }
    let dead: i64 = ctx
        .one("select count(*) from ferry.dead_letters where retried_at is null")
        .await;
    let dead_text: String = ctx.one("select coalesce(string_agg(operation || ': ' || error, '; '), '') from ferry.dead_letters").await;

    let (hub, app) = (hub_records(&ctx).await, app_records(&ctx));
    let hub_ids: Vec<&String> = hub.keys().collect();
    let app_ids: Vec<&String> = app.keys().collect();
    assert_eq!(
        hub_ids, app_ids,
        "{policy}/{seed}: the same records on both sides (dead letters: {dead} {dead_text})"
    );
    for (id, fields) in &hub {
        assert_eq!(
            Some(fields),
            app.get(id),
            "{policy}/{seed}: record {id} agrees"
        );
    }
    // no update lost: every final value is one somebody wrote
    {
        let written = written.lock().unwrap();
        for fields in hub.values() {
            for (f, v) in fields {
                assert!(
                    written.get(f.as_str()).is_some_and(|s| s.contains(v)),
                    "{policy}/{seed}: {f} = {v} was never written"
                );
            }
        }
    }
    // every conflict is a real one, and decided by the policy
    let c = ctx.hub.client().await.unwrap();
    let bogus: i64 = c
        .query_one(
            "select count(*) from ferry.conflicts
              where hub_value is not distinct from base_value or remote_value is not distinct from base_value
                 or hub_value is not distinct from remote_value",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        bogus, 0,
        "{policy}/{seed}: conflicts where one side had not changed the field"
    );
    let decisions: Vec<(String, String, Option<String>)> = c
        .query(
            "select policy, decision, resolved_by from ferry.conflicts",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    eprintln!(
        "{policy}/{seed}: {} conflicts, {} records",
        decisions.len(),
        hub.len()
    );
    for (p, d, by) in &decisions {
        assert_eq!(p, policy);
        let ok = match policy {
            "remote_wins" => d == "remote",
            "hub_wins" => d == "hub",
            "last_write_wins" => d == "remote" || d == "hub",
            // decided by a person, or replaced by a newer conflict on the same field
            _ => {
                (d == "hub" || d == "remote") && by.is_some()
                    || d == "held" && by.as_deref() == Some("superseded")
            }
        };
        assert!(ok, "{policy}/{seed}: decision {d} (resolved by {by:?})");
    }
    assert_eq!(dead, 0, "{policy}/{seed}: {dead_text}");
    ctx.stop().await;
}

macro_rules! policy_test {
    ($name:ident, $policy:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for seed in 1..=3 {
                converge($policy, seed).await;
            }
        }
    };
}

policy_test!(remote_wins_converges, "remote_wins");
policy_test!(hub_wins_converges, "hub_wins");
policy_test!(last_write_wins_converges, "last_write_wins");
policy_test!(manual_converges_once_resolved, "manual");
