//! Stripe simulator: the public handle (`StripeSim`), its configuration and stats. Serves
//! Stripe's customers, invoices (with invoice items) and events API with secret-key auth,
//! form-encoded bracket parameters, id-cursor lists, idempotency keys, per-mode rate limits,
//! `lock_timeout`s and `Stripe-Signature`d webhooks, on the shared simulator core.

mod api;
mod app;
pub mod cli;
mod customers;
mod events;
mod form;
mod gate;
mod idempotency;
mod invoice_actions;
mod invoice_ops;
mod invoices;
mod knobs;
mod lists;
mod params;
mod store;
mod wire;

#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_invoices;
#[cfg(test)]
mod tests_lists;
#[cfg(test)]
mod tests_webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::sim::core::{
    self, DeliveryPolicy, FaultSettings, Faults, RateBudgets, RequestStats, Shutdown, SimClock,
    WebhookSender,
};
pub use events::{signature, signature_header, SIGNATURE_HEADER};
pub use wire::{Mode, StripeError};

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The sandbox secret key (`sk_test_...`).
    pub test_key: String,
    /// The live secret key (`sk_live_...`); None = live mode is off.
    pub live_key: Option<String>,
    /// The account's API version, printed in events and the `Stripe-Version` header.
    pub api_version: String,
    /// Where events are POSTed; None = no webhooks.
    pub webhook_url: Option<String>,
    /// The endpoint's signing secret (`whsec_...`).
    pub webhook_secret: String,
    /// Waits before each retry of a failed delivery; empty = no retries (see [`backoff`]).
    pub webhook_retries: Vec<Duration>,
    /// Sandbox budget (Stripe: 25 requests/s); None = unlimited.
    pub sandbox_rate_limit: Option<(u32, Duration)>,
    /// Live budget (Stripe: 100 requests/s); None = unlimited.
    pub live_rate_limit: Option<(u32, Duration)>,
    /// Test-mode customers created at start (`Customer {n}`, `customer{n}@example.com`),
    /// an hour old, without events.
    pub seed_customers: usize,
    pub latency: Duration,
    /// Share of requests answered 500, 502 or 503 (`api_error`) without doing anything.
    pub error_rate: f64,
    /// Share of requests answered 429 `rate_limit` without doing anything.
    pub throttle_rate: f64,
    /// Share of writes performed (events and webhooks included) but answered 504.
    pub lost_response_rate: f64,
    /// Share of writes answered 429 `lock_timeout` without doing anything.
    pub lock_timeout_rate: f64,
    /// Share of webhook deliveries dropped.
    pub webhook_drop_rate: f64,
    /// Share of events delivered twice.
    pub webhook_duplicate_rate: f64,
    /// Share of events delivered after the next one.
    pub webhook_reorder_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            test_key: "sk_test_4eC39HqLyjWDarjtT1zdp7dc".into(),
            live_key: None,
            api_version: "2024-06-20".into(),
            webhook_url: None,
            webhook_secret: "whsec_simsecret".into(),
            webhook_retries: Vec::new(),
            sandbox_rate_limit: Some((25, Duration::from_secs(1))),
            live_rate_limit: Some((100, Duration::from_secs(1))),
            seed_customers: 0,
            latency: Duration::ZERO,
            error_rate: 0.0,
            throttle_rate: 0.0,
            lost_response_rate: 0.0,
            lock_timeout_rate: 0.0,
            webhook_drop_rate: 0.0,
            webhook_duplicate_rate: 0.0,
            webhook_reorder_rate: 0.0,
        }
    }
}

/// `n` exponential waits starting at `first` (doubling), for [`SimConfig::webhook_retries`].
pub fn backoff(first: Duration, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|i| first.saturating_mul(1 << i.min(20)))
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every request answered, refused ones included.
    pub requests: u64,
    /// Requests per route (`POST /v1/customers/{id}`...).
    pub by_route: BTreeMap<String, u64>,
    pub unauthorized: u64,
    /// Requests answered 429 (budgets, injected throttles and lock timeouts).
    pub throttled: u64,
    pub lock_timeouts: u64,
    pub server_errors: u64,
    pub errors_injected: u64,
    pub throttles_injected: u64,
    pub lost_responses: u64,
    /// Objects created, updated or deleted through the API.
    pub writes: u64,
    /// Responses replayed for a reused idempotency key.
    pub idempotent_replays: u64,
    pub webhooks_delivered: u64,
    pub webhooks_dropped: u64,
    pub webhooks_failed: u64,
}

/// Both modes' data under one lock.
pub(crate) struct Data {
    pub test: store::Store,
    pub live: store::Store,
}

