//! HubSpot simulator: the public handle (`HubSpotSim`), its configuration and the records,
//! stats and errors it exposes. Serves the CRM v3 objects API for contacts, companies and deals
//! with HubSpot's auth, paging, batch, search, error and rate-limit behaviour, injectable faults
//! (5xx, 429, lost write responses), and delivers v3-signed webhooks for every change, on the
//! shared simulator core (clock, faults, budgets, webhook sender, stats, server).

// Handlers return ready error `Response`s in `Err`; that path is cold, boxing buys nothing.
#![allow(clippy::result_large_err)]

mod batch;
pub mod cli;
mod gate;
mod http;
mod routes;
mod schema;
mod search;
mod state;
mod webhooks;

#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::sim::core::{
    self, lock, FaultSettings, Faults, RateBudgets, RequestStats, Shutdown, SimClock, WebhookSender,
};
use schema::{parse_props, ObjectKind};
use state::{Change, Store, WriteError};
use webhooks::{HubSpotWebhooks, Source};

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Required bearer token.
    pub token: String,
    /// Where signed webhook batches are POSTed; None = no webhooks.
    pub webhook_url: Option<String>,
    /// App client secret used for v3 signatures.
    pub webhook_secret: String,
    /// Events a delivery holds at most: HubSpot's 100 (larger values are cut to it); fewer
    /// reproduce a sender that does not batch (1: one event a delivery).
    pub webhook_batch: usize,
    /// Deliveries in flight at once (the app's "concurrency limit" setting; 1 = one at a time).
    pub webhook_concurrency: usize,
    /// Rolling-window limit over all API requests, e.g. `Some((190, 10s))`; None = unlimited.
    pub rate_limit: Option<(u32, Duration)>,
    /// Contacts created at start (deterministic fake data, `contact{n}@example.com`).
    pub seed_contacts: usize,
    /// Added to each API response.
    pub latency: Duration,
    /// Share of authenticated API requests answered 500, 502 or 503 without doing anything.
    pub error_rate: f64,
    /// Share of authenticated API requests answered 429 (the rate-limit body, no `Retry-After`)
    /// without doing anything.
    pub throttle_rate: f64,
    /// Share of writes (create/update/upsert/archive, single and batch) that are performed,
    /// webhooks included, but answered 504 as if the response was lost.
    pub lost_response_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            token: "sim-token".into(),
            webhook_url: None,
            webhook_secret: "sim-secret".into(),
            webhook_batch: webhooks::MAX_BATCH,
            webhook_concurrency: 1,
            rate_limit: None,
            seed_contacts: 0,
            latency: Duration::ZERO,
            error_rate: 0.0,
            throttle_rate: 0.0,
            lost_response_rate: 0.0,
        }
    }
}

/// A record as stored. `properties` includes the read-only ones (`hs_object_id`, `createdate`,
/// `lastmodifieddate` / `hs_lastmodifieddate`).
#[derive(Clone, Debug)]
pub struct SimRecord {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived: bool,
}

#[derive(Clone, Debug, Default)]
pub struct SimStats {
    /// Every authenticated API request.
    pub requests: u64,
    /// Create/update/archive requests, batch ones included (one per HTTP call).
    pub write_requests: u64,
    /// Records created, updated or archived through the API.
    pub records_written: u64,
    pub read_requests: u64,
    /// Requests answered 429 (real limiter and injected).
    pub throttled: u64,
    /// Requests answered with an injected 5xx.
    pub errors_injected: u64,
    /// Requests answered with an injected 429 (also counted in `throttled`).
    pub throttles_injected: u64,
    /// Writes performed but answered 504.
    pub lost_responses: u64,
    /// Webhook POSTs delivered (2xx).
    pub webhooks_sent: u64,
    /// Webhook events delivered.
    pub webhook_events: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("resource not found")]
    NotFound,
    #[error("Unable to infer object type from: {0}")]
    UnknownObject(String),
    #[error("Property \"{0}\" does not exist")]
    UnknownProperty(String),
    /// A read-only property, or a value of the wrong form (bad email, number, date, option...).
    #[error("invalid value for property \"{property}\": {message}")]
    InvalidProperty { property: String, message: String },
    #[error("Contact already exists. Existing ID: {existing_id}")]
    Duplicate { existing_id: String },
}

