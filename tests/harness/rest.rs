//! Test harness: a REST app described only by configuration — the REST simulator running a
//! people API (cursor pages, 1-second timestamps, an updated-since filter, HMAC webhooks
//! carrying changed fields), the `kind = "rest"` connection naming it, a hub and the engine in
//! process between them (`RestCtx`), and the same app as a three-party [`Party`].

use std::collections::HashMap;
use std::time::Duration;

use ferry::config::{Config, Secrets};
use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::hubspot::HubSpotSim;
use ferry::sim::rest::{Profile, RestSim, SimConfig};
use serde_json::{json, Map, Value};

use super::parties::{Party, Person};
use super::{backfilled, fresh_db, hubspot_activity, hubspot_beside, hubspot_secrets, Sql};

pub const TOKEN: &str = "rest-token-e2e";
pub const WEBHOOK_SECRET: &str = "rest-webhook-e2e";

/// Variants of the app's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// A new record takes the lowest id a deletion freed.
    pub reused_ids: bool,
    /// Webhook events carry the whole record (else changed fields only), and the connection
    /// says so (`carries = "records"`).
    pub whole_records: bool,
    /// The app lists its deleted people at `/v2/deleted_people` and the connection reads it
    /// (`deletions`).
    pub deleted_log: bool,
}

/// The app's wire shape as the simulator serves it.
pub fn profile(shape: Shape) -> Profile {
    let reused_ids = shape.reused_ids;
    let deleted_log = if shape.deleted_log {
        r#"deleted_log = "deleted_people""#
    } else {
        ""
    };
    let payload = if shape.whole_records {
        "record"
    } else {
        "changed"
    };
    Profile::parse(&format!(
        r#"
        [auth]
        kind = "bearer"
        secret = "{TOKEN}"

        [resources.people]
        path = "/v2/people"
        ids = "integer"
        records = "/data"
        record = "/data"
        timestamps = "rfc3339_seconds"
        since_param = "updated_since"
        reuse_ids = {reused_ids}
        {deleted_log}

        [resources.people.pages]
        style = "cursor"
        cursor = "/meta/next"
        has_more = "/meta/has_more"
        default_size = 20
        max_size = 100

        [resources.deleted_people]
        path = "/v2/deleted_people"
        ids = "integer"
        records = "/data"
        timestamps = "rfc3339_seconds"
        since_param = "updated_since"

        [resources.deleted_people.pages]
        style = "cursor"
        cursor = "/meta/next"
        has_more = "/meta/has_more"
        default_size = 20
        max_size = 100

        [webhooks]
        scheme = "hmac"
        prefix = "sha256="
        signed = "{{timestamp}}.{{body}}"
        timestamp_header = "X-People-Timestamp"
        header = "X-People-Signature"
        payload = "{payload}"
        secret = "{WEBHOOK_SECRET}"
        "#
    ))
    .expect("profile parses")
}

/// The `[connections.<name>]` of the app: the same shape, told to ferry.
pub fn connection(
    name: &str,
    base_url: &str,
    token_env: &str,
    secret_env: &str,
    shape: Shape,
) -> String {
    let reused_ids = shape.reused_ids;
    let deletions = if shape.deleted_log {
        r#"deletions = { path = "/v2/deleted_people", id = "record_id" }"#
    } else {
        ""
    };
    let carries = if shape.whole_records {
        "records"
    } else {
        "changes"
    };
    format!(
        r#"
        [connections.{name}]
        kind = "rest"
        base_url = "{base_url}"
        token_env = "{token_env}"
        webhook_secret_env = "{secret_env}"
        rate_limit = "100/1s"

        [connections.{name}.resources.people]
        path = "/v2/people"
        records = "/data"
        record = "/data"
        find = {{ property = "email" }}
        reused_ids = {reused_ids}
        pages = {{ style = "cursor", cursor = "/meta/next", has_more = "/meta/has_more", size = 100 }}
        changes = {{ style = "filter", param = "updated_since" }}
        {deletions}

        [connections.{name}.webhook]
        scheme = "hmac"
        header = "X-People-Signature"
        prefix = "sha256="
        signed = "{{timestamp}}.{{body}}"
        timestamp_header = "X-People-Timestamp"
        carries = "{carries}"
        "#
    )
}

/// `crm.people` ↔ the app's people, matched on email.
pub const PEOPLE: &str = r#"
[[mappings]]
connection = "rest"
object = "people"
table = "crm.people"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "email", property = "email", transform = "lowercase" },
  { column = "name",  property = "name" },
  { column = "phone", property = "phone" },
  { column = "city",  property = "address.city" },
]
"#;

pub async fn sim(seed: usize, shape: Shape) -> RestSim {
    let mut cfg = SimConfig::new(profile(shape));
    cfg.seed.insert("people".into(), seed);
    RestSim::start(cfg).await.expect("rest simulator starts")
}

/// A running hub + REST simulator (+ HubSpot's) + engine, backfilled.
pub struct RestCtx {
    pub hub: Hub,
    pub sim: RestSim,
    pub hubspot: Option<HubSpotSim>,
    pub engine: Option<Engine>,
}

