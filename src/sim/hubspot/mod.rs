//! HubSpot simulator: the public handle (`HubSpotSim`), its configuration and the records,
//! stats and errors it exposes. Serves the CRM v3 objects API for contacts, companies and deals
//! with HubSpot's auth, paging, batch, search, error and rate-limit behaviour, injectable faults
//! (5xx, 429, lost write responses), and delivers v3-signed webhooks for every change.

// Handlers return ready error `Response`s in `Err`; that path is cold, boxing buys nothing.
#![allow(clippy::result_large_err)]

mod batch;
mod faults;
mod http;
mod ratelimit;
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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use schema::{parse_props, ObjectKind};
use state::{Store, WriteError};
use webhooks::{Hooks, Source};

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Required bearer token.
    pub token: String,
    /// Where signed webhook batches are POSTed; None = no webhooks.
    pub webhook_url: Option<String>,
    /// App client secret used for v3 signatures.
    pub webhook_secret: String,
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

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub write_requests: AtomicU64,
    pub records_written: AtomicU64,
    pub read_requests: AtomicU64,
    pub throttled: AtomicU64,
    pub errors_injected: AtomicU64,
    pub throttles_injected: AtomicU64,
    pub lost_responses: AtomicU64,
    pub webhooks_sent: AtomicU64,
    pub webhook_events: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 10] {
        [
            &self.requests,
            &self.write_requests,
            &self.records_written,
            &self.read_requests,
            &self.throttled,
            &self.errors_injected,
            &self.throttles_injected,
            &self.lost_responses,
            &self.webhooks_sent,
            &self.webhook_events,
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
    pub latency: Duration,
    pub store: Mutex<Store>,
    pub stats: Counters,
    pub limiter: Option<ratelimit::RateLimiter>,
    pub faults: faults::Faults,
    pub hooks: Hooks,
    pub stop: watch::Sender<bool>,
}

/// Locks a std mutex, ignoring poisoning (the data stays consistent per operation).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Binds `addr` (port 0 allowed), spawns the axum server and the webhook sender on the
    /// current tokio runtime.
    pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<HubSpotSim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let host = if local.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local.ip()
        };
        let base_url = format!("http://{}", SocketAddr::new(host, local.port()));
        let mut store = Store::default();
        let mut sink = Vec::new();
        for n in 1..=cfg.seed_contacts {
            store
                .create(ObjectKind::Contacts, state::seed_contact(n), &mut sink)
                .map_err(|e| {
                    std::io::Error::other(format!("seeding contacts: {}", SimError::from(e)))
                })?;
            sink.clear();
        }
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            token: cfg.token,
            base_url,
            addr: local,
            latency: cfg.latency,
            store: Mutex::new(store),
            stats: Counters::default(),
            limiter: cfg
                .rate_limit
                .map(|(max, window)| ratelimit::RateLimiter::new(max, window)),
            faults: faults::Faults::new(cfg.error_rate, cfg.throttle_rate, cfg.lost_response_rate),
            hooks: Hooks::new(cfg.webhook_url, cfg.webhook_secret)?,
            stop,
        });
        let app = routes::router(inner.clone());
        let mut server_stop = stop_rx.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "hubspot sim: server stopped");
            }
        });
        tokio::spawn(webhooks::run_sender(inner.clone(), stop_rx));
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

    /// Switches the configured rate limit off and on again (no effect without one).
    pub fn set_rate_limit_enabled(&self, on: bool) {
        if let Some(l) = &self.inner.limiter {
            l.set_enabled(on);
        }
    }

    /// Events are still generated (ids consumed) but never delivered.
    pub fn set_drop_webhooks(&self, drop: bool) {
        self.inner.hooks.set_drop(drop);
    }

    /// Listings (`GET /crm/v3/objects/{object}`) answer one empty page while on: the lying
    /// page of an app outage, for the mass-delete fuse's tests.
    pub fn set_empty_listings(&self, on: bool) {
        self.inner
            .faults
            .empty_listings
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Changes the fault rates (see `SimConfig`) for the requests that follow; each is clamped
    /// to `[0, 1]`.
    pub fn set_faults(&self, error_rate: f64, throttle_rate: f64, lost_response_rate: f64) {
        self.inner
            .faults
            .set(error_rate, throttle_rate, lost_response_rate);
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
        let id = store.create(kind, props, &mut changes)?;
        self.inner.hooks.enqueue(&changes, Source::CrmUi);
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
        store.update(kind, id, props, &mut changes)?;
        self.inner.hooks.enqueue(&changes, Source::CrmUi);
        Ok(())
    }

    /// Archives a record; archiving an already archived one is a no-op.
    pub fn app_archive(&self, object: &str, id: &str) -> Result<(), SimError> {
        let kind = kind_of(object)?;
        let id: u64 = id.parse().map_err(|_| SimError::NotFound)?;
        let mut changes = Vec::new();
        let mut store = lock(&self.inner.store);
        store.archive(kind, id, &mut changes)?;
        self.inner.hooks.enqueue(&changes, Source::CrmUi);
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
        let s = &self.inner.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            requests: g(&s.requests),
            write_requests: g(&s.write_requests),
            records_written: g(&s.records_written),
            read_requests: g(&s.read_requests),
            throttled: g(&s.throttled),
            errors_injected: g(&s.errors_injected),
            throttles_injected: g(&s.throttles_injected),
            lost_responses: g(&s.lost_responses),
            webhooks_sent: g(&s.webhooks_sent),
            webhook_events: g(&s.webhook_events),
        }
    }

    pub fn reset_stats(&self) {
        for c in self.inner.stats.all() {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Stops the server (gracefully) and the webhook sender.
    pub fn shutdown(&self) {
        self.inner.stop.send_replace(true);
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
