//! Outbound path, third hop: commits → dirty marks in ferry.outbox → acknowledgement.
//!
//! Runs on its own thread with a current-thread runtime (measured faster than sharing the
//! multi-thread runtime). The slot is acknowledged only up to the end of the last commit
//! whose marks are committed in ferry.outbox, so a crash replays, never loses; replays are
//! harmless because marks coalesce.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use postgres_protocol::escape::{escape_identifier as ident, escape_literal as literal};

use super::client::{format_lsn, ReplicationClient, ReplicationError, StreamMessage};
use super::pgoutput::{self, Datum, Message, Relation};
use super::visibility::Snapshot;
use crate::context::Shared;
use crate::hub::Hub;

/// Flush marks at least this often when a stream of commits never pauses.
const MAX_PENDING: usize = 10_000;
/// ... and at the latest this long after the first unflushed commit.
const MAX_DELAY: Duration = Duration::from_millis(5);

const UPSERT_MARKS: &str = "insert into ferry.outbox (mapping_id, row_key)
     select * from unnest($1::integer[], $2::bigint[])
     on conflict (mapping_id, row_key) do update
        set seq = ferry.outbox.seq + 1, marked_at = now()";

/// Starts the listener thread; it reconnects with backoff until `shared` says shut down.
pub fn spawn(
    hub: Hub,
    slot: String,
    publication: String,
    shared: Arc<Shared>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("ferry-listener".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the listener runtime");
                    return;
                }
            };
            rt.block_on(run(hub, slot, publication, shared));
        })
        .expect("spawning a thread")
}

async fn run(hub: Hub, slot: String, publication: String, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let began = std::time::Instant::now();
        let result = session(&hub, &slot, &publication, &shared).await;
        if began.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(100); // it had been streaming: a fresh failure
        }
        match result {
            Ok(()) => return,
            Err(ReplicationError::NotLeader) => {
                tracing::debug!(slot, "another ferry process reads the slot; standing by");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "replication session ended");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Creates the slot unless it exists. The engine calls this before it starts anything that
/// writes, so no hub change made after start-up can precede the slot.
pub async fn ensure_slot(hub: &Hub, slot: &str) -> Result<(), ReplicationError> {
    let mut repl = ReplicationClient::connect(hub, "ferry-setup").await?;
    create_slot(&mut repl, hub, slot).await
}

/// Creates the slot with an exported snapshot and, inside that snapshot, marks every row of
/// every mapped table: the first copy and the stream meet exactly — a row is either in the
/// snapshot (marked here) or changed after it (streamed). Rows already in sync diff to nothing.
async fn create_slot(
    repl: &mut ReplicationClient,
    hub: &Hub,
    slot: &str,
) -> Result<(), ReplicationError> {
    let exists = repl
        .simple_query(&format!(
            "select 1 from pg_replication_slots where slot_name = {}",
            literal(slot)
        ))
        .await?;
    if !exists.is_empty() {
        return Ok(());
    }
    let created = repl
        .simple_query(&format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
            ident(slot)
        ))
        .await?;
    let snapshot = created
        .first()
        .and_then(|r| r.get(2).cloned().flatten())
        .ok_or_else(|| {
            ReplicationError::Protocol("CREATE_REPLICATION_SLOT returned no snapshot".into())
        })?;
    // the snapshot lives while `repl` stays open and idle
    let marked = match first_copy(hub, &snapshot).await {
        Ok(n) => n,
        Err(e) => {
            // without its first copy the slot would skip the rows that existed before it: drop
            // it, so the next attempt creates it and copies again
            let _ = repl
                .simple_query(&format!("DROP_REPLICATION_SLOT {}", ident(slot)))
                .await;
            return Err(e);
        }
    };
    tracing::info!(
        slot,
        rows_marked = marked,
        "created replication slot; existing rows queued for their first sync"
    );
    Ok(())
}

async fn first_copy(hub: &Hub, snapshot: &str) -> Result<u64, ReplicationError> {
    let (mut client, conn) = hub.session().await?;
    let conn = tokio::spawn(conn);
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await?;
    tx.batch_execute(&format!("set transaction snapshot {}", literal(snapshot)))
        .await?;
    let catalog = crate::hub::catalog::Catalog::load(&tx)
        .await
        .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
    let mut marked = 0;
    for m in &catalog.mappings {
        marked += tx
            .execute(
                &format!(
                    "insert into ferry.outbox (mapping_id, row_key) select $1, t.{k} from {tbl} t on conflict do nothing",
                    k = ident(&m.key_column),
                    tbl = m.qualified()
                ),
                &[&m.id],
            )
            .await?;
    }
    tx.commit().await?;
    drop(client);
    let _ = conn.await;
    Ok(marked)
}

