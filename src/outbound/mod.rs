//! Outbound path, last hop: workers claim dirty marks, plan each row against its base, call the
//! connector in batches, and commit the new bases together with the removal of the marks.
//!
//! Contract of the outbox:
//! - A mark `(mapping, row)` means "this row may differ from what the app has". Marks
//!   coalesce: the listener bumps `seq` on a marked row instead of adding a second mark.
//! - A worker claims marks with `FOR UPDATE SKIP LOCKED` and holds each claim as a session
//!   advisory lock of its connection (`ferry.claim_marks`) until the outcome is committed, so
//!   several workers and several ferry processes share the work and never hold the same row at
//!   once (per-row order). A claim writes nothing, and lapses when its connection goes away.
//! - A mark is removed only in the transaction that records the outcome (new base, remote id,
//!   dead letter) and only if its `seq` is still the claimed one; a newer change keeps it.
//! - Creates first commit a create intent (a link without remote id).

mod call;
mod commit;
mod isolation;
pub mod plan;
pub mod references;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::connectors::{Connector, ConnectorError, Written};
use crate::context::{Connections, Shared};
use crate::hub::catalog::Mapping;
use crate::hub::{end_claims, Hub, HubError, STUCK_ROUND};
use plan::{Link, Op};
use references::References;

/// Marks claimed per round at least: one batch, so a round is one API call (more when the
/// connector's largest write batch is larger, e.g. Salesforce's 200).
const CLAIM: i32 = 100;
/// Attempts before a retryable failure becomes a dead letter (with the backoff below, about
/// three minutes of an app failing every call).
const RETRY_BUDGET: i32 = 20;

/// One claimed mark.
struct Mark {
    row_key: i64,
    seq: i64,
    /// Failed attempts so far.
    attempts: i32,
}

/// The outcome of one row.
#[derive(Clone)]
enum Outcome {
    /// `remote`: what the app answered for a create or update.
    Done {
        op: Op,
        remote: Option<Written>,
    },
    Failed {
        op: Op,
        error: ConnectorError,
    },
    /// Not attempted: the mark waits (its attempt is not counted).
    Held,
}

