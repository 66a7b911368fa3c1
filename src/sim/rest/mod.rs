//! REST simulator: the public handle (`RestSim`) and its configuration. Serves a generic JSON
//! REST API whose wire shape — auth, paths, ids, bodies, timestamps, pagination (and its
//! lies), deletes, updates and signed webhooks — comes from a TOML profile (`profile.rs`), so
//! the REST connector can be tested against many app shapes offline, on the shared simulator
//! core.

mod app;
mod auth;
mod checks;
pub mod cli;
mod gate;
mod lists;
pub mod profile;
mod profile_webhooks;
mod records;
mod store;
mod webhooks;
mod wire;

#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_lists;
#[cfg(test)]
mod tests_records;
#[cfg(test)]
pub(crate) mod tests_support;
#[cfg(test)]
mod tests_webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use serde_json::{json, Map};

use crate::sim::core::{
    self, DeliveryPolicy, FaultSettings, Faults, RateBudget, RequestStats, Shutdown, SimClock,
    WebhookSender,
};
pub use profile::Profile;
pub use webhooks::{hmac_signature, jwt_hs256, standard_signature};

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The API's shape.
    pub profile: Profile,
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where events are POSTed; None = no webhooks until [`RestSim::set_webhook_url`].
    pub webhook_url: Option<String>,
    pub faults: FaultSettings,
    /// Records created at start per resource (`name = "Record {n}"`,
    /// `email = "record{n}@example.com"`), an hour old, without events.
    pub seed: BTreeMap<String, usize>,
}

impl SimConfig {
    /// `profile` on a free loopback port, no webhooks, no faults, no seed.
    pub fn new(profile: Profile) -> SimConfig {
        SimConfig {
            profile,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url: None,
            faults: FaultSettings::default(),
            seed: BTreeMap::new(),
        }
    }
}

/// Shared state of one simulator instance.
pub(crate) struct Inner {
    pub profile: Profile,
    pub base_url: String,
    pub addr: SocketAddr,
    pub clock: Arc<SimClock>,
    pub faults: Arc<Faults>,
    pub stats: RequestStats,
    pub budget: Option<RateBudget>,
    pub sessions: auth::Sessions,
    pub data: Mutex<store::Data>,
    pub hooks: Arc<WebhookSender<webhooks::RestWebhooks>>,
    pub shutdown: Shutdown,
}

/// A running simulator; dropping it stops it.
pub struct RestSim {
    inner: Arc<Inner>,
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message)
}

/// The tables of a profile, with `seed` records each.
fn tables(cfg: &SimConfig, clock: &SimClock) -> std::io::Result<store::Data> {
    let mut data = store::Data::default();
    for (name, spec) in &cfg.profile.resources {
        data.tables
            .insert(name.clone(), store::Table::new(name, spec));
    }
    let at = clock.now() - TimeDelta::hours(1);
    for (name, n) in &cfg.seed {
        let table = data
            .tables
            .get_mut(name)
            .ok_or_else(|| invalid(format!("seed: the profile has no resource `{name}`")))?;
        for i in 1..=*n {
            let mut fields = Map::new();
            fields.insert("name".into(), json!(format!("Record {i}")));
            fields.insert("email".into(), json!(format!("record{i}@example.com")));
            table.create(fields, at);
        }
    }
    Ok(data)
}

impl RestSim {
    /// Checks the profile, binds `config.listen`, seeds, and spawns the server and the webhook
    /// sender on the current tokio runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<RestSim> {
        config.profile.check().map_err(invalid)?;
        let rate_limit = config.profile.rate_limit().map_err(invalid)?;
        let format = webhooks::RestWebhooks::new(&config.profile.webhooks).map_err(invalid)?;
        let clock = Arc::new(SimClock::new());
        let data = tables(&config, &clock)?;
        let bound = core::bind(config.listen).await?;
        let faults = Arc::new(Faults::new(&config.faults));
        let hooks = WebhookSender::new(
            format,
            config.webhook_url.clone(),
            DeliveryPolicy {
                concurrency: config.profile.webhooks.concurrency.max(1),
                ..DeliveryPolicy::default()
            },
            clock.clone(),
            faults.clone(),
        )?;
        let shutdown = Shutdown::new();
        let inner = Arc::new(Inner {
            profile: config.profile,
            base_url: bound.base_url.clone(),
            addr: bound.addr,
            clock,
            faults,
            stats: RequestStats::new(),
            budget: rate_limit.map(|(n, window)| RateBudget::new(n, window)),
            sessions: auth::Sessions::default(),
            data: Mutex::new(data),
            hooks,
            shutdown: shutdown.clone(),
        });
        inner.hooks.spawn(shutdown.clone());
        bound.serve(gate::router(inner.clone()), shutdown, "rest");
        Ok(RestSim { inner })
    }

    /// Stops the server (gracefully) and the webhook sender; also done on drop.
    pub fn stop(&self) {
        self.inner.shutdown.trigger();
    }
}

impl Drop for RestSim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a simulator until ctrl-c (`ferry sim rest`), printing where and how to reach it.
pub async fn run_cli(config: SimConfig) -> std::io::Result<()> {
    let sim = RestSim::start(config).await?;
    let p = sim.profile();
    println!("rest simulator listening on {}", sim.base_url());
    for (name, r) in &p.resources {
        println!("  resource {name}: {}{}", sim.base_url(), r.path);
    }
    let auth = &p.auth;
    println!("  auth: {}", auth.kind.as_str());
    if let Some(url) = auth.endpoint() {
        println!("  sign-in endpoint: POST {}{url}", sim.base_url());
    }
    if auth.kind != profile::AuthKind::None {
        println!("  secret: {}", auth.secret());
    }
    let hooks = &p.webhooks;
    match sim.inner.hooks.url() {
        Some(url) => println!(
            "  webhooks: to {url}, scheme {} (secret {})",
            hooks.scheme.as_str(),
            hooks.secret()
        ),
        None => println!("  webhooks: off (no --webhook-url)"),
    }
    if let Some(limit) = &p.rate_limit {
        println!("  rate limit: {limit}");
    }
    tokio::signal::ctrl_c().await?;
    sim.stop();
    Ok(())
}
