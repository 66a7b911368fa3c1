//! Inbound path: the initial backfill of a new mapping — pages through every remote record
//! and applies each page in the transaction that records the page cursor, so a restart
//! resumes after the last finished page.

use std::sync::Arc;
use std::time::Duration;

use super::apply::{apply, record_errors, record_json};
use super::SyncError;
use crate::connectors::Connector;
use crate::engine::{Connections, Shared};
use crate::hub::catalog::Mapping;
use crate::hub::{Hub, HubError};

pub async fn run(hub: Hub, shared: Arc<Shared>, connections: Connections) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let notified = shared.backfill_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let catalog = shared.catalog();
        let mut failed = false;
        for m in catalog.mappings.iter().filter(|m| m.active && !m.backfill_done) {
            let Some(conn) = connections.get(&m.connection) else { continue };
            if let Err(e) = backfill(&hub, &shared, m, conn.connector.as_ref()).await {
                tracing::warn!(mapping = %m.name, error = %e, "backfill interrupted; will resume from its last page");
                failed = true;
            }
        }
        let wait = if failed { Duration::from_secs(1) } else { Duration::from_secs(3600) };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Backfills one mapping to the end, resuming from its stored cursor.
pub async fn backfill(hub: &Hub, shared: &Shared, mapping: &Mapping, connector: &dyn Connector) -> Result<(), SyncError> {
    let client = hub.client().await?;
    let row = client
        .query_opt(
            "update ferry.mappings set backfill_state = 'running'
              where id = $1 and backfill_state <> 'done'
          returning backfill_after, backfill_rows",
            &[&mapping.id],
        )
        .await
        .map_err(HubError::from)?;
    let Some(row) = row else { return Ok(()) }; // already done
    // polling starts from the moment the backfill first started: a record changed after its
    // page was read is polled afterwards
    client
        .execute(
            "insert into ferry.cursors (mapping_id, kind, value) values ($1, 'poll', now()::text) on conflict do nothing",
            &[&mapping.id],
        )
        .await
        .map_err(HubError::from)?;
    let mut after: Option<String> = row.get(0);
    let mut total: i64 = row.get(1);
    drop(client);
    tracing::info!(mapping = %mapping.name, resume_after = ?after, "backfill started");
    let properties = mapping.properties();
    loop {
        if shared.is_shutting_down() {
            return Ok(());
        }
        let page = connector.list(&mapping.object, &properties, after.clone()).await?;
        let records: Vec<serde_json::Value> = page.records.iter().map(|r| record_json(mapping, r)).collect();
        let n = records.len() as i64;
        loop {
            let mut client = hub.client().await?;
            let tx = client.transaction().await.map_err(HubError::from)?;
            // hold back while creates are in flight: a record may be one of them
            let outcome = apply(&*tx, mapping.id, records.clone(), true).await?;
            if !outcome.deferred.is_empty() {
                drop(tx);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            record_errors(&*tx, mapping.id, &outcome.errors).await?;
            tx.execute(
                "update ferry.mappings
                    set backfill_after = $2, backfill_pages = backfill_pages + 1, backfill_rows = backfill_rows + $3,
                        backfill_state = case when $2::text is null then 'done' else 'running' end,
                        backfilled_at = case when $2::text is null then now() else backfilled_at end
                  where id = $1",
                &[&mapping.id, &page.after, &n],
            )
            .await
            .map_err(HubError::from)?;
            tx.commit().await.map_err(HubError::from)?;
            break;
        }
        total += n;
        shared.outbox_ready.notify_waiters();
        match page.after {
            Some(a) => after = Some(a),
            None => {
                tracing::info!(mapping = %mapping.name, records = total, "backfill finished");
                return Ok(());
            }
        }
    }
}
