//! Test harness: three parties on one table — the hub (psql) and two apps' simulators,
//! `crm.people` mapped to a people object of each — with a real `ferry run` process between
//! them (spawned, killed and respawned by the test), every value anybody wrote, and how the
//! three differ. Each app is a [`Party`] (apps.rs); the workload and the checks are
//! convergence.rs's.

pub mod apps;
pub mod convergence;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use ferry::hub::Hub;

use super::process::{free_port, scratch_dir, Ferry};
use super::{fresh_db, Sql};

/// People only the first app has before the first sync, people both have under one email
/// (phones differ), people only the second has.
pub const FIRST_ONLY: usize = 20;
pub const SHARED: usize = 6;
pub const SECOND_ONLY: usize = 12;

/// One person as every party holds it: name and phone (None = empty).
pub type Person = (Option<String>, Option<String>);

/// One person as the hub holds it: name and phone, then the two apps' links.
pub type HubPerson = (Person, Option<String>, Option<String>);

/// One app of the three parties: its simulator, seen through what the test does with it.
pub trait Party: Send + Sync {
    /// The connection's name; the hub's link column is `<name>_id`.
    fn name(&self) -> &'static str;
    /// Its `[connections.<name>]` table and its `[[mappings]]` of `crm.people` (fields
    /// `email`, `name`, `phone`, matched on email).
    fn config(&self) -> String;
    /// The environment the ferry process needs for it (secrets).
    fn env(&self) -> Vec<(&'static str, String)>;
    fn set_webhook_url(&self, url: String);
    /// Live records: email (lowercased), (name, phone), id.
    fn list(&self) -> Vec<(String, Person, String)>;
    /// Live records by email: (name, phone) and the id.
    fn records(&self) -> BTreeMap<String, (Person, String)> {
        self.list()
            .into_iter()
            .map(|(email, p, id)| (email, (p, id)))
            .collect()
    }
    /// Emails more than one live record has.
    fn duplicates(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.list()
            .into_iter()
            .filter(|(email, _, _)| !seen.insert(email.clone()))
            .map(|(email, _, _)| email)
            .collect()
    }
    /// A record made in the app's own UI.
    fn create(&self, email: &str, name: &str, phone: Option<&str>);
    /// Sets `field` (`name` or `phone`) in the app's UI; the record may be gone meanwhile.
    fn update(&self, id: &str, field: &str, value: &str);
    /// Deletes in the app's UI; the record may be gone meanwhile.
    fn delete(&self, id: &str);
    /// Records ferry has written to the app so far.
    fn writes(&self) -> u64;
    /// Counters that move while the app and ferry talk.
    fn activity(&self) -> Vec<u64>;
    /// A person nobody may edit or delete (Zendesk's account owner).
    fn protected(&self) -> Option<String> {
        None
    }
    /// Lets every change so far show in the app's change feed (feeds blind to the last
    /// minute see it once the simulator's clock has moved past it).
    fn settle(&self) {}
    /// Turns the simulator's faults off, so the echo count sees ferry's writes and no retries
    /// of answers the workload's faults lost.
    fn calm(&self);
    /// The app's record, for a failure's explanation.
    fn describe(&self, id: &str) -> Option<String>;
    fn shutdown(&self);
}

/// The three parties, the config file of the ferry process between them and its environment.
pub struct World {
    pub hub: Hub,
    pub url: String,
    pub apps: [Box<dyn Party>; 2],
    pub config: std::path::PathBuf,
    pub env: Vec<(&'static str, String)>,
    /// Every value anybody wrote (and the seeds'), per field.
    pub written: Mutex<BTreeMap<&'static str, HashSet<String>>>,
    /// People after the first sync.
    pub people: usize,
}

impl World {
    /// `first` and `second` seeded ([`FIRST_ONLY`], [`SHARED`], [`SECOND_ONLY`]) and the
    /// configuration of a ferry process between them written; nothing runs yet.
    pub async fn start(first: Box<dyn Party>, second: Box<dyn Party>) -> World {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        for i in 0..FIRST_ONLY + SHARED {
            let email = format!("contact{i}@example.com");
            let name = format!("Contact {i}");
            first.create(&email, &name, Some(&format!("+1555000{i:03}")));
            if i >= FIRST_ONLY {
                second.create(&email, &name, Some(&format!("+1666000{i:03}")));
            }
        }
        for i in 0..SECOND_ONLY {
            second.create(
                &format!("own{i}@example.com"),
                &format!("Own {i}"),
                Some(&format!("+1777000{i:03}")),
            );
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
                {}
                {}
                "#,
                first.config(),
                second.config(),
            ),
        )
        .unwrap();
        let mut env = vec![];
        for app in [&first, &second] {
            app.set_webhook_url(format!("http://127.0.0.1:{port}/webhooks/{}", app.name()));
            env.extend(app.env());
        }
        let mut emails: HashSet<String> = first.records().into_keys().collect();
        emails.extend(second.records().into_keys());
        let world = World {
            hub,
            url,
            apps: [first, second],
            config,
            env,
            written: Mutex::new(BTreeMap::new()),
            people: emails.len(),
        };
        for app in &world.apps {
            for ((name, phone), _) in app.records().values() {
                world.note("name", name.as_deref());
                world.note("phone", phone.as_deref());
            }
        }
        world
    }