/// One outbound worker of `lane` (a connection): claims only the marks of that connection's
/// mappings, so an app that is slow to answer (a bulk job polled for its results, a tight rate
/// budget) holds its own lane's workers and never the marks or workers of another app. The
/// lane's mappings take turns, a round each; each mapping keeps its own claim cursor.
pub async fn run(
    hub: Hub,
    shared: Arc<Shared>,
    connections: Connections,
    lane: String,
    worker: usize,
) {
    let mut shutdown = shared.shutdown.subscribe();
    // per mapping: the row after which its next claim starts (an elevator sweep)
    let mut cursors: HashMap<i32, i64> = HashMap::new();
    let mut turn = 0usize;
    loop {
        if shared.is_shutting_down() {
            return;
        }
        let notified = shared.outbox_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut mappings: Vec<i32> = shared
            .catalog()
            .mappings
            .iter()
            .filter(|m| m.connection == lane)
            .map(|m| m.id)
            .collect();
        mappings.sort_unstable();
        let mut worked = false;
        for k in 0..mappings.len() {
            let mapping = mappings[(turn + k) % mappings.len()];
            // after the cursor first; when nothing is left there, from the start. The cursor
            // stays where the sweep ended while idle: new marks usually come after it.
            let after = cursors.get(&mapping).copied().unwrap_or(i64::MIN);
            let mut result = round(&hub, &shared, &connections, mapping, after).await;
            if matches!(result, Ok(None)) && after != i64::MIN {
                result = round(&hub, &shared, &connections, mapping, i64::MIN).await;
            }
            match result {
                Ok(Some(next)) => {
                    cursors.insert(mapping, next);
                    turn = (turn + k + 1) % mappings.len();
                    worked = true;
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(lane = %lane, worker, error = %e, "outbound round failed");
                    break;
                }
            }
        }
        if worked {
            continue;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// How many of `workers` a connection's lane gets: an equal share of the `lanes`, at least two
/// (one may wait on the app while the other claims), and one more for an app whose writes are
/// asynchronous jobs (its rounds mostly wait on the app).
pub fn lane_workers(workers: usize, lanes: usize, async_writes: bool) -> usize {
    let share = if lanes <= 1 {
        workers.max(1)
    } else {
        (workers / lanes).max(2)
    };
    // a bulk-job app keeps a worker waiting for each job's result (a second or so while its
    // budget binds and status checks are spaced out): more of them keep enough jobs in flight
    share + if async_writes { ASYNC_EXTRA } else { 0 }
}

/// Extra workers of an app whose writes are asynchronous jobs: about what a 700-a-minute
/// budget needs in flight when each job's result takes a second to learn.
const ASYNC_EXTRA: usize = 12;

/// Claims one round of `mapping`'s marks after row `after` and processes them; returns where
/// the mapping's next round starts (`None`: nothing was claimed). The round keeps one
/// connection throughout: its claims are that session's advisory locks (see [`end_claims`]).
async fn round(
    hub: &Hub,
    shared: &Shared,
    connections: &Connections,
    mapping: i32,
    after: i64,
) -> Result<Option<i64>, HubError> {
    let mut client = hub.client().await?;
    let result = claim_and_process(&mut client, shared, connections, mapping, after).await;
    // (an empty claim may hold marks too: see ferry.claim_marks)
    end_claims(client, result.is_ok()).await;
    result
}

async fn claim_and_process(
    client: &mut deadpool_postgres::Object,
    shared: &Shared,
    connections: &Connections,
    mapping_id: i32,
    after: i64,
) -> Result<Option<i64>, HubError> {
    let limit = shared
        .catalog()
        .by_id(mapping_id)
        .and_then(|m| connections.get(&m.connection))
        .map_or(CLAIM, |c| {
            let largest = c.connector.capabilities().batch.largest_write();
            CLAIM.max(i32::try_from(largest).unwrap_or(i32::MAX))
        });
    // the claim's row locks need no wait for the disk: a lost claim holds nothing
    let claim = client
        .prepare_cached(
            "select c.*, set_config('synchronous_commit', 'off', true), set_config('idle_session_timeout', $4, false)
               from ferry.claim_marks($1, $2, $3) c",
        )
        .await?;
    let rows = client
        .query(&claim, &[&limit, &mapping_id, &after, &STUCK_ROUND])
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // the next round goes on after this one (an elevator sweep), and starts over only when
    // nothing is left ahead: the removed marks behind are walked once a sweep, not every round
    let next = rows
        .iter()
        .map(|r| r.get::<_, i64>(1))
        .max()
        .unwrap_or(i64::MIN);
    let marks: Vec<Mark> = rows
        .iter()
        .map(|r| Mark {
            row_key: r.get(1),
            seq: r.get(2),
            attempts: r.get(3),
        })
        .collect();
    let catalog = shared.catalog();
    let Some(mapping) = catalog.by_id(mapping_id).cloned() else {
        tracing::warn!(
            mapping_id,
            "marks for an unknown mapping; leaving them until the catalog reloads"
        );
        return Ok(Some(next));
    };
    let Some(conn) = connections.get(&mapping.connection) else {
        tracing::warn!(mapping = %mapping.name, "no running connector for this mapping's connection");
        return Ok(Some(next));
    };
    let batch = conn.connector.capabilities().batch.largest_write();
    for chunk in marks.chunks(batch) {
        isolation::isolate(client, &mapping, conn.connector.as_ref(), chunk).await?;
    }
    Ok(Some(next))
}

async fn process(
    client: &mut deadpool_postgres::Object,
    mapping: &Mapping,
    connector: &dyn Connector,
    marks: &[Mark],
) -> Result<(), HubError> {
    let keys: Vec<i64> = marks.iter().map(|m| m.row_key).collect();
    // the current rows and their links in one statement: one snapshot, so an inbound apply
    // that commits in between cannot pair an old row with a new base
    let live = if mapping.soft_delete {
        " and t._deleted_at is null"
    } else {
        ""
    };
    // the mapping's filter: a row outside it is not this app's; a linked row that left it
    // (its base, the values last sent, was inside) is deleted or released there, one that never
    // was (linked by a record the app had itself) is left alone
    let (inside, was_inside) = match &mapping.filter {
        Some(f) => (
            format!("coalesce(({f}), false)"),
            format!(
                "coalesce((select ({f}) from jsonb_populate_record(null::{tbl}, l0.base) t), false)",
                tbl = mapping.qualified()
            ),
        ),
        None => ("true".to_string(), "true".to_string()),
    };
    let sql = format!(
        "with r as (select t.{k} as row_key, to_jsonb(t) as doc, {inside} as inside
                      from {tbl} t where t.{k} = any($2){live}),
              l as (select l0.row_key, l0.remote_id, l0.base, {was_inside} as was_inside
                      from ferry.links l0 where l0.mapping_id = $1 and l0.row_key = any($2))
         select coalesce(r.row_key, l.row_key), case when r.inside then r.doc end, l.row_key is not null,
                l.remote_id, l.base,
                (select array_agg(c.field) from ferry.conflicts c
                  where c.mapping_id = $1 and c.row_key = l.row_key and c.decision = 'held' and c.resolved_at is null),
                (r.row_key is not null and not r.inside and l.row_key is not null and not l.was_inside)
                or exists (select 1 from ferry.detached d where d.mapping_id = $1 and d.row_key = coalesce(r.row_key, l.row_key))
           from r full join l on l.row_key = r.row_key",
        k = postgres_protocol::escape::escape_identifier(&mapping.key_column),
        tbl = mapping.qualified()
    );
    let mut waiting: Vec<usize> = vec![];
    // rows outside the filter whose link the app made itself, and rows the app unlinked
    // (on_remote_delete = "unlink"): nothing to send or delete
    let mut not_ours: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut rows: HashMap<i64, Map<String, Value>> = HashMap::new();
    let mut links: HashMap<i64, Link> = HashMap::new();
    for r in client
        .query(&client.prepare_cached(&sql).await?, &[&mapping.id, &keys])
        .await?
    {
        let key: i64 = r.get(0);
        if let Some(Value::Object(o)) = r.get::<_, Option<Value>>(1) {
            rows.insert(key, o);
        }
        if r.get::<_, Option<bool>>(6) == Some(true) {
            not_ours.insert(key);
        }
        if r.get::<_, bool>(2) {
            let base = match r.get::<_, Option<Value>>(4) {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            links.insert(
                key,
                Link {
                    remote_id: r.get(3),
                    base,
                    held: r.get::<_, Option<Vec<String>>>(5).unwrap_or_default(),
                },
            );
        }
    }

    let refs = References::load(&***client, mapping, &rows).await?;
    let mut ops: Vec<Op> = marks
        .iter()
        .map(|m| {
            if not_ours.contains(&m.row_key) {
                Op::Nothing
            } else {
                plan::plan(mapping, rows.get(&m.row_key), links.get(&m.row_key), &refs)
            }
        })
        .collect();
    // rows that reference a record their app does not have yet wait for it (held, tried again)
    for (i, op) in ops.iter_mut().enumerate() {
        if let Op::Wait { reason } = op {
            tracing::debug!(mapping = %mapping.name, row = marks[i].row_key, %reason, "write waits for a referenced record");
            *op = Op::Nothing;
            waiting.push(i);
        }
    }
    // first sync with a match key: the backfill links rows to the records they match, so a
    // create waits until it is done (otherwise it would duplicate the record it matches)
    let mut held: Vec<usize> = vec![];
    if mapping.match_key.is_some() && !mapping.backfill_done {
        for (i, op) in ops.iter_mut().enumerate() {
            if matches!(op, Op::Create { .. }) {
                *op = Op::Nothing;
                held.push(i);
            }
        }
    }

    // deletions ask the mass-delete fuse first; those past it are held for an operator (the
    // mark goes, the link stays, so ferry.discard_deletes can bring the row back)
    let archives: Vec<(usize, i64, String)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            Op::Archive { remote_id } => Some((i, marks[i].row_key, remote_id.clone())),
            _ => None,
        })
        .collect();
    if !archives.is_empty() {
        let keys: Vec<i64> = archives.iter().map(|a| a.1).collect();
        let ids: Vec<&str> = archives.iter().map(|a| a.2.as_str()).collect();
        let verdict: Value = client
            .query_one(
                "select ferry.fuse_hub_deletes($1, $2, $3)",
                &[&mapping.id, &keys, &ids],
            )
            .await?
            .get(0);
        let go: std::collections::HashSet<i64> = verdict["go"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        for (i, key, _) in &archives {
            if !go.contains(key) {
                ops[*i] = Op::Nothing;
            }
        }
        if verdict["tripped"] == Value::Bool(true) {
            crate::hub::fuse::tripped(
                &mapping.name,
                crate::hub::fuse::Side::Hub,
                verdict["held"].as_i64().unwrap_or(0),
            );
        }
    }

    // create intents are durable before the API is called; a retried create renews its intent,
    // so inbound records stay held back for as long as the create is really in flight
    let creating: Vec<i64> = marks
        .iter()
        .zip(&ops)
        .filter(|(_, op)| matches!(op, Op::Create { .. }))
        .map(|(m, _)| m.row_key)
        .collect();
    if !creating.is_empty() {
        client
            .execute(
                "insert into ferry.links (mapping_id, row_key) select $1, unnest($2::bigint[])
                 on conflict (mapping_id, row_key) do update set created_at = now() where links.remote_id is null",
                &[&mapping.id, &creating],
            )
            .await?;
    }

    let (mut ops, undecided) =
        call::adopt_interrupted_creates(mapping, connector, marks, &links, ops).await;
    // creates whose earlier attempt could not be looked up wait for the next round; the rest go
    let undecided_ops: Vec<(usize, Op)> = match &undecided {
        Some((indexes, _)) => indexes
            .iter()
            .map(|&i| (i, std::mem::replace(&mut ops[i], Op::Nothing)))
            .collect(),
        None => vec![],
    };
    let mut outcomes = call::call(mapping, connector, ops).await;
    if let Some((_, error)) = undecided {
        for (i, op) in undecided_ops {
            outcomes[i] = Outcome::Failed {
                op,
                error: error.clone(),
            };
        }
    }
    for i in held.into_iter().chain(waiting) {
        outcomes[i] = Outcome::Held;
    }
    if marks.len() == 1 {
        return commit::commit(client, mapping, marks, outcomes, &links).await;
    }
    // the app has taken these writes: a commit refused for one row's sake (a trigger or
    // constraint of the hub table) is recorded row by row, so only that row is written again
    let each = outcomes.clone();
    match commit::commit(client, mapping, marks, outcomes, &links).await {
        Err(e) if !client.is_closed() => {
            tracing::warn!(mapping = %mapping.name, rows = marks.len(), error = %e, "recording a batch failed; its rows are recorded one at a time");
            for (mark, outcome) in marks.iter().zip(each) {
                let alone = std::slice::from_ref(mark);
                if let Err(e) = commit::commit(client, mapping, alone, vec![outcome], &links).await
                {
                    if client.is_closed() {
                        return Err(e);
                    }
                    commit::count_failure(
                        client,
                        mapping,
                        mark,
                        &e.to_string(),
                        isolation::PROCESS_BUDGET,
                    )
                    .await?;
                }
            }
            Ok(())
        }
        result => result,
    }
}

fn backoff(attempts: i32, error: &ConnectorError) -> Duration {
    match error {
        ConnectorError::RateLimited { retry_after, .. } => *retry_after,
        _ => Duration::from_millis(100u64.saturating_mul(1 << attempts.clamp(0, 10) as u64))
            .min(Duration::from_secs(10)),
    }
}
