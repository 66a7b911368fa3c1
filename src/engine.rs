//! The engine: wires the hub, the replication listener, the outbound workers, the webhook
//! server, the inbox worker, backfill and live control into one running process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, Secrets};
use crate::connectors::{self, Connector};
use crate::hub::catalog::Catalog;
use crate::hub::{self, Hub, HubError};

/// State shared by every part of one engine.
/// Inbox workers per process.
const INBOX_WORKERS: usize = 2;

pub struct Shared {
    catalog: RwLock<Arc<Catalog>>,
    /// New dirty marks were queued.
    pub outbox_ready: Notify,
    /// New inbound events were stored.
    pub inbox_ready: Notify,
    /// A mapping may need its backfill.
    pub backfill_ready: Notify,
    pub shutdown: watch::Sender<bool>,
    lag_bytes: AtomicU64,
}

impl Shared {
    pub fn new(catalog: Catalog) -> Shared {
        Shared {
            catalog: RwLock::new(Arc::new(catalog)),
            outbox_ready: Notify::new(),
            inbox_ready: Notify::new(),
            backfill_ready: Notify::new(),
            shutdown: watch::channel(false).0,
            lag_bytes: AtomicU64::new(0),
        }
    }
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }
    pub fn set_catalog(&self, c: Catalog) {
        *self.catalog.write().expect("catalog lock") = Arc::new(c);
    }
    pub fn set_lag(&self, bytes: u64) {
        self.lag_bytes.store(bytes, Ordering::Relaxed);
    }
    pub fn lag(&self) -> u64 {
        self.lag_bytes.load(Ordering::Relaxed)
    }
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A connection's connector and its webhook secret.
#[derive(Clone)]
pub struct ConnectionRuntime {
    pub connector: Arc<dyn Connector>,
    pub webhook_secret: Option<String>,
}

pub type Connections = Arc<HashMap<String, ConnectionRuntime>>;

/// Why the engine did not start. Each is one sentence an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("connection `{0}`: {1}")]
    Connector(String, String),
    #[error("replication slot {0}: {1}")]
    Slot(String, crate::replication::ReplicationError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// Reads every connection's secrets from the environment variables the config names.
pub fn secrets_from_env(config: &Config) -> Result<HashMap<String, Secrets>, ConfigError> {
    config.connections.iter().map(|(name, c)| Ok((name.clone(), c.secrets(name)?))).collect()
}

/// A running engine.
pub struct Engine {
    pub shared: Arc<Shared>,
    pub hub: Hub,
    /// Where the webhook/health HTTP server listens.
    pub http_addr: SocketAddr,
    /// The webhook base URL apps should post to.
    pub public_url: String,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Migrates the hub, applies the configuration, and starts every part.
    pub async fn start(hub: Hub, config: &Config, secrets: &HashMap<String, Secrets>) -> Result<Engine, EngineError> {
        let mut runtimes = HashMap::new();
        for (name, c) in &config.connections {
            let s = secrets.get(name).ok_or_else(|| EngineError::Connector(name.clone(), "no secrets given".into()))?;
            let connector = connectors::build(name, c, s).map_err(|e| EngineError::Connector(name.clone(), e))?;
            runtimes.insert(name.clone(), ConnectionRuntime { connector, webhook_secret: s.webhook_secret.clone() });
        }
        let connections: Connections = Arc::new(runtimes);

        hub::migrate::migrate(&hub).await?;
        let report = hub::schema::apply(&hub, config).await?;
        tracing::info!(%report, "configuration applied");
        crate::replication::listener::ensure_slot(&hub, &config.engine.slot)
            .await
            .map_err(|e| EngineError::Slot(config.engine.slot.clone(), e))?;
        let catalog = Catalog::load(&**hub.client().await?).await?;
        let shared = Arc::new(Shared::new(catalog));

        let listener = tokio::net::TcpListener::bind(config.engine.listen)
            .await
            .map_err(|e| EngineError::Listen(config.engine.listen, e))?;
        let http_addr = listener.local_addr().map_err(|e| EngineError::Listen(config.engine.listen, e))?;
        let public_url = config
            .engine
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}"))
            .trim_end_matches('/')
            .to_string();

        let mut tasks = vec![];
        tasks.push((
            "webhook server",
            tokio::spawn(crate::inbound::webhook::serve(listener, hub.clone(), connections.clone(), public_url.clone(), shared.clone())),
        ));
        for n in 0..config.engine.workers.max(1) {
            tasks.push(("outbound worker", tokio::spawn(crate::outbound::run(hub.clone(), shared.clone(), connections.clone(), n))));
        }
        // two inbox workers: while one waits for the app (the records of its events), the other
        // applies. They share the inbox by SKIP LOCKED; ferry.apply serialises two applies of
        // one record and remembers deletions (ferry.tombstones), so order between them is safe.
        for _ in 0..INBOX_WORKERS {
            tasks.push(("inbox worker", tokio::spawn(crate::inbound::inbox::run(hub.clone(), shared.clone(), connections.clone()))));
        }
        tasks.push(("backfill", tokio::spawn(crate::inbound::backfill::run(hub.clone(), shared.clone(), connections.clone()))));
        let e = &config.engine;
        tasks.push((
            "poller",
            tokio::spawn(crate::inbound::poll::run(hub.clone(), shared.clone(), connections.clone(), e.poll_interval, e.poll_overlap)),
        ));
        tasks.push((
            "reconcile",
            tokio::spawn(crate::inbound::reconcile::run(hub.clone(), shared.clone(), connections.clone(), e.reconcile_interval)),
        ));
        tasks.push(("control", tokio::spawn(crate::control::run(hub.clone(), shared.clone()))));
        let listener = crate::replication::listener::spawn(
            hub.clone(),
            config.engine.slot.clone(),
            config.engine.publication.clone(),
            shared.clone(),
        );
        Ok(Engine { shared, hub, http_addr, public_url, tasks, listener: Some(listener) })
    }

    /// The URL an app should post webhooks for `connection` to.
    pub fn webhook_url(&self, connection: &str) -> String {
        format!("{}/webhooks/{connection}", self.public_url)
    }

    /// Stops every part; the listener sends its last acknowledgement.
    pub async fn shutdown(mut self) {
        let _ = self.shared.shutdown.send(true);
        for (name, mut t) in self.tasks.drain(..) {
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut t).await.is_err() {
                tracing::warn!(task = name, "did not stop within 5 s; aborted");
                t.abort();
            }
        }
        if let Some(l) = self.listener.take() {
            let _ = tokio::task::spawn_blocking(move || l.join()).await;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shared.shutdown.send(true);
        for (_, t) in &self.tasks {
            t.abort();
        }
    }
}