impl From<WriteError> for SimError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound => SimError::NotFound,
            WriteError::Duplicate(id) => SimError::Duplicate {
                existing_id: id.to_string(),
            },
            WriteError::Invalid(errs) => match errs.into_iter().next() {
                Some(p) if p.code == "PROPERTY_DOESNT_EXIST" => SimError::UnknownProperty(p.name),
                Some(p) => SimError::InvalidProperty {
                    property: p.name,
                    message: p.message,
                },
                None => SimError::InvalidProperty {
                    property: String::new(),
                    message: "invalid".into(),
                },
            },
        }
    }
}

/// HubSpot's own counters (the core's `RequestStats` has requests, 429s and injected faults).
#[derive(Default)]
pub(crate) struct Counters {
    pub write_requests: AtomicU64,
    pub records_written: AtomicU64,
    pub read_requests: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 3] {
        [
            &self.write_requests,
            &self.records_written,
            &self.read_requests,
        ]
    }

    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Shared state of one simulator instance.
pub(crate) struct Inner {
    pub token: String,
    pub base_url: String,
    pub addr: SocketAddr,
    pub clock: Arc<SimClock>,
    pub faults: Arc<Faults>,
    pub budgets: RateBudgets,
    /// Authenticated requests (401s are neither counted nor delayed).
    pub stats: RequestStats,
    pub counters: Counters,
    pub store: Mutex<Store>,
    pub hooks: Arc<WebhookSender<HubSpotWebhooks>>,
    pub shutdown: Shutdown,
}

impl Inner {
    /// The simulated now, in whole milliseconds (HubSpot's timestamp precision).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now_millis()
    }

    /// Queues the webhook events of `changes`. Call with the store still locked, so the queue
    /// order is the order of the writes.
    pub(crate) fn emit(&self, changes: &[Change], source: Source) {
        if !changes.is_empty() {
            self.hooks
                .enqueue(self.hooks.format().events(changes, source));
        }
    }
}

/// Handle to a running simulator; clones share it.
#[derive(Clone)]
pub struct HubSpotSim {
    inner: Arc<Inner>,
}

fn kind_of(object: &str) -> Result<ObjectKind, SimError> {
    ObjectKind::parse(object).ok_or_else(|| SimError::UnknownObject(object.to_string()))
}

