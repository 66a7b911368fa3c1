//! Test harness: one real PostgreSQL cluster per test binary (temp initdb, free port,
//! wal_level=logical; as root the server runs as `postgres`), a fresh database per test, a
//! HubSpot simulator on port 0, and the engine wired to both (`Ctx`). Waits poll a condition
//! until a deadline. The other test contexts live in submodules named for what they hold
//! (`zendesk`, `portals`, `parties`), SQL on a context's hub in `sql`.
#![allow(dead_code)]

pub mod examples;
pub mod parties;
pub mod portals;
pub mod process;
pub mod rest;
pub mod salesforce;
pub mod sql;
pub mod stripe;
pub mod workload;
pub mod zendesk;

pub use sql::Sql;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry::config::{Config, Secrets};
use ferry::engine::Engine;
use ferry::hub::embedded::EmbeddedPg;
use ferry::hub::Hub;
use ferry::sim::hubspot::{HubSpotSim, SimConfig};
use ferry::sim::zendesk::{SimConfig as ZendeskConfig, ZendeskSim};

static CLUSTER: OnceLock<EmbeddedPg> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

extern "C" fn stop_cluster() {
    if let Some(pg) = CLUSTER.get() {
        pg.stop();
        if std::env::var_os("FERRY_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&pg.dir);
        }
    }
}

/// Starts a fresh private cluster in a temp dir (stopped and removed when dropped; kept with
/// FERRY_TEST_KEEP set).
pub fn new_cluster(tag: &str) -> PrivateCluster {
    PrivateCluster(start_cluster(tag))
}

