//! Inbound path, second hop: the inbox worker. Claims stored events (`ferry.claim_events`:
//! advisory locks of its connection, no transaction open), fetches the current records from
//! the app (or takes the whole record an event carries, when that is safe), and applies them
//! in the transaction that removes the events, so an event is either applied and gone or still
//! in the inbox.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::apply::{
    apply, deletion_json, log_refusals, read_clock, record_json, stamp_read, stamp_snapshots,
    SNAPSHOT_CLOCKS,
};
use crate::connectors::{Connector, ConnectorError, RemoteRecord, WebhookPayload};
use crate::context::{Connections, Shared};
use crate::hub::catalog::Mapping;
use crate::hub::{end_claims, Hub, HubError, STUCK_ROUND};

const CLAIM: i32 = 1000;
/// Retry delay for events held back while a write of the same mapping is in flight.
const DEFER_MS: f64 = 100.0;
const IN_FLIGHT: &str = "held back while a write of this mapping to the app is in flight";
/// Why the record an event carried was held back: it was not newer than the state applied, or
/// a write was in flight (its next attempt fetches the record).
const NOT_NEWER: &str = "the record the event carried was held back (not newer than the hub's state, or a write to the app was in flight): fetched next time";

/// How long webhook event ids are remembered to drop replays: well beyond the 5-minute
/// signature tolerance, after which a replay is refused for its timestamp anyway.
const REPLAY_MEMORY: &str = "1 hour";

