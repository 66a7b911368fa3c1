//! Salesforce simulator: the public handle (`SalesforceSim`), its configuration, and the
//! records, stats and errors it exposes. Serves Salesforce's REST API (OAuth 2.0 token
//! endpoint, sObject describe and CRUD, external-id upserts, sObject Collections, SOQL with
//! query locators, getUpdated/getDeleted with the recycle bin, the daily API allocation) for
//! Contacts, Accounts and Opportunities, on the shared simulator core (clock, faults, budgets).

// Handlers return ready `ApiError`s in `Err`; that path is cold, boxing buys nothing.
#![allow(clippy::result_large_err)]

mod auth;
pub mod cli;
mod collections;
mod cursors;
mod errors;
mod gate;
mod ids;
mod query;
mod rules;
mod schema;
mod seed;
mod sobjects;
mod soql;
mod store;
mod values;
mod wire;

#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_collections;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_query;
#[cfg(test)]
mod tests_records;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::sim::core::{
    self, lock, FaultSettings, Faults, RateBudget, RequestStats, Shutdown, SimClock,
};
pub use errors::{SfError, SimError};
use store::{Actor, Store};
pub use store::{API_USER, APP_USER};

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The connected app's consumer key and secret.
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token `grant_type=refresh_token` accepts.
    pub refresh_token: String,
    /// The user of `grant_type=password` (the password may carry a security token after it).
    pub username: String,
    pub password: String,
    /// A static access token accepted until `expire_sessions` (None: only OAuth tokens).
    pub session_id: Option<String>,
    /// The org's 18-character id (`00D…`), part of tokens and identity URLs.
    pub org_id: String,
    /// Sessions end after this long without a request (simulator clock).
    pub session_timeout: Duration,
    /// Inclusive range of API versions served (`/services/data/v{N}.0`).
    pub api_versions: (u32, u32),
    /// API requests per rolling 24 hours of simulator clock.
    pub daily_api_limit: u32,
    /// Query page size when no `Sforce-Query-Options: batchSize` is sent (Salesforce: 2,000).
    pub query_page_size: usize,
    /// Days a deleted record stays in the recycle bin (and in getDeleted).
    pub recycle_bin_days: i64,
    pub seed_accounts: usize,
    /// Seeded contacts belong to the seeded accounts in turn.
    pub seed_contacts: usize,
    pub seed_opportunities: usize,
    /// Added to every response.
    pub latency: Duration,
    /// Share of API requests answered 500, 502 or 503 without doing anything.
    pub error_rate: f64,
    /// Share of API requests refused with 403 `REQUEST_LIMIT_EXCEEDED` (concurrency limit).
    pub throttle_rate: f64,
    /// Share of writes performed but answered 504.
    pub lost_response_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            client_id: "3MVG9sim.consumer.key".into(),
            client_secret: "sim-consumer-secret".into(),
            refresh_token: "5Aep861sim.refresh.token".into(),
            username: "integration@example.com".into(),
            password: "sim-password".into(),
            session_id: None,
            org_id: ids::make("00D", "8d", 1),
            session_timeout: Duration::from_secs(2 * 3600),
            api_versions: (50, 62),
            daily_api_limit: 15_000,
            query_page_size: 2000,
            recycle_bin_days: 15,
            seed_accounts: 0,
            seed_contacts: 0,
            seed_opportunities: 0,
            latency: Duration::ZERO,
            error_rate: 0.0,
            throttle_rate: 0.0,
            lost_response_rate: 0.0,
        }
    }
}

/// A record as the API renders it, deleted ones (`IsDeleted`) included.
#[derive(Clone, Debug, PartialEq)]
pub struct SimRecord {
    pub id: String,
    pub fields: Map<String, Value>,
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every request answered, refused ones and token calls included.
    pub requests: u64,
    /// Requests per route (`PATCH /sobjects/Contact/{id}`, `GET /query`...).
    pub by_route: BTreeMap<String, u64>,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// Requests answered 403 (daily allocation and injected).
    pub limit_exceeded: u64,
    pub server_errors: u64,
    pub errors_injected: u64,
    pub throttles_injected: u64,
    pub lost_responses: u64,
    /// API requests counted in the current 24-hour window, and its maximum.
    pub api_usage: u32,
    pub api_limit: u32,
    /// Records created, updated or deleted through sObject Collections.
    pub records_written: u64,
}

impl SimStats {
    /// Requests recorded under `route` (0 if none).
    pub fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }
}