fn start_cluster(tag: &str) -> EmbeddedPg {
    let dir = std::env::temp_dir().join(format!(
        "ferry-test-{}-{tag}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    EmbeddedPg::start(&dir).unwrap_or_else(|e| panic!("test cluster: {e}"))
}

/// A test's own cluster, for server-wide settings the shared one must not get.
pub struct PrivateCluster(EmbeddedPg);

impl std::ops::Deref for PrivateCluster {
    type Target = EmbeddedPg;
    fn deref(&self) -> &EmbeddedPg {
        &self.0
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.0.stop();
        if std::env::var_os("FERRY_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0.dir);
        }
    }
}

pub fn cluster() -> &'static EmbeddedPg {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
    CLUSTER.get_or_init(|| {
        let pg = start_cluster("main");
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe { libc::atexit(stop_cluster) };
        pg
    })
}

/// A new, empty database; returns its name and URL.
pub async fn fresh_db() -> (String, String) {
    let pg = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    pg.ensure_database(&name)
        .await
        .expect("create test database");
    (name.clone(), pg.url(&name))
}

pub const TOKEN: &str = "test-token";
pub const SECRET: &str = "test-webhook-secret";

/// The standard test configuration text: HubSpot contacts ↔ hubspot.contacts, with the given
/// listen address, token/secret variable names and any extra field lines.
pub fn config_text(
    sim_url: &str,
    slot: &str,
    listen: &str,
    env: (&str, &str),
    extra_fields: &str,
) -> String {
    format!(
        r#"
        [engine]
        listen = "{listen}"
        slot = "{slot}"
        publication = "ferry"
        workers = 2

        [connections.hubspot]
        kind = "hubspot"
        base_url = "{sim_url}"
        token_env = "{token_env}"
        webhook_secret_env = "{secret_env}"

        [[mappings]]
        connection = "hubspot"
        object = "contacts"
        table = "hubspot.contacts"
        match_key = "email"
        fields = [
          {{ column = "email",     property = "email", transform = "lowercase" }},
          {{ column = "firstname", property = "firstname" }},
          {{ column = "lastname",  property = "lastname" }},
          {{ column = "phone",     property = "phone" }},
          {{ column = "company",   property = "company" }},
          {extra_fields}
        ]
        "#,
        token_env = env.0,
        secret_env = env.1,
    )
}

/// The standard test mapping, for an in-process engine (secrets come from [`secrets`]).
pub fn config(sim_url: &str, slot: &str) -> Config {
    let text = config_text(
        sim_url,
        slot,
        "127.0.0.1:0",
        ("UNUSED_IN_TESTS", "UNUSED_IN_TESTS_SECRET"),
        "",
    );
    Config::parse(&text, "test config").expect("test config parses")
}

pub fn secrets() -> HashMap<String, Secrets> {
    HashMap::from([("hubspot".to_string(), hubspot_secrets())])
}

/// The secrets of a HubSpot connection to a simulator from [`hubspot_sim`].
pub fn hubspot_secrets() -> Secrets {
    Secrets {
        token: TOKEN.into(),
        webhook_secret: Some(SECRET.into()),
    }
}

/// A HubSpot simulator on port 0 taking [`TOKEN`] and signing with [`SECRET`]; `config` says
/// the rest (seed, faults).
/// Waits until the hub's `mappings` mappings have all finished their backfills.
pub async fn backfilled(hub: &Hub, mappings: usize) {
    eventually("backfills done", Duration::from_secs(30), || async {
        let done: i64 = hub
            .client()
            .await
            .ok()?
            .query_one(
                "select count(*) from ferry.mappings where backfill_state = 'done'",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (done == mappings as i64).then_some(())
    })
    .await;
}

/// Calls and webhook events of a HubSpot simulator run beside another app's (0 without).
pub fn hubspot_activity(hubspot: &Option<HubSpotSim>) -> u64 {
    hubspot.as_ref().map_or(0, |h| {
        let s = h.stats();
        s.requests + s.webhook_events
    })
}

/// With `with`, a HubSpot simulator to run beside another app's, and the `[connections.hubspot]`
/// table naming it (its secrets are [`hubspot_secrets`]); without, none and no table.
pub async fn hubspot_beside(with: bool) -> (Option<HubSpotSim>, String) {
    if !with {
        return (None, String::new());
    }
    let h = hubspot_sim(SimConfig::default()).await;
    let table = format!(
        r#"
        [connections.hubspot]
        kind = "hubspot"
        base_url = "{}"
        token_env = "UNUSED"
        webhook_secret_env = "UNUSED_SECRET"
        "#,
        h.base_url()
    );
    (Some(h), table)
}

pub async fn hubspot_sim(config: SimConfig) -> HubSpotSim {
    HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            ..config
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("hubspot simulator starts")
}

/// A Zendesk simulator on port 0 (it makes its own token and webhook secret).
pub async fn zendesk_sim(config: ZendeskConfig) -> ZendeskSim {
    ZendeskSim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("zendesk simulator starts")
}

/// A running hub + simulator + engine, backfilled.
pub struct Ctx {
    pub db: String,
    pub url: String,
    pub hub: Hub,
    pub sim: HubSpotSim,
    pub engine: Option<Engine>,
    pub config: Config,
}

impl Ctx {
    pub async fn start(seed: usize) -> Ctx {
        Ctx::start_with(seed, "", "", "").await
    }

    /// Like `start`, with extra `[engine]` lines (e.g. `poll_interval = "1s"`), extra mapping
    /// lines (e.g. `soft_delete = true`), and SQL run on the fresh database before the engine
    /// first starts.
    pub async fn start_with(
        seed: usize,
        engine_lines: &str,
        mapping_lines: &str,
        setup_sql: &str,
    ) -> Ctx {
        Ctx::start_full(seed, engine_lines, mapping_lines, "", setup_sql).await
    }

    /// [`Ctx::start_with`] with extra field lines in the mapping's `fields` list.
    pub async fn start_full(
        seed: usize,
        engine_lines: &str,
        mapping_lines: &str,
        extra_fields: &str,
        setup_sql: &str,
    ) -> Ctx {
        let (db, url) = fresh_db().await;
        Ctx::start_on(
            db,
            url,
            seed,
            engine_lines,
            mapping_lines,
            extra_fields,
            setup_sql,
        )
        .await
    }

    /// [`Ctx::start_full`] on a given database (`url` may name another role, server or
    /// sslmode); `db` names the replication slot too.
    pub async fn start_on(
        db: String,
        url: String,
        seed: usize,
        engine_lines: &str,
        mapping_lines: &str,
        extra_fields: &str,
        setup_sql: &str,
    ) -> Ctx {
        let hub = Hub::connect(&url).await.expect("hub connects");
        if !setup_sql.is_empty() {
            hub.client()
                .await
                .unwrap()
                .batch_execute(setup_sql)
                .await
                .expect("setup SQL runs");
        }
        let sim = hubspot_sim(SimConfig {
            seed_contacts: seed,
            ..SimConfig::default()
        })
        .await;
        let text = config_text(
            &sim.base_url(),
            &db,
            "127.0.0.1:0",
            ("UNUSED_IN_TESTS", "UNUSED_IN_TESTS_SECRET"),
            extra_fields,
        )
        .replacen(
            "workers = 2\n",
            &format!("workers = 2\n{engine_lines}\n"),
            1,
        )
        .replacen(
            "match_key = \"email\"\n",
            &format!("match_key = \"email\"\n{mapping_lines}\n"),
            1,
        );
        let config = Config::parse(&text, "test config").expect("test config parses");
        let engine = Engine::start(hub.clone(), &config, &secrets())
            .await
            .expect("engine starts");
        sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
        let ctx = Ctx {
            db,
            url,
            hub,
            sim,
            engine: Some(engine),
            config,
        };
        ctx.wait_backfill().await;
        ctx
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine running")
    }

    pub async fn wait_backfill(&self) {
        eventually("backfill done", Duration::from_secs(30), || async {
            let done: bool = self.one("select backfill_state = 'done' from ferry.mappings where name = 'hubspot.contacts'").await;
            done.then_some(())
        })
        .await;
    }

    /// Posts `body` to the HubSpot webhook endpoint signed as HubSpot signs (v3, now);
    /// the answer's status.
    pub async fn post_signed(&self, body: &str) -> u16 {
        use ferry::connectors::hubspot::signature::{sign_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};
        let url = self.engine().webhook_url("hubspot");
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let sig = sign_v3(SECRET.as_bytes(), "POST", &url, body.as_bytes(), &now);
        reqwest::Client::new()
            .post(url)
            .header(SIGNATURE_HEADER, sig)
            .header(TIMESTAMP_HEADER, now)
            .body(body.to_string())
            .send()
            .await
            .expect("ferry answers")
            .status()
            .as_u16()
    }

    // The hub's SQL helpers as Ctx's own methods, so a test using Ctx needs no `use Sql`.

    pub async fn exec(&self, sql: &str) -> u64 {
        self.hub.exec(sql).await
    }

    /// The single value of a query.
    pub async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.hub.one(sql).await
    }

    /// The two values of a one-row query.
    pub async fn pair<A, B>(&self, sql: &str) -> (A, B)
    where
        A: for<'a> tokio_postgres::types::FromSql<'a>,
        B: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        self.hub.pair(sql).await
    }

    pub async fn opt<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> Option<T> {
        self.hub.opt(sql).await
    }

    /// The first column of every row `sql` returns.
    pub async fn column<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        self.hub.column(sql).await
    }

    /// The remote property of a contact, if the record is live.
    pub fn remote(&self, id: &str, property: &str) -> Option<String> {
        self.sim
            .get("contacts", id)
            .filter(|r| !r.archived)
            .and_then(|r| r.properties.get(property).cloned())
    }

    /// Waits until nothing is queued in either direction and the simulator has delivered its
    /// webhooks, stable over a few consecutive checks.
    pub async fn quiesce(&self) {
        quiesce(&self.hub, Duration::from_secs(20), || {
            let s = self.sim.stats();
            vec![s.webhook_events, s.requests]
        })
        .await;
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("simulator answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// One edit each way: a hub UPDATE reaches the app, an app edit (as its API makes them)
    /// reaches the hub.
    pub async fn round_trip(&self) {
        let id: String = self
            .one("select hubspot_id from hubspot.contacts order by id limit 1")
            .await;
        self.exec(&format!(
            "update hubspot.contacts set phone = '+15550142' where hubspot_id = '{id}'"
        ))
        .await;
        eventually(
            "the hub's edit in the app",
            Duration::from_secs(10),
            || async { (self.remote(&id, "phone").as_deref() == Some("+15550142")).then_some(()) },
        )
        .await;
        let other: String = self
            .one("select hubspot_id from hubspot.contacts order by id desc limit 1")
            .await;
        let mut props = serde_json::Map::new();
        props.insert("firstname".into(), "Roundtrip".into());
        self.sim
            .app_update("contacts", &other, props)
            .expect("the app takes the edit");
        eventually(
            "the app's edit in the hub",
            Duration::from_secs(10),
            || async {
                let first: Option<String> = self
                    .opt(&format!(
                        "select firstname from hubspot.contacts where hubspot_id = '{other}'"
                    ))
                    .await;
                (first.as_deref() == Some("Roundtrip")).then_some(())
            },
        )
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.sim.shutdown();
    }
}

/// Waits until nothing is queued either way in `hub` and `activity` (the simulators' call and
/// webhook counters) stops moving, over 5 consecutive checks; panics after `timeout`.
pub async fn quiesce(hub: &Hub, timeout: Duration, activity: impl Fn() -> Vec<u64>) {
    let deadline = Instant::now() + timeout;
    let mut stable = 0;
    let mut last: Vec<u64> = vec![];
    while stable < 5 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for quiescence"
        );
        let now = activity();
        let queued: i64 = hub
            .client()
            .await
            .unwrap()
            .query_one(
                "select (select count(*) from ferry.outbox) + (select count(*) from ferry.inbox)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        stable = if queued == 0 && now == last {
            stable + 1
        } else {
            0
        };
        last = now;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `f` every 10 ms until it yields a value; panics with `what` after `timeout`.
pub async fn eventually<T, Fut, F>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// App-side properties for the simulator's `app_create` / `app_update`.
pub fn props(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect()
}

/// App-side fields from a JSON object (`obj(json!({"phone": "+1555"}))`), for the Zendesk
/// simulator's `app_create` / `app_update`; anything else is no fields.
pub fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A fresh database, migrated, with the test configuration applied and no engine running.
pub async fn applied_hub() -> (Hub, Config) {
    let (db, url) = fresh_db().await;
    let hub = Hub::connect(&url).await.expect("hub connects");
    ferry::hub::migrate::migrate(&hub)
        .await
        .expect("hub migrates");
    let config = config("http://127.0.0.1:9", &db);
    ferry::hub::schema::apply(&hub, &config)
        .await
        .expect("configuration applies");
    (hub, config)
}

/// The first column of every row `sql` returns.
pub async fn column<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    c: &tokio_postgres::Client,
    sql: &str,
) -> Vec<T> {
    c.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}