/// Shared state of one simulator instance.
pub(crate) struct Inner {
    pub test_key: String,
    pub live_key: Option<String>,
    pub api_version: String,
    pub base_url: String,
    pub addr: SocketAddr,
    pub clock: Arc<SimClock>,
    pub faults: Arc<Faults>,
    pub knobs: knobs::Knobs,
    pub budgets: RateBudgets,
    pub stats: RequestStats,
    pub counters: knobs::Counters,
    pub idempotency: idempotency::Keys,
    pub data: Mutex<Data>,
    pub hooks: Arc<WebhookSender<events::StripeWebhooks>>,
    pub shutdown: Shutdown,
}

impl Inner {
    /// Queues `events` as webhooks (after the duplicate / reorder knobs). Call with the data
    /// still locked, so deliveries keep the order of the writes.
    pub(crate) fn publish(&self, events: Vec<Value>) {
        if !events.is_empty() {
            self.hooks.enqueue(self.knobs.shape(events));
        }
    }
}

/// Handle to a running simulator; clones share it. App-side edits act in test mode, or in
/// live mode through [`StripeSim::live`].
#[derive(Clone)]
pub struct StripeSim {
    inner: Arc<Inner>,
    mode: Mode,
}

fn seed(data: &mut Data, n: usize, now: i64) -> Result<(), StripeError> {
    let first = now - 3600 - n as i64;
    for i in 1..=n {
        let p = serde_json::json!({"name": format!("Customer {i}"), "email": format!("customer{i}@example.com")});
        let p = p.as_object().cloned().unwrap_or_default();
        customers::insert(&mut data.test, &p, first + i as i64)?;
    }
    Ok(())
}

impl StripeSim {
    /// Binds `addr` (port 0 allowed), seeds, and spawns the server and the webhook sender on
    /// the current tokio runtime.
    pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<StripeSim> {
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
        let mut data = Data {
            test: store::Store::new(Mode::Test),
            live: store::Store::new(Mode::Live),
        };
        seed(&mut data, cfg.seed_customers, clock.now().timestamp())
            .map_err(|e| std::io::Error::other(format!("seeding: {e}")))?;
        let mut budgets = RateBudgets::new();
        if let Some((n, window)) = cfg.sandbox_rate_limit {
            budgets = budgets.with(Mode::Test.budget(), n, window);
        }
        if let Some((n, window)) = cfg.live_rate_limit {
            budgets = budgets.with(Mode::Live.budget(), n, window);
        }
        let hooks = WebhookSender::new(
            events::StripeWebhooks::new(cfg.webhook_secret.clone()),
            cfg.webhook_url.clone(),
            DeliveryPolicy {
                retries: cfg.webhook_retries.clone(),
                ..DeliveryPolicy::default()
            },
            clock.clone(),
            faults.clone(),
        )?;
        let knobs = knobs::Knobs::default();
        knobs.lock_timeout.set(cfg.lock_timeout_rate);
        knobs.duplicate.set(cfg.webhook_duplicate_rate);
        knobs.reorder.set(cfg.webhook_reorder_rate);
        let shutdown = Shutdown::new();
        let inner = Arc::new(Inner {
            test_key: cfg.test_key,
            live_key: cfg.live_key,
            api_version: cfg.api_version,
            base_url: bound.base_url.clone(),
            addr: bound.addr,
            clock,
            faults,
            knobs,
            budgets,
            stats: RequestStats::new(),
            counters: knobs::Counters::default(),
            idempotency: idempotency::Keys::default(),
            data: Mutex::new(data),
            hooks,
            shutdown: shutdown.clone(),
        });
        inner.hooks.spawn(shutdown.clone());
        bound.serve(api::router(inner.clone()), shutdown, "stripe");
        Ok(StripeSim {
            inner,
            mode: Mode::Test,
        })
    }

    /// Stops the server (gracefully) and the webhook sender.
    pub fn shutdown(&self) {
        self.inner.shutdown.trigger();
    }
}

/// Runs a simulator until ctrl-c (`ferry sim stripe`), printing where and how to reach it.
pub async fn run_cli(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<()> {
    let limit = |l: Option<(u32, Duration)>| {
        l.map(|(n, w)| format!("{n}/{}s", w.as_secs_f64()))
            .unwrap_or_else(|| "unlimited".into())
    };
    let limits = format!(
        "sandbox {}, live {}",
        limit(cfg.sandbox_rate_limit),
        limit(cfg.live_rate_limit)
    );
    let sim = StripeSim::start(cfg, addr).await?;
    println!("stripe simulator listening on {}/v1/", sim.base_url());
    println!("  api base (stripe.api_base): {}", sim.base_url());
    println!("  test key: {}", sim.test_key());
    if let Some(k) = sim.live_key() {
        println!("  live key: {k}");
    }
    println!(
        "  webhook signing secret: {}",
        sim.webhook_secrets().join(", ")
    );
    println!("  rate limits: {limits}");
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
