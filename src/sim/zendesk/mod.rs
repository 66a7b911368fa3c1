//! Zendesk simulator: the public handle (`ZendeskSim`), its configuration, and the records,
//! stats and errors it exposes. Serves Zendesk Support's users and organizations API with
//! Zendesk's auth, wrapping, paging, bulk jobs, incremental exports, validation errors, rate
//! limits and signed event webhooks, on the shared simulator core (clock, faults, budgets).

// Handlers return ready error `Response`s in `Err`; that path is cold, boxing buys nothing.
#![allow(clippy::result_large_err)]

mod bulk;
pub mod cli;
mod events;
mod export;
mod fields;
mod gate;
mod jobs;
mod organizations;
mod orgs_api;
mod paging;
mod store;
mod users;
mod users_api;
mod wire;

#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_bulk;
#[cfg(test)]
mod tests_export;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_orgs;
#[cfg(test)]
mod tests_webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::sim::core::{
    self, lock, DeliveryPolicy, FaultSettings, Faults, RateBudgets, RequestStats, Shutdown,
    SimClock, WebhookSender,
};
pub use events::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use fields::{FieldError, Object};
use store::{Change, Store};

/// Webhook deliveries the simulator has in flight at once.
const WEBHOOK_CONCURRENCY: usize = 8;

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The API agent's email (Basic auth user `{email}/token`); also the account owner.
    pub email: String,
    /// API token (Basic auth password).
    pub token: String,
    /// Accepted as `Authorization: Bearer <token>` when set.
    pub oauth_token: Option<String>,
    /// Where event webhooks are POSTed; None = no webhooks.
    pub webhook_url: Option<String>,
    /// The webhook's signing secret.
    pub webhook_secret: String,
    pub account_id: u64,
    /// Account-wide budget (Zendesk: per plan, 700/min on Enterprise); None = unlimited.
    pub rate_limit: Option<(u32, Duration)>,
    /// Incremental export budget, on top of the account one (Zendesk: 10/min).
    pub incremental_limit: Option<(u32, Duration)>,
    /// How long a bulk job stays queued before it runs.
    pub job_delay: Duration,
    /// End-users created at start: `user{n}@example.com` with a name and a phone.
    pub seed_users: usize,
    /// Organizations created at start (`Organization {n}`); seeded users join them in turn.
    pub seed_orgs: usize,
    /// Added to every API response.
    pub latency: Duration,
    /// Share of API requests answered 500, 502 or 503 without doing anything.
    pub error_rate: f64,
    /// Share of API requests answered 429 (with `Retry-After: 1`) without doing anything.
    pub throttle_rate: f64,
    /// Share of writes performed (webhooks and jobs included) but answered 504.
    pub lost_response_rate: f64,
    /// Share of webhook deliveries dropped.
    pub webhook_drop_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            email: "agent@example.com".into(),
            token: "sim-token".into(),
            oauth_token: None,
            webhook_url: None,
            webhook_secret: "sim-secret".into(),
            account_id: 12_514_403,
            rate_limit: Some((700, Duration::from_secs(60))),
            incremental_limit: Some((10, Duration::from_secs(60))),
            job_delay: Duration::from_millis(100),
            seed_users: 0,
            seed_orgs: 0,
            latency: Duration::ZERO,
            error_rate: 0.0,
            throttle_rate: 0.0,
            lost_response_rate: 0.0,
            webhook_drop_rate: 0.0,
        }
    }
}