/// A relation as the listener needs it: its name and column names (to find each mapping's
/// row-key column).
struct RelInfo {
    schema: String,
    table: String,
    columns: Vec<String>,
}

fn rel_info(r: &Relation) -> RelInfo {
    RelInfo {
        schema: r.schema.clone(),
        table: r.table.clone(),
        columns: r.columns.iter().map(|c| c.name.clone()).collect(),
    }
}

fn key_of(t: &[Datum], idx: Option<usize>) -> Option<i64> {
    match t.get(idx?)? {
        Datum::Text(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Advisory-lock key of a slot's leadership.
/// The applied rows whose marks may be dropped: a row one mapping alone applied in the
/// transaction diffs to nothing for that mapping. A row two mappings of one table applied in
/// the same transaction (two apps' changes to one person in one inbox round) carries each app's
/// change to the other, so it keeps every mark.
fn sole_writers(
    applied: &HashSet<(i32, i64)>,
    catalog: &crate::hub::catalog::Catalog,
) -> HashSet<(i32, i64)> {
    let table = |m: i32| catalog.by_id(m).map(|m| m.qualified());
    let mut writers: HashMap<(Option<String>, i64), usize> = HashMap::new();
    for (m, k) in applied {
        *writers.entry((table(*m), *k)).or_default() += 1;
    }
    applied
        .iter()
        .filter(|(m, k)| writers.get(&(table(*m), *k)) == Some(&1))
        .copied()
        .collect()
}

/// The content of a `ferry.applied` message: `<mapping id>:<key>,<key>,...`.
fn parse_applied(content: &[u8]) -> Option<(i32, Vec<i64>)> {
    let text = std::str::from_utf8(content).ok()?;
    let (mapping, keys) = text.split_once(':')?;
    let keys = keys
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| k.parse().ok())
        .collect::<Option<Vec<i64>>>()?;
    Some((mapping.parse().ok()?, keys))
}

fn leader_key(slot: &str) -> i64 {
    slot.bytes().fold(0x6665_7272_7900_1000_i64, |h, b| {
        h.wrapping_mul(31).wrapping_add(i64::from(b))
    })
}

async fn session(
    hub: &Hub,
    slot: &str,
    publication: &str,
    shared: &Shared,
) -> Result<(), ReplicationError> {
    let (db, conn) = hub.session().await?;
    tokio::spawn(conn);
    // one reader per slot: the session holding this lock; it is released when the leader's
    // connection dies, and a follower's next attempt (within a second) takes over
    let leader: bool = db
        .query_one("select pg_try_advisory_lock($1)", &[&leader_key(slot)])
        .await?
        .get(0);
    if !leader {
        return Err(ReplicationError::NotLeader);
    }
    let upsert = db.prepare(UPSERT_MARKS).await?;
    let visible = db
        .prepare("select xmax, running from ferry.snapshot_now()")
        .await?;
    let mut repl = ReplicationClient::connect(hub, "ferry-listener").await?;
    create_slot(&mut repl, hub, slot).await?;
    repl.start_replication(&format!(
        "START_REPLICATION SLOT {} LOGICAL 0/0 (proto_version '1', publication_names {}, messages 'true')",
        ident(slot),
        literal(&ident(publication))
    ))
    .await?;
    tracing::info!(slot, publication, "streaming changes");

    let mut shutdown = shared.shutdown.subscribe();
    let mut relations: HashMap<u32, RelInfo> = HashMap::new();
    let mut in_tx = false;
    let mut tx_marks: Vec<(i32, i64)> = vec![];
    // rows this transaction wrote for a mapping from the app's own records (see
    // ferry.note_applied): their marks for that mapping would diff to nothing
    let mut tx_applied: HashSet<(i32, i64)> = HashSet::new();
    let mut pending: HashSet<(i32, i64)> = HashSet::new();
    // transactions with marks in `pending`, and the one being decoded
    let mut pending_xids: Vec<u32> = vec![];
    let mut tx_xid: u32 = 0;
    let mut pending_lsn: Option<u64> = None;
    let mut pending_since = std::time::Instant::now();
    let mut acked: u64 = 0;

    loop {
        let msg = if repl.has_buffered_frame() {
            repl.next().await?
        } else {
            tokio::select! {
                m = repl.next() => m?,
                _ = shutdown.wait_for(|stop| *stop) => {
                    if !in_tx && pending_lsn.is_none() {
                        repl.send_status(acked, false).await?;
                    }
                    return Ok(());
                }
            }
        };
        match msg {
            StreamMessage::XLogData { data, .. } => {
                let decoded = pgoutput::decode(data)
                    .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
                match decoded {
                    Message::Begin { xid, .. } => {
                        in_tx = true;
                        tx_xid = xid;
                    }
                    Message::Relation(r) => {
                        relations.insert(r.id, rel_info(&r));
                    }
                    Message::Insert { relation, new: t }
                    | Message::Update {
                        relation, new: t, ..
                    }
                    | Message::Delete { relation, old: t } => {
                        if let Some(rel) = relations.get(&relation) {
                            let catalog = shared.catalog();
                            for m in catalog.by_table(&rel.schema, &rel.table) {
                                match key_of(
                                    &t,
                                    rel.columns.iter().position(|c| *c == m.key_column),
                                ) {
                                    Some(k) => tx_marks.push((m.id, k)),
                                    None => {
                                        tracing::warn!(table = %rel.table, "change without a usable row key")
                                    }
                                }
                            }
                        }
                    }
                    Message::Truncate { .. } => {
                        tracing::warn!("TRUNCATE of a mirror table is not propagated to the apps")
                    }
                    Message::Commit { end_lsn, .. } => {
                        in_tx = false;
                        if !tx_applied.is_empty() {
                            let own = sole_writers(&tx_applied, &shared.catalog());
                            tx_marks.retain(|m| !own.contains(m));
                            tx_applied.clear();
                        }
                        if !tx_marks.is_empty() {
                            pending_xids.push(tx_xid);
                        }
                        pending.extend(tx_marks.drain(..));
                        if pending_lsn.is_none() {
                            pending_since = std::time::Instant::now();
                        }
                        pending_lsn = Some(end_lsn);
                    }
                    Message::Message { prefix, content } if prefix == "ferry.applied" => {
                        match parse_applied(&content) {
                            Some((mapping, keys)) => {
                                tx_applied.extend(keys.into_iter().map(|k| (mapping, k)))
                            }
                            None => tracing::warn!("malformed ferry.applied message ignored"),
                        }
                    }
                    Message::Origin { .. } | Message::Type | Message::Message { .. } => {}
                }
            }
            StreamMessage::Keepalive { wal_end, reply } => {
                if !in_tx && pending_lsn.is_none() && wal_end > acked {
                    acked = wal_end;
                }
                shared.set_lag(wal_end.saturating_sub(acked));
                if reply {
                    repl.send_status(acked, false).await?;
                }
            }
        }
        if let Some(lsn) = pending_lsn {
            if !in_tx
                && (!repl.has_buffered_frame()
                    || pending.len() >= MAX_PENDING
                    || pending_since.elapsed() >= MAX_DELAY)
            {
                if !pending.is_empty() {
                    wait_until_visible(&db, &visible, &pending_xids).await?;
                    // sorted: rows are locked in the same order as the workers lock them
                    let mut marks: Vec<(i32, i64)> = pending.drain().collect();
                    marks.sort_unstable();
                    let (ids, keys): (Vec<i32>, Vec<i64>) = marks.into_iter().unzip();
                    db.execute(&upsert, &[&ids, &keys]).await?;
                    shared.outbox_ready.notify_waiters();
                    tracing::debug!(marks = ids.len(), lsn = %format_lsn(lsn), "queued");
                }
                pending_xids.clear();
                acked = acked.max(lsn);
                pending_lsn = None;
                repl.send_status(acked, false).await?;
            }
        }
    }
}

/// Waits until the decoded transactions are visible to new snapshots (see
/// `ferry.snapshot_now`): usually at once, a few milliseconds at most, as long as a synchronous
/// standby holds the commits. Queueing their marks earlier would let a worker read the rows
/// without the changes and drop the marks.
async fn wait_until_visible(
    db: &tokio_postgres::Client,
    visible: &tokio_postgres::Statement,
    xids: &[u32],
) -> Result<(), ReplicationError> {
    if xids.is_empty() {
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let mut warned = t0;
    loop {
        let row = db.query_one(visible, &[]).await?;
        if (Snapshot {
            xmax: row.get(0),
            running: row.get(1),
        })
        .sees_all(xids)
        {
            return Ok(());
        }
        if warned.elapsed() >= Duration::from_secs(10) {
            warned = std::time::Instant::now();
            tracing::warn!(
                waited_s = t0.elapsed().as_secs(),
                "decoded commits are not visible yet (a synchronous standby holding them?)"
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_applied;

    #[test]
    fn applied_message_content() {
        assert_eq!(parse_applied(b"3:1,22,333"), Some((3, vec![1, 22, 333])));
        assert_eq!(parse_applied(b"3:"), Some((3, vec![])));
        assert_eq!(parse_applied(b"3:1,x"), None);
        assert_eq!(parse_applied(b"nope"), None);
    }
}
