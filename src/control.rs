//! Control plane: LISTEN ferry_control; a change to the mappings (from `ferry apply` or psql)
//! reloads the catalog and wakes the parts that depend on it, within a second.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use crate::context::Shared;
use crate::hub::catalog::Catalog;
use crate::hub::Hub;

pub async fn run(hub: Hub, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            r = session(&hub, &shared) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "control listener lost its connection; reconnecting");
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn reload(hub: &Hub, shared: &Shared) -> Result<(), crate::hub::HubError> {
    let catalog = Catalog::load(&**hub.client().await?).await?;
    shared.set_catalog(catalog);
    shared.backfill_ready.notify_waiters();
    shared.outbox_ready.notify_waiters();
    shared.inbox_ready.notify_waiters();
    Ok(())
}

async fn session(
    hub: &Hub,
    shared: &Shared,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (client, mut conn) = hub.session().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    let pump = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(n.payload().to_string());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "control connection error");
                    break;
                }
            }
        }
    });
    client.batch_execute("listen ferry_control").await?;
    // anything changed while we were not listening
    reload(hub, shared).await?;
    while let Some(payload) = rx.recv().await {
        tracing::debug!(%payload, "control notification");
        reload(hub, shared).await?;
    }
    pump.abort();
    Err("control connection closed".into())
}

/// `ferry status`: the rows of the `ferry.status` view as an aligned table (one row per
/// mapping), the same as `select * from ferry.status` in psql.
pub async fn status_table(hub: &Hub) -> Result<String, crate::hub::HubError> {
    let client = hub.client().await?;
    let mut header: Vec<String> = vec![];
    let mut rows: Vec<Vec<String>> = vec![];
    for msg in client.simple_query("select * from ferry.status").await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = msg {
            if header.is_empty() {
                header = r.columns().iter().map(|c| c.name().to_string()).collect();
            }
            rows.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_string())
                    .collect(),
            );
        }
    }
    if rows.is_empty() {
        return Ok("no mappings: add [[mappings]] to ferry.toml and run `ferry apply`".into());
    }
    // one block per mapping, `column : value` lines (the view is wide)
    let width = header.iter().map(|h| h.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (h, v) in header.iter().zip(row) {
            out.push_str(&format!("{h:<width$} | {v}\n"));
        }
    }
    Ok(out)
}