/// A record as the API renders it (soft-deleted users have `active: false`, deleted
/// organizations a `deleted_at`).
#[derive(Clone, Debug, PartialEq)]
pub struct SimRecord {
    pub id: u64,
    pub fields: Map<String, Value>,
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every request answered, refused ones included.
    pub requests: u64,
    /// Requests per route (`GET /api/v2/users/{id}`...).
    pub by_route: BTreeMap<String, u64>,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// Requests answered 429 (budgets and injected).
    pub throttled: u64,
    /// Requests answered 5xx (injected errors and lost responses).
    pub server_errors: u64,
    pub errors_injected: u64,
    pub throttles_injected: u64,
    /// Writes performed but answered 504.
    pub lost_responses: u64,
    /// Records created, updated or deleted through the API (bulk jobs included).
    pub records_written: u64,
    pub jobs_completed: u64,
    pub webhooks_delivered: u64,
    pub webhooks_dropped: u64,
    pub webhooks_failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("unknown object `{0}` (users or organizations)")]
    UnknownObject(String),
    #[error("RecordNotFound: Not found")]
    NotFound,
    #[error("RecordInvalid: {}", .0.iter().map(|e| e.description.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

#[derive(Default)]
pub(crate) struct Counters {
    pub records_written: AtomicU64,
    pub jobs_completed: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn all(&self) -> [&AtomicU64; 2] {
        [&self.records_written, &self.jobs_completed]
    }
}

/// Shared state of one simulator instance.
pub(crate) struct Inner {
    pub email: String,
    pub token: String,
    pub oauth_token: Option<String>,
    pub base_url: String,
    pub addr: SocketAddr,
    pub account_id: u64,
    pub webhook_secret: String,
    pub clock: Arc<SimClock>,
    pub faults: Arc<Faults>,
    pub budgets: RateBudgets,
    pub stats: RequestStats,
    pub counters: Counters,
    pub store: Mutex<Store>,
    pub hooks: Arc<WebhookSender<events::ZendeskWebhooks>>,
    pub jobs: jobs::Jobs,
    pub shutdown: Shutdown,
}

impl Inner {
    /// The simulated now, in whole seconds (Zendesk's timestamp precision).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now_secs()
    }

    /// Queues the webhooks of `changes`. Call with the store still locked, so deliveries keep
    /// the order of the writes.
    pub(crate) fn emit(&self, changes: &[Change]) {
        if !changes.is_empty() {
            self.hooks.enqueue(events::events(changes, self.account_id));
        }
    }
}

/// Handle to a running simulator; clones share it.
#[derive(Clone)]
pub struct ZendeskSim {
    inner: Arc<Inner>,
}

fn object(name: &str) -> Result<Object, SimError> {
    Object::parse(name).ok_or_else(|| SimError::UnknownObject(name.to_string()))
}

fn seed(store: &mut Store, cfg: &SimConfig, now: DateTime<Utc>) -> Result<(), SimError> {
    // seeded records are old enough for the incremental exports' one-minute lag
    let span = (cfg.seed_users + cfg.seed_orgs) as i64 + 3600;
    let first = now - TimeDelta::seconds(span);
    store.seed_owner(&cfg.email, first)?;
    store.seed_orgs(cfg.seed_orgs, first)?;
    store.seed_users(
        cfg.seed_users,
        first + TimeDelta::seconds(cfg.seed_orgs as i64),
    )
}