pub async fn run(hub: Hub, shared: Arc<Shared>, connections: Connections) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut pruned = std::time::Instant::now();
    loop {
        if shared.is_shutting_down() {
            return;
        }
        if pruned.elapsed() >= Duration::from_secs(60) {
            pruned = std::time::Instant::now();
            if let Ok(c) = hub.client().await {
                let sql = format!(
                    "delete from ferry.seen_events where seen_at < now() - interval '{REPLAY_MEMORY}';
                     delete from ferry.tombstones where deleted_at < now() - interval '1 day';
                     select ferry.prune_history()"
                );
                if let Err(e) = c.batch_execute(&sql).await {
                    tracing::warn!(error = %e, "pruning remembered webhook event ids, tombstones and history failed");
                }
            }
        }
        let notified = shared.inbox_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let wait = match round(&hub, &shared, &connections).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "inbox round failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

struct Event {
    id: i64,
    remote_id: String,
    deleted: bool,
    attempts: i32,
    /// What the app said about the change's origin (HubSpot: changeSource).
    source: Option<String>,
}

/// One round on one connection: its claims are that session's advisory locks (see
/// [`end_claims`]).
async fn round(hub: &Hub, shared: &Shared, connections: &Connections) -> Result<usize, HubError> {
    let mut client = hub.client().await?;
    let result = claim_and_apply(&mut client, shared, connections).await;
    end_claims(client, result.is_ok()).await;
    result
}

async fn claim_and_apply(
    client: &mut deadpool_postgres::Object,
    shared: &Shared,
    connections: &Connections,
) -> Result<usize, HubError> {
    // the claim's row locks need no wait for the disk: a lost claim holds nothing
    let claim = client
        .prepare_cached(
            "select c.*, set_config('synchronous_commit', 'off', true), set_config('idle_session_timeout', $2, false)
               from ferry.claim_events($1) c",
        )
        .await?;
    let rows = client.query(&claim, &[&CLAIM, &STUCK_ROUND]).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut groups: HashMap<(String, String), Vec<Event>> = HashMap::new();
    for r in &rows {
        groups.entry((r.get(1), r.get(2))).or_default().push(Event {
            id: r.get(0),
            remote_id: r.get(3),
            deleted: r.get::<_, String>(4) == "deleted",
            attempts: r.get(5),
            source: r.get(6),
        });
    }
    let catalog = shared.catalog();
    let mut done: Vec<i64> = vec![];
    let mut retry: Vec<(i64, f64, String)> = vec![];
    // the app's records first, with no transaction open, every group's fetch at once (one app
    // slow to answer does not hold another's events back); then one transaction applies them
    // and removes the events
    let mut ready = vec![];
    for ((connection, object), events) in groups {
        // a paused mapping still takes the app's changes: pausing holds what ferry sends, and
        // applying the app's side meanwhile is what lets the conflict rules see both sides
        // when it resumes (held events would be overwritten by the queued hub values)
        let mapping = match catalog.by_object(&connection, &object) {
            Some(m) => m.clone(),
            None => {
                tracing::debug!(connection = %connection, object = %object, events = events.len(), "events for an unmapped object dropped");
                done.extend(events.iter().map(|e| e.id));
                continue;
            }
        };
        let Some(conn) = connections.get(&connection) else {
            retry.extend(
                events
                    .iter()
                    .map(|e| (e.id, 5000.0, "connection not running".to_string())),
            );
            continue;
        };
        ready.push((mapping, conn.connector.clone(), events));
    }
    // events of records whose write to the app is in flight wait for it, unfetched: what the
    // app has now may be that write's echo, which ferry.apply would hold back all the same
    // (see it there), and fetching it again and again would spend the app's budget
    let (in_flight, ready) = postpone_in_flight(client, ready).await?;
    retry.extend(
        in_flight
            .into_iter()
            .map(|id| (id, DEFER_MS, IN_FLIGHT.to_string())),
    );
    let read_at = read_clock(client).await?;
    let read_at = read_at.as_str();
    let mut carried_by_group = Vec::with_capacity(ready.len());
    for (mapping, connector, events) in &ready {
        carried_by_group.push(carried(client, mapping, connector.as_ref(), events).await?);
    }
    let fetches = ready.into_iter().zip(carried_by_group).map(
        |((mapping, connector, events), carried)| async move {
            let carried_ids: HashSet<String> = carried.iter().map(|r| r.id.clone()).collect();
            let batch = fetch_group(
                &mapping,
                connector.as_ref(),
                &events,
                carried,
                &carried_ids,
                read_at,
            )
            .await;
            (mapping, events, carried_ids, batch)
        },
    );
    let mut fetched_groups = vec![];
    for (mapping, events, carried_ids, batch) in futures_util::future::join_all(fetches).await {
        match batch {
            Ok(batch) => fetched_groups.push((mapping, events, carried_ids, batch)),
            Err(e) => {
                tracing::warn!(mapping = %mapping.name, error = %e, "fetching changed records failed");
                for ev in &events {
                    let wait = match &e {
                        // as long as the app (or its budget) says
                        ConnectorError::RateLimited { retry_after, .. } => {
                            retry_after.as_secs_f64() * 1000.0
                        }
                        _ => (200.0 * f64::from(1u32 << ev.attempts.clamp(0, 8))).min(10_000.0),
                    };
                    retry.push((ev.id, wait, e.to_string()));
                }
            }
        }
    }
    // one transaction a mapping: two mappings' applies in one transaction would lock rows of
    // a table they share in two batches' orders, and another transaction (an outbound commit,
    // another round) taking them in key order could close a circle in which PostgreSQL cancels
    // a waiter — possibly a person's own update in psql
    let mut applied = 0;
    for (mapping, events, carried_ids, batch) in fetched_groups {
        let tx = client.transaction().await?;
        let outcome = apply(&*tx, mapping.id, batch, true, "webhook").await?;
        log_refusals(&mapping, &outcome);
        let deferred: HashSet<&str> = outcome.deferred.iter().map(String::as_str).collect();
        let (mut group_done, mut group_retry) = (vec![], vec![]);
        for e in &events {
            if deferred.contains(e.remote_id.as_str()) {
                let why = if carried_ids.contains(&e.remote_id) {
                    NOT_NEWER
                } else {
                    IN_FLIGHT
                };
                group_retry.push((e.id, DEFER_MS, why.to_string()));
            } else {
                group_done.push(e.id);
            }
        }
        settle(&*tx, &group_done, &group_retry).await?;
        tx.commit().await?;
        applied += group_done.len();
    }
    if !done.is_empty() || !retry.is_empty() {
        let tx = client.transaction().await?;
        settle(&*tx, &done, &retry).await?;
        tx.commit().await?;
    }
    let done = applied + done.len();
    if done > 0 {
        shared.outbox_ready.notify_waiters();
    }
    Ok(done)
}

type Group = (Arc<Mapping>, Arc<dyn Connector>, Vec<Event>);

/// Splits off the events whose record's row an outbound worker is writing right now
/// (`ferry.mark_claimed`): their ids, and the groups without them.
async fn postpone_in_flight(
    client: &deadpool_postgres::Object,
    groups: Vec<Group>,
) -> Result<(Vec<i64>, Vec<Group>), HubError> {
    let (mut maps, mut ids) = (vec![], vec![]);
    for (mapping, _, events) in &groups {
        for e in events {
            maps.push(mapping.id);
            ids.push(e.remote_id.as_str());
        }
    }
    if ids.is_empty() {
        return Ok((vec![], groups));
    }
    let busy: HashSet<(i32, String)> = client
        .query(
            &client
                .prepare_cached(
                    // each event's link by the index (`offset 0` keeps the planner from a
                    // scan of every link when the table's statistics are stale; see apply.sql)
                    "select l.mapping_id, l.remote_id
                       from unnest($1::integer[], $2::text[]) e(mapping_id, remote_id)
                      cross join lateral (select l.mapping_id, l.remote_id, l.row_key from ferry.links l
                                           where l.mapping_id = e.mapping_id and l.remote_id = e.remote_id
                                          offset 0) l
                      where ferry.mark_claimed(l.mapping_id, l.row_key)",
                )
                .await?,
            &[&maps, &ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if busy.is_empty() {
        return Ok((vec![], groups));
    }
    let mut postponed = vec![];
    let mut kept = vec![];
    for (mapping, connector, events) in groups {
        let (wait, go): (Vec<Event>, Vec<Event>) = events
            .into_iter()
            .partition(|e| busy.contains(&(mapping.id, e.remote_id.clone())));
        postponed.extend(wait.iter().map(|e| e.id));
        if !go.is_empty() {
            kept.push((mapping, connector, go));
        }
    }
    Ok((postponed, kept))
}

/// Removes the events dealt with and schedules the others' next attempt.
async fn settle(
    tx: &impl tokio_postgres::GenericClient,
    done: &[i64],
    retry: &[(i64, f64, String)],
) -> Result<(), HubError> {
    if !done.is_empty() {
        tx.execute("delete from ferry.inbox where id = any($1)", &[&done])
            .await?;
    }
    if !retry.is_empty() {
        let ids: Vec<i64> = retry.iter().map(|r| r.0).collect();
        let waits: Vec<f64> = retry.iter().map(|r| r.1).collect();
        let errors: Vec<&str> = retry.iter().map(|r| r.2.as_str()).collect();
        tx.execute(
            "update ferry.inbox i set attempts = i.attempts + 1, last_error = r.error,
                    next_attempt_at = now() + make_interval(secs => r.ms / 1000.0)
               from unnest($1::bigint[], $2::float8[], $3::text[]) r(id, ms, error)
              where i.id = r.id",
            &[&ids, &waits, &errors],
        )
        .await?;
    }
    Ok(())
}

/// The records events carry whole that stand in for a fetch (see
/// [`Connector::event_record`]): of a record whose one event of the round is on its first
/// attempt and not a deletion, carrying the record with an update time strictly newer than
/// the state applied (an equal time in whole seconds may be an older state) and later than
/// any write of ferry's recorded for it, less the snapshot clock margin. A record the hub
/// has no link for yet is fetched (its creation may be ferry's own write in flight).
async fn carried(
    client: &deadpool_postgres::Object,
    mapping: &Mapping,
    connector: &dyn Connector,
    events: &[Event],
) -> Result<Vec<RemoteRecord>, HubError> {
    if connector.capabilities().webhook_payload != WebhookPayload::Records {
        return Ok(vec![]);
    }
    let mut per_record: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *per_record.entry(e.remote_id.as_str()).or_default() += 1;
    }
    let candidates: Vec<i64> = events
        .iter()
        .filter(|e| e.attempts == 0 && !e.deleted && per_record[e.remote_id.as_str()] == 1)
        .map(|e| e.id)
        .collect();
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    let remote_of: HashMap<i64, &str> = events
        .iter()
        .map(|e| (e.id, e.remote_id.as_str()))
        .collect();
    let properties = mapping.properties();
    let mut records: HashMap<String, RemoteRecord> = HashMap::new();
    let stored = client
        .query(
            &client
                .prepare_cached("select id, payload from ferry.inbox where id = any($1) and payload is not null")
                .await?,
            &[&candidates],
        )
        .await?;
    for row in stored {
        let (id, payload): (i64, Value) = (row.get(0), row.get(1));
        let Some(record) = connector.event_record(&mapping.object, &payload, &properties) else {
            continue;
        };
        if record.updated_at.is_some()
            && !record.archived
            && remote_of.get(&id) == Some(&record.id.as_str())
        {
            records.insert(record.id.clone(), record);
        }
    }
    if records.is_empty() {
        return Ok(vec![]);
    }
    let (ids, versions): (Vec<&str>, Vec<chrono::DateTime<chrono::Utc>>) = records
        .values()
        .filter_map(|r| Some((r.id.as_str(), r.updated_at?)))
        .unzip();
    let usable: HashSet<String> = client
        .query(
            &client
                .prepare_cached(
                    "select e.id
                       from unnest($2::text[], $3::timestamptz[]) e(id, v)
                      cross join lateral (select l.written_at, l.remote_updated_at from ferry.links l
                                           where l.mapping_id = $1 and l.remote_id = e.id
                                          offset 0) l
                      where (l.remote_updated_at is null or l.remote_updated_at < e.v)
                        and (l.written_at is null or l.written_at <= e.v - make_interval(secs => $4))",
                )
                .await?,
            &[&mapping.id, &ids, &versions, &(SNAPSHOT_CLOCKS.num_seconds() as f64)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    records.retain(|id, _| usable.contains(id));
    Ok(records.into_values().collect())
}

/// The records of one mapping's events as `ferry.apply` takes them: the changed ones as the
/// app has them now (or as their events carried them, see [`carried`]), deletions (and
/// records gone by the time we asked) as deletions.
async fn fetch_group(
    mapping: &Mapping,
    connector: &dyn Connector,
    events: &[Event],
    carried: Vec<RemoteRecord>,
    carried_ids: &HashSet<String>,
    read_at: &str,
) -> Result<Vec<Value>, ConnectorError> {
    // the last event of a record decides whether it is a change or a deletion
    let mut last: HashMap<&str, bool> = HashMap::new();
    for e in events {
        last.insert(e.remote_id.as_str(), e.deleted);
    }
    let changed: Vec<String> = last
        .iter()
        .filter(|(id, d)| !**d && !carried_ids.contains(**id))
        .map(|(id, _)| id.to_string())
        .collect();
    let records = if changed.is_empty() {
        vec![]
    } else {
        connector
            .fetch(&mapping.object, &changed, &mapping.properties())
            .await?
    };
    let found: HashSet<&str> = records
        .iter()
        .chain(&carried)
        .map(|r| r.id.as_str())
        .collect();
    // the app's own word on each record's latest change, for ferry.history
    let mut source: HashMap<&str, &str> = HashMap::new();
    for e in events {
        if let Some(s) = &e.source {
            source.insert(e.remote_id.as_str(), s.as_str());
        }
    }
    let mut batch: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut rec = record_json(mapping, r);
            if let Some(s) = source.get(r.id.as_str()) {
                rec["source"] = Value::String(s.to_string());
            }
            rec
        })
        .collect();
    stamp_read(&mut batch, read_at);
    // a carried record is a state as of its update time: read then (less the clock margin),
    // and applied only while still strictly newer than the state applied (`strict`, checked
    // again in ferry.apply under the record's lock; else its event is tried again, fetching)
    let mut states: Vec<Value> = carried.iter().map(|r| record_json(mapping, r)).collect();
    stamp_read(&mut states, read_at);
    for (rec, remote) in states.iter_mut().zip(&carried) {
        if let Some(s) = source.get(remote.id.as_str()) {
            rec["source"] = Value::String(s.to_string());
        }
        if rec.get("deleted") == Some(&Value::Bool(false)) {
            rec["strict"] = Value::Bool(true);
        }
    }
    stamp_snapshots(&mut states, &carried);
    batch.extend(states);
    // deleted, or gone by the time we asked (archived records are not returned)
    batch.extend(
        last.iter()
            .filter(|(id, d)| **d || !found.contains(**id))
            .map(|(id, _)| deletion_json(id)),
    );
    Ok(batch)
}
