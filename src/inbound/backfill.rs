//! Inbound path: the initial backfill of a new mapping — pages through every remote record
//! and applies each page in the transaction that records the page cursor, so a restart
//! resumes after the last finished page.

use std::sync::Arc;
use std::time::Duration;

use super::apply::{merge_page, record_errors};
use super::SyncError;
use crate::connectors::{Connector, Page};
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
            "with run as (
                 update ferry.mappings set backfill_state = 'running'
                  where id = $1 and backfill_state <> 'done'
              returning id)
             select p.backfill_after, p.backfill_rows
               from run join ferry.mapping_progress p on p.mapping_id = run.id",
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
    let after: Option<String> = row.get(0);
    let mut total: i64 = row.get(1);
    drop(client);
    tracing::info!(mapping = %mapping.name, resume_after = ?after, rows_so_far = total, "backfill started");
    let progress = Progress::new(&mapping.name, total as u64);
    let properties = mapping.properties();
    let mut page = connector.list(&mapping.object, &properties, after.clone()).await?;
    let mut reported: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        // a mapped property no record carries does not exist (anymore) in the app: its column
        // keeps its values; say so once per run instead of failing the backfill
        if !page.records.is_empty() {
            for p in &properties {
                if !reported.contains(p) && page.records.iter().all(|r| !r.properties.contains_key(p)) {
                    tracing::warn!(mapping = %mapping.name, property = %p, "the app returns no such property; its column is left as it is");
                    reported.insert(p.clone());
                }
            }
        }
        if shared.is_shutting_down() {
            return Ok(());
        }
        // the next page is fetched while this one is merged
        let next_after = page.after.clone();
        let prefetch = async {
            match &next_after {
                Some(a) => Some(connector.list(&mapping.object, &properties, Some(a.clone())).await),
                None => None,
            }
        };
        let (stored, next) = tokio::join!(store_page(hub, mapping, &page), prefetch);
        stored?;
        total += page.records.len() as i64;
        progress.set(total as u64);
        match next {
            Some(next) => page = next?,
            None => {
                progress.finish();
                tracing::info!(mapping = %mapping.name, records = total, "backfill finished");
                return Ok(());
            }
        }
    }
}

/// Merges one page in the transaction that records it as done, so a restart resumes after the
/// last stored page. Records held back (a create may be in flight) make the page wait.
async fn store_page(hub: &Hub, mapping: &Mapping, page: &Page) -> Result<(), SyncError> {
    let n = page.records.len() as i64;
    loop {
        let mut client = hub.client().await?;
        let tx = client.transaction().await.map_err(HubError::from)?;
        let outcome = merge_page(&tx, mapping, &page.records).await?;
        if !outcome.deferred.is_empty() {
            drop(tx);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        record_errors(&*tx, mapping.id, &outcome.errors).await?;
        // progress per page goes to its own row: ferry.mappings is read by every outbox claim
        tx.execute(
            "update ferry.mapping_progress
                set backfill_after = $2, backfill_pages = backfill_pages + 1, backfill_rows = backfill_rows + $3,
                    backfilled_at = case when $2::text is null then now() else backfilled_at end
              where mapping_id = $1",
            &[&mapping.id, &page.after, &n],
        )
        .await
        .map_err(HubError::from)?;
        if page.after.is_none() {
            tx.execute("update ferry.mappings set backfill_state = 'done' where id = $1", &[&mapping.id])
                .await
                .map_err(HubError::from)?;
        }
        tx.commit().await.map_err(HubError::from)?;
        return Ok(());
    }
}

/// Backfill progress on a terminal (a spinner with the row count and rate); elsewhere, a log
/// line every 10 seconds. SQL sees the same in ferry.status (backfill_state, backfill_rows).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    name: String,
    last_log: std::sync::Mutex<std::time::Instant>,
}

impl Progress {
    fn new(name: &str, start: u64) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} backfill {msg}: {pos} records ({per_sec}, {elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(name.to_string());
            bar.set_position(start);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, name: name.to_string(), last_log: std::sync::Mutex::new(std::time::Instant::now()) }
    }

    fn set(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(10) {
            *last = std::time::Instant::now();
            tracing::info!(mapping = %self.name, records = rows, "backfill progress");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
