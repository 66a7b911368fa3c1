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

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry::hub::Hub;
use ferry::sim::hubspot::{HubSpotSim, SimConfig as HubSpotConfig};
use ferry::sim::zendesk::{SimConfig as ZendeskConfig, ZendeskSim};
use harness::process::{free_port, scratch_dir, Ferry};
use harness::{eventually, props, SECRET, TOKEN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const STEPS: usize = 300;
/// Milliseconds between one party's edits.
const PACE: std::ops::Range<u64> = 0..16;
/// Hub columns edited by everyone; HubSpot calls `name` `firstname`.
const FIELDS: [&str; 2] = ["name", "phone"];
/// People in each app before the first sync, and how many of them are in both.
const HUBSPOT_ONLY: usize = 20;
const SHARED: usize = 6;

/// One person as every party holds it: name and phone (None = empty).
type Person = (Option<String>, Option<String>);

struct World {
    hub: Hub,
    url: String,
    hubspot: HubSpotSim,
    zendesk: ZendeskSim,
    config: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    /// Every value anybody wrote (and the seeds'), per field.
    written: Mutex<BTreeMap<&'static str, HashSet<String>>>,
}

impl World {
    async fn start() -> World {
        let (db, url) = harness::fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let hubspot = HubSpotSim::start(
            HubSpotConfig {
                token: TOKEN.into(),
                webhook_secret: SECRET.into(),
                lost_response_rate: 0.01,
                ..HubSpotConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("hubspot simulator starts");
        let zendesk = ZendeskSim::start(
            ZendeskConfig {
                seed_users: 12,
                ..ZendeskConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("zendesk simulator starts");
        // people only HubSpot knows, and people both know under one email (phones differ)
        for i in 0..HUBSPOT_ONLY + SHARED {
            let email = format!("contact{i}@example.com");
            let name = format!("Contact {i}");
            hubspot
                .app_create(
                    "contacts",
                    props(&[
                        ("email", &email),
                        ("firstname", &name),
                        ("phone", &format!("+1555000{i:03}")),
                    ]),
                )
                .unwrap();
            if i >= HUBSPOT_ONLY {
                zendesk
                    .app_create(
                        "users",
                        obj(json!({"email": email, "name": name, "phone": format!("+1666000{i:03}")})),
                    )
                    .unwrap();
            }
        }
        let port = free_port();
        let dir = scratch_dir("three-party");
        let config = dir.join("ferry.toml");
        std::fs::write(
            &config,
            format!(
                r#"
                [engine]
                listen = "127.0.0.1:{port}"
                slot = "{db}"
                publication = "ferry"
                workers = 2
                poll_interval = "1s"
                reconcile_interval = "5s"

                [connections.hubspot]
                kind = "hubspot"
                base_url = "{hubspot_url}"
                token_env = "TP_HUBSPOT_TOKEN"
                webhook_secret_env = "TP_HUBSPOT_SECRET"

                [connections.zendesk]
                kind = "zendesk"
                base_url = "{zendesk_url}"
                email = "{zendesk_email}"
                token_env = "TP_ZENDESK_TOKEN"
                webhook_secret_env = "TP_ZENDESK_SECRET"
                rate_limit = "700/60s"

                [[mappings]]
                connection = "hubspot"
                object = "contacts"
                table = "crm.people"
                match_key = "email"
                delete_fuse = {{ enabled = false }}
                fields = [
                  {{ column = "email", property = "email", transform = "lowercase" }},
                  {{ column = "name",  property = "firstname" }},
                  {{ column = "phone", property = "phone" }},
                ]

                [[mappings]]
                connection = "zendesk"
                object = "users"
                table = "crm.people"
                match_key = "email"
                delete_fuse = {{ enabled = false }}
                fields = [
                  {{ column = "email", property = "email", transform = "lowercase" }},
                  {{ column = "name",  property = "name" }},
                  {{ column = "phone", property = "phone" }},
                ]
                "#,
                hubspot_url = hubspot.base_url(),
                zendesk_url = zendesk.base_url(),
                zendesk_email = zendesk.email(),
            ),
        )
        .unwrap();
        hubspot.set_webhook_url(Some(format!("http://127.0.0.1:{port}/webhooks/hubspot")));
        zendesk.set_webhook_url(Some(format!("http://127.0.0.1:{port}/webhooks/zendesk")));
        let env = vec![
            ("TP_HUBSPOT_TOKEN", TOKEN.to_string()),
            ("TP_HUBSPOT_SECRET", SECRET.to_string()),
            ("TP_ZENDESK_TOKEN", zendesk.token()),
            ("TP_ZENDESK_SECRET", zendesk.webhook_secret()),
        ];
        let world = World {
            hub,
            url,
            hubspot,
            zendesk,
            config,
            env,
            written: Mutex::new(BTreeMap::new()),
        };
        for (name, phone) in world
            .hubspot_people()
            .values()
            .chain(world.zendesk_people().values())
        {
            world.note("name", name.as_deref());
            world.note("phone", phone.as_deref());
        }
        world
    }

    fn spawn(&self) -> Ferry {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ferry::spawn(&self.config, &self.url, &env)
    }

    fn note(&self, field: &'static str, value: Option<&str>) {
        if let Some(v) = value {
            self.written
                .lock()
                .unwrap()
                .entry(field)
                .or_default()
                .insert(v.to_string());
        }
    }

    /// The account owner (Zendesk will not delete it): nobody edits or deletes this person.
    fn owner(&self) -> String {
        self.zendesk.email().to_lowercase()
    }

    /// Hub rows by email: (name, phone), and both links.
    async fn hub_people(&self) -> BTreeMap<String, (Person, Option<String>, Option<String>)> {
        let c = self.hub.client().await.unwrap();
        c.query(
            "select email, name, phone, hubspot_id, zendesk_id::text from crm.people",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), ((r.get(1), r.get(2)), r.get(3), r.get(4))))
        .collect()
    }

    /// Live HubSpot contacts by email: (firstname, phone) and the id.
    fn hubspot_records(&self) -> BTreeMap<String, (Person, String)> {
        self.hubspot
            .records("contacts")
            .into_iter()
            .filter(|r| !r.archived)
            .map(|r| {
                let p = |k: &str| r.properties.get(k).filter(|v| !v.is_empty()).cloned();
                let email = p("email").unwrap_or_default().to_lowercase();
                (email, ((p("firstname"), p("phone")), r.id.clone()))
            })
            .collect()
    }

    fn hubspot_people(&self) -> BTreeMap<String, Person> {
        self.hubspot_records()
            .into_iter()
            .map(|(e, (p, _))| (e, p))
            .collect()
    }

    /// Active Zendesk users by email: (name, phone) and the id.
    fn zendesk_records(&self) -> BTreeMap<String, (Person, String)> {
        self.zendesk
            .records("users")
            .into_iter()
            .map(|r| {
                let p = |k: &str| {
                    r.fields
                        .get(k)
                        .and_then(Value::as_str)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                };
                let email = p("email").unwrap_or_default().to_lowercase();
                (email, ((p("name"), p("phone")), r.id.to_string()))
            })
            .collect()
    }

    fn zendesk_people(&self) -> BTreeMap<String, Person> {
        self.zendesk_records()
            .into_iter()
            .map(|(e, (p, _))| (e, p))
            .collect()
    }

    /// Why the three parties differ, or None when hub and both apps hold the same people
    /// with the same values and every hub row links the records that hold it.
    async fn difference(&self) -> Option<String> {
        let hub = self.hub_people().await;
        let (hs, zd) = (self.hubspot_records(), self.zendesk_records());
        let keys = |m: Vec<&String>| m.into_iter().cloned().collect::<Vec<_>>();
        if keys(hub.keys().collect()) != keys(hs.keys().collect()) {
            return Some(format!(
                "hub and HubSpot hold different people: {:?}",
                sym_diff(&hub, &hs)
            ));
        }
        if keys(hub.keys().collect()) != keys(zd.keys().collect()) {
            return Some(format!(
                "hub and Zendesk hold different people: {:?}",
                sym_diff(&hub, &zd)
            ));
        }
        for (email, (person, hid, zid)) in &hub {
            let (h, z) = (&hs[email], &zd[email]);
            if person != &h.0 || person != &z.0 {
                return Some(format!(
                    "{email}: hub {person:?}, HubSpot {:?}, Zendesk {:?}",
                    h.0, z.0
                ));
            }
            if hid.as_ref() != Some(&h.1) || zid.as_ref() != Some(&z.1) {
                return Some(format!(
                    "{email}: links {hid:?}/{zid:?}, records {}/{}",
                    h.1, z.1
                ));
            }
        }
        None
    }

    /// Prints what ferry knows of every person the parties disagree on (for a failure).
    async fn explain(&self) {
        let hub = self.hub_people().await;
        let (hs, zd) = (self.hubspot_records(), self.zendesk_records());
        let mut ids: Vec<(String, String)> = vec![];
        for (email, (p, id)) in &hs {
            if hub.get(email).map(|h| &h.0) != Some(p) {
                ids.push((email.clone(), id.clone()));
            }
        }
        for (email, (p, id)) in &zd {
            if hub.get(email).map(|h| &h.0) != Some(p) {
                ids.push((email.clone(), id.clone()));
            }
        }
        let c = self.hub.client().await.unwrap();
        for (email, id) in ids {
            eprintln!(
                "== {email} (record {id}): hub {:?}, HubSpot {:?}, Zendesk {:?}",
                hub.get(email.as_str()),
                hs.get(&email),
                zd.get(&email)
            );
            for sql in [
                "select format('link m%s row %s base %s', mapping_id, row_key, base) from ferry.links where remote_id = $1 and $2::text is not null",
                "select format('tombstone m%s at %s', mapping_id, deleted_at) from ferry.tombstones where remote_id = $1 and $2::text is not null",
                "select format('detached m%s row %s', mapping_id, row_key) from ferry.detached where remote_id = $1 and $2::text is not null",
                "select format('held m%s %s row %s', mapping_id, side, row_key) from ferry.deletes_held where remote_id = $1 and $2::text is not null",
                "select format('%s m%s row %s %s %s %s: %s -> %s (%s)', at, mapping_id, row_key, direction, operation, field, old_value, new_value, origin) from ferry.field_changes where remote_id = $1 or row_key in (select row_key from ferry.links where remote_id = $1) or row_key in (select row_key from ferry.field_changes where field = 'email' and (new_value = to_jsonb($2::text) or old_value = to_jsonb($2::text))) order by id",
            ] {
                for r in c.query(sql, &[&id, &email]).await.unwrap() {
                    eprintln!("   {}", r.get::<_, String>(0));
                }
            }
        }
    }

    fn activity(&self) -> Vec<u64> {
        let (h, z) = (self.hubspot.stats(), self.zendesk.stats());
        vec![
            h.requests,
            h.webhook_events,
            z.requests,
            z.webhooks_delivered,
        ]
    }

    async fn quiesce(&self) {
        harness::quiesce(&self.hub, Duration::from_secs(60), || self.activity()).await;
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn sym_diff<A, B>(a: &BTreeMap<String, A>, b: &BTreeMap<String, B>) -> Vec<String> {
    a.keys()
        .filter(|k| !b.contains_key(*k))
        .map(|k| format!("+{k}"))
        .chain(
            b.keys()
                .filter(|k| !a.contains_key(*k))
                .map(|k| format!("-{k}")),
        )
        .collect()
}

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

async fn count(w: &World, sql: &str) -> i64 {
    w.hub
        .client()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
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
        let written = w.written.lock().unwrap();
        for ((name, phone), _, _) in w.hub_people().await.values() {
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
    let bogus = count(
        &w,
        "select count(*) from ferry.conflicts
          where hub_value is not distinct from base_value or remote_value is not distinct from base_value
             or hub_value is not distinct from remote_value",
    )
    .await;
    let conflicts = count(&w, "select count(*) from ferry.conflicts").await;
    println!("{conflicts} conflicts recorded");
    assert_eq!(
        bogus, 0,
        "conflicts where one side had not changed the field"
    );

    // echo counts, ferry running: an app edit is one write to the other app, none back; a hub
    // edit is one write to each app
    let people: Vec<(String, (Person, Option<String>, Option<String>))> = w
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
