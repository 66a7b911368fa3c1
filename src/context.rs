//! The engine's context: what every part of the data path shares (the catalog, wake-ups, the
//! shutdown signal, the replication lag) and the running connectors. The parts (replication,
//! outbound, inbound, control) depend on this module, never on `engine`, which wires them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{watch, Notify};

use crate::connectors::Connector;
use crate::hub::catalog::Catalog;

/// State shared by every part of one engine.
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