/// Shared state of one simulator instance.
pub(crate) struct Inner {
    pub cfg: SimConfig,
    pub base_url: String,
    pub addr: SocketAddr,
    pub clock: Arc<SimClock>,
    pub faults: Arc<Faults>,
    pub daily: RateBudget,
    pub stats: RequestStats,
    pub sessions: auth::Sessions,
    pub store: Mutex<Store>,
    pub cursors: cursors::Cursors,
    pub shutdown: Shutdown,
    /// Records created, updated or deleted through sObject Collections.
    pub records_written: std::sync::atomic::AtomicU64,
}

impl Inner {
    /// The simulated now, in milliseconds (Salesforce's timestamp precision).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now_millis()
    }

    pub(crate) fn retention(&self) -> TimeDelta {
        TimeDelta::days(self.cfg.recycle_bin_days)
    }

    /// Empties the recycle bin of what is past its retention.
    pub(crate) fn purge(&self, now: DateTime<Utc>) {
        lock(&self.store).purge(now, self.retention());
    }

    /// Requests counted in the current window, and the allocation.
    pub(crate) fn api_usage(&self) -> (u32, u32) {
        let max = self.daily.limit();
        (max.saturating_sub(self.daily.remaining(self.now())), max)
    }
}

/// Handle to a running simulator; clones share it.
#[derive(Clone)]
pub struct SalesforceSim {
    inner: Arc<Inner>,
}

fn object(name: &str) -> Result<&'static schema::ObjectDef, SimError> {
    schema::object(name).ok_or_else(|| SimError::UnknownObject(name.to_string()))
}