impl RestCtx {
    /// `seed` people in the app; with `with_hubspot` a HubSpot connection beside (its
    /// mappings are the caller's); `engine_lines` go in `[engine]`; `shape` as in
    /// [`profile`].
    pub async fn start(
        seed: usize,
        engine_lines: &str,
        mappings: &str,
        with_hubspot: bool,
        shape: Shape,
    ) -> RestCtx {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let sim = sim(seed, shape).await;
        let (hubspot, hubspot_connection) = hubspot_beside(with_hubspot).await;
        let text = format!(
            r#"
            [engine]
            listen = "127.0.0.1:0"
            slot = "{db}"
            publication = "ferry"
            workers = 2
            {engine_lines}
            {rest}
            {hubspot_connection}
            {mappings}
            "#,
            rest = connection("rest", &sim.base_url(), "UNUSED", "UNUSED_SECRET", shape),
        );
        let config = Config::parse(&text, "test config").expect("config parses");
        let secrets = HashMap::from([
            (
                "rest".to_string(),
                Secrets {
                    token: TOKEN.into(),
                    webhook_secret: Some(WEBHOOK_SECRET.into()),
                },
            ),
            ("hubspot".to_string(), hubspot_secrets()),
        ]);
        let engine = Engine::start(hub.clone(), &config, &secrets)
            .await
            .expect("engine starts");
        sim.set_webhook_url(Some(engine.webhook_url("rest")));
        if let Some(h) = &hubspot {
            h.set_webhook_url(Some(engine.webhook_url("hubspot")));
        }
        let ctx = RestCtx {
            hub,
            sim,
            hubspot,
            engine: Some(engine),
        };
        backfilled(&ctx.hub, config.mappings.len()).await;
        ctx
    }

    /// `seed` people in the app alone, mapped by [`PEOPLE`], polled every second.
    pub async fn people(seed: usize) -> RestCtx {
        RestCtx::start(
            seed,
            r#"poll_interval = "1s""#,
            PEOPLE,
            false,
            Shape::default(),
        )
        .await
    }

    /// The live person with this email.
    pub fn person(&self, email: &str) -> Option<Value> {
        self.sim
            .records("people")
            .into_iter()
            .find(|p| p["email"] == email)
    }

    /// Calls of one route so far (`PATCH /v2/people/{id}`).
    pub fn calls(&self, route: &str) -> u64 {
        self.sim.stats().route(route)
    }

    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(30), || {
            let s = self.sim.stats();
            let w = self.sim.webhook_counts();
            vec![s.requests, w.delivered, hubspot_activity(&self.hubspot)]
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.sim.stop();
        if let Some(h) = &self.hubspot {
            h.shutdown();
        }
    }
}

impl Sql for RestCtx {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}

/// The REST app as one of three parties (connection `rest`, link column `rest_id`).
pub struct RestParty(pub RestSim);

impl RestParty {
    pub async fn start() -> Box<dyn Party> {
        let mut cfg = SimConfig::new(profile(Shape::default()));
        cfg.faults.lost_response_rate = 0.01;
        Box::new(RestParty(
            RestSim::start(cfg).await.expect("rest simulator starts"),
        ))
    }
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl Party for RestParty {
    fn name(&self) -> &'static str {
        "rest"
    }
    fn config(&self) -> String {
        format!(
            "{}\n{}",
            connection(
                "rest",
                &self.0.base_url(),
                "TP_REST_TOKEN",
                "TP_REST_SECRET",
                Shape::default(),
            ),
            PEOPLE.replace(
                "  { column = \"city\",  property = \"address.city\" },\n",
                ""
            )
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TP_REST_TOKEN", TOKEN.into()),
            ("TP_REST_SECRET", WEBHOOK_SECRET.into()),
        ]
    }
    fn set_webhook_url(&self, url: String) {
        self.0.set_webhook_url(Some(url));
    }
    fn list(&self) -> Vec<(String, Person, String)> {
        self.0
            .records("people")
            .into_iter()
            .map(|p| {
                let f = p.as_object().cloned().unwrap_or_default();
                (
                    text(&f, "email").unwrap_or_default().to_lowercase(),
                    (text(&f, "name"), text(&f, "phone")),
                    f.get("id").map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }
    fn create(&self, email: &str, name: &str, phone: Option<&str>) {
        let mut f = json!({"email": email, "name": name});
        if let Some(phone) = phone {
            f["phone"] = json!(phone);
        }
        self.0.insert("people", f);
    }
    fn update(&self, id: &str, field: &str, value: &str) {
        if let Ok(n) = id.parse::<u64>() {
            let _ = self.0.edit("people", &json!(n), json!({ field: value }));
        }
    }
    fn delete(&self, id: &str) {
        if let Ok(n) = id.parse::<u64>() {
            self.0.delete("people", &json!(n));
        }
    }
    fn writes(&self) -> u64 {
        let s = self.0.stats();
        s.by_route
            .iter()
            .filter(|(route, _)| {
                ["POST ", "PATCH ", "PUT ", "DELETE "]
                    .iter()
                    .any(|m| route.starts_with(m))
            })
            .map(|(_, n)| *n)
            .sum()
    }
    fn activity(&self) -> Vec<u64> {
        vec![self.0.stats().requests, self.0.webhook_counts().delivered]
    }
    fn calm(&self) {
        self.0.faults().set_rates(0.0, 0.0, 0.0);
    }
    fn describe(&self, id: &str) -> Option<String> {
        let n = id.parse::<u64>().ok()?;
        Some(self.0.get("people", &json!(n))?.to_string())
    }
    fn shutdown(&self) {
        self.0.stop();
    }
}
