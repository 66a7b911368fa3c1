//! Inbound path: the initial backfill of a new mapping — pages through every remote record
//! and applies each page in the transaction that records the page cursor, so a restart
//! resumes after the last finished page.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use super::apply::{log_refusals, merge_page};
use super::SyncError;
use crate::connectors::{Connector, Page};
use crate::context::{Connections, Shared};
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
        for m in backfill_order(&catalog.mappings)
            .iter()
            .filter(|m| !m.backfill_done)
        {
            let Some(conn) = connections.get(&m.connection) else {
                continue;
            };
            if let Err(e) = backfill(&hub, &shared, m, conn.connector.as_ref()).await {
                tracing::warn!(mapping = %m.name, error = %e, "backfill interrupted; will resume from its last page");
                failed = true;
            }
        }
        let wait = if failed {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// The mappings in an order where each comes after the mappings its reference fields name, so
/// the records a backfilled record references are in the hub before it (a cycle: any order).
fn backfill_order(mappings: &[Arc<Mapping>]) -> Vec<Arc<Mapping>> {
    let mut placed: Vec<Arc<Mapping>> = Vec::with_capacity(mappings.len());
    let mut left: Vec<Arc<Mapping>> = mappings.to_vec();
    while !left.is_empty() {
        let ready = left.iter().position(|m| {
            m.fields.iter().filter_map(|f| f.references).all(|r| {
                r == m.id || placed.iter().any(|p| p.id == r) || !left.iter().any(|l| l.id == r)
            })
        });
        placed.push(left.remove(ready.unwrap_or(0)));
    }
    placed
}

/// Backfills one mapping to the end, resuming from its stored cursor.
pub async fn backfill(
    hub: &Hub,
    shared: &Shared,
    mapping: &Mapping,
    connector: &dyn Connector,
) -> Result<(), SyncError> {
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

    // Pages are read one after the other (the cursor comes with each page) into a bounded queue;
    // the batcher takes what has queued up, up to MERGE_RECORDS, as one batch; MERGES_IN_FLIGHT
    // batches are merged at once on their own connections, and commit in order (each waits for
    // its predecessor's commit), so the stored cursor only moves forward over stored pages.
    // Memory stays flat: at most QUEUED_PAGES + MERGES_IN_FLIGHT batches are held.
    let (pages_tx, pages_rx) = tokio::sync::mpsc::channel::<Result<Page, SyncError>>(QUEUED_PAGES);
    let fetch = async {
        let mut cursor = after;
        loop {
            let page = connector
                .list(&mapping.object, &properties, cursor.clone())
                .await
                .map_err(SyncError::from);
            let next = page.as_ref().ok().and_then(|p| p.after.clone());
            let failed = page.is_err();
            if pages_tx.send(page).await.is_err() || failed || next.is_none() {
                return;
            }
            cursor = next;
        }
    };
    let (progress, properties) = (&progress, &properties);
    // owns the queue's receiving end: when the merger stops (an error, the end, shutdown) the
    // queue closes and the reader, perhaps waiting for room in it, stops too
    let merge = async move {
        let mut pages_rx = pages_rx;
        let mut in_flight = FuturesOrdered::new();
        let mut gate: Option<oneshot::Receiver<()>> = None;
        let mut reported = HashSet::new();
        let mut read_error = None;
        let mut reading = true;
        loop {
            tokio::select! {
                // cancel-safe: next_batch awaits only the queue's recv, then takes what is there
                batch = next_batch(&mut pages_rx, mapping, properties, &mut reported),
                        if reading && in_flight.len() < MERGES_IN_FLIGHT => match batch {
                    Some(Ok(batch)) => {
                        let (done, committed) = oneshot::channel();
                        let previous = gate.replace(committed);
                        in_flight.push_back(store_batch(hub, mapping, batch, previous, done));
                    }
                    // the batches before the failed page are still stored
                    Some(Err(e)) => (reading, read_error) = (false, Some(e)),
                    None => reading = false,
                },
                Some(stored) = in_flight.next(), if !in_flight.is_empty() => {
                    let (records, last) = stored?;
                    total += records;
                    progress.set(total as u64);
                    if last {
                        progress.finish();
                        tracing::info!(mapping = %mapping.name, records = total, "backfill finished");
                        return Ok(());
                    }
                    if shared.is_shutting_down() {
                        return Ok(()); // what is stored is kept; a restart resumes after it
                    }
                }
                // the reader stopped without an error only on shutdown
                else => return read_error.map_or(Ok(()), Err),
            }
        }
    };
    let ((), merged) = tokio::join!(fetch, merge);
    merged
}

/// The next batch: the first queued page, waited for, and whatever else has queued up, up to
/// MERGE_RECORDS. None once the reader has stopped and the queue is empty.
async fn next_batch(
    pages: &mut mpsc::Receiver<Result<Page, SyncError>>,
    mapping: &Mapping,
    properties: &[String],
    reported: &mut HashSet<String>,
) -> Option<Result<Vec<Page>, SyncError>> {
    let first = match pages.recv().await? {
        Ok(page) => page,
        Err(e) => return Some(Err(e)),
    };
    let mut n = first.records.len();
    let mut batch = vec![first];
    while n < MERGE_RECORDS && batch.last().is_some_and(|p| p.after.is_some()) {
        match pages.try_recv() {
            Ok(Ok(page)) => {
                n += page.records.len();
                batch.push(page);
            }
            Ok(Err(e)) => return Some(Err(e)),
            Err(_) => break,
        }
    }
    for page in batch.iter().filter(|p| !p.records.is_empty()) {
        // a mapped property no record carries does not exist (anymore) in the app: its column
        // keeps its values; say so once per run instead of failing the backfill
        for p in properties {
            if !reported.contains(p) && page.records.iter().all(|r| !r.properties.contains_key(p)) {
                tracing::warn!(mapping = %mapping.name, property = %p, "the app returns no such property; its column is left as it is");
                reported.insert(p.clone());
            }
        }
    }
    Some(Ok(batch))
}

/// Pages queued between the reader and the batcher.
const QUEUED_PAGES: usize = 30;
/// Records merged in one transaction at most (more when one page is larger).
const MERGE_RECORDS: usize = 1000;
/// Batches merged at once, each on its own connection (commits stay in order).
const MERGES_IN_FLIGHT: usize = 3;
/// Pages of 100 read but possibly not stored when the backfill stops: the queue, the batches
/// being merged and the page being read. A restart reads them again.
pub const READ_AHEAD_PAGES: u64 =
    QUEUED_PAGES as u64 + (MERGES_IN_FLIGHT * MERGE_RECORDS / 100) as u64 + 1;

/// Stores one batch (see [`store_pages`]): its record count and whether it was the last.
async fn store_batch(
    hub: &Hub,
    mapping: &Mapping,
    batch: Vec<Page>,
    previous: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
) -> Result<(i64, bool), SyncError> {
    store_pages(hub, mapping, &batch, previous, done).await?;
    let records = batch.iter().map(|p| p.records.len() as i64).sum::<i64>();
    Ok((records, batch.last().is_some_and(|p| p.after.is_none())))
}

/// Merges consecutive pages in the transaction that records the last one as done, so a restart
/// resumes after the last stored page. The commit waits for the previous batch's (`previous`
/// resolves when it committed; dropped, when it failed: this batch then fails too) and then
/// signals `done`. Records held back (a create may be in flight) make the pages wait. A record
/// listed twice (it moved while the pages were read) is merged once, as last listed; listed in
/// the previous batch too, its insert collides with that batch's, and the merge is redone once
/// that batch has committed.
async fn store_pages(
    hub: &Hub,
    mapping: &Mapping,
    pages: &[Page],
    mut previous: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
) -> Result<(), SyncError> {
    let mut seen = HashSet::new();
    let mut records: Vec<&crate::connectors::RemoteRecord> = pages
        .iter()
        .flat_map(|p| &p.records)
        .rev()
        .filter(|r| seen.insert(r.id.as_str()))
        .collect();
    records.reverse();
    let n = pages.iter().map(|p| p.records.len() as i64).sum::<i64>();
    let after = pages.last().and_then(|p| p.after.clone());
    loop {
        let mut client = hub.client().await?;
        let tx = client.transaction().await.map_err(HubError::from)?;
        let outcome = match merge_page(&tx, mapping, &records).await {
            // a record also in the previous batch (or a lock cycle through a concurrent apply):
            // once that batch has committed, the merge sees its rows
            Err(HubError::Sql(e))
                if previous.is_some()
                    && matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                drop(tx);
                committed(&mut previous).await?;
                continue;
            }
            outcome => outcome?,
        };
        if !outcome.deferred.is_empty() {
            drop(tx);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        log_refusals(mapping, &outcome);
        // this batch's locks are held while it waits for its turn: if someone waits for them
        // (an apply that the previous batch waits for: a circle through ferry that PostgreSQL's
        // deadlock detector cannot see), or the turn takes long, it lets go and merges again
        // once the previous batch has committed
        if !our_turn(&tx, &mut previous).await? {
            drop(tx);
            committed(&mut previous).await?;
            continue;
        }
        let changed = outcome.inserted + outcome.updated + outcome.deleted > 0;
        // progress goes to its own row: ferry.mappings is read by every outbox claim
        tx.execute(
            "update ferry.mapping_progress
                set backfill_after = $2, backfill_pages = backfill_pages + $4, backfill_rows = backfill_rows + $3,
                    backfilled_at = case when $2::text is null then now() else backfilled_at end,
                    last_inbound_at = case when $5 then now() else last_inbound_at end
              where mapping_id = $1",
            &[&mapping.id, &after, &n, &(pages.len() as i64), &changed],
        )
        .await
        .map_err(HubError::from)?;
        if after.is_none() {
            tx.execute(
                "update ferry.mappings set backfill_state = 'done' where id = $1",
                &[&mapping.id],
            )
            .await
            .map_err(HubError::from)?;
        }
        tx.commit().await.map_err(HubError::from)?;
        let _ = done.send(());
        return Ok(());
    }
}

/// How long a merged batch holds its locks waiting for the previous batch's commit.
const TURN_WAIT: Duration = Duration::from_secs(10);
/// How often a batch waiting for its turn checks whether a session waits for its locks.
const BLOCKING_CHECK: Duration = Duration::from_millis(100);

/// Waits for the previous batch's commit with this batch's transaction open: true when it came;
/// false when another session is found waiting for this transaction's locks, or after
/// TURN_WAIT (the caller then rolls back and merges again). Before the check, a webhook apply
/// waiting for a batch that waited its turn behind a batch waiting for that apply stalled both
/// for the whole TURN_WAIT: tests/backfill.rs took 25–65 s in 3 of 11 runs (one timed out),
/// 4–8 s in 20 of 20 runs with it (letting go 0–3 times a run).
async fn our_turn(
    tx: &tokio_postgres::Transaction<'_>,
    previous: &mut Option<oneshot::Receiver<()>>,
) -> Result<bool, SyncError> {
    let since = std::time::Instant::now();
    loop {
        if let Ok(turn) = tokio::time::timeout(BLOCKING_CHECK, committed(previous)).await {
            turn?;
            return Ok(true);
        }
        let waited_on: bool = tx
            .query_one(
                // pg_locks shows every role's sessions (pg_stat_activity hides other roles'
                // wait events); pg_blocking_pids only for the few that wait
                "select exists (select 1 from pg_locks w
                                 where not w.granted and pg_backend_pid() = any(pg_blocking_pids(w.pid)))",
                &[],
            )
            .await
            .map_err(HubError::from)?
            .get(0);
        if waited_on || since.elapsed() >= TURN_WAIT {
            tracing::debug!(
                waited_on,
                "a backfill batch lets go of its locks while it waits its turn"
            );
            return Ok(false);
        }
    }
}

/// Waits until the previous batch has committed (then forgets it); an error when it failed.
async fn committed(previous: &mut Option<oneshot::Receiver<()>>) -> Result<(), SyncError> {
    if let Some(rx) = previous.as_mut() {
        rx.await.map_err(|_| SyncError::EarlierBatchFailed)?;
        *previous = None;
    }
    Ok(())
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
                indicatif::ProgressStyle::with_template(
                    "{spinner} backfill {msg}: {pos} records ({per_sec}, {elapsed})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(name.to_string());
            bar.set_position(start);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            name: name.to_string(),
            last_log: std::sync::Mutex::new(std::time::Instant::now()),
        }
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
