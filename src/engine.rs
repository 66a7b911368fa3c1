//! The engine: wires the hub, the replication listener, the outbound workers, the webhook
//! server, the inbox worker, backfill and live control into one running process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, Secrets};
use crate::connectors;
use crate::hub::catalog::Catalog;
use crate::hub::{self, Hub, HubError};

/// Inbox workers per process.
const INBOX_WORKERS: usize = 2;

pub use crate::context::{ConnectionRuntime, Connections, Shared};

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
    config
        .connections
        .iter()
        .map(|(name, c)| Ok((name.clone(), c.secrets(name)?)))
        .collect()
}

/// Runs a long-lived part of the engine, and runs it again after a second if it panics: a bug
/// in one part (a worker, the backfill) must neither take the process down nor leave it quietly
/// without that part. Everything a part does is redone safely after a crash (claims lapse,
/// cursors are committed with their work), so a restart loses nothing. A part returns only on
/// shutdown.
fn supervise<F, Fut>(name: &'static str, shared: Arc<Shared>, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(make()).await {
                Err(e) if e.is_panic() && !shared.is_shutting_down() => {
                    tracing::error!(
                        task = name,
                        "panicked (message above); running it again in 1 s"
                    );
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                _ => return,
            }
        }
    })
}

/// What every part of the engine runs with.
struct Parts {
    hub: Hub,
    shared: Arc<Shared>,
    connections: Connections,
}

impl Parts {
    /// [`supervise`]s the part `make` builds from the hub, the shared state and the connections.
    fn supervise<F, Fut>(&self, name: &'static str, make: F) -> (&'static str, JoinHandle<()>)
    where
        F: Fn(Hub, Arc<Shared>, Connections) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (hub, shared, connections) = (
            self.hub.clone(),
            self.shared.clone(),
            self.connections.clone(),
        );
        (
            name,
            supervise(name, self.shared.clone(), move || {
                make(hub.clone(), shared.clone(), connections.clone())
            }),
        )
    }
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
    pub async fn start(
        hub: Hub,
        config: &Config,
        secrets: &HashMap<String, Secrets>,
    ) -> Result<Engine, EngineError> {
        let mut runtimes = HashMap::new();
        for (name, c) in &config.connections {
            let s = secrets
                .get(name)
                .ok_or_else(|| EngineError::Connector(name.clone(), "no secrets given".into()))?;
            let connector = connectors::build(name, c, s)
                .map_err(|e| EngineError::Connector(name.clone(), e))?;
            runtimes.insert(
                name.clone(),
                ConnectionRuntime {
                    connector,
                    webhook_secret: s.webhook_secret.clone(),
                },
            );
        }
        // each mapping's fields against what its app says of the object (Salesforce's
        // describe): an unknown or unwritable field stops the start with one sentence each
        for m in &config.mappings {
            let Some(rt) = runtimes.get(&m.connection) else {
                continue;
            };
            let uses: Vec<connectors::FieldUse> = m
                .fields
                .iter()
                .map(|f| connectors::FieldUse {
                    property: f.property.clone(),
                    writes: f.direction != "inbound",
                })
                .collect();
            if let Err(e) = rt.connector.check_fields(&m.object, &uses).await {
                return Err(EngineError::Connector(
                    m.connection.clone(),
                    format!("mapping `{}`: {e}", m.name()),
                ));
            }
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
        let http_addr = listener
            .local_addr()
            .map_err(|e| EngineError::Listen(config.engine.listen, e))?;
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
            tokio::spawn(crate::inbound::webhook::serve(
                listener,
                hub.clone(),
                connections.clone(),
                public_url.clone(),
                shared.clone(),
            )),
        ));
        let parts = Parts {
            hub: hub.clone(),
            shared: shared.clone(),
            connections: connections.clone(),
        };
        // one lane of outbound workers per connection: a slow app never holds another's
        let mut lanes: Vec<String> = connections.keys().cloned().collect();
        lanes.sort();
        let n_lanes = lanes.len();
        let per_lane = |lane: &String| {
            let async_writes = connections[lane].connector.capabilities().async_writes;
            crate::outbound::lane_workers(config.engine.workers, n_lanes, async_writes)
        };
        // every outbound worker and inbox worker may hold a pooled connection at once (a round
        // keeps its claims' session through the app's call), besides the other parts' few
        let workers: usize = lanes.iter().map(per_lane).sum();
        hub.reserve_connections(workers + INBOX_WORKERS + 12);
        for lane in lanes {
            let per_lane = per_lane(&lane);
            for n in 0..per_lane {
                let lane = lane.clone();
                tasks.push(parts.supervise("outbound worker", move |h, s, c| {
                    crate::outbound::run(h, s, c, lane.clone(), n)
                }));
            }
        }
        // two inbox workers: while one waits for the app (the records of its events), the other
        // applies. They share the inbox by SKIP LOCKED; ferry.apply serialises two applies of
        // one record and remembers deletions (ferry.tombstones), so order between them is safe.
        for _ in 0..INBOX_WORKERS {
            tasks.push(parts.supervise("inbox worker", crate::inbound::inbox::run));
        }
        tasks.push(parts.supervise("backfill", crate::inbound::backfill::run));
        let (interval, overlap) = (config.engine.poll_interval, config.engine.poll_overlap);
        tasks.push(parts.supervise("poller", move |h, s, c| {
            crate::inbound::poll::run(h, s, c, interval, overlap)
        }));
        let interval = config.engine.reconcile_interval;
        tasks.push(parts.supervise("reconcile", move |h, s, c| {
            crate::inbound::reconcile::run(h, s, c, interval)
        }));
        tasks.push(parts.supervise("control", |h, s, _| crate::control::run(h, s)));
        let listener = crate::replication::listener::spawn(
            hub.clone(),
            config.engine.slot.clone(),
            config.engine.publication.clone(),
            shared.clone(),
        );
        Ok(Engine {
            shared,
            hub,
            http_addr,
            public_url,
            tasks,
            listener: Some(listener),
        })
    }

    /// The URL an app should post webhooks for `connection` to.
    pub fn webhook_url(&self, connection: &str) -> String {
        format!("{}/webhooks/{connection}", self.public_url)
    }

    /// Stops every part; the listener sends its last acknowledgement.
    pub async fn shutdown(mut self) {
        let _ = self.shared.shutdown.send_replace(true);
        for (name, mut t) in self.tasks.drain(..) {
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut t)
                .await
                .is_err()
            {
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
        let _ = self.shared.shutdown.send_replace(true);
        for (_, t) in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::{supervise, Shared};
    use crate::hub::catalog::Catalog;

    #[tokio::test]
    async fn a_part_that_panics_runs_again() {
        let shared = Arc::new(Shared::new(Catalog::default()));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let part = supervise("test part", shared, move || {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), part)
            .await
            .expect("the part ran again and returned")
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_part_that_panics_during_shutdown_stays_down() {
        let shared = Arc::new(Shared::new(Catalog::default()));
        let _ = shared.shutdown.send_replace(true);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let part = supervise("test part", shared, move || {
            let runs = counted.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                panic!("fails while stopping");
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), part)
            .await
            .expect("the supervisor returned")
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
