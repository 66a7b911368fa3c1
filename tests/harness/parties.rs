//! Test harness: three parties on one table — the hub (psql), the HubSpot simulator and the
//! Zendesk simulator, `crm.people` mapped to HubSpot contacts and Zendesk users — with a real
//! `ferry run` process between them (spawned, killed and respawned by the test), every value
//! anybody wrote, and how the three differ.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use ferry::hub::Hub;
use ferry::sim::hubspot::{HubSpotSim, SimConfig as HubSpotConfig};
use ferry::sim::zendesk::{SimConfig as ZendeskConfig, ZendeskSim};
use serde_json::{json, Value};

use super::process::{free_port, scratch_dir, Ferry};
use super::{fresh_db, hubspot_sim, obj, props, zendesk_sim, Sql, SECRET, TOKEN};

/// People in each app before the first sync, and how many of them are in both.
pub const HUBSPOT_ONLY: usize = 20;
pub const SHARED: usize = 6;

/// One person as every party holds it: name and phone (None = empty).
pub type Person = (Option<String>, Option<String>);

/// One person as the hub holds it: name and phone, then the HubSpot and Zendesk links.
pub type HubPerson = (Person, Option<String>, Option<String>);

/// The three parties, the config file of the ferry process between them and its environment.
pub struct World {
    pub hub: Hub,
    pub url: String,
    pub hubspot: HubSpotSim,
    pub zendesk: ZendeskSim,
    pub config: std::path::PathBuf,
    pub env: Vec<(&'static str, String)>,
    /// Every value anybody wrote (and the seeds'), per field.
    pub written: Mutex<BTreeMap<&'static str, HashSet<String>>>,
}

impl World {
    pub async fn start() -> World {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let hubspot = hubspot_sim(HubSpotConfig {
            lost_response_rate: 0.01,
            ..HubSpotConfig::default()
        })
        .await;
        let zendesk = zendesk_sim(ZendeskConfig {
            seed_users: 12,
            ..ZendeskConfig::default()
        })
        .await;
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

    /// The account owner (Zendesk will not delete it): nobody edits or deletes this person.
    pub fn owner(&self) -> String {
        self.zendesk.email().to_lowercase()
    }

    /// Hub rows by email: (name, phone), and both links.
    pub async fn hub_people(&self) -> BTreeMap<String, HubPerson> {
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
    pub fn hubspot_records(&self) -> BTreeMap<String, (Person, String)> {
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

    pub fn hubspot_people(&self) -> BTreeMap<String, Person> {
        self.hubspot_records()
            .into_iter()
            .map(|(e, (p, _))| (e, p))
            .collect()
    }

    /// Active Zendesk users by email: (name, phone) and the id.
    pub fn zendesk_records(&self) -> BTreeMap<String, (Person, String)> {
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

    pub fn zendesk_people(&self) -> BTreeMap<String, Person> {
        self.zendesk_records()
            .into_iter()
            .map(|(e, (p, _))| (e, p))
            .collect()
    }

    /// Why the three parties differ, or None when hub and both apps hold the same people
    /// with the same values and every hub row links the records that hold it.
    pub async fn difference(&self) -> Option<String> {
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
    pub async fn explain(&self) {
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
        for (email, id) in ids {
            if let Some(r) = id.parse().ok().and_then(|n| self.zendesk.get("users", n)) {
                eprintln!("   Zendesk record {:?}", r.fields);
            }
            eprintln!(
                "== {email} (record {id}): hub {:?}, HubSpot {:?}, Zendesk {:?}",
                hub.get(email.as_str()),
                hs.get(&email),
                zd.get(&email)
            );
            for sql in [
                "select format('link m%s row %s remote_updated_at %s synced_at %s base %s', mapping_id, row_key, remote_updated_at, synced_at, base) from ferry.links where remote_id = $1 and $2::text is not null",
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
        let (h, z) = (self.hubspot.stats(), self.zendesk.stats());
        vec![
            h.requests,
            h.webhook_events,
            z.requests,
            z.webhooks_delivered,
        ]
    }

    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(60), || self.activity()).await;
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
