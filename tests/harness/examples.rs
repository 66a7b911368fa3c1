//! Test harness: the example configurations of the REST connector (`examples/rest/<api>/`)
//! run end to end — the REST simulator serving the example's `profile.toml`, a fresh hub, and
//! the engine in process with the example's `ferry.toml` as shipped except for its `[engine]`
//! table (a test's: port 0, the fresh database's slot, two workers, a 1-second poll) and its
//! base URL (the simulator's).

use std::collections::HashMap;
use std::time::Duration;

use ferry::config::{Config, Secrets};
use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::rest::{Profile, RestSim, SimConfig};
use serde_json::Value;

use super::{backfilled, eventually, fresh_db, Sql};

/// The base URL the examples name: where `ferry sim rest` listens by default.
pub const PLACEHOLDER: &str = "http://127.0.0.1:8706";

/// The example's `ferry.toml` for a test run: its `[engine]` table replaced and the
/// simulator's URL for the placeholder.
pub fn config_text(example: &str, base_url: &str, slot: &str) -> String {
    let start = example
        .find("\n[engine]")
        .expect("the example has an [engine] table");
    let end = start
        + example[start..]
            .find("\n[connections.")
            .expect("a connection follows [engine]");
    let engine = format!(
        "\n[engine]\nlisten = \"127.0.0.1:0\"\nslot = \"{slot}\"\npublication = \"ferry\"\n\
         workers = 2\npoll_interval = \"1s\"\n"
    );
    assert!(example.contains(PLACEHOLDER), "base_url is {PLACEHOLDER}");
    format!("{}{engine}{}", &example[..start], &example[end..]).replace(PLACEHOLDER, base_url)
}

/// A running example: simulator, hub and engine, backfilled.
pub struct Example {
    pub hub: Hub,
    pub sim: RestSim,
    pub engine: Option<Engine>,
    /// The connection's name (its link column is `<connection>_id`).
    pub connection: String,
    /// What the simulator signs its webhooks with (and the connection verifies them with).
    pub webhook_secret: String,
}

impl Example {
    /// Starts the simulator from `profile`, lets `seed` make records in it, then the hub and
    /// the engine from `config` (see [`config_text`]), and waits for the backfill.
    pub async fn start(
        connection: &str,
        profile: &str,
        config: &str,
        seed: impl FnOnce(&RestSim),
    ) -> Example {
        let profile = Profile::parse(profile).expect("the example's profile parses");
        let token = profile.auth.secret().to_string();
        let webhook_secret = profile.webhooks.secret().to_string();
        let sim = RestSim::start(SimConfig::new(profile))
            .await
            .expect("the simulator starts");
        seed(&sim);
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let text = config_text(config, &sim.base_url(), &db);
        let config = Config::parse(&text, connection).expect("the example's ferry.toml parses");
        let secrets = HashMap::from([(
            connection.to_string(),
            Secrets {
                token,
                webhook_secret: Some(webhook_secret.clone()),
            },
        )]);
        let engine = Engine::start(hub.clone(), &config, &secrets)
            .await
            .expect("engine starts");
        sim.set_webhook_url(Some(engine.webhook_url(connection)));
        backfilled(&hub, config.mappings.len()).await;
        Example {
            hub,
            sim,
            engine: Some(engine),
            connection: connection.to_string(),
            webhook_secret,
        }
    }

    /// POSTs a webhook delivery as the app would send it; the engine's status.
    pub async fn deliver(&self, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        let url = self
            .engine
            .as_ref()
            .expect("running")
            .webhook_url(&self.connection);
        let mut req = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
            .await
            .expect("the engine answers")
            .status()
            .as_u16()
    }

    /// Calls of one route so far (`GET /items/tickets/{id}`).
    pub fn calls(&self, route: &str) -> u64 {
        self.sim.stats().route(route)
    }

    /// The field `resource`'s records keep their id under (`id`, `number`, `documentId`).
    pub fn id_field(&self, resource: &str) -> String {
        let spec = self.sim.profile().resource(resource);
        spec.map_or_else(|| "id".to_string(), |r| r.id_field.clone())
    }

    /// The id of the record of `resource` whose `field` is `value`.
    pub fn id_of(&self, resource: &str, field: &str, value: &str) -> Value {
        let record = self.record(resource, field, value).expect("the record");
        record[self.id_field(resource).as_str()].clone()
    }

    /// The record of `resource` whose `field` is `value`.
    pub fn record(&self, resource: &str, field: &str, value: &str) -> Option<Value> {
        self.sim
            .records(resource)
            .into_iter()
            .find(|r| r[field] == value)
    }

    /// Waits until the app has a record of `resource` with `field` = `value` (a hub insert
    /// created) and the hub row's link column names it; returns the record.
    pub async fn created_and_linked(
        &self,
        resource: &str,
        table: &str,
        field: &str,
        value: &str,
    ) -> Value {
        let made = eventually(
            "the hub's insert in the app",
            Duration::from_secs(15),
            || async { self.record(resource, field, value) },
        )
        .await;
        let id = match &made[self.id_field(resource).as_str()] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let sql = format!(
            "select {}_id::text from {table} where {field} = '{value}'",
            self.connection
        );
        eventually("the new id in the hub", Duration::from_secs(15), || async {
            let link: Option<String> = self.opt::<Option<String>>(&sql).await.flatten();
            (link.as_deref() == Some(id.as_str())).then_some(())
        })
        .await;
        made
    }

    /// Polls `f` until it yields a value (15 s at most; panics naming `what`).
    pub async fn until<T, Fut, F>(&self, what: &str, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        eventually(what, Duration::from_secs(15), f).await
    }

    /// Waits until `route` has been called more than `before` times (a webhook's record
    /// fetched by its id).
    pub async fn called_since(&self, route: &str, before: u64) {
        self.until(&format!("a call of {route}"), || async {
            (self.calls(route) > before).then_some(())
        })
        .await;
    }

    /// Waits until the query's single text value is `want`.
    pub async fn hub_shows(&self, what: &str, sql: &str, want: &str) {
        eventually(what, Duration::from_secs(15), || async {
            let got: Option<String> = self.opt::<Option<String>>(sql).await.flatten();
            (got.as_deref() == Some(want)).then_some(())
        })
        .await;
    }

    /// Waits until nothing is queued either way and the simulator is quiet.
    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(30), || {
            let w = self.sim.webhook_counts();
            vec![self.sim.stats().requests, w.delivered, w.failed]
        })
        .await;
    }

    /// The end of every example's run: nothing dead-lettered, every webhook the simulator
    /// sent accepted (its signing and the connection's verification agree); then stops.
    pub async fn finish(mut self) {
        self.quiesce().await;
        let dead: i64 = self.one("select count(*) from ferry.dead_letters").await;
        assert_eq!(dead, 0, "no dead letters");
        let hooks = self.sim.webhook_counts();
        assert!(
            hooks.delivered > 0,
            "the simulator's webhooks reached ferry"
        );
        assert_eq!(hooks.failed, 0, "every simulator webhook was accepted");
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.sim.stop();
    }
}

impl Sql for Example {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}
