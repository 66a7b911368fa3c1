//! Outbound path, last step of a round: the outcomes of one API call are recorded in one
//! transaction — new bases and remote ids, dead letters, retries — and the marks are removed
//! only where their `seq` is still the claimed one.

use std::collections::HashMap;

use serde_json::Value;

use super::plan::{Link, Op};
use super::{backoff, Mark, Outcome, RETRY_BUDGET};
use crate::connectors::ConnectorError;
use crate::hub::catalog::Mapping;
use crate::hub::HubError;

/// Records every outcome in one transaction. `read` holds the links as they were when the rows
/// were read: an update whose link's base moved since (an inbound apply of the same row ran
/// during the API call) is queued again, so the row is diffed once more against the base the
/// app now has. (Ferry's own inbound writes queue no mark of their own; see
/// `ferry.note_applied`.)
pub(super) async fn commit(
    client: &mut deadpool_postgres::Object,
    mapping: &Mapping,
    marks: &[Mark],
    outcomes: Vec<Outcome>,
    read: &HashMap<i64, Link>,
) -> Result<(), HubError> {
    let tx = client.transaction().await?;
    // everything recorded here can be redone if a crash loses it: the mark survives, the row is
    // diffed again and the write repeated (updates and archives are idempotent; creates hold an
    // intent committed synchronously before the call). So the commit need not wait for the disk.
    // links first, in key order: ferry.apply locks them in the same order, so an inbound batch
    // and this commit never deadlock
    let keys: Vec<i64> = marks.iter().map(|m| m.row_key).collect();
    let locked = tx
        .query_one(
            &tx.prepare_cached(
                "select set_config('synchronous_commit', 'off', true), set_config('ferry.writer', 'on', true),
                        (select coalesce(jsonb_object_agg(l.row_key::text, l.base), '{}')
                           from (select row_key, base from ferry.links where mapping_id = $1 and row_key = any($2)
                                  order by row_key for update) l)",
            )
            .await?,
            &[&mapping.id, &keys],
        )
        .await?;
    let bases: Value = locked.get(2);
    let mut moved: Vec<i64> = vec![];
    // the marks whose outcome is recorded here, with the seq each was claimed at
    let mut done: HashMap<i64, i64> = HashMap::new();
    let (mut upd_keys, mut upd_changed, mut upd_ts) = (vec![], vec![], vec![]);
    let (mut cre_keys, mut cre_ids, mut cre_base, mut cre_ts) = (vec![], vec![], vec![], vec![]);
    let mut forget: Vec<i64> = vec![];
    // records a hub deletion leaves in the app (on_hub_delete = "ignore")
    let mut released: Vec<String> = vec![];
    // ferry.history: what was sent, row by row (key, remote id, fields sent, base before, op)
    let mut sent = History::default();
    // a done mark that had failed before and stays (a newer change came meanwhile) starts its
    // attempts over
    let mut had_failed = false;
    for (mark, outcome) in marks.iter().zip(outcomes) {
        match outcome {
            Outcome::Done { op, remote } => {
                had_failed |= mark.attempts > 0;
                done.insert(mark.row_key, mark.seq);
                match op {
                    Op::Create { base, .. } | Op::Adopt { base, .. } => {
                        let (id, ts) = remote.map(|w| (w.id, w.updated_at)).unwrap_or_default();
                        sent.push(
                            mark.row_key,
                            id.clone(),
                            Value::Object(base.clone()),
                            Value::Null,
                            "create",
                        );
                        cre_keys.push(mark.row_key);
                        cre_ids.push(id);
                        cre_base.push(Value::Object(base));
                        cre_ts.push(ts);
                    }
                    Op::Update { changed, .. } => {
                        let now = bases
                            .get(mark.row_key.to_string())
                            .and_then(Value::as_object);
                        if now != read.get(&mark.row_key).map(|l| &l.base) {
                            moved.push(mark.row_key);
                        }
                        let link = read.get(&mark.row_key);
                        sent.push(
                            mark.row_key,
                            link.and_then(|l| l.remote_id.clone()).unwrap_or_default(),
                            Value::Object(changed.clone()),
                            link.map(|l| Value::Object(l.base.clone()))
                                .unwrap_or(Value::Null),
                            "update",
                        );
                        upd_keys.push(mark.row_key);
                        upd_changed.push(Value::Object(changed));
                        upd_ts.push(remote.and_then(|w| w.updated_at));
                    }
                    Op::Archive { remote_id } => {
                        sent.push(mark.row_key, remote_id, Value::Null, Value::Null, "delete");
                        forget.push(mark.row_key);
                    }
                    Op::ForgetLink => forget.push(mark.row_key),
                    Op::Release { remote_id } => {
                        forget.push(mark.row_key);
                        released.push(remote_id);
                    }
                    // never Done: its outcome is the refusal (see outbound::call)
                    Op::Nothing | Op::Refuse { .. } | Op::Wait { .. } => {}
                }
            }
            Outcome::Held => {
                tx.execute(
                    &tx.prepare_cached(
                        "update ferry.outbox set next_attempt_at = now() + interval '1 second'
                          where mapping_id = $1 and row_key = $2",
                    )
                    .await?,
                    &[&mapping.id, &mark.row_key],
                )
                .await?;
            }
            Outcome::Failed { op, error } => {
                // a throttle is no failure: it waits as long as the app says, and never
                // spends the retry budget (a day's API allocation may be out for hours)
                let throttled = matches!(error, ConnectorError::RateLimited { .. });
                let attempts = mark.attempts + i32::from(!throttled);
                let retry = error.retryable() && attempts < RETRY_BUDGET;
                tracing::warn!(mapping = %mapping.name, row = mark.row_key, op = op.name(), attempts, retry, error = %error, "outbound write failed");
                if retry {
                    let wait = backoff(attempts, &error);
                    tx.execute(
                        &tx.prepare_cached(
                            "update ferry.outbox set attempts = $5, last_error = $3,
                                next_attempt_at = now() + make_interval(secs => $4)
                          where mapping_id = $1 and row_key = $2",
                        )
                        .await?,
                        &[
                            &mapping.id,
                            &mark.row_key,
                            &error.to_string(),
                            &wait.as_secs_f64(),
                            &attempts,
                        ],
                    )
                    .await?;
                } else {
                    let (remote_id, payload) = match &op {
                        Op::Create { props, .. } => (None, serde_json::to_value(props).ok()),
                        Op::Update {
                            remote_id, props, ..
                        }
                        | Op::Adopt {
                            remote_id, props, ..
                        } => (Some(remote_id.clone()), serde_json::to_value(props).ok()),
                        Op::Archive { remote_id } => (Some(remote_id.clone()), None),
                        _ => (None, None),
                    };
                    tx.execute(
                        &tx.prepare_cached("insert into ferry.dead_letters (mapping_id, row_key, remote_id, direction, operation, error, payload)
                         values ($1, $2, $3, 'outbound', $4, $5, $6)").await?,
                        &[&mapping.id, &mark.row_key, &remote_id, &op.name(), &error.to_string(), &payload],
                    )
                    .await?;
                    if matches!(op, Op::Create { .. }) {
                        // nothing was created: drop the intent so inbound records are not held back
                        tx.execute(
                            &tx.prepare_cached("delete from ferry.links where mapping_id = $1 and row_key = $2 and remote_id is null").await?,
                            &[&mapping.id, &mark.row_key],
                        )
                        .await?;
                    }
                    done.insert(mark.row_key, mark.seq);
                }
            }
        }
    }
    // marks first, locked in key order (the order the listener locks them in), then removed
    // where no newer change arrived (the seq is read under the lock, so it cannot move before
    // the delete). Every predicate carries the keys' range besides the keys: the outbox's
    // statistics are nearly always stale (it fills and drains by thousands of rows a second)
    // and, believing it tiny, the planner otherwise walks every mark of the mapping and filters
    // (measured: 50-90 ms a statement at 100k marks); the range bounds that walk. (Matching
    // (key, seq) pairs in the delete itself cost a nested loop over the pairs: 15 µs a mark.)
    let done_keys: Vec<i64> = done.keys().copied().collect();
    let (lo, hi) = (
        done_keys.iter().copied().min().unwrap_or(0),
        done_keys.iter().copied().max().unwrap_or(0),
    );
    let unchanged: Vec<i64> = tx
        .query(
            &tx.prepare_cached(
                "select row_key, seq from ferry.outbox
                  where mapping_id = $1 and row_key between $3 and $4 and row_key = any($2)
                  order by row_key for update",
            )
            .await?,
            &[&mapping.id, &done_keys, &lo, &hi],
        )
        .await?
        .iter()
        .filter(|r| done.get(&r.get::<_, i64>(0)) == Some(&r.get::<_, i64>(1)))
        .map(|r| r.get(0))
        .collect();
    if !unchanged.is_empty() {
        tx.execute(
            &tx.prepare_cached(
                "delete from ferry.outbox where mapping_id = $1 and row_key between $3 and $4 and row_key = any($2)",
            )
            .await?,
            &[&mapping.id, &unchanged, &lo, &hi],
        )
        .await?;
    }
    if had_failed {
        tx.execute(
            &tx.prepare_cached("update ferry.outbox set attempts = 0
              where mapping_id = $1 and row_key between $3 and $4 and row_key = any($2) and attempts > 0").await?,
            &[&mapping.id, &done_keys, &lo, &hi],
        )
        .await?;
    }
    if !cre_keys.is_empty() {
        tx.execute(
            &tx.prepare_cached("update ferry.links l set remote_id = d.remote_id, base = d.base, remote_updated_at = d.ts, synced_at = now(),
                   written_at = clock_timestamp()
               from unnest($2::bigint[], $3::text[], $4::jsonb[], $5::timestamptz[]) d(row_key, remote_id, base, ts)
              where l.mapping_id = $1 and l.row_key = any($2) and l.row_key = d.row_key").await?,
            &[&mapping.id, &cre_keys, &cre_ids, &cre_base, &cre_ts],
        )
        .await?;
        // the rows in key order, as ferry.apply takes them (another mapping's inbound batch
        // may hold rows of this table in N-way sync)
        tx.execute(
            &tx.prepare_cached(&format!(
                "select 1 from {tbl} t where t.{k} = any($1) order by t.{k} for update of t",
                tbl = mapping.qualified(),
                k = postgres_protocol::escape::escape_identifier(&mapping.key_column),
            ))
            .await?,
            &[&cre_keys],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached(&format!(
                "update {tbl} t set {idc} = d.remote_id from unnest($1::bigint[], $2::text[]) d(row_key, remote_id)
                  where t.{k} = any($1) and t.{k} = d.row_key and t.{idc} is distinct from d.remote_id",
                tbl = mapping.qualified(),
                idc = postgres_protocol::escape::escape_identifier(&mapping.id_column),
                k = postgres_protocol::escape::escape_identifier(&mapping.key_column),
            )).await?,
            &[&cre_keys, &cre_ids],
        )
        .await?;
    }
    if !upd_keys.is_empty() {
        tx.execute(
            &tx.prepare_cached(
                "update ferry.links l set base = l.base || d.changed,
                    remote_updated_at = coalesce(d.ts, l.remote_updated_at), synced_at = now(),
                    written_at = clock_timestamp()
               from unnest($2::bigint[], $3::jsonb[], $4::timestamptz[]) d(row_key, changed, ts)
              where l.mapping_id = $1 and l.row_key = any($2) and l.row_key = d.row_key",
            )
            .await?,
            &[&mapping.id, &upd_keys, &upd_changed, &upd_ts],
        )
        .await?;
    }
    if !released.is_empty() {
        // remembered like a deletion, so a state of the record read before the hub deletion
        // does not bring the row back; an edit in the app after it is a new record for the hub
        tx.execute(
            &tx.prepare_cached(
                "insert into ferry.tombstones (mapping_id, remote_id, deleted_at)
                 select $1, unnest($2::text[]), now()
                 on conflict (mapping_id, remote_id) do update set deleted_at = excluded.deleted_at",
            )
            .await?,
            &[&mapping.id, &released],
        )
        .await?;
    }
    if !forget.is_empty() {
        tx.execute(
            &tx.prepare_cached(
                "delete from ferry.links where mapping_id = $1 and row_key = any($2)",
            )
            .await?,
            &[&mapping.id, &forget],
        )
        .await?;
        // a released held deletion is done
        tx.execute(
            &tx.prepare_cached(
                "delete from ferry.deletes_held where mapping_id = $1 and side = 'hub' and row_key = any($2)",
            )
            .await?,
            &[&mapping.id, &forget],
        )
        .await?;
    }
    if !moved.is_empty() {
        tracing::debug!(mapping = %mapping.name, rows = moved.len(), "base moved during the call; rows queued again");
        tx.execute(
            &tx.prepare_cached(
                "insert into ferry.outbox (mapping_id, row_key) select $1, unnest($2::bigint[])
                 on conflict (mapping_id, row_key) do update set seq = ferry.outbox.seq + 1, marked_at = now()",
            )
            .await?,
            &[&mapping.id, &moved],
        )
        .await?;
    }
    if !sent.keys.is_empty() {
        sent.record(&tx, mapping).await?;
    }
    if !cre_keys.is_empty() || !upd_keys.is_empty() || !forget.is_empty() {
        // at most once a second: every worker writing the same row would serialise them
        tx.execute(
            &tx.prepare_cached(
                "update ferry.mapping_progress set last_outbound_at = now()
                  where mapping_id = $1 and (last_outbound_at is null or last_outbound_at < now() - interval '1 second')",
            )
            .await?,
            &[&mapping.id],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Counts a failed attempt at processing one row (not the app's answer: ferry's own step, see
/// `isolate`): the mark waits with backoff; after `budget` attempts it becomes a dead letter
/// (operation `process`) and is removed, unless a newer change came meanwhile.
pub(super) async fn count_failure(
    client: &mut deadpool_postgres::Object,
    mapping: &Mapping,
    mark: &Mark,
    error: &str,
    budget: i32,
) -> Result<(), HubError> {
    let attempts = mark.attempts + 1;
    let give_up = attempts >= budget;
    tracing::warn!(mapping = %mapping.name, row = mark.row_key, attempts, dead_letter = give_up, "processing an outbound row failed");
    let tx = client.transaction().await?;
    if give_up {
        tx.execute(
            "insert into ferry.dead_letters (mapping_id, row_key, remote_id, direction, operation, error)
             values ($1, $2, (select remote_id from ferry.links where mapping_id = $1 and row_key = $2), 'outbound', 'process', $3)",
            &[&mapping.id, &mark.row_key, &error],
        )
        .await?;
        tx.execute(
            "delete from ferry.outbox where mapping_id = $1 and row_key = $2 and seq = $3",
            &[&mapping.id, &mark.row_key, &mark.seq],
        )
        .await?;
    }
    let wait = backoff(
        attempts,
        &crate::connectors::ConnectorError::Transient(String::new()),
    );
    tx.execute(
        "update ferry.outbox set attempts = $3, last_error = $4, next_attempt_at = now() + make_interval(secs => $5)
          where mapping_id = $1 and row_key = $2",
        &[&mapping.id, &mark.row_key, &if give_up { 0 } else { attempts }, &error, &wait.as_secs_f64()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The changes one commit sent, for ferry.history (written in the same transaction).
#[derive(Default)]
struct History {
    keys: Vec<i64>,
    remote_ids: Vec<String>,
    /// update: the fields sent; create: every value; delete: null
    sent: Vec<Value>,
    /// update: the base before (the old values)
    before: Vec<Value>,
    ops: Vec<&'static str>,
}

impl History {
    fn push(&mut self, key: i64, remote_id: String, sent: Value, before: Value, op: &'static str) {
        self.keys.push(key);
        self.remote_ids.push(remote_id);
        self.sent.push(sent);
        self.before.push(before);
        self.ops.push(op);
    }

    /// One row per field updated, one (`*`) per record created or deleted; the origin is who
    /// wrote the column in the hub (the guard trigger's `"~by"` stamp), `hub` when unknown.
    async fn record(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        mapping: &Mapping,
    ) -> Result<(), HubError> {
        let sql = format!(
            "insert into ferry.field_changes (mapping_id, row_key, remote_id, field, old_value, new_value,
                                              direction, operation, origin)
             select $1, d.row_key, nullif(d.remote_id, ''), c.key, case when d.op = 'update' then d.old -> c.key end,
                    c.value, 'hub_to_app', d.op,
                    coalesce(t.by ->> c.key, (select min(value) from jsonb_each_text(t.by)), 'hub')
               from unnest($2::bigint[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[]) d(row_key, remote_id, sent, old, op)
               left join lateral (select r._ferry_modified -> '~by' as by
                                    from {tbl} r where r.{k} = d.row_key) t on true
              cross join lateral (select key, value from jsonb_each(d.sent) where d.op = 'update'
                                  union all
                                  select '*', d.sent where d.op <> 'update') c
              where ferry.history_on()",
            tbl = mapping.qualified(),
            k = postgres_protocol::escape::escape_identifier(&mapping.key_column),
        );
        tx.execute(
            &tx.prepare_cached(&sql).await?,
            &[
                &mapping.id,
                &self.keys,
                &self.remote_ids,
                &self.sent,
                &self.before,
                &self.ops,
            ],
        )
        .await?;
        Ok(())
    }
}