fn sim_record(rec: &store::Rec, def: &schema::ObjectDef) -> SimRecord {
    let fields = match rec.render(def, None, "62.0") {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    SimRecord {
        id: rec.id().to_string(),
        fields,
        deleted: rec.deleted_at.is_some(),
    }
}

impl SalesforceSim {
    /// Binds `addr` (port 0 allowed), seeds, and serves on the current tokio runtime.
    pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<SalesforceSim> {
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
        seed::seed(&mut store, &cfg, clock.now_millis())
            .map_err(|e| std::io::Error::other(format!("seeding: {e}")))?;
        let idle = TimeDelta::from_std(cfg.session_timeout).unwrap_or(TimeDelta::MAX);
        let sessions = auth::Sessions::new(idle);
        if let Some(token) = &cfg.session_id {
            sessions.add_permanent(token, clock.now_millis());
        }
        let shutdown = Shutdown::new();
        let inner = Arc::new(Inner {
            daily: RateBudget::new(cfg.daily_api_limit, Duration::from_secs(24 * 3600)),
            cfg,
            base_url: bound.base_url.clone(),
            addr: bound.addr,
            clock,
            faults,
            stats: RequestStats::new(),
            sessions,
            store: Mutex::new(store),
            cursors: cursors::Cursors::default(),
            shutdown: shutdown.clone(),
            records_written: Default::default(),
        });
        bound.serve(gate::router(inner.clone()), shutdown, "salesforce");
        Ok(SalesforceSim { inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`, the `instance_url`; the API lives under `/services/data/`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    /// The simulator clock (record times, sessions, the daily allocation, the recycle bin).
    pub fn clock(&self) -> &Arc<SimClock> {
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

    /// Queries answer one empty result while on.
    pub fn set_empty_listings(&self, on: bool) {
        self.inner.faults.set_empty_listings(on);
    }

    pub fn faults(&self) -> FaultSettings {
        self.inner.faults.settings()
    }

    /// A fresh access token, as the token endpoint would issue.
    pub fn login(&self) -> String {
        let now = self.inner.now();
        self.inner.sessions.issue(&self.inner.cfg.org_id, now)
    }

    /// Revokes every access token (the static `session_id` too): the next call is a 401.
    pub fn expire_sessions(&self) {
        self.inner.sessions.expire_all();
    }

    /// Switches the daily allocation off (nothing counted) and on.
    pub fn set_daily_limit_enabled(&self, on: bool) {
        self.inner.daily.set_enabled(on);
    }

    /// Counts `n` API requests against the daily allocation, as the org's other integrations
    /// would (past the allocation, nothing more is counted).
    pub fn spend_api_usage(&self, n: u32) {
        let now = self.inner.now();
        for _ in 0..n {
            self.inner.daily.take(now);
        }
    }

    /// Forgets the API requests counted so far.
    pub fn reset_api_usage(&self) {
        self.inner.daily.reset();
    }

    /// Open query locators.
    pub fn open_query_locators(&self) -> usize {
        self.inner.cursors.open()
    }

    /// Creates a record as a user in the Salesforce UI would; returns its 18-character id.
    pub fn app_create(
        &self,
        object_name: &str,
        fields: Map<String, Value>,
    ) -> Result<String, SimError> {
        let def = object(object_name)?;
        let parsed = rules::parse_record(def, &fields).map_err(|e| SimError::Invalid(vec![e]))?;
        if parsed.id.is_some() {
            return Err(SimError::Invalid(vec![rules::id_in_insert()]));
        }
        let now = self.inner.now();
        lock(&self.inner.store)
            .insert(def, &parsed.patch, now, Actor::App)
            .map_err(SimError::Invalid)
    }

    pub fn app_update(
        &self,
        object_name: &str,
        id: &str,
        fields: Map<String, Value>,
    ) -> Result<(), SimError> {
        let def = object(object_name)?;
        let parsed = rules::parse_record(def, &fields).map_err(|e| SimError::Invalid(vec![e]))?;
        let now = self.inner.now();
        lock(&self.inner.store)
            .update(def, id, &parsed.patch, now, Actor::App)
            .map(|_| ())
    }

    /// Moves a record to the recycle bin (an Account takes its Contacts and Opportunities).
    pub fn app_delete(&self, object_name: &str, id: &str) -> Result<(), SimError> {
        let def = object(object_name)?;
        let now = self.inner.now();
        lock(&self.inner.store)
            .delete(Some(def), id, now, Actor::App)
            .map(|_| ())
    }

    /// Restores a record from the recycle bin.
    pub fn app_undelete(&self, object_name: &str, id: &str) -> Result<(), SimError> {
        let def = object(object_name)?;
        let now = self.inner.now();
        lock(&self.inner.store).undelete(def, id, now, Actor::App)
    }

    /// Live records of an object, in creation order.
    pub fn records(&self, object_name: &str) -> Vec<SimRecord> {
        let Some(def) = schema::object(object_name) else {
            return Vec::new();
        };
        self.inner.purge(self.inner.now());
        let store = lock(&self.inner.store);
        store
            .rows(def)
            .filter(|r| r.deleted_at.is_none())
            .map(|r| sim_record(r, def))
            .collect()
    }

    /// One record by id (15 or 18 characters), deleted ones included until purged.
    pub fn get(&self, object_name: &str, id: &str) -> Option<SimRecord> {
        let def = schema::object(object_name)?;
        self.inner.purge(self.inner.now());
        let store = lock(&self.inner.store);
        match store.find(id) {
            Some((d, r)) if d.name == def.name => Some(sim_record(r, def)),
            _ => None,
        }
    }

    pub fn stats(&self) -> SimStats {
        let s = self.inner.stats.snapshot();
        let (api_usage, api_limit) = self.inner.api_usage();
        SimStats {
            requests: s.requests,
            unauthorized: s.status(401),
            limit_exceeded: s.status(403),
            server_errors: s.server_errors,
            by_route: s.by_route,
            errors_injected: s.errors_injected,
            throttles_injected: s.throttles_injected,
            lost_responses: s.lost_responses,
            api_usage,
            api_limit,
            records_written: self
                .inner
                .records_written
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Clears the request stats (not the daily allocation: see `reset_api_usage`).
    pub fn reset_stats(&self) {
        self.inner.stats.reset();
    }

    /// Stops the server (gracefully).
    pub fn shutdown(&self) {
        self.inner.shutdown.trigger();
    }
}

/// Runs a simulator until ctrl-c (`ferry sim salesforce`), printing how to reach it.
pub async fn run_cli(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<()> {
    let sim = SalesforceSim::start(cfg, addr).await?;
    let c = sim.config();
    let (lo, hi) = c.api_versions;
    println!("salesforce simulator: instance_url {}", sim.base_url());
    println!(
        "  API: {}/services/data/v{hi}.0/ (v{lo}.0-v{hi}.0)",
        sim.base_url()
    );
    println!("  token: POST {}/services/oauth2/token", sim.base_url());
    println!(
        "  client_id: {}  client_secret: {}",
        c.client_id, c.client_secret
    );
    println!("  refresh_token: {}", c.refresh_token);
    println!("  username: {}  password: {}", c.username, c.password);
    if let Some(s) = &c.session_id {
        println!("  static session id: {s}");
    }
    println!("  daily API requests: {}", c.daily_api_limit);
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