impl HubSpotSim {
    /// Binds `addr` (port 0 allowed), seeds, and spawns the axum server and the webhook sender
    /// on the current tokio runtime.
    pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<HubSpotSim> {
        let bound = core::bind(addr).await?;
        let clock = Arc::new(SimClock::new());
        let faults = Arc::new(Faults::new(&FaultSettings {
            latency: cfg.latency,
            error_rate: cfg.error_rate,
            throttle_rate: cfg.throttle_rate,
            lost_response_rate: cfg.lost_response_rate,
            ..FaultSettings::default()
        }));
        let mut store = Store::default();
        let mut sink = Vec::new();
        for n in 1..=cfg.seed_contacts {
            store
                .create(
                    ObjectKind::Contacts,
                    state::seed_contact(n),
                    clock.now_millis(),
                    &mut sink,
                )
                .map_err(|e| {
                    std::io::Error::other(format!("seeding contacts: {}", SimError::from(e)))
                })?;
            sink.clear();
        }
        let hooks = WebhookSender::new(
            HubSpotWebhooks::new(cfg.webhook_secret).batches_of(cfg.webhook_batch),
            cfg.webhook_url,
            webhooks::delivery_policy(cfg.webhook_concurrency),
            clock.clone(),
            faults.clone(),
        )?;
        let shutdown = Shutdown::new();
        let inner = Arc::new(Inner {
            token: cfg.token,
            base_url: bound.base_url.clone(),
            addr: bound.addr,
            clock,
            faults,
            budgets: gate::budgets(cfg.rate_limit),
            stats: RequestStats::new(),
            counters: Counters::default(),
            store: Mutex::new(store),
            hooks,
            shutdown: shutdown.clone(),
        });
        inner.hooks.spawn(shutdown.clone());
        bound.serve(routes::router(inner.clone()), shutdown, "hubspot");
        Ok(HubSpotSim { inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn token(&self) -> String {
        self.inner.token.clone()
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.hooks.set_url(url);
    }

    /// The simulator clock (record timestamps, the rate window, webhook signature times).
    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    /// Switches the configured rate limit off and on again (no effect without one).
    pub fn set_rate_limit_enabled(&self, on: bool) {
        self.inner.budgets.set_enabled(on);
    }

    /// Events are still generated (ids consumed) but never delivered.
    pub fn set_drop_webhooks(&self, drop: bool) {
        self.inner
            .faults
            .set_webhook_drop_rate(if drop { 1.0 } else { 0.0 });
    }

    /// Listings (`GET /crm/v3/objects/{object}`) answer one empty page while on: the lying
    /// page of an app outage, for the mass-delete fuse's tests.
    pub fn set_empty_listings(&self, on: bool) {
        self.inner.faults.set_empty_listings(on);
    }

    /// Changes the fault rates (see `SimConfig`) for the requests that follow; each is clamped
    /// to `[0, 1]`.
    pub fn set_faults(&self, error_rate: f64, throttle_rate: f64, lost_response_rate: f64) {
        self.inner
            .faults
            .set_rates(error_rate, throttle_rate, lost_response_rate);
    }

    /// Creates a record as a user in the HubSpot UI would (webhooks with changeSource `CRM_UI`).
    pub fn app_create(
        &self,
        object: &str,
        props: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, SimError> {
        let kind = kind_of(object)?;
        let props =
            parse_props(kind, &props).map_err(|e| SimError::from(WriteError::Invalid(e)))?;
        let mut changes = Vec::new();
        let mut store = lock(&self.inner.store);
        let id = store.create(kind, props, self.inner.now(), &mut changes)?;
        self.inner.emit(&changes, Source::CrmUi);
        Ok(id.to_string())
    }

    pub fn app_update(
        &self,
        object: &str,
        id: &str,
        props: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), SimError> {
        let kind = kind_of(object)?;
        let id: u64 = id.parse().map_err(|_| SimError::NotFound)?;
        let props =
            parse_props(kind, &props).map_err(|e| SimError::from(WriteError::Invalid(e)))?;
        let mut changes = Vec::new();
        let mut store = lock(&self.inner.store);
        store.update(kind, id, props, self.inner.now(), &mut changes)?;
        self.inner.emit(&changes, Source::CrmUi);
        Ok(())
    }

    /// Archives a record; archiving an already archived one is a no-op.
    pub fn app_archive(&self, object: &str, id: &str) -> Result<(), SimError> {
        let kind = kind_of(object)?;
        let id: u64 = id.parse().map_err(|_| SimError::NotFound)?;
        let mut changes = Vec::new();
        let mut store = lock(&self.inner.store);
        store.archive(kind, id, self.inner.now(), &mut changes)?;
        self.inner.emit(&changes, Source::CrmUi);
        Ok(())
    }

    /// One record, archived ones included.
    pub fn get(&self, object: &str, id: &str) -> Option<SimRecord> {
        let kind = ObjectKind::parse(object)?;
        let id: u64 = id.parse().ok()?;
        let store = lock(&self.inner.store);
        store.get(kind, id).map(|r| to_sim_record(kind, r))
    }

    /// Live (non-archived) records sorted by numeric id.
    pub fn records(&self, object: &str) -> Vec<SimRecord> {
        let Some(kind) = ObjectKind::parse(object) else {
            return Vec::new();
        };
        let store = lock(&self.inner.store);
        store
            .table(kind)
            .recs
            .values()
            .filter(|r| r.live())
            .map(|r| to_sim_record(kind, r))
            .collect()
    }

    pub fn stats(&self) -> SimStats {
        let s = self.inner.stats.snapshot();
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let w = self.inner.hooks.counts();
        SimStats {
            requests: s.requests,
            write_requests: g(&c.write_requests),
            records_written: g(&c.records_written),
            read_requests: g(&c.read_requests),
            throttled: s.throttled,
            errors_injected: s.errors_injected,
            throttles_injected: s.throttles_injected,
            lost_responses: s.lost_responses,
            webhooks_sent: w.delivered,
            webhook_events: w.events_delivered,
        }
    }

    pub fn reset_stats(&self) {
        self.inner.stats.reset();
        for c in self.inner.counters.all() {
            c.store(0, Ordering::Relaxed);
        }
        self.inner.hooks.reset_counts();
    }

    /// Stops the server (gracefully) and the webhook sender.
    pub fn shutdown(&self) {
        self.inner.shutdown.trigger();
    }
}

fn to_sim_record(kind: ObjectKind, r: &state::Rec) -> SimRecord {
    let mut properties: BTreeMap<String, String> = r
        .props
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    for p in kind.read_only() {
        if let Some(v) = r.value(kind, p) {
            properties.insert(p.to_string(), v);
        }
    }
    SimRecord {
        id: r.id.to_string(),
        properties,
        created_at: r.created,
        updated_at: r.updated,
        archived: !r.live(),
    }
}

/// Runs a simulator until ctrl-c (for a `ferry sim hubspot` style command).
pub async fn run_cli(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<()> {
    let sim = HubSpotSim::start(cfg, addr).await?;
    println!(
        "hubspot simulator listening on {} (token: {})",
        sim.base_url(),
        sim.token()
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