    pub fn spawn(&self) -> Ferry {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ferry::spawn(&self.config, &self.url, &env)
    }

    pub fn note(&self, field: &'static str, value: Option<&str>) {
        if let Some(v) = value {
            self.written
                .lock()
                .unwrap()
                .entry(field)
                .or_default()
                .insert(v.to_string());
        }
    }

    /// Whether anybody may edit or delete this person.
    pub fn editable(&self, email: &str) -> bool {
        self.apps
            .iter()
            .all(|a| a.protected().as_deref() != Some(email))
    }

    /// Hub rows by email: (name, phone), and both links.
    pub async fn hub_people(&self) -> BTreeMap<String, HubPerson> {
        let c = self.hub.client().await.unwrap();
        let sql = format!(
            "select email, name, phone, {}_id::text, {}_id::text from crm.people",
            self.apps[0].name(),
            self.apps[1].name()
        );
        c.query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), ((r.get(1), r.get(2)), r.get(3), r.get(4))))
            .collect()
    }

    /// Why the three parties differ, or None when hub and both apps hold the same people
    /// with the same values and every hub row links the records that hold it.
    pub async fn difference(&self) -> Option<String> {
        let hub = self.hub_people().await;
        let records = [self.apps[0].records(), self.apps[1].records()];
        for app in &self.apps {
            let twice = app.duplicates();
            if !twice.is_empty() {
                return Some(format!("{} holds duplicates: {twice:?}", app.name()));
            }
        }
        for (app, r) in self.apps.iter().zip(&records) {
            if !hub.keys().eq(r.keys()) {
                return Some(format!(
                    "hub and {} hold different people: {:?}",
                    app.name(),
                    sym_diff(&hub, r)
                ));
            }
        }
        for (email, (person, a, b)) in &hub {
            let (x, y) = (&records[0][email], &records[1][email]);
            if person != &x.0 || person != &y.0 {
                return Some(format!(
                    "{email}: hub {person:?}, {} {:?}, {} {:?}",
                    self.apps[0].name(),
                    x.0,
                    self.apps[1].name(),
                    y.0
                ));
            }
            if a.as_ref() != Some(&x.1) || b.as_ref() != Some(&y.1) {
                return Some(format!(
                    "{email}: links {a:?}/{b:?}, records {}/{}",
                    x.1, y.1
                ));
            }
        }
        None
    }

    /// Prints what ferry knows of every person the parties disagree on (for a failure).
    pub async fn explain(&self) {
        let hub = self.hub_people().await;
        let mut ids: Vec<(String, String, usize)> = vec![];
        for (n, app) in self.apps.iter().enumerate() {
            for (email, (p, id)) in app.records() {
                if hub.get(&email).map(|h| &h.0) != Some(&p) {
                    ids.push((email, id, n));
                }
            }
        }
        let c = self.hub.client().await.unwrap();
        for r in c
            .query(
                "select format('cursor %s', to_jsonb(c)) from ferry.cursors c",
                &[],
            )
            .await
            .unwrap()
        {
            eprintln!("{}", r.get::<_, String>(0));
        }
        for (email, id, n) in ids {
            let app = &self.apps[n];
            eprintln!(
                "== {email} ({} record {id}): hub {:?}, app {:?}",
                app.name(),
                hub.get(email.as_str()),
                app.describe(&id)
            );
            for sql in [
                "select format('link m%s row %s remote_updated_at %s written_at %s synced_at %s base %s', mapping_id, row_key, remote_updated_at, written_at, synced_at, base) from ferry.links where remote_id = $1 and $2::text is not null",
                "select format('inbox %s %s %s attempts %s next %s error %s payload %s', connection, kind, received_at, attempts, next_attempt_at, last_error, payload) from ferry.inbox where remote_id = $1 and $2::text is not null",
                "select format('outbox m%s row %s seq %s attempts %s next %s error %s', o.mapping_id, o.row_key, seq, attempts, next_attempt_at, last_error) from ferry.outbox o join ferry.links l using (mapping_id, row_key) where l.remote_id = $1 and $2::text is not null",
                "select format('conflict m%s row %s %s hub %s remote %s base %s %s', c.mapping_id, c.row_key, field, hub_value, remote_value, base_value, decision) from ferry.conflicts c join ferry.links l using (mapping_id, row_key) where l.remote_id = $1 and $2::text is not null",
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

    pub fn activity(&self) -> Vec<u64> {
        self.apps.iter().flat_map(|a| a.activity()).collect()
    }

    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(60), || self.activity()).await;
    }

    pub fn shutdown(&self) {
        for app in &self.apps {
            app.shutdown();
        }
    }
}

/// The keys only `a` has (`+key`), then those only `b` has (`-key`).
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

impl Sql for World {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}
