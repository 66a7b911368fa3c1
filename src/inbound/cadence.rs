//! Inbound path, the timers of the poller and the reconcile: one loop per connection, so an
//! app that is slow or holds its calls (a spent daily allocation, a long throttle) delays only
//! its own mappings' runs, never another app's.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::connectors::Connector;
use crate::context::{Connections, Shared};
use crate::hub::catalog::Mapping;

/// Every `interval`, runs `each` on every backfilled mapping, each connection in its own loop,
/// until shutdown (a run in progress is dropped then: each resumes from its stored position).
pub async fn per_connection<F, Fut>(
    shared: Arc<Shared>,
    connections: Connections,
    interval: Duration,
    each: F,
) where
    F: Fn(Arc<Mapping>, Arc<dyn Connector>) -> Fut + Clone,
    Fut: Future<Output = ()>,
{
    if interval.is_zero() {
        return;
    }
    let loops = connections.keys().map(|name| {
        let (shared, connections, each) = (shared.clone(), connections.clone(), each.clone());
        let name = name.clone();
        async move {
            let mut shutdown = shared.shutdown.subscribe();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                let Some(connector) = connections.get(&name).map(|c| c.connector.clone()) else {
                    return;
                };
                let catalog = shared.catalog();
                for m in catalog
                    .mappings
                    .iter()
                    .filter(|m| m.backfill_done && m.connection == name)
                {
                    tokio::select! {
                        _ = each(m.clone(), connector.clone()) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    if shared.is_shutting_down() {
                        return;
                    }
                }
            }
        }
    });
    futures_util::future::join_all(loops).await;
}
