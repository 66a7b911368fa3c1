//! Inbound path, the sure way: every poll interval, each mapping asks its app for the records
//! changed since the last change it saw (minus an overlap window) and applies them. Catches
//! every change whose webhook was lost; deletions are the reconcile's job (search APIs do not
//! return deleted records).
//!
//! The high-water mark is the app's own modification time of the newest record applied, kept
//! in `ferry.cursors` (kind `poll`) and advanced in the transaction that applies the page, so a
//! crash repeats at most one page. A record held back (its create may be in flight) caps the
//! mark at its time, so the next poll reads it again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::apply::{apply, log_refusals, record_json};
use super::SyncError;
use crate::connectors::Connector;
use crate::engine::{Connections, Shared};
use crate::hub::catalog::Mapping;
use crate::hub::{Hub, HubError};

pub async fn run(
    hub: Hub,
    shared: Arc<Shared>,
    connections: Connections,
    interval: Duration,
    overlap: Duration,
) {
    if interval.is_zero() {
        return;
    }
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let catalog = shared.catalog();
        for m in catalog.mappings.iter().filter(|m| m.backfill_done) {
            let Some(conn) = connections.get(&m.connection) else {
                continue;
            };
            match poll(&hub, m, conn.connector.as_ref(), overlap).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(mapping = %m.name, records = n, "poll applied changes"),
                Err(e) => {
                    tracing::warn!(mapping = %m.name, error = %e, "poll failed; the next one starts from the same mark")
                }
            }
            if shared.is_shutting_down() {
                return;
            }
        }
    }
}

/// One poll of one mapping; returns how many records it read.
pub async fn poll(
    hub: &Hub,
    mapping: &Mapping,
    connector: &dyn Connector,
    overlap: Duration,
) -> Result<u64, SyncError> {
    let client = hub.client().await?;
    let start: DateTime<Utc> = client
        .query_one(
            "select coalesce((select value::timestamptz from ferry.cursors where mapping_id = $1 and kind = 'poll'),
                             (select backfilled_at from ferry.mapping_progress where mapping_id = $1),
                             now())",
            &[&mapping.id],
        )
        .await
        .map_err(HubError::from)?
        .get(0);
    drop(client);
    let overlap =
        chrono::Duration::from_std(overlap).unwrap_or_else(|_| chrono::Duration::seconds(60));
    let caps = connector.capabilities();
    let properties = mapping.properties();
    let mut since = start - overlap;
    let mut mark = start;
    let mut held_at: Option<DateTime<Utc>> = None;
    let (mut after, mut in_query, mut total) = (None, 0usize, 0u64);
    loop {
        let page = connector
            .changed_since(&mapping.object, &properties, since, after.take())
            .await?;
        in_query += page.records.len();
        total += page.records.len() as u64;
        let newest = page.records.iter().filter_map(|r| r.updated_at).max();
        let records = page
            .records
            .iter()
            .map(|r| record_json(mapping, r))
            .collect();
        let mut client = hub.client().await?;
        let tx = client.transaction().await.map_err(HubError::from)?;
        let outcome = apply(&*tx, mapping.id, records, true, "poll").await?;
        log_refusals(&mapping, &outcome);
        for id in &outcome.deferred {
            let t = page
                .records
                .iter()
                .find(|r| &r.id == id)
                .and_then(|r| r.updated_at);
            held_at = match (held_at, t) {
                (Some(h), Some(t)) => Some(h.min(t)),
                (h, t) => h.or(t),
            };
        }
        if let Some(n) = newest {
            mark = mark.max(n);
        }
        let stored = held_at.map_or(mark, |h| mark.min(h));
        tx.execute(
            "insert into ferry.cursors (mapping_id, kind, value) values ($1, 'poll', $2)
             on conflict (mapping_id, kind) do update set value = excluded.value, updated_at = now()",
            &[&mapping.id, &stored.to_rfc3339()],
        )
        .await
        .map_err(HubError::from)?;
        tx.execute(
            "update ferry.mapping_progress set polled_at = now(), poll_records = poll_records + $2 where mapping_id = $1",
            &[&mapping.id, &(page.records.len() as i64)],
        )
        .await
        .map_err(HubError::from)?;
        tx.commit().await.map_err(HubError::from)?;
        match page.after {
            Some(a) => after = Some(a),
            None => {
                // a query that stopped at the app's result cap goes on from its newest change
                let capped = caps
                    .max_changed_results
                    .is_some_and(|cap| in_query + caps.max_page >= cap);
                match newest {
                    Some(n) if capped && n > since => {
                        since = n;
                        in_query = 0;
                    }
                    _ => return Ok(total),
                }
            }
        }
    }
}