impl ZendeskSim {
    /// Binds `addr` (port 0 allowed), seeds, and spawns the server, the job runner and the
    /// webhook sender on the current tokio runtime.
    pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<ZendeskSim> {
        let bound = core::bind(addr).await?;
        let clock = Arc::new(SimClock::new());
        let faults = Arc::new(Faults::new(&FaultSettings {
            latency: cfg.latency,
            error_rate: cfg.error_rate,
            throttle_rate: cfg.throttle_rate,
            lost_response_rate: cfg.lost_response_rate,
            webhook_drop_rate: cfg.webhook_drop_rate,
            ..FaultSettings::default()
        }));
        let mut store = Store::default();
        seed(&mut store, &cfg, clock.now_secs())
            .map_err(|e| std::io::Error::other(format!("seeding: {e}")))?;
        let mut budgets = RateBudgets::new();
        if let Some((n, window)) = cfg.rate_limit {
            budgets = budgets.with(gate::ACCOUNT, n, window);
        }
        if let Some((n, window)) = cfg.incremental_limit {
            budgets = budgets.with(gate::INCREMENTAL, n, window);
        }
        let format = events::ZendeskWebhooks::new(
            cfg.webhook_secret.clone(),
            format!("01SIM{:021}", cfg.account_id),
        );
        // Zendesk does not retry a failed delivery (beyond a few documented cases) and
        // promises no order: several deliveries are in flight at once, so one slow answer does
        // not hold every later event back
        let hooks = WebhookSender::new(
            format,
            cfg.webhook_url.clone(),
            DeliveryPolicy {
                concurrency: WEBHOOK_CONCURRENCY,
                ..DeliveryPolicy::default()
            },
            clock.clone(),
            faults.clone(),
        )?;
        let shutdown = Shutdown::new();
        let inner = Arc::new(Inner {
            email: cfg.email,
            token: cfg.token,
            oauth_token: cfg.oauth_token,
            base_url: bound.base_url.clone(),
            addr: bound.addr,
            account_id: cfg.account_id,
            webhook_secret: cfg.webhook_secret,
            clock,
            faults,
            budgets,
            stats: RequestStats::new(),
            counters: Counters::default(),
            store: Mutex::new(store),
            hooks,
            jobs: jobs::Jobs::new(cfg.job_delay),
            shutdown: shutdown.clone(),
        });
        inner.hooks.spawn(shutdown.clone());
        jobs::spawn_runner(inner.clone());
        bound.serve(gate::router(inner.clone()), shutdown, "zendesk");
        Ok(ZendeskSim { inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`; the API lives under `/api/v2/`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn email(&self) -> String {
        self.inner.email.clone()
    }

    pub fn token(&self) -> String {
        self.inner.token.clone()
    }

    pub fn webhook_secret(&self) -> String {
        self.inner.webhook_secret.clone()
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.hooks.set_url(url);
    }

    /// The simulator clock (record times, rate windows, the exports' one-minute lag).
    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    /// Changes the request fault rates (see `SimConfig`); each is clamped to `[0, 1]`.
    pub fn set_faults(&self, error_rate: f64, throttle_rate: f64, lost_response_rate: f64) {
        self.inner
            .faults
            .set_rates(error_rate, throttle_rate, lost_response_rate);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.inner.faults.set_latency(latency);
    }

    /// How long bulk jobs submitted from now on stay queued.
    pub fn set_job_delay(&self, delay: Duration) {
        self.inner.jobs.set_delay(delay);
    }

    /// Share of webhook deliveries dropped from now on.
    pub fn set_drop_webhooks(&self, rate: f64) {
        self.inner.faults.set_webhook_drop_rate(rate);
    }

    pub fn faults(&self) -> FaultSettings {
        self.inner.faults.settings()
    }

    /// Switches the rate budgets (account and incremental) off and on.
    pub fn set_rate_limit_enabled(&self, on: bool) {
        self.inner.budgets.set_enabled(on);
    }

    /// Creates a record as an agent in the Zendesk UI would (webhooks included); returns its id.
    pub fn app_create(
        &self,
        object_name: &str,
        fields: Map<String, Value>,
    ) -> Result<u64, SimError> {
        let now = self.inner.now();
        let mut store = lock(&self.inner.store);
        let (id, changes) = match object(object_name)? {
            Object::Users => {
                let p = fields::user_patch(&fields).map_err(SimError::Invalid)?;
                store.create_user(&p, now)?
            }
            Object::Organizations => {
                let p = fields::org_patch(&fields).map_err(SimError::Invalid)?;
                store.create_org(&p, now)?
            }
        };
        self.inner.emit(&changes);
        Ok(id)
    }

    pub fn app_update(
        &self,
        object_name: &str,
        id: u64,
        fields: Map<String, Value>,
    ) -> Result<(), SimError> {
        let now = self.inner.now();
        let mut store = lock(&self.inner.store);
        let changes = match object(object_name)? {
            Object::Users => {
                let p = fields::user_patch(&fields).map_err(SimError::Invalid)?;
                store.update_user(id, &p, now)?
            }
            Object::Organizations => {
                let p = fields::org_patch(&fields).map_err(SimError::Invalid)?;
                store.update_org(id, &p, now)?
            }
        };
        self.inner.emit(&changes);
        Ok(())
    }

    /// Deletes a record (users: soft delete).
    pub fn app_delete(&self, object_name: &str, id: u64) -> Result<(), SimError> {
        let now = self.inner.now();
        let mut store = lock(&self.inner.store);
        let changes = match object(object_name)? {
            Object::Users => store.delete_user(id, now)?,
            Object::Organizations => store.delete_org(id, now)?,
        };
        self.inner.emit(&changes);
        Ok(())
    }

    /// Live records (active users, undeleted organizations) in id order. Users include the
    /// account owner (the admin with the configured email).
    pub fn records(&self, object_name: &str) -> Vec<SimRecord> {
        let base = &self.inner.base_url;
        let store = lock(&self.inner.store);
        match Object::parse(object_name) {
            Some(Object::Users) => store
                .users
                .values()
                .filter(|u| u.active)
                .map(|u| sim_record(u.id, u.render(base), false))
                .collect(),
            Some(Object::Organizations) => store
                .orgs
                .values()
                .filter(|o| o.live())
                .map(|o| sim_record(o.id, o.render(base), false))
                .collect(),
            None => Vec::new(),
        }
    }

    /// One record, soft-deleted users and deleted organizations included.
    pub fn get(&self, object_name: &str, id: u64) -> Option<SimRecord> {
        let base = &self.inner.base_url;
        let store = lock(&self.inner.store);
        match Object::parse(object_name)? {
            Object::Users => store
                .users
                .get(&id)
                .map(|u| sim_record(u.id, u.render(base), !u.active)),
            Object::Organizations => store
                .orgs
                .get(&id)
                .map(|o| sim_record(o.id, o.render(base), !o.live())),
        }
    }

    pub fn stats(&self) -> SimStats {
        let s = self.inner.stats.snapshot();
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let w = self.inner.hooks.counts();
        SimStats {
            requests: s.requests,
            unauthorized: s.status(401),
            throttled: s.throttled,
            server_errors: s.server_errors,
            by_route: s.by_route,
            errors_injected: s.errors_injected,
            throttles_injected: s.throttles_injected,
            lost_responses: s.lost_responses,
            records_written: g(&c.records_written),
            jobs_completed: g(&c.jobs_completed),
            webhooks_delivered: w.delivered,
            webhooks_dropped: w.dropped,
            webhooks_failed: w.failed,
        }
    }

    pub fn reset_stats(&self) {
        self.inner.stats.reset();
        for c in self.inner.counters.all() {
            c.store(0, Ordering::Relaxed);
        }
        self.inner.hooks.reset_counts();
    }

    /// Stops the server (gracefully), the job runner and the webhook sender.
    pub fn shutdown(&self) {
        self.inner.shutdown.trigger();
    }
}

fn sim_record(id: u64, rendered: Value, deleted: bool) -> SimRecord {
    SimRecord {
        id,
        fields: match rendered {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        deleted,
    }
}

/// Runs a simulator until ctrl-c (`ferry sim zendesk`), printing where and how to reach it.
pub async fn run_cli(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<()> {
    let limit = cfg
        .rate_limit
        .map(|(n, w)| format!("{n}/{}s", w.as_secs_f64()))
        .unwrap_or_else(|| "unlimited".into());
    let bearer = cfg.oauth_token.is_some();
    let sim = ZendeskSim::start(cfg, addr).await?;
    println!("zendesk simulator listening on {}/api/v2/", sim.base_url());
    println!(
        "  basic auth: {}/token : {}{}",
        sim.email(),
        sim.token(),
        if bearer {
            " (bearer token accepted too)"
        } else {
            ""
        }
    );
    println!("  webhook signing secret: {}", sim.webhook_secret());
    println!("  rate limit: {limit}");
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
