//! Test harness: two HubSpot portals (each its own simulator, connections `app_a` and
//! `app_b`) mapped to one hub table, `crm.people`, with the engine in process between them;
//! a contact's property read and set in one portal.

use std::collections::HashMap;
use std::time::Duration;

use ferry::config::Config;
use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::hubspot::{HubSpotSim, SimConfig};

use super::{eventually, fresh_db, hubspot_secrets, hubspot_sim, Sql};

/// A running hub + two portals + engine, both backfilled.
pub struct Two {
    pub hub: Hub,
    pub a: HubSpotSim,
    pub b: HubSpotSim,
    pub engine: Option<Engine>,
}

/// A portal seeded with `seed` contacts.
async fn sim(seed: usize) -> HubSpotSim {
    hubspot_sim(SimConfig {
        seed_contacts: seed,
        ..SimConfig::default()
    })
    .await
}

/// The `[[mappings]]` table of `connection`'s contacts to crm.people, with `extra` lines and
/// `fields` lines beyond email, firstname, lastname and phone.
pub fn mapping(connection: &str, extra: &str, fields: &str) -> String {
    format!(
        r#"
        [[mappings]]
        connection = "{connection}"
        object = "contacts"
        table = "crm.people"
        match_key = "email"
        {extra}
        fields = [
          {{ column = "email",     property = "email", transform = "lowercase" }},
          {{ column = "firstname", property = "firstname" }},
          {{ column = "lastname",  property = "lastname" }},
          {{ column = "phone",     property = "phone" }},
          {fields}
        ]
        "#
    )
}

impl Two {
    /// App A seeded with `seed_a` contacts, app B with `seed_b` (the same first ones: the
    /// simulators' seeds are deterministic), both mapped to crm.people.
    pub async fn start(seed_a: usize, seed_b: usize) -> Two {
        Two::start_with(seed_a, seed_b, "").await
    }

    /// [`Two::start`] with extra lines in B's mapping.
    pub async fn start_with(seed_a: usize, seed_b: usize, b_lines: &str) -> Two {
        Two::start_full(seed_a, seed_b, b_lines, "", "").await
    }

    /// [`Two::start_with`] with extra field lines for A's and B's mappings.
    pub async fn start_full(
        seed_a: usize,
        seed_b: usize,
        b_lines: &str,
        a_fields: &str,
        b_fields: &str,
    ) -> Two {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let (a, b) = (sim(seed_a).await, sim(seed_b).await);
        let text = format!(
            r#"
            [engine]
            listen = "127.0.0.1:0"
            slot = "{db}"
            publication = "ferry"
            workers = 2

            [connections.app_a]
            kind = "hubspot"
            base_url = "{a}"
            token_env = "UNUSED"
            webhook_secret_env = "UNUSED_SECRET"

            [connections.app_b]
            kind = "hubspot"
            base_url = "{b}"
            token_env = "UNUSED"
            webhook_secret_env = "UNUSED_SECRET"
            {ma}
            {mb}
            "#,
            a = a.base_url(),
            b = b.base_url(),
            ma = mapping("app_a", "", a_fields),
            mb = mapping("app_b", b_lines, b_fields),
        );
        let config = Config::parse(&text, "test config").expect("config parses");
        let secrets = HashMap::from([
            ("app_a".to_string(), hubspot_secrets()),
            ("app_b".to_string(), hubspot_secrets()),
        ]);
        let engine = Engine::start(hub.clone(), &config, &secrets)
            .await
            .expect("engine starts");
        a.set_webhook_url(Some(engine.webhook_url("app_a")));
        b.set_webhook_url(Some(engine.webhook_url("app_b")));
        let two = Two {
            hub,
            a,
            b,
            engine: Some(engine),
        };
        eventually("both backfills done", Duration::from_secs(30), || async {
            let done: i64 = two
                .one("select count(*) from ferry.mappings where backfill_state = 'done'")
                .await;
            (done == 2).then_some(())
        })
        .await;
        two
    }

    /// A contact's property in one app, by email.
    pub fn prop(sim: &HubSpotSim, email: &str, property: &str) -> Option<String> {
        sim.records("contacts")
            .into_iter()
            .find(|r| r.properties.get("email").map(String::as_str) == Some(email))
            .and_then(|r| r.properties.get(property).cloned())
    }

    /// Waits until nothing is queued either way and neither app sees new calls or sends new
    /// webhooks.
    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(20), || {
            let (a, b) = (self.a.stats(), self.b.stats());
            vec![a.webhook_events, a.requests, b.webhook_events, b.requests]
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.a.shutdown();
        self.b.shutdown();
    }
}

impl Sql for Two {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}

/// An edit in one portal's own UI: contact `id`'s `property` set to `value`.
pub fn set(sim: &HubSpotSim, id: &str, property: &str, value: &str) {
    let mut props = serde_json::Map::new();
    props.insert(property.into(), value.into());
    sim.app_update("contacts", id, props).unwrap();
}
