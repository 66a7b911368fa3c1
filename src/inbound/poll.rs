//! Inbound path, the sure way: every poll interval, each mapping asks its app for the records
//! changed since the last change it saw (minus an overlap window) and applies them. Catches
//! every change whose webhook was lost; deletions are the reconcile's job (search APIs do not
//! return deleted records).
//!
//! Where the feed stands is the connector's own cursor (HubSpot: the newest modification time
//! seen; an export cursor or an event id elsewhere), kept in `ferry.cursors` (kind `poll`) and
//! advanced in the transaction that applies the page, so a crash repeats at most one page. A
//! record held back (its create may be in flight) goes to the inbox to be fetched again, so the
//! cursor never waits on it.
//!
//! Each connection polls in its own loop, so an app holding its calls delays no other app; a
//! failed poll shows in `ferry.status` (`poll_error`) until the next one succeeds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::apply::{apply, log_refusals, read_clock, record_json, stamp_read, stamp_snapshots};
use super::SyncError;
use crate::connectors::{Connector, FeedStart};
use crate::context::{Connections, Shared};
use crate::hub::catalog::Mapping;
use crate::hub::{Hub, HubError};

pub async fn run(
    hub: Hub,
    shared: Arc<Shared>,
    connections: Connections,
    interval: Duration,
    overlap: Duration,
) {
    // one loop per connection (see cadence.rs); a failed poll is logged and shown in
    // `ferry.status` (`poll_error`) until one succeeds
    super::cadence::per_connection(shared, connections, interval, move |m, connector| {
        let hub = hub.clone();
        async move {
            match poll(&hub, &m, connector.as_ref(), overlap).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(mapping = %m.name, records = n, "poll applied changes"),
                Err(e) => {
                    tracing::warn!(mapping = %m.name, error = %e, "poll failed; the next one starts from the same mark");
                    record_failure(&hub, m.id, &e).await;
                }
            }
        }
    })
    .await;
}

/// Shows a failed poll in `ferry.status` (best effort: the hub may be what failed).
async fn record_failure(hub: &Hub, mapping_id: i32, e: &SyncError) {
    let Ok(client) = hub.client().await else {
        return;
    };
    let _ = client
        .execute(
            "update ferry.mapping_progress set poll_error = $2, poll_failed_at = now() where mapping_id = $1",
            &[&mapping_id, &e.to_string()],
        )
        .await;
}

/// One poll of one mapping; returns how many records it read.
pub async fn poll(
    hub: &Hub,
    mapping: &Mapping,
    connector: &dyn Connector,
    overlap: Duration,
) -> Result<u64, SyncError> {
    let client = hub.client().await?;
    // the stored cursor; a bare timestamp is where the backfill started (see backfill.rs) and
    // only says where a feed with no position of its own begins
    let row = client
        .query_one(
            "select c.value, c.value ~ $2,
                    coalesce(case when c.value ~ $2 then c.value::timestamptz end,
                             (select backfilled_at from ferry.mapping_progress where mapping_id = $1),
                             now())
               from (select (select value from ferry.cursors where mapping_id = $1 and kind = 'poll') as value) c",
            &[&mapping.id, &r"^\d{4}-\d\d-\d\d[ T][0-9:.]+([+-][0-9:]+|Z)?$"],
        )
        .await
        .map_err(HubError::from)?;
    drop(client);
    let stored: Option<String> = row.get(0);
    let is_time: Option<bool> = row.get(1);
    let at: DateTime<Utc> = row.get(2);
    let mut cursor = stored.filter(|_| is_time != Some(true));
    let start = FeedStart { at, overlap };
    let properties = mapping.properties();
    let mut total = 0u64;
    loop {
        let read_at = read_clock(&*hub.client().await?).await?;
        let page = connector
            .changes(&mapping.object, &properties, cursor.as_deref(), start)
            .await?;
        total += page.records.len() as u64;
        let mut records: Vec<serde_json::Value> = page
            .records
            .iter()
            .map(|r| record_json(mapping, r))
            .collect();
        stamp_read(&mut records, &read_at);
        if page.snapshots {
            stamp_snapshots(&mut records, &page.records);
        }
        let mut client = hub.client().await?;
        let tx = client.transaction().await.map_err(HubError::from)?;
        let outcome = apply(&*tx, mapping.id, records, true, "poll").await?;
        log_refusals(mapping, &outcome);
        // a record held back (its create may be in flight) is fetched again from the inbox
        // once creates settle, so the cursor can move on over it
        if !outcome.deferred.is_empty() {
            tx.execute(
                "insert into ferry.inbox (connection, remote_object, remote_id, kind, payload, next_attempt_at)
                 select $1, $2, id, 'changed', jsonb_build_object('held_by', 'poll'), now() + interval '2 seconds'
                   from unnest($3::text[]) id",
                &[&mapping.connection, &mapping.object, &outcome.deferred],
            )
            .await
            .map_err(HubError::from)?;
        }
        tx.execute(
            "insert into ferry.cursors (mapping_id, kind, value) values ($1, 'poll', $2)
             on conflict (mapping_id, kind) do update set value = excluded.value, updated_at = now()",
            &[&mapping.id, &page.cursor],
        )
        .await
        .map_err(HubError::from)?;
        tx.execute(
            "update ferry.mapping_progress set polled_at = now(), poll_records = poll_records + $2, poll_error = null
              where mapping_id = $1",
            &[&mapping.id, &(page.records.len() as i64)],
        )
        .await
        .map_err(HubError::from)?;
        tx.commit().await.map_err(HubError::from)?;
        if !page.more {
            return Ok(total);
        }
        cursor = Some(page.cursor);
    }
}
